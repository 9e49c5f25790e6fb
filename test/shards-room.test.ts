/**
 * Where new tenants go (tenants/shards.ts shardWithRoom): the one rule the CLI
 * and the onboarding service's placement (onboarding/fleet.ts) both use.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { validateTenantsText } from "../tenants/load";
import { shardWithRoom } from "../tenants/shards";

let dir: string;
const file = (name: string, ...usernames: string[]) =>
  writeFileSync(join(dir, "tenants", `${name}.yaml`), `tenants:\n${usernames.map((u) => `  - username: ${u}\n`).join("")}${usernames.length ? "" : "  []\n"}`);
const manifest = { maxTenants: 3, shards: ["s001", "s002", "s003"].map((name) => ({ name, file: `tenants/${name}.yaml` })) };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dgp-shards-room-"));
  mkdirSync(join(dir, "tenants"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("shardWithRoom", () => {
  it("the first shard whose live entries plus the new ones stay within maxTenants; a missing file has room, an invalid one none", () => {
    file("s001", "aaa", "bbb", "ccc");
    writeFileSync(join(dir, "tenants", "s002.yaml"), "tenants: [\n");
    expect(shardWithRoom(dir, manifest)?.name).toBe("s003");
    file("s003", "ddd", "eee");
    expect(shardWithRoom(dir, manifest, 1)?.name).toBe("s003");
    expect(shardWithRoom(dir, manifest, 2)).toBeUndefined();
    writeFileSync(
      join(dir, "tenants", "s001.yaml"),
      "tenants:\n  - username: aaa\n  - username: bbb\n    status: removed\n  - username: ccc\n    status: removed\n",
    );
    expect(shardWithRoom(dir, manifest, 2)?.name).toBe("s001");
  });

  it("counts entries bound for a shard that its file does not list yet (the service's placed signups), given the file's entries", () => {
    file("s001", "aaa");
    file("s002");
    file("s003");
    const placed: Record<string, string[]> = { s001: ["aaa", "bbb", "ccc"], s002: ["ddd"] };
    const pending = (shard: { name: string }, inFile: readonly { username: string }[]) =>
      (placed[shard.name] ?? []).filter((username) => !inFile.some((tenant) => tenant.username === username)).length;
    expect(shardWithRoom(dir, manifest, 1, { pending })?.name).toBe("s002");
    expect(shardWithRoom(dir, manifest, 3, { pending })?.name).toBe("s003");
    // Files read by the caller (the service's cache): a shard read as empty still counts its pending entries.
    const read = () => validateTenantsText("tenants: []\n");
    expect(shardWithRoom(dir, manifest, 1, { read, pending: (shard) => placed[shard.name]?.length ?? 0 })?.name).toBe("s002");
    expect(shardWithRoom(dir, manifest, 3, { read, pending: (shard) => placed[shard.name]?.length ?? 0 })?.name).toBe("s003");
  });
});

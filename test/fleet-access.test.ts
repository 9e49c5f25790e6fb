/**
 * engine/fleet-access.ts's choice of stacks (no engine, no server): every
 * shard of tenants/shards.yaml as "<environment>-<shard>", narrowed by
 * --shard, replaced by --stack, a wrong shard refused naming the real ones.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fleetTargets } from "../engine/fleet-access";

let projectDir: string;

beforeAll(() => {
  projectDir = mkdtempSync(join(tmpdir(), "dgp-fleet-access-"));
  mkdirSync(join(projectDir, "tenants"));
  writeFileSync(
    join(projectDir, "tenants", "shards.yaml"),
    "maxTenants: 100\nshards:\n  - name: s001\n    file: tenants/tenants.yaml\n  - name: s002\n    file: tenants/s002.yaml\n",
  );
});

afterAll(() => rmSync(projectDir, { recursive: true, force: true }));

describe("fleetTargets", () => {
  it("takes every shard of the local environment by default", () => {
    expect(fleetTargets({ projectDir }).map((target) => target.stack)).toEqual(["local-s001", "local-s002"]);
  });

  it("names the environment's stacks and keeps each shard's file", () => {
    expect(fleetTargets({ projectDir, environment: "prod" }).map((target) => [target.stack, target.shard?.file])).toEqual([
      ["prod-s001", "tenants/tenants.yaml"],
      ["prod-s002", "tenants/s002.yaml"],
    ]);
  });

  it("narrows to --shard and takes --stack as it is", () => {
    expect(fleetTargets({ projectDir, shards: ["s002"] }).map((target) => target.stack)).toEqual(["local-s002"]);
    expect(fleetTargets({ projectDir, stack: "legacy" })).toEqual([{ stack: "legacy" }]);
  });

  it("refuses an unknown shard, naming the ones there are, and --stack with --shard", () => {
    expect(() => fleetTargets({ projectDir, shards: ["s009"] })).toThrow('no shard "s009" in tenants/shards.yaml (shards: s001, s002)');
    expect(() => fleetTargets({ projectDir, stack: "x", shards: ["s001"] })).toThrow("give --stack or --shard, not both");
  });
});

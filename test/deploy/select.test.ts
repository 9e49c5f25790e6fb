/**
 * Which shards `npm run deploy -- --changed-since REF` picks
 * (deploy/select.ts), in a real git repository laid out like this project.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { namedShards, shardsChangedSince } from "../../deploy/select";
import { readShards } from "../../tenants/shards";

let repo: string;
const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
const write = (file: string, text: string) => {
  mkdirSync(dirname(join(repo, file)), { recursive: true });
  writeFileSync(join(repo, file), text);
};
const commit = (message: string) => {
  git("add", "-A");
  git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message);
  return git("rev-parse", "HEAD");
};
const manifest = (shards: string[]) => `maxTenants: 100\nshards:\n${shards.map((name) => `  - name: ${name}\n    file: tenants/${name}.yaml\n`).join("")}`;
const picked = (ref: string) => shardsChangedSince(repo, readShards(repo), "prod", ref).shards.map((shard) => shard.name);

beforeEach(() => {
  repo = mkdtempSync(join(tmpdir(), "dgp-select-"));
  git("init", "-q", "-b", "main");
  write("tenants/shards.yaml", manifest(["s001", "s002"]));
  write("tenants/s001.yaml", "tenants:\n  - username: john_driver\n");
  write("tenants/s002.yaml", "tenants: []\n");
  write("infra/fleet.ts", "export {};\n");
  write("README.md", "fleet\n");
});
afterEach(() => rmSync(repo, { recursive: true, force: true }));

describe("shardsChangedSince", () => {
  it("picks the shards whose tenants file or stack config changed, committed or not", () => {
    const base = commit("base");
    expect(picked(base)).toEqual([]);
    write("tenants/s002.yaml", "tenants:\n  - username: maria_k\n");
    write("README.md", "fleet, documented\n");
    expect(picked(base)).toEqual(["s002"]);
    commit("add maria_k");
    expect(picked(base)).toEqual(["s002"]);
    write("Pulumi.prod-s001.yaml", "config: {}\n");
    write("Pulumi.staging-s002.yaml", "config: {}\n");
    commit("stack config");
    expect(picked(base)).toEqual(["s001", "s002"]);
  });

  it("picks a shard the manifest gained, and every shard when the program changed", () => {
    const base = commit("base");
    write("tenants/shards.yaml", manifest(["s001", "s002", "s003"]));
    write("tenants/s003.yaml", "tenants: []\n");
    commit("new shard");
    expect(picked(base)).toEqual(["s003"]);
    write("infra/fleet.ts", "export const x = 1;\n");
    expect(shardsChangedSince(repo, readShards(repo), "prod", base)).toMatchObject({ reason: expect.stringContaining("the program changed") });
    expect(picked(base)).toEqual(["s001", "s002", "s003"]);
  });

  it("compares a branch with its merge base, not with the other branch's later commits", () => {
    commit("base");
    git("checkout", "-q", "-b", "feature");
    write("tenants/s001.yaml", "tenants:\n  - username: john_driver\n  - username: sam\n");
    commit("feature: add sam");
    git("checkout", "-q", "main");
    write("tenants/s002.yaml", "tenants:\n  - username: other\n");
    commit("main moves on");
    git("checkout", "-q", "feature");
    expect(picked("main")).toEqual(["s001"]);
  });

  it("takes every shard for a ref of zeros (a new branch) and explains an unknown ref", () => {
    commit("base");
    expect(picked("0000000000000000000000000000000000000000")).toEqual(["s001", "s002"]);
    expect(() => picked("origin/main")).toThrow(/cannot compare with "origin\/main".*fetch-depth: 0/);
  });
});

describe("namedShards", () => {
  it("takes the named shards, every shard without a name, and refuses an unknown one", () => {
    commit("base");
    expect(namedShards(readShards(repo), ["s002"]).shards.map((shard) => shard.name)).toEqual(["s002"]);
    expect(namedShards(readShards(repo), []).shards).toHaveLength(2);
    expect(() => namedShards(readShards(repo), ["s009"])).toThrow('no shard "s009" in tenants/shards.yaml (shards: s001, s002)');
  });
});

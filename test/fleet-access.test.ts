/**
 * engine/fleet-access.ts's choice of stacks (no engine, no server): every
 * shard of tenants/shards.yaml as "<environment>-<shard>", narrowed by
 * --shard, replaced by --stack, a wrong shard refused naming the real ones.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkpointDecision, fleetTargets } from "../engine/fleet-access";

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

describe("checkpointDecision", () => {
  const stack = "local-ckpt";
  const configFile = () => join(projectDir, `Pulumi.${stack}.yaml`);
  const configure = (provider: string, tenantsFile = "tenants/ckpt.yaml") =>
    writeFileSync(configFile(), `config:\n  drivergigspro:databaseProvider: ${provider}\n  drivergigspro:tenantsFile: ${tenantsFile}\n`);
  const tenants = (...entries: string[]) => writeFileSync(join(projectDir, "tenants", "ckpt.yaml"), `tenants:\n${entries.map((e) => `  - ${e}\n`).join("")}`);

  it("skips the checkpoints when every live entry carries its tenantId (tombstones and pooled entries included)", () => {
    configure("builtin");
    tenants("username: john_driver\n    tenantId: A1B2C3D4", "tenantId: 0C0FFEE0\n    status: pooled", "username: gone_driver\n    status: removed");
    const decision = checkpointDecision(projectDir, stack, {});
    expect(decision.env).toEqual({ PULUMI_SKIP_CHECKPOINTS: "true" });
    expect(decision.reason).toMatch(/every entry of tenants\/ckpt\.yaml carries its tenantId: intermediate checkpoints skipped/);
  });

  it("keeps them for a shard with an entry lacking an ID, naming it and assign-ids", () => {
    configure("builtin");
    tenants("username: john_driver\n    tenantId: A1B2C3D4", "username: maria_k");
    const decision = checkpointDecision(projectDir, stack, {});
    expect(decision.env).toEqual({});
    expect(decision.reason).toMatch(
      /kept for stack local-ckpt: 1 entry of tenants\/ckpt\.yaml has no tenantId \(line 4 "maria_k"\).*npm run tenants -- assign-ids/,
    );
  });

  it("keeps them on the postgresql provider, and for a file with problems", () => {
    tenants("username: john_driver\n    tenantId: A1B2C3D4");
    configure("postgresql");
    expect(checkpointDecision(projectDir, stack, {})).toMatchObject({ env: {}, reason: expect.stringMatching(/postgresql provider/) });
    configure("builtin", "tenants/missing.yaml");
    expect(checkpointDecision(projectDir, stack, {})).toMatchObject({ env: {}, reason: expect.stringMatching(/tenants\/missing\.yaml has problems/) });
  });

  it("leaves PULUMI_SKIP_CHECKPOINTS from the environment as it is, either way", () => {
    configure("builtin");
    tenants("username: maria_k");
    expect(checkpointDecision(projectDir, stack, { PULUMI_SKIP_CHECKPOINTS: "true" })).toEqual({
      env: {},
      reason: "PULUMI_SKIP_CHECKPOINTS=true from the environment",
    });
    tenants("username: john_driver\n    tenantId: A1B2C3D4");
    expect(checkpointDecision(projectDir, stack, { PULUMI_SKIP_CHECKPOINTS: "false" }).env).toEqual({});
  });
});

/**
 * The program's shape for rollouts, under Pulumi's mocks: each tenant's seed
 * resource gets the release the planner chose, the summaries carry it, the
 * `seedRollout` output records the rollout, and bad rollouts stop the program
 * before anything is declared. The releases are a temporary folder.
 */
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { parseFleetSettings, type FleetSettings } from "../infra/config";
import { declareFleet } from "../infra/fleet";
import type { DeployedTenant } from "../infra/last-update";
import { RELEASES_DIRECTORY } from "../seed/releases";
import type { LocatedTenant } from "../tenants/schema";
import { installMocks, settle, valueOf, type DeclaredResource } from "../harness/pulumi-mocks";

const SEED = "pulumi-nodejs:dynamic/drivergigspro:CatalogueSeed";
let releases: string;

beforeAll(() => {
  // Releases 1, 2 and 3: copies of the committed release 1 (content does not matter to the program).
  releases = mkdtempSync(path.join(tmpdir(), "dgp-releases-"));
  for (const version of ["1", "2", "3"]) cpSync(path.join(RELEASES_DIRECTORY, "1"), path.join(releases, version), { recursive: true });
});
afterAll(() => rmSync(releases, { recursive: true, force: true }));

function settings(rollout?: Record<string, unknown>): FleetSettings {
  return parseFleetSettings(
    { servers: [{ name: "local", host: "127.0.0.1", adminPassword: "pw", sslmode: "disable" }], seedReleases: releases, ...(rollout ? { rollout } : {}) },
    "drivergigspro",
  );
}

const deployedAt = (tenantId: string, seedVersion?: string): DeployedTenant => ({
  server: "local",
  tenantId,
  database: `drivergigspro_${tenantId.toLowerCase()}`,
  status: "active",
  ...(seedVersion ? { seedVersion } : {}),
});

const tenants: LocatedTenant[] = [
  { username: "cat_driver", status: "active", ring: "canary", tenantId: "0A0A0A0A", line: 2 },
  { username: "held_driver", status: "active", hold: true, tenantId: "0B0B0B0B", line: 5 },
  { username: "plain_driver", status: "active", tenantId: "0C0C0C0C", line: 8 },
  { username: "new_driver", status: "active", line: 10 },
];
const deployed = { cat_driver: deployedAt("0A0A0A0A", "2"), held_driver: deployedAt("0B0B0B0B", "2"), plain_driver: deployedAt("0C0C0C0C", "2") };

let declared: DeclaredResource[];
beforeEach(() => {
  declared = installMocks();
});

async function seedVersions(fleet: ReturnType<typeof declareFleet>) {
  await valueOf(fleet.connections);
  await settle();
  const inputs = Object.fromEntries(declared.filter((resource) => resource.type === SEED).map((resource) => [resource.name, resource.inputs.seedVersion]));
  const outputs: Record<string, string> = {};
  for (const [username, summary] of Object.entries(fleet.tenants)) outputs[username] = await valueOf(summary.seedVersion!);
  return { inputs, outputs };
}

describe("a rollout in the program", () => {
  it("with only the canary wave promoted, only the canary's seed names the target; the new tenant gets the stable release", async () => {
    const fleet = declareFleet(settings({ target: 3, promoted: "canary" }), tenants, deployed, { stable: "2" });
    const { inputs, outputs } = await seedVersions(fleet);
    // Seeds are named by tenant ID (cat_driver 0A0A0A0A, held_driver 0B0B0B0B, plain_driver 0C0C0C0C); new_driver has no ID in the file yet.
    expect(inputs).toEqual({ "0A0A0A0A-catalogue": "3", "0B0B0B0B-catalogue": "2", "0C0C0C0C-catalogue": "2", "new_driver-catalogue": "2" });
    expect(outputs).toEqual({ cat_driver: "3", held_driver: "2", plain_driver: "2", new_driver: "2" });
    expect(fleet.seedRollout).toEqual({ target: "3", waves: ["canary", "early", "all"], promoted: "canary", stable: "2" });
    for (const resource of declared.filter((candidate) => candidate.type === SEED)) expect(resource.inputs.releases).toBe(releases);
  });

  it("promoting all moves everyone but the held tenant, and records the target as stable", async () => {
    const fleet = declareFleet(settings({ target: "3", promoted: "all" }), tenants, { ...deployed, cat_driver: deployedAt("0A0A0A0A", "3") }, { stable: "2" });
    const { inputs } = await seedVersions(fleet);
    expect(inputs).toEqual({ "0A0A0A0A-catalogue": "3", "0B0B0B0B-catalogue": "2", "0C0C0C0C-catalogue": "3", "new_driver-catalogue": "3" });
    expect(fleet.seedRollout.stable).toBe("3");
  });

  it("a suspended tenant has no seed resource and keeps its release in the outputs", async () => {
    const suspended = tenants.map((entry) => (entry.username === "cat_driver" ? { ...entry, status: "suspended" as const } : entry));
    const { inputs, outputs } = await seedVersions(declareFleet(settings({ target: 3, promoted: "canary" }), suspended, deployed, { stable: "2" }));
    expect(inputs["cat_driver-catalogue"]).toBeUndefined();
    expect(outputs.cat_driver).toBe("2");
  });

  it("a target that is not published stops the program naming the config key; nothing is declared", () => {
    expect(() => declareFleet(settings({ target: 7 }), tenants, deployed)).toThrow(
      /drivergigspro:rollout\.target: seed release 7 is not published in .*dgp-releases-.* \(published: 1, 2, 3\)/,
    );
    expect(declared).toEqual([]);
  });

  it("a ring that is not a wave and a hold on a new tenant are reported with the other tenants-file problems, by line", () => {
    const bad: LocatedTenant[] = [
      { username: "ear_driver", status: "active", ring: "early", line: 3 },
      { username: "fresh_driver", status: "active", hold: true, line: 6 },
    ];
    expect(() => declareFleet(settings({ waves: ["canary", "all"] }), bad, {})).toThrow(
      /tenants\.yaml:3: tenant "ear_driver": ring "early" is not one of the rollout waves in drivergigspro:rollout\.waves \(canary, all\)[\s\S]*tenants\.yaml:6: tenant "fresh_driver": hold: true keeps a tenant at its deployed seed release/,
    );
    expect(declared).toEqual([]);
  });
});

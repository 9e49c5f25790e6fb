/**
 * A staged seed rollout end to end: the real Pulumi engine (builtin database
 * provider where the postgresql plugin is missing), a real PostgreSQL, and a
 * throw-away releases folder (stack config `seedReleases`) holding the
 * committed release 1 and test-only releases published on top of it.
 *
 * Three tenants: a canary, a held one and one in the default (last) wave.
 * Release 2 (one more company) goes to the canary first, then to everyone
 * not held; release 3 (a broken migration) fails on the canary, naming its
 * tenant ID, and nobody else is touched. "Untouched" is checked twice: the
 * tenant's seed resource in the state is byte-for-byte the same, and its
 * database (every company row's xmin, the catalogue version, the migrations,
 * the app's own rows) is the same.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { LocalPostgres } from "../../local/embedded-postgres";
import { PROJECT_DIR } from "../../engine/paths";
import { setStackConfig, type PulumiContext } from "../../engine/pulumi";
import { setUpEngineStack, type EngineStack } from "../support/engine-stack";
import { COMMITTED_COMPANIES, testCompany, testReleases, type TestReleases } from "../support/seed-releases";

vi.setConfig({ testTimeout: 5 * 60 * 1000 });

let engine: EngineStack;
let server: LocalPostgres;
let context: PulumiContext;
let stack: string;
let workDir: string;
let releases: TestReleases;
const tenantsFile = () => engine.tenantsFile;
const NEW_COMPANY = "zz-rollout-courier";

function writeTenants(held: boolean): void {
  engine.writeTenants("username: canary_driver\n    ring: canary", `username: held_driver${held ? "\n    hold: true" : ""}`, "username: plain_driver");
}

const run = (...args: string[]) => engine.run(...args);
const up = () => engine.up();

/** The preview's changed resources ("op name") and its log lines. */
const preview = () => engine.preview({ flags: ["--diff"] });

function outputs() {
  const out = engine.outputs();
  return { ...out, seedRollout: out.seedRollout as { target: string; promoted: string; stable: string } };
}

/** A tenant's resources are named by its tenant ID (issue 17). */
const idOf = (username: string) => outputs().tenants[username]!.tenantId;

const seedVersions = () => Object.fromEntries(Object.entries(outputs().tenants).map(([username, tenant]) => [username, tenant.seedVersion]));

interface StateResource {
  urn: string;
  id: string;
  inputs: unknown;
  outputs: unknown;
  created: string;
  modified: string;
}

/**
 * Each tenant's seed resource as the state holds it: inputs, outputs and the
 * engine's last-modified time (which only an operation on it changes). Not
 * `dependencies`: every update re-records those, in no fixed order.
 */
function seedResources(): Record<string, string> {
  const state = JSON.parse(run("stack", "export", "--show-secrets")) as { deployment: { resources?: StateResource[] } };
  // Keyed by username: resources are named by tenant ID (by username before the first update that knew the ID).
  const usernames = new Map(Object.entries(outputs().tenants).map(([username, tenant]) => [`${tenant.tenantId}-catalogue`, `${username}-catalogue`]));
  return Object.fromEntries(
    (state.deployment.resources ?? [])
      .filter((resource) => resource.urn.endsWith("-catalogue"))
      .map(({ urn, id, inputs, outputs, created, modified }) => {
        const name = urn.split("::").pop()!;
        return [usernames.get(name) ?? name, JSON.stringify({ id, inputs, outputs, created, modified })];
      }),
  );
}

/** What a seed could change in a tenant's database, plus the app's own row. */
const databases: Record<string, string> = {};
async function databaseState(username: string) {
  databases[username] ??= outputs().tenants[username]!.database;
  const client = await server.connect(databases[username]);
  try {
    const [row] = (
      await client.query(
        `SELECT (SELECT string_agg(slug || ':' || xmin::text || ':' || is_active, ',' ORDER BY slug) FROM companies) AS companies,
                (SELECT count(*) FROM companies WHERE slug = $1 AND is_active)::int AS has_new,
                (SELECT count(*) FROM companies WHERE is_active)::int AS active,
                (SELECT row_to_json(v)::text FROM catalogue_version v) AS version,
                (SELECT string_agg(name, ',' ORDER BY version) FROM schema_migrations) AS migrations,
                (SELECT string_agg(email, ',') FROM users) AS users`,
        [NEW_COMPANY],
      )
    ).rows;
    return row as { companies: string; has_new: number; active: number; version: string; migrations: string; users: string };
  } finally {
    await client.end();
  }
}

const OTHERS = ["held_driver", "plain_driver"];
let before: { resources: Record<string, string>; data: Record<string, Awaited<ReturnType<typeof databaseState>>> };

async function snapshot() {
  const data: typeof before.data = {};
  for (const username of ["canary_driver", ...OTHERS]) data[username] = await databaseState(username);
  return { resources: seedResources(), data };
}

beforeAll(
  async () => {
    releases = testReleases();
    engine = await setUpEngineStack({ name: "rollout", config: { seedReleases: releases.directory } });
    ({ server, context, stack, workDir } = engine);
  },
  60 * 60 * 1000,
);

afterAll(async () => {
  await engine?.cleanup();
  releases?.remove();
});

describe("rolling out a new seed release in waves", () => {
  it("without a rollout, every tenant gets the newest release, recorded per tenant", async () => {
    writeTenants(false);
    up();
    expect(seedVersions()).toEqual({ canary_driver: "1", held_driver: "1", plain_driver: "1" });
    expect(outputs().seedRollout).toMatchObject({ target: "1", promoted: "all", stable: "1" });
    for (const username of ["canary_driver", ...OTHERS]) {
      const client = await server.connect(outputs().tenants[username]!.database);
      await client.query("INSERT INTO users (username, email, password_hash) VALUES ($1, $2, 'x')", [username, `${username}@example.com`]);
      await client.end();
      expect(await databaseState(username)).toMatchObject({ active: COMMITTED_COMPANIES, has_new: 0, users: `${username}@example.com` });
    }
  });

  it("a new release targeted at the canary wave: the preview shows only the canary's catalogue changing", () => {
    writeTenants(true);
    releases.publish("2", { companies: [testCompany(NEW_COMPANY)] });
    setStackConfig(context, stack, { "rollout.target": "2", "rollout.promoted": "canary" });
    const { changes, log } = preview();
    expect(changes).toEqual([`update ${idOf("canary_driver")}-catalogue`]);
    expect(log).toMatch(
      /seed rollout: target release 2, promoted through wave "canary", stable 1; 1 tenant\(s\) move \(canary_driver 1->2\); 2 not on the target \(held_driver \(held\) at 1, plain_driver at 1\)/,
    );
  });

  it("up: the canary has the new company; the others' seed resources and data are untouched", async () => {
    before = await snapshot();
    up();
    expect(seedVersions()).toEqual({ canary_driver: "2", held_driver: "1", plain_driver: "1" });
    expect(await databaseState("canary_driver")).toMatchObject({ has_new: 1, active: COMMITTED_COMPANIES + 1, users: "canary_driver@example.com" });
    const after = await snapshot();
    for (const username of OTHERS) {
      expect(after.resources[`${username}-catalogue`]).toBe(before.resources[`${username}-catalogue`]);
      expect(after.data[username]).toEqual(before.data[username]);
    }
  });

  it("npm run tenants -- list shows each tenant's release", () => {
    const saved = join(workDir, "outputs.json");
    writeFileSync(saved, run("stack", "output", "--json"));
    const listed = JSON.parse(
      execFileSync(
        join(PROJECT_DIR, "node_modules", ".bin", "tsx"),
        [join(PROJECT_DIR, "cli", "tenants.ts"), "list", "--json", "--file", tenantsFile(), "--outputs", saved],
        { encoding: "utf8" },
      ),
    ) as { username: string; seed: string; ring: string; hold: boolean }[];
    expect(listed.map(({ username, seed, ring, hold }) => ({ username, seed, ring, hold }))).toEqual([
      { username: "canary_driver", seed: "2", ring: "canary", hold: false },
      { username: "held_driver", seed: "1", ring: "(last wave)", hold: true },
      { username: "plain_driver", seed: "1", ring: "(last wave)", hold: false },
    ]);
  });

  it("promoting the last wave updates the tenant that is not held; the held one stays on release 1", async () => {
    setStackConfig(context, stack, { "rollout.promoted": "all" });
    expect(preview().changes).toEqual([`update ${idOf("plain_driver")}-catalogue`]);
    before = await snapshot();
    up();
    expect(seedVersions()).toEqual({ canary_driver: "2", held_driver: "1", plain_driver: "2" });
    expect(outputs().seedRollout).toMatchObject({ target: "2", promoted: "all", stable: "2" });
    const after = await snapshot();
    expect(after.data.plain_driver).toMatchObject({ has_new: 1, users: "plain_driver@example.com" });
    expect(after.resources["held_driver-catalogue"]).toBe(before.resources["held_driver-catalogue"]);
    expect(after.data.held_driver).toEqual(before.data.held_driver);
    expect(after.data.held_driver).toMatchObject({ has_new: 0 });
  });

  it("a release whose migration fails stops the update on the canary, naming its tenant ID; no other tenant is touched", async () => {
    releases.publish("3", { migrations: { "005_broken": "ALTER TABLE no_such_table ADD COLUMN x integer;\n" } });
    setStackConfig(context, stack, { "rollout.target": "3", "rollout.promoted": "canary" });
    expect(preview().changes).toEqual([`update ${idOf("canary_driver")}-catalogue`]);
    before = await snapshot();
    const canaryId = outputs().tenants.canary_driver!.tenantId;
    expect(() => up()).toThrow(
      new RegExp(
        `tenant ${canaryId}: seeding failed: migration 005_broken failed and was rolled back: relation "no_such_table" does not exist \\(seed release 3\\)`,
      ),
    );
    const after = await snapshot();
    expect(after.resources).toEqual(before.resources);
    expect(after.data).toEqual(before.data);
    expect(seedVersions()).toEqual({ canary_driver: "2", held_driver: "1", plain_driver: "2" });
  });

  it("a target that is not published fails the preview naming the config key", () => {
    setStackConfig(context, stack, { "rollout.target": "9" });
    expect(() => preview()).toThrow(/drivergigspro:rollout\.target: seed release 9 is not published in .* \(published: 1, 2, 3\)/);
  });
});

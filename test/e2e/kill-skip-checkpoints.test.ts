/**
 * The SIGKILL test of engine-suite.ts again, with the engine's intermediate
 * checkpoints skipped (PULUMI_SKIP_CHECKPOINTS=true), on a shard whose every
 * entry carries its allocated tenantId: the case in which every deployment
 * path skips them by default (engine/fleet-access.ts checkpointDecision).
 *
 * Without checkpoints a killed update leaves the state as the last finished
 * update wrote it, so the next update makes again everything the killed one
 * made: the role and database are adopted by their tenant markers, the DNS
 * record is upserted, the seed runs again (idempotent), the random passwords
 * of the tenants the killed run made are drawn anew (none was recorded, so
 * none was handed out). Checked after every kill, with plain SQL and dig:
 * no tenant lost or doubled, each database named by its pinned ID, no orphan
 * database or role, rows kept, recorded passwords unchanged, every tenant
 * seeded and its record resolving. The real engine, a real PostgreSQL (state
 * in it, as in production) and a real BIND.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { releaseStaleLock, setStackConfig } from "../../engine/pulumi";
import { rfc2136StackConfig, startBind, type LocalBind } from "../../harness/bind";
import { setUpEngineStack, type EngineStack } from "../../harness/engine-stack";
import { randomTenantId } from "../../tenants/ids";
import { tenantsFromOutputs, verifyIsolation } from "../../verify/probes";
import { canLogInWithUrl } from "../support/can-log-in";
import { killUpAt } from "../support/kill-up";

vi.setConfig({ testTimeout: 5 * 60 * 1000 });

const ZONE = "fleet.test";
const TARGET = "127.0.0.1";

let bind: LocalBind;
let engine: EngineStack;
/** Every entry written so far (username, pinned ID), in file order. */
const entries: { username: string; tenantId: string }[] = [];

function addTenants(...usernames: string[]): void {
  const taken = new Set(entries.map((entry) => entry.tenantId));
  for (const username of usernames) {
    let tenantId = randomTenantId();
    while (taken.has(tenantId)) tenantId = randomTenantId();
    taken.add(tenantId);
    entries.push({ username, tenantId });
  }
  engine.writeTenants(...entries.map((entry) => `username: ${entry.username}\n    tenantId: ${entry.tenantId}`));
}

async function onServer(catalog: "pg_database" | "pg_roles"): Promise<string[]> {
  const column = catalog === "pg_database" ? "datname" : "rolname";
  const rows = await engine.sql<{ name: string }>(`SELECT ${column} AS name FROM ${catalog} WHERE ${column} LIKE 'drivergigspro\\_%' ORDER BY 1`);
  return rows.map((row) => row.name);
}

const resourceUrns = () =>
  (JSON.parse(engine.run("stack", "export")) as { deployment: { resources?: { urn: string }[] } }).deployment.resources?.map((r) => r.urn) ?? [];

beforeAll(
  async () => {
    bind = await startBind(ZONE);
    engine = await setUpEngineStack({ name: "e2e-nockpt", config: rfc2136StackConfig(bind, TARGET) });
    setStackConfig(engine.context, engine.stack, { "dns.keySecret": bind.keySecret }, { secret: true });
  },
  60 * 60 * 1000,
);

afterAll(async () => {
  await engine?.cleanup();
  await bind?.stop();
});

/** What must hold after every converge: checked against the server and BIND, not the program's code. */
async function expectConverged(recordedUrls: Record<string, string>): Promise<void> {
  const out = engine.outputs();
  expect(Object.keys(out.tenants).sort()).toEqual(entries.map((entry) => entry.username).sort());
  for (const { username, tenantId } of entries) {
    expect(out.tenants[username]).toMatchObject({ tenantId, database: `drivergigspro_${tenantId.toLowerCase()}`, status: "active" });
  }
  // No orphan and no double: the server holds exactly the tenants' databases and roles.
  const expected = entries.map((entry) => `drivergigspro_${entry.tenantId.toLowerCase()}`).sort();
  expect(await onServer("pg_database")).toEqual(expected);
  expect(await onServer("pg_roles")).toEqual(expected);
  for (const [username, url] of Object.entries(recordedUrls)) expect(out.connections[username]!.databaseUrl).toBe(url);
  for (const { username } of entries) {
    const tenant = out.tenants[username]!;
    expect(await canLogInWithUrl(out.connections[username]!.databaseUrl)).toBe(true);
    const [seeded] = await engine.sql<{ active: string; owner: string }>(
      "SELECT (SELECT count(*) FROM companies WHERE is_active) AS active, (SELECT tableowner FROM pg_tables WHERE tablename = 'companies') AS owner",
      [],
      tenant.database,
    );
    expect(Number(seeded!.active)).toBeGreaterThanOrEqual(400);
    expect(seeded!.owner).toBe(tenant.database);
    expect(bind.dig(tenant.domain, "A")).toEqual([TARGET]);
  }
}

describe("a pulumi up without intermediate checkpoints (PULUMI_SKIP_CHECKPOINTS=true), every entry with its tenantId", () => {
  it(
    "converges after SIGKILL at 3 moments of an update: no tenant lost or doubled, no orphan database, rows and passwords kept, seeds and DNS records there",
    async () => {
      addTenants("nockpt_a", "nockpt_b");
      await engine.converge();
      const keeper = engine.outputs().tenants.nockpt_a!;
      await engine.sql("INSERT INTO sessions (sid, sess, expire) VALUES ('before-kills', '{}', now())", [], keeper.database);
      const figures: string[] = [];
      // Moment k: once the update has reported k created resources (0: right after it starts).
      for (const moment of [0, 4, 9]) {
        const recordedUrls = Object.fromEntries(Object.entries(engine.outputs().connections).map(([username, c]) => [username, c.databaseUrl]));
        const recorded = resourceUrns();
        addTenants(`kill${moment}_a`, `kill${moment}_b`);
        const kill = await killUpAt(engine.context, engine.stack, moment, { ...engine.context.env, PULUMI_SKIP_CHECKPOINTS: "true" });
        expect(kill.signal).toBe("SIGKILL");
        expect(kill.left).toEqual([]);
        const made = (await onServer("pg_database")).length - Object.keys(recordedUrls).length;

        // Without checkpoints the killed run recorded nothing: the state is the last finished update's.
        expect(resourceUrns()).toEqual(recorded);
        expect(await releaseStaleLock(engine.context, engine.stack)).toMatch(/removed the lock left by an interrupted pulumi up/);
        // The way every deployment path updates: this shard's entries all carry IDs, so it skips the checkpoints too.
        await engine.converge();
        await expectConverged(recordedUrls);
        expect(await engine.sql("SELECT sid FROM sessions", [], keeper.database)).toEqual([{ sid: "before-kills" }]);
        figures.push(`moment ${moment}: killed after ${kill.created} created (${made} new database(s) on the server, none in the state), converged`);
      }
      expect(engine.preview().changes).toEqual([]);
      const failed = (await verifyIsolation(tenantsFromOutputs(engine.outputs(), () => false))).filter((result) => !result.ok);
      expect(failed).toEqual([]);
      console.log(figures.join("\n"));
    },
    15 * 60 * 1000,
  );
});

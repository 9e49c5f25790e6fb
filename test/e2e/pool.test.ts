/**
 * The warm pool end to end (issue 18): the real Pulumi engine, a real
 * PostgreSQL and a real BIND. A pooled entry is made in full by `pulumi up`
 * (database, role, catalogue, session secret; no DNS record), verify probes
 * it, and a claim (the entry's username written, the DNS record made the way
 * the provider makes it) is recorded by the next update with nothing but the
 * record created over it: no replace, password and rows kept, and the
 * preview after it is empty.
 *
 * The steps share one stack and run in order.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { setStackConfig } from "../../engine/pulumi";
import { upsertRecord } from "../../infra/dns/rfc2136-operations";
import { rfc2136RecordSpec } from "../../infra/dns/rfc2136-record";
import { claimPooledTenant } from "../../tenants/edit";
import { tenantsFromOutputs, verifyIsolation } from "../../verify/probes";
import { rfc2136Settings, rfc2136StackConfig, startBind, type LocalBind } from "../../harness/bind";
import { setUpEngineStack, type EngineStack } from "../../harness/engine-stack";

vi.setConfig({ testTimeout: 5 * 60 * 1000 });

const ZONE = "fleet.test";
const TARGET = "127.0.0.1";
const POOLED = "0F0F0F0F";

let bind: LocalBind;
let engine: EngineStack;

beforeAll(
  async () => {
    bind = await startBind(ZONE);
    engine = await setUpEngineStack({
      name: "e2e-pool",
      state: "file",
      config: rfc2136StackConfig(bind, TARGET),
    });
    setStackConfig(engine.context, engine.stack, { "dns.keySecret": bind.keySecret }, { secret: true });
  },
  60 * 60 * 1000,
);

afterAll(async () => {
  await engine?.cleanup();
  await bind?.stop();
});

async function asTenant<T>(databaseUrl: string, query: string): Promise<T[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(query)).rows as T[];
  } finally {
    await client.end();
  }
}

describe("a warm pool on the real engine", () => {
  let urlBefore = "";

  it("pulumi up makes a pooled tenant in full with no DNS record; outputs and verify show it as pooled; nothing left to change", async () => {
    engine.writeTenants("username: john_driver\n    tenantId: A1B2C3D4", `tenantId: ${POOLED}\n    status: pooled`);
    engine.up();
    const outputs = engine.outputs();
    expect(outputs.tenants[POOLED]).toMatchObject({ username: POOLED, tenantId: POOLED, status: "pooled", domain: "", database: "drivergigspro_0f0f0f0f" });
    urlBefore = outputs.connections[POOLED]!.databaseUrl;
    const [seeded] = await asTenant<{ active: string; owner: string; users: string }>(
      urlBefore,
      `SELECT (SELECT count(*) FROM companies WHERE is_active) AS active,
              (SELECT tableowner FROM pg_tables WHERE tablename = 'companies') AS owner,
              (SELECT count(*) FROM users) AS users`,
    );
    expect(Number(seeded!.active)).toBeGreaterThanOrEqual(400);
    expect([seeded!.owner, seeded!.users]).toEqual(["drivergigspro_0f0f0f0f", "0"]);
    const [role] = await engine.sql<{ rolcanlogin: boolean }>("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'drivergigspro_0f0f0f0f'");
    expect(role!.rolcanlogin).toBe(true);
    // The only record in the zone is john_driver's: a pooled tenant has no name yet.
    expect(bind.dig(`john-driver-drivergigspro.${ZONE}`)).toEqual([TARGET]);
    const results = await verifyIsolation(tenantsFromOutputs(outputs, () => true));
    expect(results.filter((result) => !result.ok)).toEqual([]);
    expect(new Set(results.map((result) => result.tenantId))).toEqual(new Set(["A1B2C3D4", POOLED]));
    engine.run("preview", "--expect-no-changes");
  });

  it("a claim (username bound in the file, DNS record made as the provider makes it) is recorded by one update: only the record, adopted; password and rows kept", async () => {
    const claimed = claimPooledTenant(readFileSync(engine.tenantsFile, "utf8"), POOLED, { username: "maria_k", email: "maria@example.com" });
    if (!claimed.ok) throw new Error(JSON.stringify(claimed.problems));
    writeFileSync(engine.tenantsFile, claimed.text);
    const domain = `maria-k-drivergigspro.${ZONE}`;
    const dns = rfc2136Settings(bind, TARGET);
    await upsertRecord(rfc2136RecordSpec(dns, domain, POOLED));
    expect(bind.dig(domain)).toEqual([TARGET]);
    await asTenant(urlBefore, "INSERT INTO users (username, email) VALUES ('maria_k', 'maria@example.com')");

    expect(engine.preview().changes).toEqual([`create ${POOLED}-dns`]);
    engine.up();
    const outputs = engine.outputs();
    expect(outputs.tenants[POOLED]).toBeUndefined();
    expect(outputs.tenants.maria_k).toMatchObject({ tenantId: POOLED, status: "active", domain, database: "drivergigspro_0f0f0f0f" });
    expect(outputs.connections.maria_k!.databaseUrl).toBe(urlBefore);
    expect(bind.dig(domain)).toEqual([TARGET]);
    const kept = await asTenant<{ username: string }>(urlBefore, "SELECT username FROM users");
    expect(kept).toEqual([{ username: "maria_k" }]);
    engine.run("preview", "--expect-no-changes");
  });
});

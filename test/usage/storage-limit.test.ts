/**
 * The storage hard limit end to end on a real PostgreSQL (the embedded 18 and
 * Debian's 15): tenants made as the builtin provider makes them and seeded,
 * one filled past its plan's storageHardLimitMb; one reading of the usage
 * sampler stops its writes (refused with a clear error, reads and the other
 * tenant's writes unaffected, nothing lost), `npm run usage`'s table and the
 * metrics show it, and it gets its writes back when its plan grows or it is
 * under again.
 */
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ops from "../../infra/builtin-postgres/operations";
import type { LocalPostgres } from "../../local/embedded-postgres";
import { seedTenantDatabase } from "../../seed/seed";
import { collectUsage } from "../../usage/collect";
import type { AdminServer, UsageTenant } from "../../usage/inputs";
import { UsageMetrics } from "../../usage/metrics";
import { renderUsageTable, usageRows } from "../../usage/report";
import { UsageSampler } from "../../usage/sampler";
import { POSTGRES_KINDS, serverMajor, startTestPostgres } from "../support/test-postgres";
import { testOwner as owner } from "../support/tenant-owner";

const MIB = 1024 * 1024;

describe.each(POSTGRES_KINDS)("storage hard limit on PostgreSQL %s", (kind) => {
  let server: LocalPostgres;
  let servers: AdminServer[];
  const tenants: UsageTenant[] = [];
  const urls = new Map<string, string>();
  const log: string[] = [];
  let sampler: UsageSampler;
  let metrics: UsageMetrics;

  const asTenant = async <T>(tenantId: string, work: (client: Client) => Promise<T>): Promise<T> => {
    const client = new Client({ connectionString: urls.get(tenantId) });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  const setHardLimit = (tenantId: string, storageHardLimitMb: number) => {
    const tenant = tenants.find((candidate) => candidate.tenantId === tenantId)!;
    tenant.limits = { ...tenant.limits, storageQuotaMb: storageHardLimitMb - 1, storageHardLimitMb };
  };

  beforeAll(async () => {
    server = await startTestPostgres(kind);
    console.log(`storage-limit: PostgreSQL ${await serverMajor(server)} (${kind})`);
    servers = [{ name: "local", url: server.url() }];
    for (const [tenantId, username] of [
      ["5A0000AA", "filling_fast"],
      ["5B0000BB", "quiet_neighbour"],
    ] as const) {
      const name = `drivergigspro_${tenantId.toLowerCase()}`;
      await ops.createRole(server.url(), { name, ...owner(name), password: `${name}-pw`, login: true, connectionLimit: 10, tempFileLimitMb: 64 });
      await ops.createDatabase(server.url(), { name, ...owner(name), tenantRole: name, connectionLimit: 10 });
      await ops.revokePublic(server.url(), name);
      const url = `postgresql://${name}:${name}-pw@${server.host}:${server.port}/${name}?sslmode=disable`;
      urls.set(tenantId, url);
      await seedTenantDatabase({ databaseUrl: url, tenantId });
      tenants.push({ tenantId, username, database: name, role: name, server: "local", status: "active", plan: "starter" });
    }
    // Each plan's hard limit: 3 MB above what the seeded database takes now.
    const reading = await collectUsage(servers, tenants);
    for (const figure of reading.figures) setHardLimit(figure.tenantId, Math.ceil(figure.sizeBytes / MIB) + 3);
    metrics = new UsageMetrics();
    sampler = new UsageSampler({ source: async () => ({ tenants, servers }), intervalMs: 60_000, metrics, log: (line) => log.push(line) });
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("stops the writes of the tenant past its hard limit within one reading, and only its writes", async () => {
    expect((await sampler.sampleOnce()).figures.every((figure) => figure.writesStoppedSince === null)).toBe(true);
    expect(sampler.storageEvents).toEqual([]);
    // 6,000 rows of 1,000 bytes (under the TOAST threshold, so not compressed): about 6 MB.
    await asTenant("5A0000AA", (client) =>
      client.query("CREATE TABLE filler (id int, pad text); INSERT INTO filler SELECT g, repeat('x', 1000) FROM generate_series(1, 6000) g"),
    );

    await sampler.sampleOnce();
    expect(sampler.storageEvents.map((event) => [event.tenantId, event.action])).toEqual([["5A0000AA", "writes stopped"]]);
    expect(log.join("\n")).toMatch(/tenant 5A0000AA \(filling_fast\): writes stopped: [\d.]+ MB is over its \d+ MB storage hard limit/);

    const refused = await asTenant("5A0000AA", (client) => client.query("INSERT INTO filler VALUES (0, 'one more')").catch((error: unknown) => error));
    expect(refused).toMatchObject({ code: "42501", message: "permission denied for table filler" });
    const reads = await asTenant("5A0000AA", async (client) => [
      (await client.query("SELECT count(*)::int AS n FROM filler")).rows[0].n,
      (await client.query("SELECT count(*)::int AS n FROM companies WHERE is_active")).rows[0].n >= 400,
    ]);
    expect(reads).toEqual([6000, true]);
    await asTenant("5B0000BB", (client) => client.query("CREATE TABLE notes (id int); INSERT INTO notes VALUES (1)"));

    const rows = usageRows(tenants, (await collectUsage(servers, tenants)).figures);
    expect(rows.map((row) => [row.tenantId, row.writesStoppedSince !== null])).toEqual([
      ["5A0000AA", true],
      ["5B0000BB", false],
    ]);
    expect(renderUsageTable(rows)).toMatch(/5A0000AA .* WRITES STOPPED since \S+ \(over \d+ MB hard limit\)/);
    const exported = await metrics.registry.metrics();
    expect(exported).toContain('drivergigspro_tenant_writes_stopped{tenant_id="5A0000AA",server="local"} 1');
    expect(exported).toContain('drivergigspro_tenant_writes_stopped{tenant_id="5B0000BB",server="local"} 0');

    // A second reading changes nothing.
    await sampler.sampleOnce();
    expect(sampler.storageEvents).toHaveLength(1);
  });

  it("gives the writes back when the plan grows, and when the tenant is under again, data kept", async () => {
    const size = (await collectUsage(servers, tenants)).figures.find((figure) => figure.tenantId === "5A0000AA")!.sizeBytes;
    const before = tenants[0]!.limits!.storageHardLimitMb!;
    setHardLimit("5A0000AA", Math.ceil(size / MIB) + 10);
    await sampler.sampleOnce();
    expect(sampler.storageEvents.at(-1)).toMatchObject({ tenantId: "5A0000AA", action: "writes resumed" });
    await asTenant("5A0000AA", (client) => client.query("INSERT INTO filler VALUES (6001, 'back')"));

    setHardLimit("5A0000AA", before);
    await sampler.sampleOnce();
    expect(sampler.storageEvents.at(-1)).toMatchObject({ tenantId: "5A0000AA", action: "writes stopped" });
    // The way back under: TRUNCATE (or DELETE) is still allowed while writes are stopped.
    await asTenant("5A0000AA", (client) => client.query("TRUNCATE filler"));
    await sampler.sampleOnce();
    expect(sampler.storageEvents.at(-1)).toMatchObject({ tenantId: "5A0000AA", action: "writes resumed" });
    const after = await asTenant("5A0000AA", async (client) => {
      await client.query("INSERT INTO filler VALUES (1, 'writing again')");
      return (await client.query("SELECT count(*)::int AS n FROM companies WHERE is_active")).rows[0].n as number;
    });
    expect(after).toBeGreaterThanOrEqual(400);
    expect(await asTenant("5B0000BB", async (client) => (await client.query("SELECT count(*)::int AS n FROM notes")).rows[0].n)).toBe(1);
    expect(sampler.storageEvents.filter((event) => event.tenantId === "5B0000BB")).toEqual([]);
  });
});

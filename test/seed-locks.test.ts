/**
 * The seed never waits forever on a lock its tenant can take: the seed lock
 * (an advisory lock in the tenant's own database) or a table lock. Real
 * PostgreSQL, the tenant made as the builtin provider makes it.
 */
import { Client, escapeIdentifier } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ops from "../infra/builtin-postgres/operations";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { SEED_LOCK_KEY } from "../seed/advisory-lock";
import { seedTenantDatabase } from "../seed/seed";
import { seedProvider } from "../infra/catalogue-seed-provider";
import { testOwner as owner } from "./support/tenant-owner";

let server: LocalPostgres;
const tenantId = "5EED10CC";
const name = `drivergigspro_${tenantId.toLowerCase()}`;
const password = "seed-lock-tenant-pw";
let url: string;

beforeAll(async () => {
  server = await startLocalPostgres();
  await ops.createRole(server.url(), { name, ...owner(name), password, login: true, connectionLimit: 5, statementTimeoutMs: 30_000 });
  await ops.createDatabase(server.url(), { name, ...owner(name), tenantRole: name, connectionLimit: 5 });
  url = `postgresql://${name}:${password}@${server.host}:${server.port}/${name}?sslmode=disable`;
  await seedTenantDatabase({ databaseUrl: url, tenantId });
});
afterAll(async () => {
  await server?.stop();
});

/** A session as the tenant itself: what a hostile tenant holds while the seed runs. */
async function tenantSession(): Promise<Client> {
  const client = new Client({ connectionString: url });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

describe("the seed against locks its tenant holds", () => {
  it("fails within its wait, naming the tenant, while the tenant holds the seed lock; succeeds once released", async () => {
    const tenant = await tenantSession();
    try {
      await tenant.query("SELECT pg_advisory_lock($1::bigint)", [SEED_LOCK_KEY]);
      await expect(seedTenantDatabase({ databaseUrl: url, tenantId, lockTimeoutMs: 600 })).rejects.toThrow(
        /^tenant 5EED10CC: seeding failed: another session holds the seed lock \(advisory lock \d+\) on this database and kept it for 600 ms; the next pulumi up retries/,
      );
      await tenant.query("SELECT pg_advisory_unlock($1::bigint)", [SEED_LOCK_KEY]);
    } finally {
      await tenant.end();
    }
    const report = await seedTenantDatabase({ databaseUrl: url, tenantId, lockTimeoutMs: 600 });
    expect(report.skipped).toBe(true);
  });

  it("fails on lock_timeout, naming the tenant, while the tenant holds a table lock; succeeds once released", async () => {
    const tenant = await tenantSession();
    try {
      await tenant.query("BEGIN");
      await tenant.query(`LOCK TABLE ${escapeIdentifier("catalogue_version")} IN ACCESS EXCLUSIVE MODE`);
      await expect(seedTenantDatabase({ databaseUrl: url, tenantId, lockTimeoutMs: 600, force: true })).rejects.toThrow(
        /^tenant 5EED10CC: seeding failed: another session holds a lock this seed needs \(canceling statement due to lock timeout\); the next pulumi up retries/,
      );
      await tenant.query("ROLLBACK");
    } finally {
      await tenant.end();
    }
    const report = await seedTenantDatabase({ databaseUrl: url, tenantId, lockTimeoutMs: 600, force: true });
    expect(report.catalogueVersion).toMatch(/\S/);
  });
});

describe("the seed hook's refresh", () => {
  it("reads a seeded database as unchanged, and a dropped one as needing the seed again", async () => {
    const props = { tenantId, database: name, databaseUrl: url, seedVersion: "v1", catalogueVersion: "c1" };
    const news = { tenantId, database: name, databaseUrl: url, seedVersion: "v1" };
    const read = await seedProvider.read!(tenantId, props);
    expect(read.props).toEqual(props);
    expect((await seedProvider.diff!(tenantId, read.props, news)).changes).toBe(false);
    await ops.dropDatabase(server.url(), name);
    const gone = await seedProvider.read!(tenantId, props);
    expect(gone.props.catalogueVersion).toBeNull();
    expect((await seedProvider.diff!(tenantId, gone.props, news)).changes).toBe(true);
    // A password the tenant changed is the role's drift, not the catalogue's.
    const wrong = { ...props, databaseUrl: url.replace(password, "not-the-password") };
    expect((await seedProvider.read!(tenantId, wrong)).props).toEqual(wrong);
  });
});

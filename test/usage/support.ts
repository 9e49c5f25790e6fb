/** A real PostgreSQL with seeded tenant databases, as `npm run usage` sees them. */
import { Client } from "pg";
import { startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import type { AdminServer, UsageTenant } from "../../usage/inputs";
import { seededTenantUnderTest, type TestTenant } from "../../harness/tenant-databases";

export interface UsageFleet {
  postgres: LocalPostgres;
  tenants: TestTenant[];
  usageTenants: UsageTenant[];
  servers: AdminServer[];
  /** `pulumi stack output --json` of this fleet (no secrets). */
  outputs: { tenants: Record<string, Record<string, unknown>> };
  controlUrl: string;
  stop(): Promise<void>;
}

/**
 * Autovacuum is off so that nothing but the test touches the tenant
 * databases (an autovacuum worker's visit would count as a transaction);
 * pg_stat_statements is preloaded for the slow-statement figures.
 */
export async function startUsageFleet(count: number, extra: Partial<UsageTenant>[] = []): Promise<UsageFleet> {
  const postgres = await startLocalPostgres({
    postgresFlags: ["-c", "autovacuum=off", "-c", "shared_preload_libraries=pg_stat_statements", "-c", "track_activities=on"],
  });
  const admin = await postgres.connect();
  await admin.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  await admin.query("CREATE DATABASE control");
  await admin.end();
  const tenants: TestTenant[] = [];
  for (let i = 0; i < count; i++) tenants.push((await seededTenantUnderTest(postgres, i)).tenant);
  // Seeding may itself be slow on a busy machine; slow statements count from here.
  const reset = await postgres.connect();
  await reset.query("SELECT pg_stat_statements_reset()");
  await reset.end();
  const usageTenants: UsageTenant[] = tenants.map((tenant, i) => ({
    tenantId: tenant.tenantId,
    username: `driver_${i}`,
    database: tenant.database,
    server: "local",
    status: "active",
    ...extra[i],
  }));
  const outputs = {
    tenants: Object.fromEntries(usageTenants.map((tenant, i) => [tenant.username, { ...tenant, role: tenants[i]!.role, domain: `${tenant.username}.test` }])),
  };
  return {
    postgres,
    tenants,
    usageTenants,
    servers: [{ name: "local", url: postgres.url() }],
    outputs,
    controlUrl: postgres.url("control"),
    stop: () => postgres.stop(),
  };
}

/** Connects as the tenant's own role (the app's view). */
export async function tenantClient(tenant: TestTenant): Promise<Client> {
  const client = new Client({ connectionString: tenant.url });
  await client.connect();
  return client;
}

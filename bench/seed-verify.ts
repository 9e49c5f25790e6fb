/**
 * Seeding and verification on a real PostgreSQL (started here), printed as
 * JSON lines for bench/index.ts:
 * - seed one tenant: cold (migrations + COPY + upsert), warm (version already
 *   there), forced warm (the upsert itself, changing no row);
 * - baseline: `psql \copy` of the same rows into the same table of a freshly
 *   migrated database, the fastest plain load PostgreSQL offers;
 * - verify-tenant-isolation over 10 and 100 tenants.
 * Each timing is the median of REPEAT runs.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Client, escapeIdentifier } from "pg";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { loadCatalogue } from "../seed/catalogue/load";
import { COMPANY_COLUMNS } from "../seed/company-columns";
import { copyTextRow } from "../seed/copy-text";
import { applyMigrations } from "../seed/migrate";
import { seedTenantDatabase } from "../seed/seed";
import { DEFAULT_LOGINS_PER_TENANT, verifyIsolation, type TenantUnderTest } from "../verify/probes";
import { createTenantDatabase, seededTenantUnderTest } from "../harness/tenant-databases";
import { runMain } from "../lib/run-main";

const REPEAT = 3;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}

function emit(row: Record<string, unknown>): void {
  console.log(JSON.stringify(row));
}

async function seedRows(server: LocalPostgres): Promise<void> {
  const catalogue = loadCatalogue();
  const cold: number[] = [];
  const warm: number[] = [];
  const forced: number[] = [];
  const psqlCopy: number[] = [];
  const rowsFile = join(mkdtempSync(join(tmpdir(), "dgp-bench-")), "companies.copy");
  writeFileSync(rowsFile, catalogue.companies.map((company) => copyTextRow(COMPANY_COLUMNS.map(({ value }) => value(company)))).join(""));
  const columns = COMPANY_COLUMNS.map(({ column }) => escapeIdentifier(column)).join(", ");

  for (let i = 0; i < REPEAT; i++) {
    const tenant = await createTenantDatabase(server);
    cold.push(await timed(() => seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId })));
    warm.push(await timed(() => seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId })));
    forced.push(await timed(() => seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId, force: true })));

    const baseline = await createTenantDatabase(server);
    const client = new Client({ connectionString: baseline.url });
    await client.connect();
    await applyMigrations(client);
    await client.end();
    psqlCopy.push(
      await timed(async () => {
        const result = spawnSync("psql", [baseline.url, "-v", "ON_ERROR_STOP=1", "-qc", `\\copy companies (${columns}) FROM '${rowsFile}'`], {
          encoding: "utf8",
        });
        if (result.status !== 0) throw new Error(`psql failed: ${result.stderr}`);
      }),
    );
  }
  const base = median(psqlCopy);
  for (const [step, values] of [
    ["psql \\copy (baseline: load only)", psqlCopy],
    ["seed, cold (migrations + COPY + upsert)", cold],
    ["seed, warm (version already loaded)", warm],
    ["seed, forced upsert (no row changes)", forced],
  ] as const) {
    emit({ bench: "seed", step, companies: catalogue.companies.length, seconds: median(values), ratio: median(values) / base });
  }
}

async function verifyRows(server: LocalPostgres): Promise<void> {
  const underTest: TenantUnderTest[] = [];
  for (const size of [10, 100]) {
    while (underTest.length < size) underTest.push((await seededTenantUnderTest(server, underTest.length)).underTest);
    let probes = 0;
    const seconds = await timed(async () => (probes = (await verifyIsolation(underTest)).length));
    emit({ bench: "verify", tenants: size, probes, crossLogins: size * Math.min(DEFAULT_LOGINS_PER_TENANT, size - 1), seconds, perTenant: seconds / size });
  }
}

async function main() {
  const server = await startLocalPostgres();
  try {
    await seedRows(server);
    await verifyRows(server);
  } finally {
    await server.stop();
  }
}

// The message alone, no prefix; exit at once so open pools and servers cannot hold the process.
runMain(main, { prefix: "", exitNow: true });

/**
 * `npm run seed -- --database-url URL [--tenant-id ID] [--release N] [--force] [--json]`
 *
 * With --release N it loads published seed release N (seed/releases/N, as the
 * Pulumi seed hook does); without, the checkout's catalogue and migrations.
 * Seeds one tenant database. The URL may instead come from DATABASE_URL,
 * which keeps the password out of the process list. Without --tenant-id the
 * ID is read from a database named `drivergigspro_<id>`.
 * Exit status: 0 seeded (or already up to date), 1 seeding failed, 2 bad usage.
 */
import { parseArgs } from "node:util";
import { describeDatabaseUrl, redactSecrets } from "../lib/redact";
import { seedRelease } from "./releases";
import { seedTenantDatabase, TenantId, type SeedReport } from "./seed";
import { errorMessage } from "../lib/errors";
import { runMain } from "../lib/run-main";
import { DEFAULT_APP_NAME, tenantIdOfDatabase } from "../infra/naming";

const USAGE = "usage: npm run seed -- --database-url URL [--tenant-id ID] [--release N] [--force] [--json]";

class UsageError extends Error {}

interface CliOptions {
  readonly databaseUrl: string;
  readonly tenantId: string;
  readonly force: boolean;
  readonly json: boolean;
  readonly release?: string;
}

/** The tenant ID from a database named `drivergigspro_a1b2c3d4`, if it is one. */
function tenantIdFromDatabaseUrl(databaseUrl: string): string | null {
  try {
    return tenantIdOfDatabase(DEFAULT_APP_NAME, new URL(databaseUrl).pathname.slice(1)) ?? null;
  } catch {
    return null;
  }
}

function parseCli(argv: readonly string[]): CliOptions {
  let values;
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        "database-url": { type: "string" },
        "tenant-id": { type: "string" },
        release: { type: "string" },
        force: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    throw new UsageError(errorMessage(error));
  }
  const databaseUrl = values["database-url"] ?? process.env.DATABASE_URL;
  if (databaseUrl === undefined || databaseUrl === "") throw new UsageError("--database-url (or DATABASE_URL) is required");
  const tenantId = values["tenant-id"] ?? tenantIdFromDatabaseUrl(databaseUrl);
  if (tenantId === null) throw new UsageError("--tenant-id is required when the database is not named drivergigspro_<id>");
  if (!TenantId.safeParse(tenantId).success) throw new UsageError(`--tenant-id ${JSON.stringify(tenantId)} must be 8 upper-case hex digits`);
  if (values.release !== undefined && values.force) throw new UsageError("--force applies to the checkout's catalogue, not to --release");
  return { databaseUrl, tenantId, force: values.force, json: values.json, release: values.release };
}

function formatReport(report: SeedReport, target: string): string {
  const outcome = report.skipped ? "already up to date, nothing loaded" : "catalogue loaded";
  return [
    `tenant ${report.tenantId}: ${outcome} (${target})`,
    `  catalogue version  ${report.catalogueVersion}`,
    `  migrations applied ${report.migrationsApplied.length === 0 ? "none" : report.migrationsApplied.join(", ")}`,
    `  companies          ${report.inserted} inserted, ${report.updated} updated, ${report.unchanged} unchanged, ${report.deactivated} deactivated`,
    `  took               ${report.durationMs} ms`,
  ].join("\n");
}

async function main(argv: readonly string[]): Promise<number> {
  let options: CliOptions;
  try {
    options = parseCli(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`seed: ${redactSecrets(error.message)} (${USAGE})`);
    return 2;
  }
  try {
    const report =
      options.release === undefined
        ? await seedTenantDatabase(options)
        : await seedRelease({ databaseUrl: options.databaseUrl, tenantId: options.tenantId, version: options.release });
    console.log(options.json ? JSON.stringify(report) : formatReport(report, describeDatabaseUrl(options.databaseUrl)));
    return 0;
  } catch (error) {
    // seedTenantDatabase already names the tenant and redacts its message.
    console.error(redactSecrets(errorMessage(error), options.databaseUrl));
    return 1;
  }
}

runMain(() => main(process.argv.slice(2)), { prefix: "seed: unexpected failure", redact: (line) => redactSecrets(line) });

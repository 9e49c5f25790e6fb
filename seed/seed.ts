/**
 * The seed hook's work for one tenant: connect as the tenant's own role (so
 * every table is the tenant's), apply migrations, load the catalogue. Safe to
 * repeat: a second run with the same catalogue changes no row.
 */
import { Client } from "pg";
import { z } from "zod";
import { lockFailureReason, SEED_LOCK_WAIT_MS, withSeedLock } from "./advisory-lock";
import { loadCatalogue as loadCommittedCatalogue } from "./catalogue/load";
import type { Catalogue } from "./catalogue/schema";
import { verifiedCatalogue } from "./catalogue/version";
import { recordedCatalogueVersion, upsertCatalogue } from "./upsert-catalogue";
import { applyMigrations, readMigrations, type Migration } from "./migrate";
import { redactSecrets } from "../lib/redact";
import { errorMessage } from "../lib/errors";
import { TENANT_ID_PATTERN } from "../infra/naming";

export const TenantId = z.string().regex(TENANT_ID_PATTERN, "must be 8 upper-case hex digits");

export interface SeedOptions {
  /** A connection URL for the tenant's own role and database. */
  readonly databaseUrl: string;
  /** Support handle used in every error message, e.g. "A1B2C3D4". */
  readonly tenantId: string;
  /** Defaults to the committed `seed/catalogue/companies.json`. */
  readonly catalogue?: Catalogue;
  /** Run the upsert even when the database already records this catalogue version. */
  readonly force?: boolean;
  /** Defaults to `seed/migrations/`. */
  readonly migrationsDirectory?: string;
  /** How long to wait for the seed lock or any table lock another session (the tenant) holds; default 10 s. */
  readonly lockTimeoutMs?: number;
  /** statement_timeout of the seed's session; default 5 minutes. */
  readonly statementTimeoutMs?: number;
}

export const SeedReport = z.strictObject({
  tenantId: z.string(),
  catalogueVersion: z.string(),
  previousCatalogueVersion: z.string().nullable(),
  migrationsApplied: z.array(z.string()),
  /** True when the database already held this catalogue version and nothing was loaded. */
  skipped: z.boolean(),
  inserted: z.number().int().nonnegative(),
  updated: z.number().int().nonnegative(),
  deactivated: z.number().int().nonnegative(),
  unchanged: z.number().int().nonnegative(),
  durationMs: z.number().nonnegative(),
});
export type SeedReport = z.infer<typeof SeedReport>;

export class SeedError extends Error {
  override readonly name = "SeedError";
  constructor(
    readonly tenantId: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`tenant ${tenantId}: seeding failed: ${reason}`, options);
  }
}

export async function seedTenantDatabase(options: SeedOptions): Promise<SeedReport> {
  const started = performance.now();
  const validTenantId = TenantId.safeParse(options.tenantId).success;
  const tenantId = validTenantId ? options.tenantId : `(invalid ID ${JSON.stringify(options.tenantId)})`;
  const fail = (error: unknown): never => {
    // The cause keeps the driver's error for callers that log it deliberately;
    // the message is what gets printed, so it carries no password.
    const reason = lockFailureReason(error) ?? errorMessage(error);
    throw new SeedError(tenantId, redactSecrets(reason, options.databaseUrl), { cause: error });
  };

  if (!validTenantId) fail(new Error("the tenant ID must be 8 upper-case hex digits"));
  let catalogue: Catalogue;
  let migrations: Migration[];
  try {
    catalogue = options.catalogue === undefined ? loadCommittedCatalogue() : verifiedCatalogue(options.catalogue, "the given catalogue");
    migrations = readMigrations(options.migrationsDirectory);
  } catch (error) {
    return fail(error);
  }

  const lockTimeoutMs = options.lockTimeoutMs ?? SEED_LOCK_WAIT_MS;
  // Bounded waits for this session, whatever the role's defaults: a lock the tenant holds fails this seed, not the update forever.
  const client = new Client({
    connectionString: options.databaseUrl,
    application_name: "drivergigspro-seed",
    lock_timeout: lockTimeoutMs,
    statement_timeout: options.statementTimeoutMs ?? 300_000,
  });
  // A dropped connection is reported through the failing query; without this
  // listener it would also crash the process.
  client.on("error", () => undefined);
  try {
    await client.connect();
    return await withSeedLock(
      client,
      async () => {
        const migrationReport = await applyMigrations(client, migrations);
        const previousCatalogueVersion = await recordedCatalogueVersion(client);
        // A migration may add a column the load fills, so any migration forces a load.
        const upToDate = previousCatalogueVersion === catalogue.version && migrationReport.applied.length === 0 && options.force !== true;
        const counts = upToDate ? { inserted: 0, updated: 0, deactivated: 0, unchanged: catalogue.companies.length } : await upsertCatalogue(client, catalogue);
        return SeedReport.parse({
          tenantId,
          catalogueVersion: catalogue.version,
          previousCatalogueVersion,
          migrationsApplied: migrationReport.applied,
          skipped: upToDate,
          ...counts,
          durationMs: Math.round(performance.now() - started),
        });
      },
      lockTimeoutMs,
    );
  } catch (error) {
    return fail(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Versioned schema migrations for a tenant database. Files in
 * `seed/migrations/` named `NNN_name.sql` are applied in version order, each
 * once, each in its own transaction together with its `schema_migrations`
 * row. An applied migration is never edited: its checksum is recorded and a
 * changed file stops every later run.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { ClientBase } from "pg";
import { z } from "zod";
import { boundSessionWaits, withSeedLock } from "./advisory-lock";
import { errorMessage } from "../lib/errors";
import { withTransaction } from "../lib/transaction";

export const MIGRATIONS_DIRECTORY = path.join(__dirname, "migrations");

const MIGRATION_FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;

export const Migration = z.strictObject({
  version: z.number().int().positive(),
  name: z.string(),
  sql: z.string(),
  checksum: z.string(),
});
export type Migration = z.infer<typeof Migration>;

const AppliedMigration = z.object({ version: z.number().int(), name: z.string(), checksum: z.string() });
type AppliedMigration = z.infer<typeof AppliedMigration>;

export interface MigrationReport {
  /** Names of the migrations this run applied, in order (e.g. "001_companies"). */
  readonly applied: string[];
  /** How many migrations were already applied before this run. */
  readonly alreadyApplied: number;
}

export class MigrationError extends Error {
  override readonly name = "MigrationError";
}

/**
 * The checksum of a migration's text. Line endings are normalised first so a
 * checkout with CRLF line endings does not look like an edited migration.
 */
function migrationChecksum(sql: string): string {
  return createHash("sha256").update(sql.replace(/\r\n/g, "\n"), "utf8").digest("hex");
}

export function readMigrations(directory: string = MIGRATIONS_DIRECTORY): Migration[] {
  const migrations = readdirSync(directory)
    .filter((file) => file.endsWith(".sql"))
    .map((file) => {
      const match = MIGRATION_FILE.exec(file);
      if (!match?.[1] || !match[2]) {
        throw new MigrationError(`migration file ${file} must be named NNN_lower_case_name.sql`);
      }
      const sql = readFileSync(path.join(directory, file), "utf8");
      return Migration.parse({ version: Number(match[1]), name: `${match[1]}_${match[2]}`, sql, checksum: migrationChecksum(sql) });
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((migration, index) => {
    const previous = migrations[index - 1];
    if (previous?.version === migration.version) {
      throw new MigrationError(`migrations ${previous.name} and ${migration.name} share version ${migration.version}`);
    }
  });
  return migrations;
}

async function readApplied(client: ClientBase): Promise<AppliedMigration[]> {
  const result = await client.query("SELECT version, name, checksum FROM schema_migrations ORDER BY version");
  return z.array(AppliedMigration).parse(result.rows);
}

/** Refuses to continue when the database and the migration files disagree about the past. */
function checkHistory(applied: readonly AppliedMigration[], migrations: readonly Migration[]): void {
  const byVersion = new Map(migrations.map((migration) => [migration.version, migration]));
  for (const row of applied) {
    const migration = byVersion.get(row.version);
    if (!migration) {
      throw new MigrationError(
        `the database has migration ${row.name} applied but no such file exists; ` + "it was migrated by a newer seeder, so this one must not touch it",
      );
    }
    if (migration.checksum !== row.checksum) {
      throw new MigrationError(
        `migration ${migration.name} was changed after it was applied ` +
          `(recorded checksum ${row.checksum.slice(0, 12)}…, file now ${migration.checksum.slice(0, 12)}…); ` +
          "restore the file and put the change in a new migration",
      );
    }
  }
}

async function applyOne(client: ClientBase, migration: Migration): Promise<void> {
  try {
    await withTransaction(client, async () => {
      // Migration files are trusted code from this repository, never input.
      await client.query(migration.sql);
      await client.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [
        migration.version,
        migration.name,
        migration.checksum,
      ]);
    });
  } catch (error) {
    const reason = errorMessage(error);
    throw new MigrationError(`migration ${migration.name} failed and was rolled back: ${reason}`, { cause: error });
  }
}

/** Applies the pending migrations in order; safe to call concurrently on one database. */
export async function applyMigrations(client: ClientBase, migrations: readonly Migration[] = readMigrations()): Promise<MigrationReport> {
  // The tenant can hold locks in its own database: never wait for them unboundedly.
  await boundSessionWaits(client);
  return withSeedLock(client, async () => {
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version integer PRIMARY KEY,
         name text NOT NULL,
         checksum text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const applied = await readApplied(client);
    checkHistory(applied, migrations);
    const appliedVersions = new Set(applied.map((row) => row.version));
    const pending = migrations.filter((migration) => !appliedVersions.has(migration.version));
    for (const migration of pending) await applyOne(client, migration);
    return { applied: pending.map((migration) => migration.name), alreadyApplied: applied.length };
  });
}

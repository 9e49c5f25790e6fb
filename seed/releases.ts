/**
 * Published seed releases: the seed content (catalogue + migrations) frozen
 * under a version, so each tenant can run the release its rollout wave is at
 * while the checkout already holds newer data (infra/rollout.ts).
 *
 * A release is a folder `seed/releases/<N>/` (N = 1, 2, 3, ...):
 *   companies.json   the catalogue, exactly as `npm run catalogue` built it then
 *   migrations/      every migration of that release (NNN_name.sql)
 *   release.json     the pin: catalogue version, company count, each migration's checksum
 * A release is never edited: loading one checks its files against release.json,
 * so an edited release fails the seed naming the release instead of quietly
 * handing tenants that say "release 2" different data. Identical files across
 * releases cost git nothing (same blob).
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { loadCatalogue } from "./catalogue/load";
import { COMMITTED_CATALOGUE_PATH } from "./catalogue/paths";
import type { Catalogue } from "./catalogue/schema";
import { MIGRATIONS_DIRECTORY, readMigrations, type Migration } from "./migrate";
import { SeedError, seedTenantDatabase, type SeedReport } from "./seed";
import { errorMessage } from "../lib/errors";

/** The committed releases, `seed/releases/`. */
export const RELEASES_DIRECTORY = path.join(__dirname, "releases");

/** A release version: a positive whole number, as a string ("1", "2", ...). */
export const releaseVersionSchema = z.preprocess(
  (value) => (typeof value === "number" ? String(value) : value),
  z.string().regex(/^[1-9][0-9]{0,8}$/, { error: "a seed release version is a whole number such as 2 (a folder in seed/releases)" }),
);

const manifestSchema = z.strictObject({
  version: z.string(),
  catalogueVersion: z.string().regex(/^[0-9a-f]{64}$/),
  companies: z.number().int().nonnegative(),
  /** Migration name → sha256 checksum (seed/migrate.ts), in version order. */
  migrations: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)),
});
export type ReleaseManifest = z.infer<typeof manifestSchema>;

export interface SeedRelease {
  readonly version: string;
  readonly catalogue: Catalogue;
  readonly migrationsDirectory: string;
  readonly migrations: Migration[];
}

export class ReleaseError extends Error {
  override readonly name = "ReleaseError";
}

/** The published versions in `directory`, oldest first. A missing folder has none. */
export function listReleases(directory: string = RELEASES_DIRECTORY): string[] {
  if (!existsSync(directory)) return [];
  return readdirSync(directory, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && releaseVersionSchema.safeParse(entry.name).success)
    .filter((entry) => existsSync(path.join(directory, entry.name, "release.json")))
    .map((entry) => entry.name)
    .sort((a, b) => Number(a) - Number(b));
}

export function readReleaseManifest(directory: string, version: string): ReleaseManifest {
  const file = path.join(directory, version, "release.json");
  try {
    return manifestSchema.parse(JSON.parse(readFileSync(file, "utf8")));
  } catch (error) {
    throw new ReleaseError(`seed release ${version}: ${file} is missing or invalid (${errorMessage(error).split("\n")[0]})`);
  }
}

/** Loads a release and checks every file against its release.json. */
export function loadRelease(version: string, directory: string = RELEASES_DIRECTORY): SeedRelease {
  if (!listReleases(directory).includes(version)) {
    throw new ReleaseError(`seed release ${version} is not published in ${directory} (published: ${listReleases(directory).join(", ") || "none"})`);
  }
  const manifest = readReleaseManifest(directory, version);
  const folder = path.join(directory, version);
  const catalogue = loadCatalogue(path.join(folder, "companies.json"));
  const migrationsDirectory = path.join(folder, "migrations");
  const migrations = readMigrations(migrationsDirectory);
  const edited = (what: string) =>
    new ReleaseError(`seed release ${version} was changed after it was published (${what}); restore ${folder} and publish the change as a new release`);
  if (catalogue.version !== manifest.catalogueVersion) throw edited("companies.json");
  const pinned = Object.entries(manifest.migrations);
  const actual = migrations.map((migration) => [migration.name, migration.checksum]);
  if (JSON.stringify(actual) !== JSON.stringify(pinned)) throw edited("migrations/");
  return { version, catalogue, migrationsDirectory, migrations };
}

/**
 * Why `migrations` cannot follow the releases already published: a migration
 * is never edited nor dropped, so every earlier migration must be there with
 * the same checksum, or tenants moving between releases would stop.
 */
export function migrationHistoryProblems(earlier: ReleaseManifest, migrations: readonly Migration[]): string[] {
  const byName = new Map(migrations.map((migration) => [migration.name, migration.checksum]));
  return Object.entries(earlier.migrations).flatMap(([name, checksum]) => {
    const now = byName.get(name);
    if (now === undefined) return [`migration ${name} of release ${earlier.version} is missing; migrations are never removed`];
    if (now !== checksum) return [`migration ${name} differs from release ${earlier.version}'s; never edit a published migration, add a new one`];
    return [];
  });
}

export interface PublishOptions {
  readonly directory?: string;
  readonly catalogueFile?: string;
  readonly migrationsDirectory?: string;
}

/** Freezes the checkout's catalogue and migrations as release `version` (newer than every published one). */
export function publishRelease(version: string, options: PublishOptions = {}): ReleaseManifest {
  const directory = options.directory ?? RELEASES_DIRECTORY;
  const published = listReleases(directory);
  const newest = published[published.length - 1];
  if (!releaseVersionSchema.safeParse(version).success)
    throw new ReleaseError(`"${version}" is not a release version: use a whole number such as ${Number(newest ?? 0) + 1}`);
  if (newest !== undefined && Number(version) <= Number(newest)) {
    throw new ReleaseError(`release ${version} is not newer than the newest published release ${newest}; publish ${Number(newest) + 1}`);
  }
  const catalogueFile = options.catalogueFile ?? COMMITTED_CATALOGUE_PATH;
  const catalogue = loadCatalogue(catalogueFile);
  const migrations = readMigrations(options.migrationsDirectory ?? MIGRATIONS_DIRECTORY);
  const problems = newest === undefined ? [] : migrationHistoryProblems(readReleaseManifest(directory, newest), migrations);
  if (problems.length > 0) throw new ReleaseError(`cannot publish release ${version}:\n  ${problems.join("\n  ")}`);

  // Written beside the final folder, then renamed: a failed publish leaves no half release.
  const staging = path.join(directory, `.${version}.partial`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(path.join(staging, "migrations"), { recursive: true });
  copyFileSync(catalogueFile, path.join(staging, "companies.json"));
  for (const migration of migrations) writeFileSync(path.join(staging, "migrations", `${migration.name}.sql`), migration.sql);
  const manifest: ReleaseManifest = {
    version,
    catalogueVersion: catalogue.version,
    companies: catalogue.companies.length,
    migrations: Object.fromEntries(migrations.map((migration) => [migration.name, migration.checksum])),
  };
  writeFileSync(path.join(staging, "release.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(staging, path.join(directory, version));
  return manifest;
}

export interface ReleaseSeedOptions {
  readonly databaseUrl: string;
  readonly tenantId: string;
  readonly version: string;
  readonly directory?: string;
}

/** Seeds one tenant database with exactly release `version`; errors name the tenant and the release. */
export async function seedRelease(options: ReleaseSeedOptions): Promise<SeedReport> {
  let release: SeedRelease;
  try {
    release = loadRelease(options.version, options.directory);
  } catch (error) {
    throw new SeedError(options.tenantId, errorMessage(error), { cause: error });
  }
  try {
    return await seedTenantDatabase({
      databaseUrl: options.databaseUrl,
      tenantId: options.tenantId,
      catalogue: release.catalogue,
      migrationsDirectory: release.migrationsDirectory,
    });
  } catch (error) {
    if (error instanceof SeedError) error.message = `${error.message} (seed release ${release.version})`;
    throw error;
  }
}

/**
 * Seed releases against a real PostgreSQL: a tenant is seeded with exactly
 * the release it is given, older or newer than the newest published; an
 * edited release, a rollback over a migration and a broken migration fail
 * naming the tenant and the release, and change nothing. Plus the committed
 * releases themselves: intact, and each one's migrations extend the last.
 */
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { loadCatalogue } from "../seed/catalogue/load";
import { catalogueFromCompanies } from "../seed/catalogue/version";
import { readMigrations } from "../seed/migrate";
import { listReleases, loadRelease, migrationHistoryProblems, publishRelease, readReleaseManifest, RELEASES_DIRECTORY, seedRelease } from "../seed/releases";
import { createTenantDatabase, queryAsAdmin, type TestTenant } from "../harness/tenant-databases";
import { COMMITTED_COMPANIES, testCompany, testReleases, type TestReleases } from "./support/seed-releases";

const TSX = path.resolve(__dirname, "..", "node_modules", ".bin", "tsx");
const cli = (script: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  promisify(execFile)(TSX, [path.resolve(__dirname, "..", "seed", script), ...args], { env: { ...process.env, ...env } }).then(
    ({ stdout }) => ({ status: 0, stdout, stderr: "" }),
    (error: { code: number; stdout: string; stderr: string }) => ({ status: error.code, stdout: error.stdout, stderr: error.stderr }),
  );

let server: LocalPostgres;
let releases: TestReleases;

beforeAll(async () => {
  server = await startLocalPostgres();
  releases = testReleases();
  releases.publish("2", { companies: [testCompany("zz-release-two-courier")] });
  releases.publish("3", { migrations: { "005_company_rating": "ALTER TABLE companies ADD COLUMN rating integer;\n" } });
});

afterAll(async () => {
  releases?.remove();
  await server?.stop();
});

async function state(tenant: TestTenant) {
  const [row] = await queryAsAdmin<{ companies: string; active: string; two: string; version: string; migrations: string[] }>(
    tenant,
    `SELECT (SELECT count(*) FROM companies) AS companies,
            (SELECT count(*) FROM companies WHERE is_active) AS active,
            (SELECT count(*) FROM companies WHERE slug = 'zz-release-two-courier' AND is_active) AS two,
            (SELECT version FROM catalogue_version) AS version,
            (SELECT array_agg(name ORDER BY version) FROM schema_migrations) AS migrations`,
  );
  return { companies: Number(row!.companies), active: Number(row!.active), two: Number(row!.two), version: row!.version, migrations: row!.migrations };
}

const seed = (tenant: TestTenant, version: string) =>
  seedRelease({ databaseUrl: tenant.url, tenantId: tenant.tenantId, version, directory: releases.directory });
const manifest = (version: string) => readReleaseManifest(releases.directory, version);

describe("seeding a given release", () => {
  it("an older release gives exactly the older data while newer ones are published", async () => {
    const tenant = await createTenantDatabase(server);
    const report = await seed(tenant, "1");
    expect(report.catalogueVersion).toBe(manifest("1").catalogueVersion);
    expect(await state(tenant)).toEqual({
      companies: COMMITTED_COMPANIES,
      active: COMMITTED_COMPANIES,
      two: 0,
      version: manifest("1").catalogueVersion,
      migrations: Object.keys(manifest("1").migrations),
    });
  });

  it("moving a tenant 1 → 2 → 3 loads the new company, then applies the new migration, each once", async () => {
    const tenant = await createTenantDatabase(server);
    await seed(tenant, "1");
    const two = await seed(tenant, "2");
    expect(two).toMatchObject({ inserted: 1, updated: 0, deactivated: 0, migrationsApplied: [] });
    expect(await state(tenant)).toMatchObject({ companies: COMMITTED_COMPANIES + 1, two: 1, version: manifest("2").catalogueVersion });
    const three = await seed(tenant, "3");
    expect(three.migrationsApplied).toEqual(["005_company_rating"]);
    expect((await state(tenant)).migrations).toEqual(Object.keys(manifest("3").migrations));
    expect((await seed(tenant, "3")).skipped).toBe(true);
  });

  it("rolling a catalogue back (2 → 1) deactivates the newer company; rolling back over a migration (3 → 2) fails naming the tenant and release, changing nothing", async () => {
    const tenant = await createTenantDatabase(server);
    await seed(tenant, "2");
    expect(await seed(tenant, "1")).toMatchObject({ deactivated: 1 });
    expect(await state(tenant)).toMatchObject({ active: COMMITTED_COMPANIES, two: 0 });

    const ahead = await createTenantDatabase(server);
    await seed(ahead, "3");
    const before = await state(ahead);
    await expect(seed(ahead, "2")).rejects.toThrow(
      new RegExp(
        `^tenant ${ahead.tenantId}: seeding failed: the database has migration 005_company_rating applied but no such file exists.*\\(seed release 2\\)$`,
      ),
    );
    expect(await state(ahead)).toEqual(before);
  });

  it("a release whose migration fails is rolled back and named with the tenant; the tenant keeps its data", async () => {
    releases.publish("4", { migrations: { "006_broken": "ALTER TABLE no_such_table ADD COLUMN x integer;\n" } });
    const tenant = await createTenantDatabase(server);
    await seed(tenant, "3");
    const before = await state(tenant);
    await expect(seed(tenant, "4")).rejects.toThrow(
      new RegExp(
        `^tenant ${tenant.tenantId}: seeding failed: migration 006_broken failed and was rolled back: relation "no_such_table" does not exist \\(seed release 4\\)$`,
      ),
    );
    expect(await state(tenant)).toEqual(before);
  });

  it("an edited or unpublished release is refused before the database is touched", async () => {
    const tenant = await createTenantDatabase(server);
    await expect(seed(tenant, "9")).rejects.toThrow(
      new RegExp(`^tenant ${tenant.tenantId}: seeding failed: seed release 9 is not published in .* \\(published: 1, 2, 3, 4\\)$`),
    );
    const edited = mkdtempSync(path.join(tmpdir(), "dgp-edited-"));
    try {
      cpSync(releases.directory, edited, { recursive: true });
      const catalogue = loadRelease("2", edited).catalogue;
      writeFileSync(path.join(edited, "2", "companies.json"), JSON.stringify(catalogueFromCompanies(catalogue.companies.slice(1))));
      writeFileSync(path.join(edited, "3", "migrations", "002_users.sql"), "CREATE TABLE users (id serial);\n");
      for (const version of ["2", "3"]) {
        await expect(seedRelease({ databaseUrl: tenant.url, tenantId: tenant.tenantId, version, directory: edited })).rejects.toThrow(
          new RegExp(
            `^tenant ${tenant.tenantId}: seeding failed: seed release ${version} was changed after it was published \\((companies\\.json|migrations/)\\); restore`,
          ),
        );
      }
      expect(await queryAsAdmin(tenant, "SELECT to_regclass('companies') AS t")).toEqual([{ t: null }]);
    } finally {
      rmSync(edited, { recursive: true, force: true });
    }
  });
});

describe("publishing", () => {
  it("refuses a version that is not newer, and migrations that drop or edit a published one", () => {
    expect(() => releases.publish("2", {})).toThrow(/release 2 is not newer than the newest published release 4; publish 5/);
    const three = manifest("3");
    const migrations = loadRelease("3", releases.directory).migrations;
    expect(migrationHistoryProblems(three, migrations.slice(0, -1))).toEqual([
      "migration 005_company_rating of release 3 is missing; migrations are never removed",
    ]);
    expect(
      migrationHistoryProblems(
        three,
        migrations.map((m) => (m.name === "002_users" ? { ...m, checksum: "0".repeat(64) } : m)),
      ),
    ).toEqual(["migration 002_users differs from release 3's; never edit a published migration, add a new one"]);
    expect(() => publishRelease("latest", { directory: releases.directory })).toThrow(/"latest" is not a release version/);
  });

  it("the checkout's catalogue and migrations are published: the newest committed release is exactly them", () => {
    // Otherwise a rebuilt catalogue or a new migration would silently reach no tenant.
    const newest = readReleaseManifest(RELEASES_DIRECTORY, listReleases(RELEASES_DIRECTORY).at(-1)!);
    const hint = `seed/catalogue/companies.json or seed/migrations/ changed since release ${newest.version}: run npm run seed:publish -- ${Number(newest.version) + 1} and commit seed/releases/`;
    expect(loadCatalogue().version, hint).toBe(newest.catalogueVersion);
    expect(Object.fromEntries(readMigrations().map((migration) => [migration.name, migration.checksum])), hint).toEqual(newest.migrations);
  });

  it("every committed release is intact, and each one's migrations extend the one before", () => {
    const committed = listReleases(RELEASES_DIRECTORY);
    expect(committed[0]).toBe("1");
    committed.forEach((version, index) => {
      const release = loadRelease(version, RELEASES_DIRECTORY);
      if (index > 0) expect(migrationHistoryProblems(readReleaseManifest(RELEASES_DIRECTORY, committed[index - 1]!), release.migrations)).toEqual([]);
    });
  });

  it("npm run seed:publish lists releases and refuses a version that is not newer (exit 1) or a bad command line (exit 2); npm run seed -- --release seeds one", async () => {
    const listed = await cli("publish-cli.ts", ["--list"]);
    expect(listed).toMatchObject({ status: 0 });
    expect(listed.stdout).toMatch(/^1 {2}741 companies {2}catalogue [0-9a-f]{12} {2}migrations 004_catalogue_version \(4\)$/m);
    const again = await cli("publish-cli.ts", ["1"]);
    expect(again).toMatchObject({ status: 1 });
    expect(again.stderr).toMatch(/release 1 is not newer than the newest published release/);
    expect(await cli("publish-cli.ts", ["1", "2"])).toMatchObject({ status: 2 });
    expect(listReleases(RELEASES_DIRECTORY)).toEqual(
      listed.stdout
        .trim()
        .split("\n")
        .map((line) => line.split(" ")[0]),
    );

    const tenant = await createTenantDatabase(server);
    const seeded = await cli("cli.ts", ["--release", "1", "--tenant-id", tenant.tenantId, "--json"], { DATABASE_URL: tenant.url });
    expect(seeded).toMatchObject({ status: 0 });
    expect(JSON.parse(seeded.stdout)).toMatchObject({
      tenantId: tenant.tenantId,
      catalogueVersion: readReleaseManifest(RELEASES_DIRECTORY, "1").catalogueVersion,
      inserted: COMMITTED_COMPANIES,
    });
  });
});

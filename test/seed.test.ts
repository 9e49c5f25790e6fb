/**
 * The seed against a real PostgreSQL, connecting as a tenant-shaped role:
 * migrations apply once, loads are idempotent down to the tuple (xmin), a
 * failure leaves the database as it was, and hostile text survives exactly.
 */
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { loadCatalogue } from "../seed/catalogue/load";
import { applyMigrations, MIGRATIONS_DIRECTORY, readMigrations } from "../seed/migrate";
import { SeedReport, seedTenantDatabase } from "../seed/seed";
import { createTenantDatabase, queryAsAdmin, type TestTenant } from "../harness/tenant-databases";
import { testCompany, withCompanies } from "./support/seed-releases";

const run = promisify(execFile);
const REPOSITORY = path.resolve(__dirname, "..");
const catalogue = loadCatalogue();

let server: LocalPostgres;

beforeAll(async () => {
  server = await startLocalPostgres();
});

afterAll(async () => {
  await server?.stop();
});

/** Every companies row as JSON plus its xmin, keyed by slug. */
async function snapshotCompanies(tenant: TestTenant): Promise<Map<string, { row: unknown; xmin: string }>> {
  const rows = await queryAsAdmin<{ slug: string; row: unknown; xmin: string }>(
    tenant,
    "SELECT slug, to_jsonb(companies) AS row, xmin::text AS xmin FROM companies ORDER BY slug",
  );
  return new Map(rows.map(({ slug, row, xmin }) => [slug, { row, xmin }]));
}

async function tableExists(tenant: TestTenant, table: string): Promise<boolean> {
  const [row] = await queryAsAdmin<{ exists: boolean }>(tenant, "SELECT to_regclass($1) IS NOT NULL AS exists", [table]);
  return row?.exists ?? false;
}

async function publicTables(tenant: TestTenant): Promise<string[]> {
  const rows = await queryAsAdmin<{ tablename: string }>(tenant, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename");
  return rows.map((row) => row.tablename);
}

async function recordedVersion(tenant: TestTenant): Promise<string | undefined> {
  const [row] = await queryAsAdmin<{ version: string }>(tenant, "SELECT version FROM catalogue_version");
  return row?.version;
}

describe("migrations", () => {
  it("apply once, in order, recorded with their checksums", async () => {
    const tenant = await createTenantDatabase(server);
    const first = await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId });
    const migrations = readMigrations();
    expect(first.migrationsApplied).toEqual(migrations.map((migration) => migration.name));

    const second = await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId });
    expect(second.migrationsApplied).toEqual([]);

    const client = new Client({ connectionString: tenant.url });
    await client.connect();
    try {
      expect(await applyMigrations(client)).toEqual({ applied: [], alreadyApplied: migrations.length });
    } finally {
      await client.end();
    }
    const recorded = await queryAsAdmin<{ version: number; name: string; checksum: string }>(
      tenant,
      "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
    );
    expect(recorded).toEqual(migrations.map(({ version, name, checksum }) => ({ version, name, checksum })));
  });

  it("refuse to run when an applied migration was edited", async () => {
    const tenant = await createTenantDatabase(server);
    const directory = mkdtempSync(path.join(tmpdir(), "dgp-migrations-"));
    try {
      cpSync(MIGRATIONS_DIRECTORY, directory, { recursive: true });
      await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId, migrationsDirectory: directory });
      writeFileSync(path.join(directory, "002_users.sql"), "CREATE TABLE users (id serial);\n");
      await expect(seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId, migrationsDirectory: directory })).rejects.toThrow(
        new RegExp(`^tenant ${tenant.tenantId}: seeding failed: migration 002_users was changed after it was applied`),
      );
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it("let two concurrent seeders of one database both succeed without racing", async () => {
    const tenant = await createTenantDatabase(server);
    const reports = await Promise.all([
      seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId }),
      seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId }),
    ]);
    expect(reports.map((report) => report.migrationsApplied.length).sort()).toEqual([0, readMigrations().length]);
    expect(reports.map((report) => report.inserted).sort()).toEqual([0, catalogue.companies.length]);
    const [row] = await queryAsAdmin<{ count: string }>(tenant, "SELECT count(*) FROM schema_migrations");
    expect(Number(row?.count)).toBe(readMigrations().length);
  });
});

describe("a tenant database after seeding", () => {
  let tenant: TestTenant;

  beforeAll(async () => {
    tenant = await createTenantDatabase(server);
    await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId });
  });

  it("holds the whole catalogue, active, with app-facing values", async () => {
    const [counts] = await queryAsAdmin<{ total: string; active: string }>(
      tenant,
      "SELECT count(*) AS total, count(*) FILTER (WHERE is_active) AS active FROM companies",
    );
    expect(Number(counts?.total)).toBe(catalogue.companies.length);
    expect(Number(counts?.active)).toBeGreaterThanOrEqual(400);
    const [w2] = await queryAsAdmin<Record<string, unknown>>(
      tenant,
      "SELECT contract_type, contract_type_code, contract_type_raw FROM companies WHERE contract_type_raw = 'W-2' LIMIT 1",
    );
    expect(w2).toEqual({ contract_type: "Employee", contract_type_code: "employee", contract_type_raw: "W-2" });
    expect(await recordedVersion(tenant)).toBe(catalogue.version);
  });

  it("has every table and sequence owned by the tenant's role", async () => {
    const owners = await queryAsAdmin<{ name: string; owner: string }>(
      tenant,
      `SELECT c.relname AS name, pg_get_userbyid(c.relowner) AS owner
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S')`,
    );
    expect(owners.map((row) => row.name).sort()).toEqual(expect.arrayContaining(["catalogue_version", "companies", "schema_migrations", "sessions", "users"]));
    for (const row of owners) expect(row).toEqual({ name: row.name, owner: tenant.role });
  });

  it("has an empty users table and an empty sessions table indexed on expire", async () => {
    expect(await queryAsAdmin(tenant, "SELECT * FROM users")).toEqual([]);
    expect(await queryAsAdmin(tenant, "SELECT * FROM sessions")).toEqual([]);
    const indexes = await queryAsAdmin<{ indexdef: string }>(
      tenant,
      "SELECT indexdef FROM pg_indexes WHERE tablename = 'sessions' AND indexdef LIKE '%(expire)%'",
    );
    expect(indexes).toHaveLength(1);
  });
});

describe("re-seeding", () => {
  it("with the same catalogue is skipped and rewrites no row", async () => {
    const tenant = await createTenantDatabase(server);
    await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId });
    const before = await snapshotCompanies(tenant);

    const again = await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId });
    expect(again).toMatchObject({ skipped: true, inserted: 0, updated: 0, deactivated: 0 });
    expect(await snapshotCompanies(tenant)).toEqual(before);

    // Bypassing the version check runs the upsert itself: it must change nothing either.
    const forced = await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId, force: true });
    expect(forced).toMatchObject({
      skipped: false,
      inserted: 0,
      updated: 0,
      deactivated: 0,
      unchanged: catalogue.companies.length,
    });
    expect(await snapshotCompanies(tenant)).toEqual(before);
  });

  it("with one company changed rewrites only that row", async () => {
    const tenant = await createTenantDatabase(server);
    await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId });
    const before = await snapshotCompanies(tenant);

    const target = catalogue.companies[10];
    if (!target) throw new Error("catalogue too small");
    const changed = withCompanies(
      catalogue.companies.map((entry) => (entry.slug === target.slug ? { ...entry, pay: "$99/hr", payMin: 99, payMax: 99, payUnit: "hour" } : entry)),
    );
    const report = await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId, catalogue: changed });
    expect(report).toMatchObject({ skipped: false, inserted: 0, updated: 1, deactivated: 0, unchanged: catalogue.companies.length - 1 });

    const after = await snapshotCompanies(tenant);
    const rewritten = [...after].filter(([slug, { xmin }]) => before.get(slug)?.xmin !== xmin).map(([slug]) => slug);
    expect(rewritten).toEqual([target.slug]);
    expect(after.get(target.slug)?.row).toMatchObject({ average_pay: "$99/hr", pay_min: 99, pay_max: 99 });
    expect(await recordedVersion(tenant)).toBe(changed.version);
  });

  it("without a company marks it inactive and keeps it; adding it back reactivates it", async () => {
    const tenant = await createTenantDatabase(server);
    await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId });
    const dropped = catalogue.companies[0];
    if (!dropped) throw new Error("catalogue too small");

    const smaller = withCompanies(catalogue.companies.slice(1));
    const report = await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId, catalogue: smaller });
    expect(report).toMatchObject({ inserted: 0, updated: 0, deactivated: 1 });
    const rows = await queryAsAdmin<{ is_active: boolean }>(tenant, "SELECT is_active FROM companies WHERE slug = $1", [dropped.slug]);
    expect(rows).toEqual([{ is_active: false }]);
    const [count] = await queryAsAdmin<{ count: string }>(tenant, "SELECT count(*) FROM companies");
    expect(Number(count?.count)).toBe(catalogue.companies.length);

    const restored = await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId });
    expect(restored).toMatchObject({ inserted: 0, updated: 1, deactivated: 0 });
    expect(await queryAsAdmin(tenant, "SELECT is_active FROM companies WHERE slug = $1", [dropped.slug])).toEqual([{ is_active: true }]);
  });
});

describe("a failing seed", () => {
  it("as a role that may only connect leaves no table behind and names the tenant", async () => {
    const tenant = await createTenantDatabase(server, { ownership: "connect-only" });
    const failure = seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId });
    await expect(failure).rejects.toThrow(new RegExp(`^tenant ${tenant.tenantId}: seeding failed: .*permission denied`));
    expect(await publicTables(tenant)).toEqual([]);
  });

  it("with a duplicate slug is refused before anything changes", async () => {
    const tenant = await createTenantDatabase(server);
    await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId });
    const before = await snapshotCompanies(tenant);
    const [first, second, ...rest] = catalogue.companies;
    if (!first || !second) throw new Error("catalogue too small");
    const duplicated = { version: catalogue.version, companies: [first, { ...second, slug: first.slug }, ...rest] };

    await expect(seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId, catalogue: duplicated })).rejects.toThrow(
      new RegExp(`^tenant ${tenant.tenantId}: seeding failed: .*duplicate slug`),
    );
    expect(await snapshotCompanies(tenant)).toEqual(before);
    expect(await recordedVersion(tenant)).toBe(catalogue.version);
  });

  it("mid-upsert rolls the whole load back", async () => {
    const tenant = await createTenantDatabase(server);
    await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId });
    const before = await snapshotCompanies(tenant);
    const [kept, poisoned, dropped, ...rest] = catalogue.companies;
    if (!kept || !poisoned || !dropped) throw new Error("catalogue too small");

    // A trigger makes the upsert fail on one row after COPY and after other rows were written.
    await queryAsAdmin(
      tenant,
      `CREATE FUNCTION refuse_poisoned() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.average_pay = 'poison' THEN RAISE EXCEPTION 'poisoned row %', NEW.slug; END IF;
         RETURN NEW;
       END $$`,
    );
    await queryAsAdmin(tenant, "CREATE TRIGGER refuse_poisoned BEFORE INSERT OR UPDATE ON companies FOR EACH ROW EXECUTE FUNCTION refuse_poisoned()");

    const changed = withCompanies([{ ...kept, pay: "changed" }, { ...poisoned, pay: "poison" }, testCompany("brand-new-company"), ...rest]);
    await expect(seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId, catalogue: changed })).rejects.toThrow(
      new RegExp(`^tenant ${tenant.tenantId}: seeding failed: poisoned row ${poisoned.slug}`),
    );

    expect(await snapshotCompanies(tenant)).toEqual(before);
    expect(await recordedVersion(tenant)).toBe(catalogue.version);
    expect(await tableExists(tenant, "catalogue_staging")).toBe(false);
  });

  it("never shows the password", async () => {
    const tenant = await createTenantDatabase(server);
    const wrongPassword = tenant.url.replace(encodeURIComponent(tenant.password), encodeURIComponent(`${tenant.password}x`));
    const failure = await seedTenantDatabase({ databaseUrl: wrongPassword, tenantId: tenant.tenantId }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    const message = (failure as Error).message;
    expect(message).toMatch(new RegExp(`^tenant ${tenant.tenantId}: seeding failed: password authentication failed`));
    expect(message).not.toContain(tenant.password);
    expect(message).not.toContain(encodeURIComponent(tenant.password));
  });
});

describe("hostile text", () => {
  const hostile = [
    'O\'Brien "the" courier',
    "back\\slash \\N \\\\ \\t",
    "tab\there",
    "line\nbreak\r\nand CR\r",
    "\\N",
    "NULL",
    '{braces}, [brackets], "quotes", commas',
    "Ünïcödé — ×’‘ 日本語 עברית",
    "emoji 🚚📦👩🏽‍🚒",
    "\\.",
    "   leading and trailing spaces   ",
  ];

  it("round-trips exactly through COPY and the upsert", async () => {
    const tenant = await createTenantDatabase(server);
    const longDescription = "A long description. ".repeat(500);
    expect(longDescription.length).toBe(10_000);
    const companies = hostile.map((text, index) =>
      testCompany(`hostile-${index}`, {
        name: text,
        contractTypeRaw: text,
        vehiclesRaw: [text, "NULL", "\\N", "", "a,b", "{x}"],
        serviceVerticals: [text, "NULL"],
        pay: text,
        description: index === 0 ? longDescription : text,
        level: text,
        websiteNote: text,
      }),
    );
    const hostileCatalogue = withCompanies(companies);
    await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId, catalogue: hostileCatalogue });

    const rows = await queryAsAdmin<Record<string, unknown>>(
      tenant,
      `SELECT slug, name, contract_type_raw, vehicles_raw, service_vertical, average_pay, description, level, website_note
         FROM companies ORDER BY slug`,
    );
    expect(rows).toEqual(
      hostileCatalogue.companies.map((entry) => ({
        slug: entry.slug,
        name: entry.name,
        contract_type_raw: entry.contractTypeRaw,
        vehicles_raw: entry.vehiclesRaw,
        service_vertical: entry.serviceVerticals,
        average_pay: entry.pay,
        description: entry.description,
        level: entry.level,
        website_note: entry.websiteNote,
      })),
    );

    // The same hostile catalogue again, forced through the upsert, is equal to what is stored.
    const forced = await seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId, catalogue: hostileCatalogue, force: true });
    expect(forced).toMatchObject({ inserted: 0, updated: 0, unchanged: hostile.length });
  });

  it("is refused when it holds a NUL character, which PostgreSQL text cannot store", async () => {
    const tenant = await createTenantDatabase(server);
    const withNul = { version: "0".repeat(64), companies: [testCompany("nul", { description: "a\u0000b" })] };
    await expect(seedTenantDatabase({ databaseUrl: tenant.url, tenantId: tenant.tenantId, catalogue: withNul })).rejects.toThrow(/NUL character/);
    expect(await publicTables(tenant)).toEqual([]);
  });
});

describe("the seed command", () => {
  const cli = (args: string[]) =>
    run("npx", ["tsx", "seed/cli.ts", ...args], { cwd: REPOSITORY, env: { ...process.env, DATABASE_URL: "" } }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({
        code: error.code ?? -1,
        stdout: error.stdout ?? "",
        stderr: error.stderr ?? "",
      }),
    );

  it("exits 2 with one clear line on an unknown flag and touches nothing", async () => {
    const tenant = await createTenantDatabase(server);
    const result = await cli(["--database-url", tenant.url, "--tenant-id", tenant.tenantId, "--frobnicate"]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(/^seed: Unknown option '--frobnicate'/);
    expect(result.stderr).not.toContain(tenant.password);
    expect(await publicTables(tenant)).toEqual([]);
  });

  it("seeds and prints the report as JSON, reading the tenant ID from the database name", async () => {
    const tenant = await createTenantDatabase(server);
    const result = await cli(["--database-url", tenant.url, "--json"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    const report = SeedReport.parse(JSON.parse(result.stdout));
    expect(report).toMatchObject({ tenantId: tenant.tenantId, inserted: catalogue.companies.length, skipped: false });
  });

  it("exits 1 naming the tenant and hiding the password when seeding fails", async () => {
    const tenant = await createTenantDatabase(server);
    const wrongPassword = tenant.url.replace(encodeURIComponent(tenant.password), "wrong-secret");
    const result = await cli(["--database-url", wrongPassword]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^tenant ${tenant.tenantId}: seeding failed: password authentication failed`));
    expect(result.stderr).not.toContain("wrong-secret");
  });
});

/**
 * `npm start` as a user runs it, in a clone of this checkout (its own
 * .data/, .state/ and tenants files, on a free port): it exits 0 only when
 * every step worked, and non-zero, saying why, when the tenants file is bad,
 * the update fails, or verify finds a broken tenant. (A PostgreSQL that cannot
 * start is covered in test/embedded-postgres.test.ts.)
 */
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { escapeIdentifier } from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { checkoutPostgresOptions, freePort, startLocalPostgres } from "../../local/embedded-postgres";
import { PROJECT_DIR } from "../../engine/paths";
import { cloneCheckout } from "../../harness/checkout";

vi.setConfig({ testTimeout: 5 * 60 * 1000 });

let clone: string;
let port: number;
const tenantsFile = () => join(clone, "tenants", "tenants.yaml");
let original: string;

function npmStart(...args: string[]) {
  const result = spawnSync(join(PROJECT_DIR, "node_modules", ".bin", "tsx"), [join(clone, "scripts", "local-up.ts"), ...args], {
    cwd: clone,
    env: { ...process.env, DGP_LOCAL_PG_PORT: String(port), PULUMI_CONFIG_PASSPHRASE: "", CI: "true" },
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: result.status, out: `${result.stdout}\n${result.stderr}` };
}

/** Runs SQL as the clone's superuser on its embedded server (started for the call). */
async function asAdmin(database: string, query: string): Promise<Record<string, unknown>[]> {
  const server = await startLocalPostgres({ ...checkoutPostgresOptions(clone, { DGP_LOCAL_PG_PORT: String(port) }) });
  try {
    const client = await server.connect(database);
    try {
      return (await client.query(query)).rows;
    } finally {
      await client.end();
    }
  } finally {
    await server.stop();
  }
}

beforeAll(async () => {
  clone = cloneCheckout("npm-start");
  port = await freePort();
  original = readFileSync(tenantsFile(), "utf8");
});

afterAll(async () => {
  if (clone) {
    npmStart("--destroy");
    rmSync(join(clone, ".."), { recursive: true, force: true });
  }
});

describe("npm start", () => {
  it("exits 0 after creating the example tenants and verifying them", () => {
    const run = npmStart();
    expect(run.out).toMatch(/verify-tenant-isolation/);
    expect(run.status, run.out.slice(-3000)).toBe(0);
  });

  it("exits non-zero on a bad tenants file, naming the line, and changes nothing", () => {
    writeFileSync(tenantsFile(), `${original}  - username: Bad_Name\n`);
    const run = npmStart();
    expect(run.status).not.toBe(0);
    expect(run.out).toMatch(/tenants\.yaml:\d+: tenant "Bad_Name": username must be lower case; write "bad_name"/);
    writeFileSync(tenantsFile(), original);
  });

  it("exits non-zero when the update fails (a database of that name belongs to someone else)", async () => {
    await asAdmin("postgres", "CREATE ROLE squatter NOLOGIN");
    await asAdmin("postgres", `CREATE DATABASE ${escapeIdentifier("drivergigspro_0badcafe")} OWNER squatter`);
    writeFileSync(tenantsFile(), `${original}  - username: late_driver\n    tenantId: 0BADCAFE\n`);
    try {
      const run = npmStart();
      expect(run.status).not.toBe(0);
      // Refused before anything is declared: the database carries no marker naming this tenant (infra/tenant-claims.ts).
      expect(run.out).toMatch(
        /database "drivergigspro_0badcafe" already exists and is not tenant 0BADCAFE's of stack local-s001: it carries no tenant marker, owned by "squatter"/,
      );
      expect(run.out).toMatch(/error: pulumi up of stack local-s001 \(shard s001\) failed/);
    } finally {
      writeFileSync(tenantsFile(), original);
    }
  });

  it("exits 1 when verify finds a broken tenant, naming its tenant ID", async () => {
    const [tenant] = await asAdmin("pulumi_state", "SELECT 1 AS ok"); // the state database exists and is private
    expect(tenant).toEqual({ ok: 1 });
    const databases = await asAdmin(
      "postgres",
      "SELECT datname FROM pg_database WHERE datname LIKE 'drivergigspro\\_%' AND datname <> 'drivergigspro_0badcafe' ORDER BY 1",
    );
    const victim = String(databases[0]!.datname);
    await asAdmin(victim, "UPDATE companies SET is_active = false");
    const run = npmStart();
    expect(run.status).toBe(1);
    expect(run.out).toMatch(new RegExp(`${victim.slice(-8).toUpperCase()}.*catalogue`, "i"));
  });
});

/**
 * Drift and repair end to end: the real Pulumi engine (toolchain/build.sh),
 * state in PostgreSQL, the builtin database provider when the postgresql
 * plugin is missing. Two tenants are deployed; then the tenant and the admin
 * tamper (PUBLIC granted CONNECT, the password changed, a role setting, a new
 * open database, a dropped database); `pulumi preview --refresh` shows each
 * drift, `pulumi up --refresh` repairs it, a data row survives and verify
 * passes. Every check of the result is plain SQL through `pg`.
 */
import { Client, escapeIdentifier } from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { LocalPostgres } from "../../local/embedded-postgres";
import { onPath } from "../../engine/pulumi";
import { STATE_DATABASE } from "../../engine/state-backend";
import { tenantsFromOutputs, verifyIsolation } from "../../verify/probes";
import { canLogInWithUrl } from "../support/can-log-in";
import { setUpEngineStack, type EngineStack } from "../support/engine-stack";

vi.setConfig({ testTimeout: 5 * 60 * 1000 });

let engine: EngineStack;
let server: LocalPostgres;
/**
 * The drift repairs below are the builtin provider's. With @pulumi/postgresql (3.18.1, checked by hand)
 * `preview --refresh` fails outright on a database set to ALLOW_CONNECTIONS false ("not currently accepting
 * connections": its grants and schema are read by connecting to it), and a dropped database is made again
 * without the seed running again. Those steps are skipped, visibly, when the upstream plugin runs.
 */
const upstream = onPath("pulumi-resource-postgresql");

const run = (...args: string[]) => engine.run(...args);
const outputs = () => engine.outputs();
/** `pulumi preview [--refresh] --json` reduced to sorted "op name" lines, without unchanged resources. */
const previewChanges = (...flags: string[]) => engine.preview({ flags }).changes;
const sql = <T = Record<string, unknown>>(query: string, values?: unknown[], database?: string) => engine.sql<T>(query, values, database);
const logIn = canLogInWithUrl;

/** Runs statements as the tenant, with its URL from the stack outputs. */
async function asTenant(databaseUrl: string, ...statements: string[]): Promise<void> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

beforeAll(
  async () => {
    engine = await setUpEngineStack({ name: "iso" });
    server = engine.server;
    engine.writeTenants("username: ann_driver", "username: bob_driver\n    plan: pro");
    expect(engine.databaseProvider).toBe(upstream ? "postgresql" : "builtin");
  },
  60 * 60 * 1000,
);

afterAll(async () => {
  await engine?.cleanup();
});

describe("a tenant's own changes are caught by refresh and repaired by up --refresh", () => {
  it("deploys two tenants with their plans, owned by the admin, on a hardened server; a second up changes nothing", async () => {
    run("up", "--yes", "--skip-preview");
    const out = outputs();
    expect(out.tenants.ann_driver).toMatchObject({ plan: "starter", limits: { connectionLimit: 10, statementTimeoutMs: 30000 } });
    expect(out.tenants.bob_driver).toMatchObject({ plan: "pro", limits: { connectionLimit: 40 } });
    const ann = out.tenants.ann_driver!;
    expect(await sql("SELECT pg_get_userbyid(datdba) AS owner, datconnlimit FROM pg_database WHERE datname = $1", [ann.database])).toEqual([
      { owner: server.adminUser, datconnlimit: 10 },
    ]);
    expect(await sql("SELECT rolconnlimit FROM pg_roles WHERE rolname = $1", [ann.role])).toEqual([{ rolconnlimit: 10 }]);
    const annUrl = out.connections.ann_driver!.databaseUrl;
    for (const other of ["postgres", "template1", STATE_DATABASE, out.tenants.bob_driver!.database]) {
      expect(await logIn(annUrl, other)).toMatch(/permission denied for database/);
    }
    await asTenant(annUrl, "CREATE TABLE support_notes (body text)", "INSERT INTO support_notes VALUES ('survives')");
    expect(previewChanges()).toEqual([]);
    expect(previewChanges("--refresh")).toEqual([]);
  });

  it.skipIf(upstream)("sees PUBLIC granted CONNECT, a changed password, a role setting and a new open database, and repairs them", async () => {
    const out = outputs();
    const [ann, bob] = [out.tenants.ann_driver!, out.tenants.bob_driver!];
    const annUrl = out.connections.ann_driver!.databaseUrl;
    // As the tenant: its own password and session defaults (PostgreSQL lets a role change both).
    await asTenant(
      annUrl,
      `ALTER ROLE ${escapeIdentifier(ann.role)} SET statement_timeout = 0`,
      `ALTER ROLE ${escapeIdentifier(ann.role)} PASSWORD 'mine-now'`,
    );
    expect(await logIn(annUrl)).toMatch(/password authentication failed/);
    // As the admin (or an old-design owner): the database opened to everyone, connections refused, a new open database.
    await sql(`GRANT CONNECT ON DATABASE ${escapeIdentifier(bob.database)} TO PUBLIC`);
    await sql(`ALTER DATABASE ${escapeIdentifier(bob.database)} WITH ALLOW_CONNECTIONS false`);
    await sql("CREATE DATABASE scratch_open");

    expect(previewChanges()).toEqual(["update harden-local"]); // without refresh, only the server's own check
    const drift = previewChanges("--refresh");
    // The seed shows too: it follows its database's identity, unknown in a preview while the database updates (the up leaves it).
    // Resources are keyed by tenant ID (issue 17).
    expect(drift).toEqual(
      [
        `update ${ann.tenantId}-role`,
        `update ${bob.tenantId}-catalogue`,
        `update ${bob.tenantId}-database`,
        `update ${bob.tenantId}-revoke-public`,
        "update harden-local",
      ].sort(),
    );

    run("up", "--refresh", "--yes", "--skip-preview");
    expect(await logIn(annUrl)).toBe(true);
    expect(await sql("SELECT body FROM support_notes", [], ann.database)).toEqual([{ body: "survives" }]);
    expect(await logIn(out.connections.bob_driver!.databaseUrl)).toBe(true);
    expect(await logIn(annUrl, bob.database)).toMatch(/permission denied for database/);
    expect(await logIn(annUrl, "scratch_open")).toMatch(/permission denied for database/);
    const settings = await sql<{ setting: string }>(
      "SELECT unnest(setconfig) AS setting FROM pg_db_role_setting WHERE setrole = (SELECT oid FROM pg_roles WHERE rolname = $1) ORDER BY 1",
      [ann.role],
    );
    expect(settings.map((row) => row.setting)).toEqual(["idle_in_transaction_session_timeout=60000", "statement_timeout=30000"]);
    expect(previewChanges("--refresh")).toEqual([]);
    const failed = (await verifyIsolation(tenantsFromOutputs(outputs(), () => false))).filter((result) => !result.ok);
    expect(failed).toEqual([]);
  });

  it.skipIf(upstream)("a dropped database is created again, empty, and seeded by up --refresh", async () => {
    const bob = outputs().tenants.bob_driver!;
    await sql(`DROP DATABASE ${escapeIdentifier(bob.database)} WITH (FORCE)`);
    expect(previewChanges("--refresh")).toEqual(expect.arrayContaining([`create ${bob.tenantId}-database`, `update ${bob.tenantId}-catalogue`]));
    run("up", "--refresh", "--yes", "--skip-preview");
    const [row] = await sql<{ active: string }>("SELECT count(*) AS active FROM companies WHERE is_active", [], bob.database);
    expect(Number(row!.active)).toBeGreaterThanOrEqual(400);
    expect(await logIn(outputs().connections.bob_driver!.databaseUrl)).toBe(true);
    expect(previewChanges()).toEqual([]);
  });
});

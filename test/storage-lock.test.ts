/**
 * infra/storage-lock.ts on a real PostgreSQL (the embedded 18 and Debian's 15):
 * a tenant whose writes are stopped cannot write by any way it could try
 * (session settings, READ WRITE, ownership, self-grants, new tables,
 * temporary tables, a SECURITY DEFINER function or a PUBLIC grant made
 * beforehand, a rule, large objects), reads and deletes still work, its
 * neighbour is untouched, the builtin provider sees no drift, and resuming
 * gives everything back with nothing lost.
 */
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ops from "../infra/builtin-postgres/operations";
import { databaseProvider } from "../infra/builtin-postgres/providers";
import { readStorageLock, resumeWrites, stopWrites, storageLockRole } from "../infra/storage-lock";
import type { LocalPostgres } from "../local/embedded-postgres";
import { POSTGRES_KINDS, serverMajor, startTestPostgres } from "./support/test-postgres";
import { testOwner as owner } from "./support/tenant-owner";

const A = "drivergigspro_5701a0aa";
const B = "drivergigspro_5701b0bb";

async function tenantClient(server: LocalPostgres, name: string): Promise<Client> {
  const client = new Client({ host: server.host, port: server.port, user: name, password: `${name}-pw`, database: name });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/** The SQLSTATE of a statement that must fail ("" when it did not). */
async function refusal(client: Client, sql: string): Promise<string> {
  try {
    await client.query(sql);
    return "";
  } catch (error) {
    return (error as { code?: string }).code ?? "?";
  }
}

describe.each(POSTGRES_KINDS)("stopped writes on PostgreSQL %s", (kind) => {
  let server: LocalPostgres;
  let adminUrl: string;

  beforeAll(async () => {
    server = await startTestPostgres(kind);
    adminUrl = server.url();
    console.log(`storage-lock: PostgreSQL ${await serverMajor(server)} (${kind})`);
    for (const name of [A, B]) {
      await ops.createRole(adminUrl, { name, ...owner(name), password: `${name}-pw`, login: true, connectionLimit: 10, tempFileLimitMb: 64 });
      await ops.createDatabase(adminUrl, { name, ...owner(name), tenantRole: name, connectionLimit: 10 });
      await ops.revokePublic(adminUrl, name);
      const tenant = await tenantClient(server, name);
      await tenant.query("CREATE TABLE t (id serial PRIMARY KEY, note text); INSERT INTO t (note) SELECT 'row ' || g FROM generate_series(1, 1000) g");
      await tenant.end();
    }
    // What a hostile tenant prepares before it goes over its limit.
    const a = await tenantClient(server, A);
    await a.query(`CREATE FUNCTION run(sql text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN EXECUTE sql; END$$`);
    await a.query("GRANT INSERT, UPDATE ON t TO PUBLIC");
    await a.query("CREATE TABLE log (note text); CREATE TABLE ruled (id int); INSERT INTO ruled VALUES (1)");
    await a.query("CREATE RULE keep AS ON DELETE TO ruled DO ALSO INSERT INTO log VALUES ('deleted')");
    await a.query("CREATE TABLE scratch (id int); INSERT INTO scratch VALUES (1), (2)");
    await a.end();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("refuses every write the tenant tries, keeps its reads and deletes, and leaves its neighbour and the provider alone", async () => {
    const idle = await tenantClient(server, A); // a session open at the stop: it is ended
    await stopWrites(adminUrl, { database: A, role: A }, "test: over its hard limit");
    await expect(idle.query("SELECT 1")).rejects.toThrow();
    expect(await readStorageLock(adminUrl, { database: A, role: A })).toMatchObject({ tenantRole: A, reason: "test: over its hard limit" });

    const a = await tenantClient(server, A);
    try {
      expect((await a.query("SELECT count(*)::int AS n FROM t")).rows).toEqual([{ n: 1000 }]);
      const insert = "INSERT INTO t (note) VALUES ('more')";
      expect(await refusal(a, insert)).toBe("42501");
      expect(await refusal(a, "UPDATE t SET note = 'x' WHERE id = 1")).toBe("42501");
      await a.query("SET default_transaction_read_only = off");
      expect(await refusal(a, insert)).toBe("42501");
      await a.query("BEGIN READ WRITE");
      expect(await refusal(a, insert)).toBe("42501");
      await a.query("ROLLBACK");
      expect(await refusal(a, `ALTER TABLE t OWNER TO ${A}`)).toBe("42501");
      expect(await refusal(a, `ALTER SCHEMA public OWNER TO ${A}`)).toBe("42501");
      await a.query(`GRANT INSERT ON t TO ${A}`).catch(() => undefined); // a warning at most: no grant option
      expect(await refusal(a, insert)).toBe("42501");
      expect(await refusal(a, `SET ROLE ${storageLockRole(A)}`)).toBe("42501");
      expect(await refusal(a, `REASSIGN OWNED BY ${storageLockRole(A)} TO ${A}`)).toBe("42501");
      expect(await refusal(a, "CREATE TABLE more (id int)")).toBe("42501");
      expect(await refusal(a, "CREATE TEMP TABLE more (id int)")).toBe("42501");
      expect(await refusal(a, "SELECT run('INSERT INTO t (note) VALUES (''via definer'')')")).toBe("42501");
      expect(await refusal(a, "DELETE FROM ruled")).toBe("42501");
      expect(await refusal(a, "SELECT lo_from_bytea(0, 'x'::bytea)")).toBe("42501");
      expect(await refusal(a, "SELECT lo_create(0)")).toBe("42501");
      expect(await refusal(a, "ALTER ROLE CURRENT_USER SET default_transaction_read_only = off")).toBe("");
      expect(await refusal(a, insert)).toBe("42501");
      // What it may still do: read, delete and truncate (how it gets under its limit again).
      await a.query("DELETE FROM t WHERE id > 900");
      await a.query("TRUNCATE scratch");
      expect((await a.query("SELECT count(*)::int AS n FROM t")).rows).toEqual([{ n: 900 }]);
      expect((await a.query("SELECT count(*)::int AS n FROM log")).rows).toEqual([{ n: 0 }]);
    } finally {
      await a.end();
    }

    const b = await tenantClient(server, B);
    await b.query("INSERT INTO t (note) VALUES ('neighbour writes')");
    expect((await b.query("SELECT count(*)::int AS n FROM t")).rows).toEqual([{ n: 1001 }]);
    await b.end();

    // The builtin provider reads the stop and sees no drift, and an update keeps it.
    const spec = { adminUrl, name: A, tenantRole: A, connectionLimit: 10 };
    const read = await databaseProvider.read!(A, spec);
    expect(read.props).toMatchObject({ writesStopped: true, grants: [`${A}:CONNECT`], publicSchemaOwner: storageLockRole(A) });
    expect((await databaseProvider.diff!(A, read.props, spec)).changes).toBe(false);
    await databaseProvider.update!(A, read.props, spec);
    const again = await tenantClient(server, A);
    expect(await refusal(again, "INSERT INTO t (note) VALUES ('after update')")).toBe("42501");
    expect(await refusal(again, "CREATE TABLE more (id int)")).toBe("42501");
    await again.end();
    // Stopping twice changes nothing.
    await stopWrites(adminUrl, { database: A, role: A }, "again");
    expect(await readStorageLock(adminUrl, { database: A, role: A })).toMatchObject({ reason: "test: over its hard limit" });
  });

  it("gives everything back on resume, data kept", async () => {
    await resumeWrites(adminUrl, { database: A, role: A });
    expect(await readStorageLock(adminUrl, { database: A, role: A })).toBeUndefined();
    const a = await tenantClient(server, A);
    try {
      await a.query("INSERT INTO t (note) VALUES ('back')");
      await a.query("SELECT run('INSERT INTO t (note) VALUES (''via definer'')')");
      await a.query("CREATE TEMP TABLE scratch2 (id int)");
      await a.query("CREATE TABLE more (id int)");
      expect((await a.query("SELECT count(*)::int AS n FROM t")).rows).toEqual([{ n: 902 }]);
      const owners = await a.query(
        "SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relnamespace = 'public'::regnamespace UNION SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public'",
      );
      expect(owners.rows).toEqual([{ owner: A }]);
      expect((await a.query("SELECT prosecdef FROM pg_proc WHERE proname = 'run'")).rows).toEqual([{ prosecdef: true }]);
      expect((await a.query("SELECT lo_unlink(lo_from_bytea(0, 'x'::bytea))")).rows).toHaveLength(1);
    } finally {
      await a.end();
    }
    const spec = { adminUrl, name: A, tenantRole: A, connectionLimit: 10 };
    const read = await databaseProvider.read!(A, spec);
    expect(read.props).toMatchObject({ writesStopped: false, publicSchemaOwner: A });
    expect((await databaseProvider.diff!(A, read.props, spec)).changes).toBe(false);
  });
});

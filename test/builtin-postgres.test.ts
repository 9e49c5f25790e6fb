/**
 * The builtin database provider's SQL (infra/builtin-postgres/operations.ts)
 * against a real PostgreSQL: what the dynamic resources run in `pulumi up`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ops from "../infra/builtin-postgres/operations";
import { scramSha256Verifier } from "../infra/builtin-postgres/scram";
import { freePort, startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { adminQuery } from "../harness/admin-query";
import { canLogIn } from "./support/can-log-in";
import { testOwner as owner } from "./support/tenant-owner";

let server: LocalPostgres;
let adminUrl: string;

beforeAll(async () => {
  server = await startLocalPostgres();
  adminUrl = server.url();
});
afterAll(async () => {
  await server?.stop();
});

/** As the role, into its own database. */
const logIn = (role: string, password: string) => canLogIn({ host: server.host, port: server.port, user: role, password, database: role });

const query = <T = Record<string, unknown>>(sql: string, values?: unknown[]) => adminQuery<T>(server, sql, values);

describe("builtin role and database", () => {
  it("creates a login role with no powers, its database, and revokes PUBLIC; suspends; drops", async () => {
    const name = "drivergigspro_0badc0de";
    await ops.createRole(adminUrl, { name, ...owner(name), password: "it's a \\ secret", login: true });
    await ops.createDatabase(adminUrl, { name, ...owner(name), tenantRole: name });
    await ops.revokePublic(adminUrl, name);

    expect(
      await query("SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolinherit FROM pg_roles WHERE rolname = $1", [
        name,
      ]),
    ).toEqual([
      { rolcanlogin: true, rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolreplication: false, rolbypassrls: false, rolinherit: false },
    ]);
    const [database] = await query<{ owner: string; acl: string }>(
      "SELECT pg_get_userbyid(datdba) AS owner, datacl::text AS acl FROM pg_database WHERE datname = $1",
      [name],
    );
    // The admin owns it; the tenant may connect and make temporary tables, nothing more.
    expect(database!.owner).toBe(server.adminUser);
    expect(database!.acl).not.toMatch(/(^|[{,])=/); // no PUBLIC entry ("=Tc/owner")
    expect(database!.acl).toContain(`${name}=Tc/${server.adminUser}`);

    const login = await logIn(name, "it's a \\ secret");
    expect(login).toBe(true);
    await ops.updateRole(adminUrl, { name, ...owner(name), password: "it's a \\ secret", login: false });
    expect(await logIn(name, "it's a \\ secret")).toMatch(/not permitted to log in/);

    await ops.dropDatabase(adminUrl, name);
    await ops.dropRole(adminUrl, name);
    expect(await query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).toEqual([]);
    expect(await query("SELECT 1 FROM pg_roles WHERE rolname = $1", [name])).toEqual([]);
  });

  it("adopts an unmarked database of the admin only while it is empty (a run killed between CREATE DATABASE and its mark)", async () => {
    const name = "drivergigspro_0c0ffee0";
    await ops.createRole(adminUrl, { name, ...owner(name), password: "pw", login: true });
    // What CREATE DATABASE leaves when the run dies before COMMENT ON DATABASE: the admin's, unmarked, empty.
    await query(`CREATE DATABASE ${name}`);
    await ops.createDatabase(adminUrl, { name, ...owner(name), tenantRole: name });
    expect(await query("SELECT shobj_description(oid, 'pg_database') AS note FROM pg_database WHERE datname = $1", [name])).toEqual([
      { note: "drivergigspro tenant 0C0FFEE0 of stack test" },
    ]);
    await ops.dropDatabase(adminUrl, name);

    // The same, but holding someone's table: not ours to take.
    await query(`CREATE DATABASE ${name}`);
    const admin = await server.connect(name);
    await admin.query("CREATE TABLE someone_elses (id int)");
    await admin.end();
    await expect(ops.createDatabase(adminUrl, { name, ...owner(name), tenantRole: name })).rejects.toThrow(
      /database "drivergigspro_0c0ffee0" already exists and is not tenant 0C0FFEE0's of stack test: it carries no tenant marker, it holds objects/,
    );
    await ops.dropDatabase(adminUrl, name);
    await ops.dropRole(adminUrl, name);
  });

  it("adopts a role and database an older program of this stack left behind (a tenant brought back) and keeps its data", async () => {
    const name = "drivergigspro_0ddba11e";
    // As an interrupted run or a removed tenant leaves them: not in Pulumi's state, still in PostgreSQL.
    await query(`CREATE ROLE ${name} LOGIN CREATEDB PASSWORD 'old-password'`);
    await query(`CREATE DATABASE ${name} OWNER ${name}`);
    const tenant = await server.connect(name);
    await tenant.query("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here')");
    await tenant.end();

    // Without a marker it is nobody's for sure: refused, unless this stack deployed the tenant under this ID itself.
    await expect(ops.createRole(adminUrl, { name, ...owner(name), password: "new-password", login: true })).rejects.toThrow(
      /role "drivergigspro_0ddba11e" already exists and is not tenant 0DDBA11E's of stack test: it carries no tenant marker/,
    );
    await ops.createRole(adminUrl, { name, ...owner(name, { adoptLegacy: true }), password: "new-password", login: true });
    await ops.createDatabase(adminUrl, { name, ...owner(name, { adoptLegacy: true }), tenantRole: name });
    expect(await query("SELECT shobj_description(oid, 'pg_authid') AS note FROM pg_roles WHERE rolname = $1", [name])).toEqual([
      { note: "drivergigspro tenant 0DDBA11E of stack test" },
    ]);

    expect(await query("SELECT rolcreatedb FROM pg_roles WHERE rolname = $1", [name])).toEqual([{ rolcreatedb: false }]);
    expect(await logIn(name, "new-password")).toBe(true);
    expect(await logIn(name, "old-password")).toMatch(/password authentication failed/);
    const client = await server.connect(name);
    expect((await client.query("SELECT note FROM kept")).rows).toEqual([{ note: "still here" }]);
    await client.end();
    await ops.dropDatabase(adminUrl, name);
    await ops.dropRole(adminUrl, name);
  });

  it("refuses a database of the tenant's name that another role owns, and leaves it alone", async () => {
    const name = "drivergigspro_0ff1ce00";
    // (An empty one of the admin's own is what a killed run leaves: adopted, see above.)
    await query("CREATE ROLE squatter NOLOGIN");
    await query(`CREATE DATABASE ${name} OWNER squatter`);
    await expect(ops.createDatabase(adminUrl, { name, ...owner(name, { adoptLegacy: true }), tenantRole: name })).rejects.toThrow(
      /database "drivergigspro_0ff1ce00" already exists and is not tenant 0FF1CE00's of stack test: it carries no tenant marker, owned by "squatter"/,
    );
    expect(await query("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1", [name])).toEqual([{ owner: "squatter" }]);
    await query(`DROP DATABASE ${name}`);
    await query("DROP ROLE squatter");
  });

  it("never adopts another tenant's role or database, whatever the names: the error says whose they are; data and password kept", async () => {
    const name = "drivergigspro_0a11ce00";
    // Tenant 0A11CE00 of stack local-s001 deployed them; another stack (or tenant) now wants the same names.
    await ops.createRole(adminUrl, { name, ...owner(name, { stack: "local-s001" }), password: "johns-password", login: true });
    await ops.createDatabase(adminUrl, { name, ...owner(name, { stack: "local-s001" }), tenantRole: name });
    const john = await server.connect(name);
    await john.query("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('john''s')");
    await john.end();

    for (const stranger of [
      owner(name, { stack: "local-s002" }),
      owner(name, { stack: "local-s002", adoptLegacy: true }),
      { tenantId: "0B0B0B0B", stack: "local-s001" },
    ]) {
      await expect(ops.createRole(adminUrl, { name, ...stranger, password: "colliders-password", login: true })).rejects.toThrow(
        /role "drivergigspro_0a11ce00" already exists and is not tenant [0-9A-F]{8}'s of stack local-s00\d: its marker says it is tenant 0A11CE00 of stack local-s001/,
      );
      await expect(ops.createDatabase(adminUrl, { name, ...stranger, tenantRole: name })).rejects.toThrow(
        /database "drivergigspro_0a11ce00" already exists and is not tenant .*: its marker says it is tenant 0A11CE00 of stack local-s001/,
      );
    }
    expect(await logIn(name, "johns-password")).toBe(true);
    expect(await logIn(name, "colliders-password")).toMatch(/password authentication failed/);
    const client = await server.connect(name);
    expect((await client.query("SELECT note FROM kept")).rows).toEqual([{ note: "john's" }]);
    await client.end();
    await ops.dropDatabase(adminUrl, name);
    await ops.dropRole(adminUrl, name);
  });

  it("treats a hostile name as one identifier, never as SQL", async () => {
    const name = 'x"; DROP DATABASE postgres; --';
    await ops.createRole(adminUrl, { name, ...owner(name), password: "pw", login: false });
    expect(await query("SELECT rolname FROM pg_roles WHERE rolname = $1", [name])).toEqual([{ rolname: name }]);
    expect(await query("SELECT 1 FROM pg_database WHERE datname = 'postgres'")).toHaveLength(1);
    await ops.dropRole(adminUrl, name);
  });

  it("says which server it cannot reach and what to check, without the password", async () => {
    const url = `postgresql://postgres:s3cret-pw@127.0.0.1:${await freePort()}/postgres?sslmode=disable`;
    const failure = ops.createRole(url, { name: "drivergigspro_00000000", ...owner("drivergigspro_00000000"), password: "pw", login: true });
    await expect(failure).rejects.toThrow(
      /cannot reach PostgreSQL at 127\.0\.0\.1:\d+ as postgres .*check the server's host, port, adminUser and adminPassword/,
    );
    await expect(failure).rejects.not.toThrow(/s3cret-pw/);
  });
});

describe("role passwords reach PostgreSQL only as SCRAM-SHA-256 verifiers", () => {
  /** Waits until the server's log shows a marker statement run after everything before it. */
  async function logUpTo(marker: string): Promise<string> {
    await query(`SELECT '${marker}'`);
    for (let attempt = 0; attempt < 400; attempt++) {
      if (server.serverLog().includes(marker)) return server.serverLog();
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`the server log never showed ${marker}`);
  }

  it("logs in with the password, stores exactly the verifier sent, and never logs the password", async () => {
    const name = "drivergigspro_5c7a3000";
    const password = "Zq8plain-text-never-logged";
    // Every statement of the admin's new sessions is logged, as a hostile reading of the log would want.
    await query("ALTER ROLE postgres SET log_statement = 'all'");
    await query("ALTER ROLE postgres SET password_encryption = 'scram-sha-256'");
    try {
      await ops.createRole(adminUrl, { name, ...owner(name), password, login: true });
      await ops.createDatabase(adminUrl, { name, ...owner(name), tenantRole: name });
      await ops.updateRole(adminUrl, { name, ...owner(name), password, login: true });
      // A failing ALTER ROLE: PostgreSQL logs the statement with the error (log_min_error_statement).
      await expect(ops.updateRole(adminUrl, { name: "drivergigspro_deadbeef", ...owner("drivergigspro_deadbeef"), password, login: true })).rejects.toThrow(
        /does not exist/,
      );
      const log = await logUpTo("dgp-scram-marker-1");

      expect(await logIn(name, password)).toBe(true);
      expect(await logIn(name, "wrong")).toMatch(/password authentication failed/);
      const rolpassword = (await query<{ rolpassword: string }>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [name]))[0]!.rolpassword;
      const sent = [...log.matchAll(/ALTER ROLE "drivergigspro_5c7a3000" .*PASSWORD '(SCRAM-SHA-256\$[^']+)'/g)].map((match) => match[1]);
      expect(sent.length).toBeGreaterThan(0);
      expect(rolpassword).toBe(sent.at(-1));
      expect(log).toMatch(
        /role "drivergigspro_deadbeef" does not exist[\s\S]*STATEMENT: +ALTER ROLE "drivergigspro_deadbeef" .*PASSWORD 'SCRAM-SHA-256\$4096:/,
      );
      expect(log).toMatch(/CREATE ROLE "drivergigspro_5c7a3000" .*PASSWORD 'SCRAM-SHA-256\$4096:/);
      expect(log).not.toContain(password);

      // The format is PostgreSQL's own: recomputing with its salt gives its StoredKey and ServerKey.
      const [, iterations, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(rolpassword)!;
      expect(iterations).toBe("4096");
      expect(Buffer.from(salt!, "base64")).toHaveLength(16);
      expect(scramSha256Verifier(password, Buffer.from(salt!, "base64"))).toBe(rolpassword);
    } finally {
      await query("ALTER ROLE postgres RESET ALL");
      await ops.dropDatabase(adminUrl, name);
      await ops.dropRole(adminUrl, name);
    }
  });

  it("gives a new random salt each time and refuses passwords it cannot hash as PostgreSQL does", () => {
    expect(scramSha256Verifier("same")).not.toBe(scramSha256Verifier("same"));
    expect(() => scramSha256Verifier("pässword")).toThrow(/role passwords must be ASCII/);
  });
});

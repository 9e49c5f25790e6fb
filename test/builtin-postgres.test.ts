/**
 * The builtin database provider's SQL (infra/builtin-postgres/operations.ts)
 * against a real PostgreSQL: what the dynamic resources run in `pulumi up`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ops from "../infra/builtin-postgres/operations";
import { freePort, startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { canLogIn } from "./support/can-log-in";

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

async function query<T = Record<string, unknown>>(sql: string, values: unknown[] = []): Promise<T[]> {
  const client = await server.connect();
  try {
    return (await client.query(sql, values)).rows as T[];
  } finally {
    await client.end();
  }
}

describe("builtin role and database", () => {
  it("creates a login role with no powers, its database, and revokes PUBLIC; suspends; drops", async () => {
    const name = "drivergigspro_0badc0de";
    await ops.createRole(adminUrl, { name, password: "it's a \\ secret", login: true });
    await ops.createDatabase(adminUrl, { name, owner: name });
    await ops.revokePublic(adminUrl, name);

    expect(await query("SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolinherit FROM pg_roles WHERE rolname = $1", [name])).toEqual([
      { rolcanlogin: true, rolsuper: false, rolcreatedb: false, rolcreaterole: false, rolreplication: false, rolbypassrls: false, rolinherit: false },
    ]);
    const [database] = await query<{ owner: string; acl: string }>(
      "SELECT pg_get_userbyid(datdba) AS owner, datacl::text AS acl FROM pg_database WHERE datname = $1",
      [name],
    );
    expect(database!.owner).toBe(name);
    expect(database!.acl).not.toMatch(/(^|[{,])=/); // no PUBLIC entry ("=Tc/owner")

    const login = await logIn(name, "it's a \\ secret");
    expect(login).toBe(true);
    await ops.updateRole(adminUrl, { name, password: "it's a \\ secret", login: false });
    expect(await logIn(name, "it's a \\ secret")).toMatch(/not permitted to log in/);

    await ops.dropDatabase(adminUrl, name);
    await ops.dropRole(adminUrl, name);
    expect(await query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).toEqual([]);
    expect(await query("SELECT 1 FROM pg_roles WHERE rolname = $1", [name])).toEqual([]);
  });

  it("adopts a role and database left behind (a killed pulumi up, a tenant brought back) and keeps its data", async () => {
    const name = "drivergigspro_0ddba11e";
    // As an interrupted run or a removed tenant leaves them: not in Pulumi's state, still in PostgreSQL.
    await query(`CREATE ROLE ${name} LOGIN CREATEDB PASSWORD 'old-password'`);
    await query(`CREATE DATABASE ${name} OWNER ${name}`);
    const tenant = await server.connect(name);
    await tenant.query("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here')");
    await tenant.end();

    await ops.createRole(adminUrl, { name, password: "new-password", login: true });
    await ops.createDatabase(adminUrl, { name, owner: name });

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
    await query(`CREATE DATABASE ${name}`);
    await expect(ops.createDatabase(adminUrl, { name, owner: name })).rejects.toThrow(
      /database "drivergigspro_0ff1ce00" already exists and belongs to "postgres", not to the tenant's role "drivergigspro_0ff1ce00"/,
    );
    expect(await query("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1", [name])).toEqual([{ owner: "postgres" }]);
    await query(`DROP DATABASE ${name}`);
  });

  it("treats a hostile name as one identifier, never as SQL", async () => {
    const name = 'x"; DROP DATABASE postgres; --';
    await ops.createRole(adminUrl, { name, password: "pw", login: false });
    expect(await query("SELECT rolname FROM pg_roles WHERE rolname = $1", [name])).toEqual([{ rolname: name }]);
    expect(await query("SELECT 1 FROM pg_database WHERE datname = 'postgres'")).toHaveLength(1);
    await ops.dropRole(adminUrl, name);
  });

  it("says which server it cannot reach and what to check, without the password", async () => {
    const url = `postgresql://postgres:s3cret-pw@127.0.0.1:${await freePort()}/postgres?sslmode=disable`;
    const failure = ops.createRole(url, { name: "drivergigspro_00000000", password: "pw", login: true });
    await expect(failure).rejects.toThrow(/cannot reach PostgreSQL at 127\.0\.0\.1:\d+ as postgres .*check the server's host, port, adminUser and adminPassword/);
    await expect(failure).rejects.not.toThrow(/s3cret-pw/);
  });
});

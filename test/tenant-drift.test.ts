/**
 * A hostile tenant against the builtin provider's design, on a real
 * PostgreSQL: what it can no longer do (its database belongs to the admin),
 * what it can still change (its password, its role's settings) and how the
 * providers' read / diff / update see and repair that, with data kept; the
 * plan's connection limit; and the per-server hardening.
 */
import { Client, escapeIdentifier } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ops from "../infra/builtin-postgres/operations";
import { databaseProvider, DRIFTED_PASSWORD, hardeningProvider, revokeProvider, roleProvider } from "../infra/builtin-postgres/providers";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { adminQuery } from "../harness/admin-query";
import { canLogIn } from "./support/can-log-in";
import { testOwner as owner } from "./support/tenant-owner";

let server: LocalPostgres;
let adminUrl: string;
const LIMITS = { connectionLimit: 2, statementTimeoutMs: 30_000, idleInTransactionTimeoutMs: 60_000 };

beforeAll(async () => {
  server = await startLocalPostgres();
  adminUrl = server.url();
});
afterAll(async () => {
  await server?.stop();
});

const admin = <T = Record<string, unknown>>(sql: string, values?: unknown[], database?: string) => adminQuery<T>(server, sql, values, database);

/** A session as the tenant's role (or any role), into `database` (default: its own). */
async function as(role: string, password: string, database = role): Promise<Client> {
  const client = new Client({ host: server.host, port: server.port, user: role, password, database });
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

async function refusal(role: string, password: string, sql: string): Promise<string> {
  const client = await as(role, password);
  try {
    await client.query(sql);
    return "it worked";
  } catch (error) {
    return `${(error as { code?: string }).code} ${(error as Error).message}`;
  } finally {
    await client.end();
  }
}

/** Deploys one tenant through the providers, as `pulumi up` does; returns the outputs the state would hold. */
async function deploy(name: string, password: string) {
  const role = await roleProvider.create({ adminUrl, name, password, login: true, ...LIMITS });
  const database = await databaseProvider.create({ adminUrl, name, tenantRole: name, connectionLimit: LIMITS.connectionLimit });
  const revoke = await revokeProvider.create({ adminUrl, database: name });
  const tenant = await as(name, password);
  await tenant.query("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')");
  await tenant.end();
  return { role: role.outs, database: database.outs, revoke: revoke.outs };
}

/** refresh (read), then what `pulumi up` would do (diff, then update when it says so). */
async function refreshAndRepair(provider: typeof roleProvider, id: string, state: any, inputs: any) {
  const read = await provider.read!(id, state);
  const diff = await provider.diff!(id, read.props, inputs);
  if (diff.changes) await provider.update!(id, read.props, inputs);
  return { read: read.props, changes: diff.changes, replaces: diff.replaces };
}

const notes = async (name: string) => (await admin<{ body: string }>("SELECT body FROM notes", [], name)).map((row) => row.body);

describe("the tenant's database belongs to the admin", () => {
  const name = "drivergigspro_a0000001";
  const password = "tenant-password-1";
  beforeAll(() => deploy(name, password));

  it("lets the tenant create tables in public (PostgreSQL 15+) and keeps them the tenant's", async () => {
    expect(await admin("SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'public'", [], name)).toEqual([{ owner: name }]);
    expect(await admin("SELECT tableowner FROM pg_tables WHERE tablename = 'notes'", [], name)).toEqual([{ tableowner: name }]);
    expect(await admin("SELECT pg_get_userbyid(datdba) AS owner, datconnlimit FROM pg_database WHERE datname = $1", [name])).toEqual([
      { owner: server.adminUser, datconnlimit: 2 },
    ]);
  });

  it("refuses every change of the database the tenant used to be able to make", async () => {
    const db = escapeIdentifier(name);
    // Without a grant option PostgreSQL only warns ("no privileges were granted") and grants nothing.
    expect(await refusal(name, password, `GRANT CONNECT, TEMPORARY ON DATABASE ${db} TO PUBLIC`)).toBe("it worked");
    expect(await ops.publicPrivileges(adminUrl, name)).toEqual([]);
    for (const sql of [
      `ALTER DATABASE ${db} ALLOW_CONNECTIONS false`,
      `ALTER DATABASE ${db} IS_TEMPLATE true`,
      `ALTER DATABASE ${db} CONNECTION LIMIT -1`,
      `ALTER DATABASE ${db} SET statement_timeout = 0`,
      `ALTER DATABASE ${db} OWNER TO ${db}`,
    ]) {
      expect(await refusal(name, password, sql)).toMatch(/^42501 /);
    }
    // PostgreSQL checks ownership first, so even from inside the database the answer is "must be owner".
    expect(await refusal(name, password, `DROP DATABASE ${db}`)).toMatch(/^42501 must be owner of database/);
    expect(await admin("SELECT 1 FROM pg_database WHERE datname = $1", [name])).toHaveLength(1);
    // A role cannot lift its own connection limit.
    expect(await refusal(name, password, `ALTER ROLE ${db} CONNECTION LIMIT -1`)).toMatch(/^42501 /);
  });

  it("sees nothing to do when nothing drifted", async () => {
    const role = await roleProvider.read!(name, { adminUrl, name, password, login: true, ...LIMITS, settings: ops.expectedRoleSettings(LIMITS), powers: [] });
    expect((await roleProvider.diff!(name, role.props, { adminUrl, name, password, login: true, ...LIMITS })).changes).toBe(false);
    const inputs = { adminUrl, name, tenantRole: name, connectionLimit: 2 };
    const database = await databaseProvider.read!(name, inputs);
    expect((await databaseProvider.diff!(name, database.props, inputs)).changes).toBe(false);
    const revoke = await revokeProvider.read!(name, { adminUrl, database: name });
    expect((await revokeProvider.diff!(name, revoke.props, { adminUrl, database: name })).changes).toBe(false);
  });
});

describe("drift is seen by read and repaired by update, data kept", () => {
  const name = "drivergigspro_a0000002";
  const password = "tenant-password-2";
  const roleInputs = { adminUrl, name, password, login: true, ...LIMITS };
  const dbInputs = () => ({ adminUrl, name, tenantRole: name, connectionLimit: LIMITS.connectionLimit });
  let state: Awaited<ReturnType<typeof deploy>>;
  beforeAll(async () => {
    state = await deploy(name, password);
  });

  it("a password the tenant changed: read reports it, update sets the state's again", async () => {
    const tenant = await as(name, password);
    await tenant.query(`ALTER ROLE ${escapeIdentifier(name)} PASSWORD 'tenant-chose-this'`);
    await tenant.end();
    const { read, changes } = await refreshAndRepair(roleProvider, name, state.role, { ...roleInputs, adminUrl });
    expect(read.password).toBe(DRIFTED_PASSWORD);
    expect(changes).toBe(true);
    expect(await canLogIn({ host: server.host, port: server.port, user: name, password, database: name })).toBe(true);
    expect(await notes(name)).toEqual(["kept"]);
  });

  it("an admin that cannot read pg_authid (a managed server) tells a changed password by trying it", async () => {
    await admin("CREATE ROLE dgp_managed_admin LOGIN CREATEROLE PASSWORD 'managed'");
    const managedUrl = `postgresql://dgp_managed_admin:managed@${server.host}:${server.port}/postgres?sslmode=disable`;
    const reading = () => ops.readRole(managedUrl, { name, ...owner(name), password, login: true });
    expect((await reading())!.passwordMatches).toBe(true);
    await admin(`ALTER ROLE ${escapeIdentifier(name)} PASSWORD 'changed-again'`);
    expect((await reading())!.passwordMatches).toBe(false);
    await roleProvider.update!(name, state.role, { ...roleInputs, adminUrl });
    expect((await reading())!.passwordMatches).toBe(true);
  });

  it("settings and powers: the tenant's own ALTER ROLE SET, and a superuser flag or membership someone gave it", async () => {
    const tenant = await as(name, password);
    await tenant.query(`ALTER ROLE ${escapeIdentifier(name)} SET statement_timeout = 0`);
    await tenant.query(`ALTER ROLE ${escapeIdentifier(name)} IN DATABASE ${escapeIdentifier(name)} SET idle_in_transaction_session_timeout = 0`);
    await tenant.end();
    await admin(`ALTER ROLE ${escapeIdentifier(name)} CREATEDB CONNECTION LIMIT -1`);
    await admin(`GRANT pg_read_all_data TO ${escapeIdentifier(name)}`);
    const { read, changes } = await refreshAndRepair(roleProvider, name, state.role, { ...roleInputs, adminUrl });
    expect(read).toMatchObject({ connectionLimit: -1, powers: ["createdb", "member of pg_read_all_data"] });
    expect(read.settings).toEqual([`${name}:idle_in_transaction_session_timeout=0`, "idle_in_transaction_session_timeout=60000", "statement_timeout=0"]);
    expect(changes).toBe(true);
    const again = await roleProvider.read!(name, read);
    expect(again.props).toMatchObject({ connectionLimit: 2, powers: [], settings: ops.expectedRoleSettings(LIMITS), password });
  });

  it("PUBLIC or another role granted CONNECT, ALLOW_CONNECTIONS false, IS_TEMPLATE true, a database setting, the schema given away", async () => {
    const db = escapeIdentifier(name);
    await admin("CREATE ROLE drivergigspro_other LOGIN PASSWORD 'other'");
    await admin(`GRANT CONNECT ON DATABASE ${db} TO PUBLIC`);
    await admin(`GRANT CONNECT, CREATE ON DATABASE ${db} TO drivergigspro_other`);
    await admin(`ALTER DATABASE ${db} SET work_mem = '1GB'`);
    await admin(`ALTER SCHEMA public OWNER TO ${escapeIdentifier(server.adminUser)}`, [], name);
    const revoke = await revokeProvider.read!(name, state.revoke);
    expect(revoke.props.publicPrivileges).toEqual(["CONNECT"]);
    expect((await revokeProvider.diff!(name, revoke.props, { adminUrl, database: name })).changes).toBe(true);
    await admin(`ALTER DATABASE ${db} WITH ALLOW_CONNECTIONS false IS_TEMPLATE true CONNECTION LIMIT -1`);

    const { read, changes, replaces } = await refreshAndRepair(databaseProvider, name, state.database, dbInputs());
    expect(read).toMatchObject({ allowConnections: false, isTemplate: true, connectionLimit: -1, settings: ["work_mem=1GB"] });
    expect(read.grants).toEqual(expect.arrayContaining(["PUBLIC:CONNECT", "drivergigspro_other:CONNECT", "drivergigspro_other:CREATE"]));
    expect([changes, replaces]).toEqual([true, []]);
    const repaired = (await databaseProvider.read!(name, read)).props;
    expect(repaired).toMatchObject({ allowConnections: true, isTemplate: false, connectionLimit: 2, settings: [], publicSchemaOwner: name });
    expect(repaired.grants).toEqual(ops.expectedGrants(name));
    expect(repaired.oid).toBe(state.database.oid);
    expect(await canLogIn({ host: server.host, port: server.port, user: "drivergigspro_other", password: "other", database: name })).toMatch(
      /permission denied for database/,
    );
    expect(await notes(name)).toEqual(["kept"]);
  });

  it("a dropped database reads as gone, so the next update creates it again (empty) with a new oid", async () => {
    await admin(`DROP DATABASE ${escapeIdentifier(name)} WITH (FORCE)`);
    expect((await databaseProvider.read!(name, state.database)).id).toBe("");
    const created = await databaseProvider.create!(dbInputs());
    expect(created.outs.oid).not.toBe(state.database.oid);
    expect(await canLogIn({ host: server.host, port: server.port, user: name, password, database: name })).toBe(true);
  });
});

describe("a database of the older design (owned by the tenant's role)", () => {
  it("moves to the admin on the next update, an update and not a replace, with data, table owners and CREATE in public kept", async () => {
    const name = "drivergigspro_a0000003";
    await admin(`CREATE ROLE ${name} LOGIN PASSWORD 'old-design'`);
    await admin(`CREATE DATABASE ${name} OWNER ${name}`);
    await admin(`REVOKE ALL ON DATABASE ${name} FROM PUBLIC`);
    const tenant = await as(name, "old-design");
    await tenant.query("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')");
    await tenant.end();
    const oldOutputs = { adminUrl, name, owner: name }; // what the state of an older stack holds
    const news = { adminUrl, name, tenantRole: name, connectionLimit: 5 };
    expect(await databaseProvider.diff!(name, oldOutputs, news)).toMatchObject({ changes: true, replaces: [] });
    await databaseProvider.update!(name, oldOutputs, news);
    expect(await admin("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1", [name])).toEqual([{ owner: server.adminUser }]);
    expect(await admin("SELECT tableowner FROM pg_tables WHERE tablename = 'notes'", [], name)).toEqual([{ tableowner: name }]);
    expect(await notes(name)).toEqual(["kept"]);
    expect(await refusal(name, "old-design", "CREATE TABLE more (n int)")).toBe("it worked");
    await refusal(name, "old-design", `GRANT CONNECT ON DATABASE ${name} TO PUBLIC`); // a warning, nothing granted
    expect(await ops.publicPrivileges(adminUrl, name)).toEqual([]);
    expect(await refusal(name, "old-design", `ALTER DATABASE ${name} ALLOW_CONNECTIONS false`)).toMatch(/^42501 /);
  });
});

describe("the plan's connection limit", () => {
  it("refuses tenant A's next connection while B, the admin and another role still connect", async () => {
    const [a, b] = ["drivergigspro_a0000004", "drivergigspro_a0000005"];
    await deploy(a, "pw-a");
    await deploy(b, "pw-b");
    await admin("CREATE ROLE drivergigspro_service LOGIN PASSWORD 'service'");
    await admin("GRANT CONNECT ON DATABASE postgres TO drivergigspro_service");
    const held = [await as(a, "pw-a"), await as(a, "pw-a")];
    try {
      await expect(as(a, "pw-a")).rejects.toMatchObject({ code: "53300" }); // too many connections for role
      const others = [await as(b, "pw-b"), await server.connect(), await as("drivergigspro_service", "service", "postgres")];
      for (const client of others) expect((await client.query("SELECT 1 AS ok")).rows).toEqual([{ ok: 1 }]);
      await Promise.all(others.map((client) => client.end()));
      // The role's defaults are set (a session may override them: README "Security").
      expect((await held[0]!.query("SHOW statement_timeout")).rows).toEqual([{ statement_timeout: "30s" }]);
    } finally {
      await Promise.all(held.map((client) => client.end()));
    }
  });
});

describe("server hardening", () => {
  it("takes CONNECT and TEMPORARY from PUBLIC on every non-tenant database, and then sees nothing to do", async () => {
    await admin("CREATE DATABASE onboarding_like");
    const open = await ops.openDatabases(adminUrl, "drivergigspro");
    expect(open).toEqual(expect.arrayContaining(["onboarding_like", "postgres", "template1"]));
    expect(open.filter((name) => name.startsWith("drivergigspro_") || name === "template0")).toEqual([]);
    const inputs = { adminUrl, appName: "drivergigspro" };
    expect((await hardeningProvider.diff!("h", inputs, inputs)).changes).toBe(true);
    const created = await hardeningProvider.create(inputs);
    expect(created.outs.open).toEqual([]);
    expect((await hardeningProvider.diff!("h", created.outs, inputs)).changes).toBe(false);
    expect((await hardeningProvider.read!("h", created.outs)).props.open).toEqual([]);
    const tenant = "drivergigspro_a0000001";
    for (const database of ["postgres", "template1", "onboarding_like"]) {
      expect(await canLogIn({ host: server.host, port: server.port, user: tenant, password: "tenant-password-1", database })).toMatch(
        /permission denied for database/,
      );
    }
    expect(await canLogIn(server.url("onboarding_like"))).toBe(true); // the admin still gets in
  });
});

/**
 * The builtin provider on every supported PostgreSQL major (the embedded one
 * and Debian's PostgreSQL 15): PostgreSQL 15 took CREATE on schema public
 * away from PUBLIC, so the tenant role (NOINHERIT) can create its tables only
 * because it owns schema public of its database (operations.ts). And the
 * role's temp_file_limit holds on both: the tenant cannot lift it, and a query
 * past it fails in its own session with its files removed.
 */
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as ops from "../infra/builtin-postgres/operations";
import type { LocalPostgres } from "../local/embedded-postgres";
import { POSTGRES_KINDS, serverMajor, startTestPostgres } from "./support/test-postgres";
import { testOwner as owner } from "./support/tenant-owner";

describe.each(POSTGRES_KINDS)("PostgreSQL %s", (kind) => {
  let server: LocalPostgres;

  beforeAll(async () => {
    server = await startTestPostgres(kind);
    console.log(`builtin-postgres-majors: PostgreSQL ${await serverMajor(server)} (${kind})`);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("lets the tenant role create tables in its database's public schema, which it owns, and adopting keeps them", async () => {
    const adminUrl = server.url();
    const name = "drivergigspro_5c4e3a15";
    const password = "schema-owner-pw";
    await ops.createRole(adminUrl, { name, ...owner(name), password, login: true });
    await ops.createDatabase(adminUrl, { name, ...owner(name), tenantRole: name });
    await ops.revokePublic(adminUrl, name);
    const tenant = new Client({ host: server.host, port: server.port, user: name, password, database: name });
    await tenant.connect();
    try {
      await tenant.query("CREATE TABLE public.probe (id int); INSERT INTO probe VALUES (1)");
      expect((await tenant.query("SELECT tableowner FROM pg_tables WHERE tablename = 'probe'")).rows).toEqual([{ tableowner: name }]);
      expect((await tenant.query("SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'public'")).rows).toEqual([{ owner: name }]);
      // It cannot touch the database itself: the admin owns it.
      await expect(tenant.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`)).rejects.toThrow(/must be owner of database/);
    } finally {
      await tenant.end();
    }
    // Adopting it again (a tenant brought back) keeps the schema, its owner and the data.
    await ops.createDatabase(adminUrl, { name, ...owner(name), tenantRole: name });
    const admin = await server.connect(name);
    expect((await admin.query("SELECT id FROM probe")).rows).toEqual([{ id: 1 }]);
    await admin.end();
    await ops.dropDatabase(adminUrl, name);
    await ops.dropRole(adminUrl, name);
  });

  it("gives the role a temp_file_limit it cannot lift; a query past it fails in its own session and leaves no file", async () => {
    const adminUrl = server.url();
    const name = "drivergigspro_7e3f11e0";
    const password = "temp-limit-pw";
    await ops.createRole(adminUrl, { name, ...owner(name), password, login: true, connectionLimit: 5, tempFileLimitMb: 8 });
    await ops.createDatabase(adminUrl, { name, ...owner(name), tenantRole: name, connectionLimit: 5 });
    expect((await ops.readRole(adminUrl, { name, ...owner(name), password, login: true }))?.settings).toEqual(["temp_file_limit=8MB"]);
    const tenant = new Client({ host: server.host, port: server.port, user: name, password, database: name });
    await tenant.connect();
    try {
      expect((await tenant.query("SELECT current_setting('temp_file_limit') AS limit")).rows).toEqual([{ limit: "8MB" }]);
      for (const sql of ["SET temp_file_limit = -1", "ALTER ROLE CURRENT_USER SET temp_file_limit = -1", "ALTER ROLE CURRENT_USER RESET temp_file_limit"]) {
        await expect(tenant.query(sql), sql).rejects.toMatchObject({ code: "42501" });
      }
      await tenant.query("ALTER ROLE CURRENT_USER RESET ALL"); // allowed, and skips what it may not reset
      await tenant.query("SET work_mem = '64kB'");
      await expect(tenant.query("SELECT count(*) FROM generate_series(1, 1000000000000) g")).rejects.toMatchObject({
        code: "53400",
        message: expect.stringMatching(/temporary file size exceeds "?temp_file_limit"? \(8192kB\)/),
      });
      expect((await tenant.query("SELECT 1 AS still")).rows).toEqual([{ still: 1 }]);
    } finally {
      await tenant.end();
    }
    expect((await ops.readRole(adminUrl, { name, ...owner(name), password, login: true }))?.settings).toEqual(["temp_file_limit=8MB"]);
    // PostgreSQL removes the failed query's files just after it answers.
    const admin = await server.connect();
    let left: unknown[] = [];
    for (let attempt = 0; attempt < 50; attempt++) {
      left = (await admin.query("SELECT name FROM pg_ls_tmpdir()")).rows;
      if (left.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await admin.end();
    expect(left).toEqual([]);
    await ops.dropDatabase(adminUrl, name);
    await ops.dropRole(adminUrl, name);
  });

  it("lets a non-superuser admin set temp_file_limit only once granted SET ON PARAMETER (the @pulumi/postgresql path's RoleParameter)", async () => {
    const admin = await server.connect();
    const tenant = "drivergigspro_7e3f11e1";
    try {
      await admin.query("CREATE ROLE managed_admin LOGIN CREATEROLE PASSWORD 'managed-pw'");
      const managedUrl = `postgresql://managed_admin:managed-pw@${server.host}:${server.port}/postgres?sslmode=disable`;
      await ops.asAdmin(managedUrl, (client) => client.query(`CREATE ROLE ${tenant} LOGIN`));
      await expect(ops.setRoleParameter(managedUrl, tenant, "temp_file_limit", "64MB")).rejects.toMatchObject({ code: "42501" });
      await admin.query("GRANT SET ON PARAMETER temp_file_limit TO managed_admin");
      await ops.setRoleParameter(managedUrl, tenant, "temp_file_limit", "64MB");
      expect(await ops.readRoleParameter(managedUrl, tenant, "temp_file_limit")).toBe("64MB");
      await expect(ops.setRoleParameter(managedUrl, tenant, "work_mem", "1GB")).rejects.toThrow(/role parameter "work_mem" is not one of temp_file_limit/);
    } finally {
      await admin.query(`DROP ROLE IF EXISTS ${tenant}`);
      await admin.query("REVOKE SET ON PARAMETER temp_file_limit FROM managed_admin").catch(() => undefined);
      await admin.query("DROP ROLE IF EXISTS managed_admin");
      await admin.end();
    }
  });
});

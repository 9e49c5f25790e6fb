/**
 * The builtin provider on every supported PostgreSQL major (the embedded one
 * and Debian's PostgreSQL 15): PostgreSQL 15 took CREATE on schema public
 * away from PUBLIC, so the tenant role (NOINHERIT) can create its tables only
 * because it owns schema public of its database (operations.ts).
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
});

/**
 * The ownership check before an adoption (infra/adoption.ts), on a real
 * PostgreSQL: what the postgresql provider's path imports, and what it
 * refuses, naming the tenant, because the object is not the tenant's.
 */
import { escapeIdentifier } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdoptionError, findAdoptions, inspectExisting, type AdoptionCandidate } from "../infra/adoption";
import { isMarked, markTenant } from "../infra/builtin-postgres/database-operations";
import { parseFleetSettings } from "../infra/config";
import { claimProblems } from "../infra/tenant-claims";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";

let server: LocalPostgres;

beforeAll(async () => {
  server = await startLocalPostgres();
});
afterAll(async () => {
  await server?.stop();
});

async function admin(sql: string, database = "postgres"): Promise<void> {
  const client = await server.connect(database);
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A tenant as the program leaves it: its role, a database the admin owns, its tables in public. */
async function keptTenant(name: string, options: { tables?: boolean } = {}): Promise<void> {
  const id = escapeIdentifier(name);
  await admin(`CREATE ROLE ${id} LOGIN PASSWORD 'old-password' NOINHERIT CONNECTION LIMIT 2`);
  await admin(`CREATE DATABASE ${id} OWNER ${escapeIdentifier(server.adminUser)}`);
  await admin(`ALTER SCHEMA public OWNER TO ${id}`, name);
  if (options.tables) await admin(`CREATE TABLE public.sessions (sid text); ALTER TABLE public.sessions OWNER TO ${id}`, name);
}

const check = (name: string) => inspectExisting(server.url(), server.adminUser, name);

function candidate(username: string, name: string): AdoptionCandidate {
  const settings = parseFleetSettings(
    {
      servers: [{ name: "local", host: server.host, port: server.port, adminUser: server.adminUser, adminPassword: server.adminPassword, sslmode: "disable" }],
    },
    "drivergigspro",
  );
  return { username, name, server: settings.servers[0]! };
}

describe("what an adoption finds on the server", () => {
  it("nothing for a name that does not exist", async () => {
    expect(await check("drivergigspro_00000001")).toEqual({ role: false, database: false });
  });

  it("a kept tenant's role and database, data and all, are the tenant's", async () => {
    await keptTenant("drivergigspro_0a0a0a0a", { tables: true });
    expect(await check("drivergigspro_0a0a0a0a")).toEqual({ role: true, database: true });
  });

  it("a role alone (a kill before its database was made) is adopted alone", async () => {
    await admin(`CREATE ROLE drivergigspro_0b0b0b0b LOGIN NOINHERIT`);
    expect(await check("drivergigspro_0b0b0b0b")).toEqual({ role: true, database: false });
  });

  it("refuses a role with rights or memberships no tenant role has", async () => {
    await admin(`CREATE ROLE drivergigspro_0c0c0c0c LOGIN CREATEROLE`);
    expect((await check("drivergigspro_0c0c0c0c")).problem).toMatch(/role "drivergigspro_0c0c0c0c" exists with rights or memberships a tenant role never has/);
    await admin(`CREATE ROLE drivergigspro_0d0d0d0d LOGIN; GRANT pg_read_all_data TO drivergigspro_0d0d0d0d`);
    expect((await check("drivergigspro_0d0d0d0d")).problem).toMatch(/not this tenant's/);
  });

  it("refuses a database another role owns, or one holding another role's objects", async () => {
    await admin(`CREATE ROLE someone_else LOGIN`);
    await admin(`CREATE DATABASE drivergigspro_0e0e0e0e OWNER someone_else`);
    expect((await check("drivergigspro_0e0e0e0e")).problem).toMatch(/database "drivergigspro_0e0e0e0e" is owned by "someone_else"/);
    await keptTenant("drivergigspro_0f0f0f0f", { tables: true });
    await admin(`CREATE TABLE public.planted (x int); ALTER TABLE public.planted OWNER TO someone_else`, "drivergigspro_0f0f0f0f");
    expect((await check("drivergigspro_0f0f0f0f")).problem).toMatch(/holds objects owned by "someone_else"; it is not this tenant's/);
  });

  it("findAdoptions maps usernames to what exists, and fails naming every tenant whose objects are not its own", async () => {
    const found = await findAdoptions([
      candidate("ann", "drivergigspro_0a0a0a0a"),
      candidate("bob", "drivergigspro_0b0b0b0b"),
      candidate("cy", "drivergigspro_00000002"),
    ]);
    expect(Object.fromEntries(found)).toEqual({
      ann: { name: "drivergigspro_0a0a0a0a", role: true, database: true },
      bob: { name: "drivergigspro_0b0b0b0b", role: true, database: false },
    });
    const refused = findAdoptions([
      candidate("eve", "drivergigspro_0e0e0e0e"),
      candidate("fay", "drivergigspro_0f0f0f0f"),
      candidate("ann", "drivergigspro_0a0a0a0a"),
    ]);
    await expect(refused).rejects.toBeInstanceOf(AdoptionError);
    await expect(refused).rejects.toThrow(
      /tenant "eve": database "drivergigspro_0e0e0e0e" is owned by "someone_else"[\s\S]*tenant "fay": database "drivergigspro_0f0f0f0f" holds objects/,
    );
  });

  it("an unreachable server fails naming the server and the config to check, without the password", async () => {
    const unreachable = { ...candidate("ann", "drivergigspro_0a0a0a0a"), server: { ...candidate("ann", "x").server, port: 1 } };
    await expect(findAdoptions([unreachable])).rejects.toThrow(
      /cannot reach PostgreSQL at .*:1 as .*check the server's host, port, adminUser and adminPassword/,
    );
    await expect(findAdoptions([unreachable])).rejects.not.toThrow(new RegExp(server.adminPassword));
  });
});

describe("before anything is declared: a new tenant's names on its server must carry its own marker (infra/tenant-claims.ts)", () => {
  const settings = () =>
    parseFleetSettings(
      {
        databaseProvider: "postgresql",
        servers: [
          { name: "local", host: server.host, port: server.port, adminUser: server.adminUser, adminPassword: server.adminPassword, sslmode: "disable" },
        ],
      },
      "drivergigspro",
    );
  const entry = (username: string, tenantId: string, line = 2) => ({ username, tenantId, status: "active" as const, line });

  it("refuses another tenant's marked role and database, an unmarked role, and accepts its own marker; what TenantMarker writes is read back", async () => {
    const name = "drivergigspro_0a1a2a3a";
    await keptTenant(name, { tables: true });
    // What the postgresql provider's TenantMarker resource writes for tenant 0A1A2A3A of stack prod-s001.
    await markTenant(server.url(), { role: name, database: name, tenantId: "0A1A2A3A", stack: "prod-s001" });
    expect(await isMarked(server.url(), { role: name, database: name, tenantId: "0A1A2A3A", stack: "prod-s001" })).toBe(true);

    // The same ID in another shard's stack: refused, naming what was found.
    const problems = await claimProblems(settings(), [entry("collider", "0A1A2A3A", 7)], {}, "prod-s002");
    expect(problems.map((problem) => [problem.line, problem.username])).toEqual([
      [7, "collider"],
      [7, "collider"],
    ]);
    expect(problems[0]!.message).toMatch(
      /on server "local": role "drivergigspro_0a1a2a3a" already exists and is not tenant 0A1A2A3A's of stack prod-s002: its marker says it is tenant 0A1A2A3A of stack prod-s001/,
    );
    expect(problems[1]!.message).toMatch(/database "drivergigspro_0a1a2a3a" already exists .*its marker says it is tenant 0A1A2A3A of stack prod-s001/);
    // Its own stack (a killed run, a moved-in tenant with the marker): nothing to refuse.
    expect(await claimProblems(settings(), [entry("john_driver", "0A1A2A3A")], {}, "prod-s001")).toEqual([]);

    // No marker at all: refused for a new tenant; a tombstone this stack deployed under the ID comes back onto it.
    await admin(`COMMENT ON ROLE ${name} IS NULL`);
    expect((await claimProblems(settings(), [entry("john_driver", "0A1A2A3A")], {}, "prod-s001"))[0]!.message).toMatch(/role .* it carries no tenant marker/);
    const tombstone = { john_driver: { server: "local", tenantId: "0A1A2A3A", database: name, status: "removed" } };
    expect(await claimProblems(settings(), [entry("john_driver", "0A1A2A3A")], tombstone, "prod-s001")).toEqual([]);
    await admin(`DROP DATABASE ${name}`);
    await admin(`DROP ROLE ${name}`);
  });
});

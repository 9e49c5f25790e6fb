/**
 * The SQL behind the builtin database provider. Runs in Pulumi's dynamic
 * provider process, as the server's admin. Identifiers always go through
 * pg's escapeIdentifier; the only literal, a role password, goes through
 * escapeLiteral, because PostgreSQL takes no parameters in CREATE/ALTER ROLE.
 * That literal is the password's SCRAM-SHA-256 verifier, never the password
 * itself, so a logged statement (log_statement, or a failing one) shows no secret.
 */
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { scramSha256Verifier } from "./scram";

export interface RoleState {
  name: string;
  password: string;
  login: boolean;
}

export interface DatabaseState {
  name: string;
  owner: string;
}

/** The admin URL with another database in it. */
function inDatabase(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

async function asAdmin<T>(adminUrl: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl, application_name: "drivergigspro-provider", connectionTimeoutMillis: 15_000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (error) {
    // The URL carries the admin password: name only the server.
    const { hostname, port, username } = new URL(adminUrl);
    throw new Error(
      `cannot reach PostgreSQL at ${hostname}:${port || 5432} as ${decodeURIComponent(username)} ` +
        `(${(error as Error).message}); check the server's host, port, adminUser and adminPassword in the stack config`,
    );
  }
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** `PASSWORD '<SCRAM verifier>'`: PostgreSQL stores a verifier as is and never sees the password. */
function passwordClause(password: string): string {
  return `PASSWORD ${escapeLiteral(scramSha256Verifier(password))}`;
}

// A tenant role has exactly one power: logging in (while active).
const NO_POWERS = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT";

/**
 * Creates the role, or adopts it when it already exists: a `pulumi up` killed
 * between CREATE ROLE and the state write, or a removed tenant brought back
 * with its pinned tenant ID, leaves the role in PostgreSQL but not in the
 * state. Adopting sets the same attributes and password a create would, so
 * the next `pulumi up` converges instead of failing on "already exists".
 */
export function createRole(adminUrl: string, role: RoleState): Promise<void> {
  return asAdmin(adminUrl, async (client) => {
    const verb = (await roleExists(client, role.name)) ? "ALTER" : "CREATE";
    await client.query(
      `${verb} ROLE ${escapeIdentifier(role.name)} ${role.login ? "LOGIN" : "NOLOGIN"} ${NO_POWERS} ${passwordClause(role.password)}`,
    );
  });
}

async function roleExists(client: Client, name: string): Promise<boolean> {
  return (await client.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [name])).rows.length > 0;
}

export function updateRole(adminUrl: string, role: RoleState): Promise<void> {
  return asAdmin(adminUrl, async (client) => {
    await client.query(
      `ALTER ROLE ${escapeIdentifier(role.name)} ${role.login ? "LOGIN" : "NOLOGIN"} ${NO_POWERS} ${passwordClause(role.password)}`,
    );
  });
}

export function dropRole(adminUrl: string, name: string): Promise<void> {
  return asAdmin(adminUrl, async (client) => {
    await client.query(`DROP ROLE IF EXISTS ${escapeIdentifier(name)}`);
  });
}

/**
 * Creates the database, or adopts it, data and all, when it already exists
 * and belongs to the tenant's role (see createRole for how that happens).
 * A database of that name owned by anyone else is not the tenant's: refuse.
 * Either way the tenant's role then owns schema `public`: since PostgreSQL 15
 * `public` belongs to pg_database_owner and PUBLIC may not create in it, which
 * a NOINHERIT role that owns the database does not get past.
 */
export async function createDatabase(adminUrl: string, database: DatabaseState): Promise<void> {
  await asAdmin(adminUrl, async (client) => {
    const { rows } = await client.query<{ owner: string }>("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1", [
      database.name,
    ]);
    const existing = rows[0];
    if (existing === undefined) {
      await client.query(
        `CREATE DATABASE ${escapeIdentifier(database.name)} OWNER ${escapeIdentifier(database.owner)} TEMPLATE template0 ENCODING 'UTF8'`,
      );
    } else if (existing.owner !== database.owner) {
      throw new Error(
        `database "${database.name}" already exists and belongs to "${existing.owner}", not to the tenant's role "${database.owner}"; ` +
          `it was not made by this program: rename or drop it by hand, or pin another tenantId`,
      );
    }
  });
  await asAdmin(inDatabase(adminUrl, database.name), async (client) => {
    // A kept database whose tenant dropped `public` is adopted as it is.
    const { rows } = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = 'public'");
    if (rows.length > 0) await client.query(`ALTER SCHEMA public OWNER TO ${escapeIdentifier(database.owner)}`);
  });
}

export function alterDatabaseOwner(adminUrl: string, database: DatabaseState): Promise<void> {
  return asAdmin(adminUrl, async (client) => {
    await client.query(`ALTER DATABASE ${escapeIdentifier(database.name)} OWNER TO ${escapeIdentifier(database.owner)}`);
  });
}

export function dropDatabase(adminUrl: string, name: string): Promise<void> {
  return asAdmin(adminUrl, async (client) => {
    // Only reached when purging is allowed; FORCE ends the tenant's sessions.
    await client.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
  });
}

/** Everything PUBLIC has on the database (CONNECT, TEMPORARY) goes; the owner keeps its rights. */
export function revokePublic(adminUrl: string, database: string): Promise<void> {
  return asAdmin(adminUrl, async (client) => {
    await client.query(`REVOKE ALL ON DATABASE ${escapeIdentifier(database)} FROM PUBLIC`);
  });
}

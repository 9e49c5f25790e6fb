/**
 * The SQL behind the builtin database provider's Role. Runs in Pulumi's
 * dynamic provider process, as the server's admin. Identifiers always go
 * through pg's escapeIdentifier; literals through escapeLiteral, because
 * PostgreSQL takes no parameters in CREATE/ALTER ROLE. The password literal is
 * its SCRAM-SHA-256 verifier, never the password itself, so a logged statement
 * (log_statement, or a failing one) shows no secret.
 *
 * `readRole` is what `pulumi refresh` sees: the role's real attributes,
 * settings, memberships and whether its password is still the one in the
 * state (a tenant may change its own password; see README "Security").
 * The database side is in database-operations.ts (re-exported here).
 */
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { withTransaction } from "../../lib/transaction";
import { parseTenantMarker, tenantMarker } from "../naming";
import { asAdmin } from "./admin-session";
import { scramSha256Verifier } from "./scram";

export * from "./database-operations";
export * from "./admin-session";

export interface RoleLimits {
  /** CONNECTION LIMIT of the role: a role cannot change its own. -1: none. */
  connectionLimit?: number;
  /** Role defaults; a session may still SET them (README "Security"). */
  statementTimeoutMs?: number;
  idleInTransactionTimeoutMs?: number;
  /**
   * The role's default `temp_file_limit`, in MB: a superuser-only setting, so the tenant can neither SET
   * it in a session nor change or reset its role default. A non-superuser admin needs
   * `GRANT SET ON PARAMETER temp_file_limit TO <admin>` (PostgreSQL 15+).
   */
  tempFileLimitMb?: number;
}

/** Whose role or database it is: written as its marker (infra/naming.ts tenantMarker). */
export interface TenantOwner {
  tenantId: string;
  stack: string;
  /**
   * Also adopt one that carries no marker, or an older program's (which names only the role):
   * set by the program only when this stack's own last update deployed this tenant under this ID.
   */
  adoptLegacy?: boolean;
}

export interface RoleState extends RoleLimits, TenantOwner {
  name: string;
  password: string;
  login: boolean;
}

/** What `read` found: the state's fields as PostgreSQL has them now. */
export interface RoleReading {
  login: boolean;
  connectionLimit: number;
  /** `key=value`, and `database:key=value` for per-database ones, sorted. */
  settings: string[];
  /** Any power a tenant role must not have (superuser, ..., member of X). */
  powers: string[];
  /** False when PostgreSQL holds another password than the state's; undefined when it cannot be told. */
  passwordMatches: boolean | undefined;
}

/** `PASSWORD '<SCRAM verifier>'`: PostgreSQL stores a verifier as is and never sees the password. */
function passwordClause(password: string): string {
  return `PASSWORD ${escapeLiteral(scramSha256Verifier(password))}`;
}

// A tenant role has exactly one power: logging in (while active).
const NO_POWERS = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT";

function integerLiteral(value: number, what: string): string {
  if (!Number.isInteger(value)) throw new Error(`${what} must be an integer, got ${String(value)}`);
  return String(value);
}

/** The role-wide settings a role with these limits has, as pg_db_role_setting shows them. */
export function expectedRoleSettings(limits: RoleLimits): string[] {
  const settings: string[] = [];
  if (limits.idleInTransactionTimeoutMs !== undefined) settings.push(`idle_in_transaction_session_timeout=${limits.idleInTransactionTimeoutMs}`);
  if (limits.statementTimeoutMs !== undefined) settings.push(`statement_timeout=${limits.statementTimeoutMs}`);
  if (limits.tempFileLimitMb !== undefined) settings.push(`temp_file_limit=${tempFileLimitValue(limits.tempFileLimitMb)}`);
  return settings.sort();
}

/** `temp_file_limit` as the role default is written (and as pg_db_role_setting then shows it). */
export function tempFileLimitValue(megabytes: number): string {
  return `${integerLiteral(megabytes, "tempFileLimitMb")}MB`;
}

/**
 * Creates the role, or adopts it when it already exists: a `pulumi up` killed
 * between CREATE ROLE and the state write, or a removed tenant brought back
 * with its pinned tenant ID, leaves the role in PostgreSQL but not in the
 * state. Adopting sets the same attributes and password a create would, so
 * the next `pulumi up` converges instead of failing on "already exists".
 */
export function createRole(adminUrl: string, role: RoleState): Promise<void> {
  return asAdmin(adminUrl, async (client) => {
    const found = await client.query<{ note: string | null }>("SELECT shobj_description(oid, 'pg_authid') AS note FROM pg_roles WHERE rolname = $1", [
      role.name,
    ]);
    const existing = found.rows[0];
    if (existing !== undefined) refuseUnlessOwn("role", role.name, existing.note, role);
    // Created and marked in one transaction: a killed run leaves a marked role or none.
    await configureRole(client, role, existing === undefined);
  });
}

/**
 * An existing role or database is this tenant's only when its marker names
 * this tenant of this stack (or, with adoptLegacy, it has none or an older
 * program's); for anything else, what was found and what to do.
 */
export function ownershipProblem(kind: "role" | "database", name: string, note: string | null, owner: TenantOwner, detail?: string): string | undefined {
  const marker = parseTenantMarker(note);
  if (marker !== undefined && "tenantId" in marker && marker.tenantId === owner.tenantId && marker.stack === owner.stack) return undefined;
  if (owner.adoptLegacy === true && (marker === undefined ? note === null : "role" in marker && marker.role === name)) return undefined;
  const found =
    marker === undefined
      ? note === null
        ? "it carries no tenant marker"
        : `its comment is ${JSON.stringify(note.slice(0, 120))}, not a tenant marker`
      : "tenantId" in marker
        ? `its marker says it is tenant ${marker.tenantId} of stack ${marker.stack}`
        : `it carries an older program's marker that names no tenant (role ${marker.role})`;
  return (
    `${kind} "${name}" already exists and is not tenant ${owner.tenantId}'s of stack ${owner.stack}: ${found}${detail ? `, ${detail}` : ""}. Nothing was adopted; ` +
    `if it belongs to another tenant, give this one another tenantId (remove the line; npm run tenants -- assign-ids writes a new one)`
  );
}

/** ownershipProblem, thrown. */
export function refuseUnlessOwn(kind: "role" | "database", name: string, note: string | null, owner: TenantOwner, detail?: string): void {
  const problem = ownershipProblem(kind, name, note, owner, detail);
  if (problem !== undefined) throw new Error(problem);
}

export function updateRole(adminUrl: string, role: RoleState): Promise<void> {
  return asAdmin(adminUrl, (client) => configureRole(client, role));
}

/** Sets everything the state says about the role, and undoes what it does not say (settings, memberships). */
async function configureRole(client: Client, role: RoleState, create = false): Promise<void> {
  const name = escapeIdentifier(role.name);
  const limit = role.connectionLimit === undefined ? "" : ` CONNECTION LIMIT ${integerLiteral(role.connectionLimit, "connectionLimit")}`;
  await withTransaction(client, async () => {
    if (create) await client.query(`CREATE ROLE ${name} NOLOGIN ${NO_POWERS} ${passwordClause(role.password)}`);
    await client.query(`ALTER ROLE ${name} ${role.login ? "LOGIN" : "NOLOGIN"} ${NO_POWERS}${limit} ${passwordClause(role.password)}`);
    await client.query(`COMMENT ON ROLE ${name} IS ${escapeLiteral(tenantMarker(role.tenantId, role.stack))}`);
    // Role defaults: whatever the tenant (or anyone) set, per database too, goes; the plan's come back.
    const perDatabase = await client.query<{ datname: string }>(
      `SELECT d.datname FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
       WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
      [role.name],
    );
    for (const { datname } of perDatabase.rows) await client.query(`ALTER ROLE ${name} IN DATABASE ${escapeIdentifier(datname)} RESET ALL`);
    await client.query(`ALTER ROLE ${name} RESET ALL`);
    if (role.statementTimeoutMs !== undefined) {
      await client.query(`ALTER ROLE ${name} SET statement_timeout = ${escapeLiteral(integerLiteral(role.statementTimeoutMs, "statementTimeoutMs"))}`);
    }
    if (role.idleInTransactionTimeoutMs !== undefined) {
      const value = escapeLiteral(integerLiteral(role.idleInTransactionTimeoutMs, "idleInTransactionTimeoutMs"));
      await client.query(`ALTER ROLE ${name} SET idle_in_transaction_session_timeout = ${value}`);
    }
    if (role.tempFileLimitMb !== undefined) {
      await client.query(`ALTER ROLE ${name} SET temp_file_limit = ${escapeLiteral(tempFileLimitValue(role.tempFileLimitMb))}`);
    }
    const memberships = await client.query<{ rolname: string }>(
      `SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
       WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
      [role.name],
    );
    for (const { rolname } of memberships.rows) await client.query(`REVOKE ${escapeIdentifier(rolname)} FROM ${name}`);
  });
}

/** Role defaults the @pulumi/postgresql Role has no property for, set beside it (database-backend.ts). */
export const ROLE_PARAMETERS = ["temp_file_limit"] as const;
export type RoleParameter = (typeof ROLE_PARAMETERS)[number];

function checkedParameter(parameter: string): RoleParameter {
  if (!(ROLE_PARAMETERS as readonly string[]).includes(parameter)) throw new Error(`role parameter "${parameter}" is not one of ${ROLE_PARAMETERS.join(", ")}`);
  return parameter as RoleParameter;
}

/** ALTER ROLE ... SET one parameter (role-wide); the role's other settings stay. */
export function setRoleParameter(adminUrl: string, role: string, parameter: string, value: string): Promise<void> {
  return asAdmin(adminUrl, async (client) => {
    await client.query(`ALTER ROLE ${escapeIdentifier(role)} SET ${checkedParameter(parameter)} = ${escapeLiteral(value)}`);
  });
}

/** The role-wide default of one parameter as pg_db_role_setting holds it; null when unset; undefined when the role is gone. */
export function readRoleParameter(adminUrl: string, role: string, parameter: string): Promise<string | null | undefined> {
  return asAdmin(adminUrl, async (client) => {
    const { rows } = await client.query<{ found: boolean; value: string | null }>(
      `SELECT r.oid IS NOT NULL AS found,
              (SELECT substr(c, length($2) + 2) FROM pg_db_role_setting s, unnest(s.setconfig) AS c
               WHERE s.setrole = r.oid AND s.setdatabase = 0 AND c LIKE $2 || '=%') AS value
       FROM (SELECT 1) one LEFT JOIN pg_roles r ON r.rolname = $1`,
      [role, checkedParameter(parameter)],
    );
    return rows[0]!.found ? rows[0]!.value : undefined;
  });
}

export function dropRole(adminUrl: string, name: string): Promise<void> {
  return asAdmin(adminUrl, async (client) => {
    await client.query(`DROP ROLE IF EXISTS ${escapeIdentifier(name)}`);
  });
}

const POWER_COLUMNS = ["rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication", "rolbypassrls", "rolinherit"] as const;

/** The role as PostgreSQL has it, or undefined when it is gone. */
export function readRole(adminUrl: string, role: RoleState): Promise<RoleReading | undefined> {
  return asAdmin(adminUrl, async (client) => {
    const found = await client.query(
      `SELECT oid, rolcanlogin, rolconnlimit, ${POWER_COLUMNS.join(", ")},
              ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid ORDER BY 1) AS member_of,
              ARRAY(SELECT CASE WHEN s.setdatabase = 0 THEN c ELSE d.datname || ':' || c END
                    FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) AS c
                    WHERE s.setrole = r.oid ORDER BY 1) AS settings
       FROM pg_roles r WHERE rolname = $1`,
      [role.name],
    );
    const row = found.rows[0];
    if (row === undefined) return undefined;
    const powers = [
      ...POWER_COLUMNS.filter((column) => row[column] === true).map((column) => column.slice(3)),
      ...(row.member_of as string[]).map((group) => `member of ${group}`),
    ];
    return {
      login: row.rolcanlogin as boolean,
      connectionLimit: row.rolconnlimit as number,
      settings: (row.settings as string[]).sort(),
      powers,
      passwordMatches: await passwordMatches(client, adminUrl, role),
    };
  });
}

/**
 * Whether PostgreSQL still holds the state's password for the role: its
 * stored SCRAM verifier recomputed with the stored salt (the admin reads
 * pg_authid when it is a superuser), else a real login as the role.
 */
async function passwordMatches(client: Client, adminUrl: string, role: RoleState): Promise<boolean | undefined> {
  try {
    const { rows } = await client.query<{ rolpassword: string | null }>("SELECT rolpassword FROM pg_authid WHERE rolname = $1", [role.name]);
    const stored = rows[0]?.rolpassword ?? null;
    const match = stored === null ? null : /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored);
    if (!match) return false; // no password, or md5 / plain: not what this program sets
    return scramSha256Verifier(role.password, Buffer.from(match[2]!, "base64"), Number(match[1])) === stored;
  } catch (error) {
    if ((error as { code?: string }).code !== "42501") throw error; // not "permission denied": a real failure
  }
  if (!role.login) return undefined; // a role that may not log in cannot be tried
  const url = new URL(adminUrl);
  const probe = new Client({
    host: url.hostname,
    port: Number(url.port || 5432),
    user: role.name,
    password: role.password,
    database: role.name,
    ssl: url.searchParams.get("sslmode") === "disable" ? false : { rejectUnauthorized: false },
    connectionTimeoutMillis: 15_000,
  });
  probe.on("error", () => undefined);
  try {
    await probe.connect();
    await probe.end();
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "28P01" ? false : undefined;
  }
}

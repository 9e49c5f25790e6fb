/**
 * The SQL behind the builtin provider's Database, PUBLIC revoke and server
 * hardening, run as the server's admin.
 *
 * Ownership (README "Security"): a tenant's database is owned by the admin,
 * so the tenant cannot ALTER, DROP or GRANT on it; the tenant's role has
 * CONNECT and TEMPORARY on it and owns its schema `public`, so the tables the
 * seed (connected as the tenant) creates are the tenant's. PUBLIC has nothing.
 * A database of the older design (owned by the tenant's role) moves to this
 * one on the next update, data kept.
 */
import { escapeIdentifier, escapeLiteral, type Client } from "pg";
import { withTransaction } from "../../lib/transaction";
import { asAdmin } from "./admin-session";
import { databaseNamePattern, parseTenantMarker, tenantMarker } from "../naming";
import { storageLockRole } from "../storage-lock";
import { refuseUnlessOwn, type TenantOwner } from "./operations";

export interface DatabaseSpec extends TenantOwner {
  name: string;
  /** The tenant's role: CONNECT, TEMPORARY and owner of schema public. */
  tenantRole: string;
  /** CONNECTION LIMIT of the database (the tenant cannot lift it); -1 or absent: none. */
  connectionLimit?: number;
}

/** The database as PostgreSQL has it (what `pulumi refresh` compares). */
export interface DatabaseReading {
  oid: string;
  owner: string;
  /** The admin role the provider connects as (the owner it expects). */
  adminRole: string;
  allowConnections: boolean;
  isTemplate: boolean;
  connectionLimit: number;
  /** `grantee:PRIVILEGE` for every grantee but the owner (`PUBLIC:CONNECT` ...), sorted. */
  grants: string[];
  /** ALTER DATABASE ... SET values, `key=value`, sorted. */
  settings: string[];
  /** Owner of schema public; null when there is none or the database takes no connections. */
  publicSchemaOwner: string | null;
  /**
   * True while the tenant's writes are stopped (past its plan's storage hard limit, infra/storage-lock.ts):
   * then its schema belongs to the holding role and it has no TEMPORARY, as the usage sampler set them.
   */
  writesStopped?: boolean;
}

/** What the grants of a healthy tenant database are (no TEMPORARY while its writes are stopped). */
export function expectedGrants(tenantRole: string, writesStopped = false): string[] {
  return writesStopped ? [`${tenantRole}:CONNECT`] : [`${tenantRole}:CONNECT`, `${tenantRole}:TEMPORARY`];
}

/** Who owns schema public of a healthy tenant database: the tenant, or the holding role while its writes are stopped. */
export function expectedSchemaOwner(tenantRole: string, writesStopped = false): string {
  return writesStopped ? storageLockRole(tenantRole) : tenantRole;
}

/**
 * Creates the database (owned by the admin), or adopts it, data and all, when
 * it already exists and is the tenant's: its marker names this tenant of this
 * stack (infra/naming.ts tenantMarker), or, for a tenant this stack deployed
 * itself (adoptLegacy), it carries an older program's marker or is owned by
 * the tenant's role (the older design). An empty, unmarked database of the
 * admin's is one a run killed between CREATE DATABASE and COMMENT made.
 * Anything else of that name is not the tenant's: refuse, saying what it is.
 */
export async function createDatabase(adminUrl: string, spec: DatabaseSpec): Promise<DatabaseReading> {
  const marker = tenantMarker(spec.tenantId, spec.stack);
  const unmarked = await asAdmin(adminUrl, async (client) => {
    const { rows } = await client.query<{ owner: string; note: string | null; admin: string }>(
      `SELECT pg_get_userbyid(datdba) AS owner, shobj_description(oid, 'pg_database') AS note, current_user AS admin
       FROM pg_database WHERE datname = $1`,
      [spec.name],
    );
    const existing = rows[0];
    if (existing === undefined) {
      await client.query(`CREATE DATABASE ${escapeIdentifier(spec.name)} TEMPLATE template0 ENCODING 'UTF8'`);
      // Marked at once, so a run killed right here leaves a database the next one adopts.
      await client.query(`COMMENT ON DATABASE ${escapeIdentifier(spec.name)} IS ${escapeLiteral(marker)}`);
      return undefined;
    }
    if (existing.note === marker) return undefined;
    const legacy = parseTenantMarker(existing.note);
    const olderDesign = existing.owner === spec.tenantRole || (legacy !== undefined && "role" in legacy && legacy.role === spec.tenantRole);
    if (spec.adoptLegacy === true && olderDesign) return undefined;
    // The admin's, but unmarked: a run killed between CREATE DATABASE and COMMENT made it, if it is still empty.
    if (existing.owner === existing.admin && existing.note === null) return existing.owner;
    return refuseUnlessOwn("database", spec.name, existing.note, { ...spec, adoptLegacy: false }, `owned by "${existing.owner}"`);
  });
  if (unmarked !== undefined && !(await isEmptyDatabase(adminUrl, spec.name))) {
    refuseUnlessOwn("database", spec.name, null, { ...spec, adoptLegacy: false }, "it holds objects, so no killed run of this program made it");
  }
  return configureDatabase(adminUrl, spec);
}

/** No table, view, sequence or function outside PostgreSQL's own schemas: nothing anyone could lose by adopting it. */
async function isEmptyDatabase(adminUrl: string, name: string): Promise<boolean> {
  return asAdmin(
    adminUrl,
    async (client) => {
      const { rows } = await client.query(
        `SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%')
              + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')) AS objects`,
      );
      return Number(rows[0]?.objects) === 0;
    },
    name,
  );
}

/** Sets ownership, options, grants and schema owner as the design says, whatever they were; returns the result. */
export async function configureDatabase(adminUrl: string, spec: DatabaseSpec): Promise<DatabaseReading> {
  const db = escapeIdentifier(spec.name);
  const tenant = escapeIdentifier(spec.tenantRole);
  const limit = spec.connectionLimit ?? -1;
  if (!Number.isInteger(limit)) throw new Error(`connectionLimit must be an integer, got ${String(limit)}`);
  // Stopped writes (storage hard limit) stay stopped: the usage sampler lifts them, never an update.
  let stopped = false;
  await asAdmin(adminUrl, (client) =>
    withTransaction(client, async () => {
      stopped = (await client.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [storageLockRole(spec.tenantRole)])).rows.length > 0;
      await client.query(`ALTER DATABASE ${db} OWNER TO CURRENT_USER`);
      await client.query(`COMMENT ON DATABASE ${db} IS ${escapeLiteral(tenantMarker(spec.tenantId, spec.stack))}`);
      await client.query(`ALTER DATABASE ${db} WITH ALLOW_CONNECTIONS true IS_TEMPLATE false CONNECTION LIMIT ${limit}`);
      await client.query(`ALTER DATABASE ${db} RESET ALL`);
      await client.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC CASCADE`);
      for (const grantee of await otherGrantees(client, spec.name)) {
        await client.query(`REVOKE ALL ON DATABASE ${db} FROM ${escapeIdentifier(grantee)} CASCADE`);
      }
      await client.query(`GRANT ${stopped ? "CONNECT" : "CONNECT, TEMPORARY"} ON DATABASE ${db} TO ${tenant}`);
    }),
  );
  const schemaOwner = escapeIdentifier(expectedSchemaOwner(spec.tenantRole, stopped));
  await asAdmin(
    adminUrl,
    async (client) => {
      await client.query(`CREATE SCHEMA IF NOT EXISTS public AUTHORIZATION ${schemaOwner}`);
      await client.query(`ALTER SCHEMA public OWNER TO ${schemaOwner}`);
    },
    spec.name,
  );
  const reading = await readDatabase(adminUrl, spec.name, spec.tenantRole);
  if (reading === undefined) throw new Error(`database "${spec.name}" disappeared while it was being configured; run pulumi up again`);
  return reading;
}

/** Roles other than the owner with any privilege on the database. */
async function otherGrantees(client: Client, name: string): Promise<string[]> {
  const { rows } = await client.query<{ grantee: string }>(
    `SELECT DISTINCT pg_get_userbyid(a.grantee) AS grantee
     FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
     WHERE d.datname = $1 AND a.grantee <> 0 AND a.grantee <> d.datdba`,
    [name],
  );
  return rows.map((row) => row.grantee);
}

/** The database as it is now, or undefined when it does not exist. */
export async function readDatabase(adminUrl: string, name: string, tenantRole?: string): Promise<DatabaseReading | undefined> {
  const reading = await asAdmin(adminUrl, async (client) => {
    const { rows } = await client.query(
      `SELECT d.oid::text AS oid, pg_get_userbyid(d.datdba) AS owner, current_user AS admin, d.datallowconn, d.datistemplate, d.datconnlimit,
              ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END || ':' || a.privilege_type
                    FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a WHERE a.grantee <> d.datdba ORDER BY 1) AS grants,
              ARRAY(SELECT c FROM pg_db_role_setting s, unnest(s.setconfig) AS c
                    WHERE s.setdatabase = d.oid AND s.setrole = 0 ORDER BY 1) AS settings,
              EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2) AS writes_stopped
       FROM pg_database d WHERE d.datname = $1`,
      [name, tenantRole === undefined ? null : storageLockRole(tenantRole)],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    return {
      oid: row.oid as string,
      owner: row.owner as string,
      adminRole: row.admin as string,
      allowConnections: row.datallowconn as boolean,
      isTemplate: row.datistemplate as boolean,
      connectionLimit: row.datconnlimit as number,
      grants: row.grants as string[],
      settings: row.settings as string[],
      publicSchemaOwner: null as string | null,
      writesStopped: row.writes_stopped as boolean,
    };
  });
  if (reading?.allowConnections) {
    reading.publicSchemaOwner = await asAdmin(
      adminUrl,
      async (client) =>
        (await client.query<{ owner: string }>("SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'public'")).rows[0]?.owner ?? null,
      name,
    );
  }
  return reading;
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await asAdmin(adminUrl, async (client) => {
    // Only reached when purging is allowed; FORCE ends the tenant's sessions.
    await client.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(name)} WITH (FORCE)`);
  });
}

/** Everything PUBLIC has on the database (CONNECT, TEMPORARY) goes; the owner keeps its rights. */
export async function revokePublic(adminUrl: string, database: string): Promise<void> {
  await asAdmin(adminUrl, async (client) => {
    await client.query(`REVOKE ALL ON DATABASE ${escapeIdentifier(database)} FROM PUBLIC CASCADE`);
  });
}

/** What PUBLIC holds on the database (`CONNECT`, `TEMPORARY`, `CREATE`), sorted; empty when it is gone. */
export function publicPrivileges(adminUrl: string, database: string): Promise<string[]> {
  return asAdmin(adminUrl, async (client) => {
    const { rows } = await client.query<{ privilege: string }>(
      `SELECT a.privilege_type AS privilege FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
       WHERE d.datname = $1 AND a.grantee = 0 ORDER BY 1`,
      [database],
    );
    return rows.map((row) => row.privilege);
  });
}

/**
 * Databases on the server, other than the tenants' (`<appName>_<8 hex>`) and
 * template0, where PUBLIC may CONNECT or create TEMPORARY tables, limited to
 * those the admin can change (superuser, or owner).
 */
export function openDatabases(adminUrl: string, appName: string): Promise<string[]> {
  return asAdmin(adminUrl, async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      `SELECT d.datname FROM pg_database d
       WHERE d.datname <> 'template0' AND d.datname !~ $1
         AND EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                     WHERE a.grantee = 0 AND a.privilege_type IN ('CONNECT', 'TEMPORARY'))
         AND ((SELECT rolsuper FROM pg_roles WHERE rolname = current_user) OR pg_has_role(d.datdba, 'MEMBER'))
       ORDER BY 1`,
      [databaseNamePattern(appName)],
    );
    return rows.map((row) => row.datname);
  });
}

/** Takes CONNECT and TEMPORARY from PUBLIC on every open non-tenant database; returns their names. */
export async function hardenServer(adminUrl: string, appName: string): Promise<string[]> {
  const open = await openDatabases(adminUrl, appName);
  await asAdmin(adminUrl, async (client) => {
    for (const name of open) await client.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${escapeIdentifier(name)} FROM PUBLIC`);
  });
  return open;
}

/** COMMENT ON the role and the database: the tenant marker (postgresql provider; the builtin one marks in its own create). */
export async function markTenant(adminUrl: string, target: { role: string; database: string; tenantId: string; stack: string }): Promise<void> {
  const marker = escapeLiteral(tenantMarker(target.tenantId, target.stack));
  await asAdmin(adminUrl, (client) =>
    withTransaction(client, async () => {
      await client.query(`COMMENT ON ROLE ${escapeIdentifier(target.role)} IS ${marker}`);
      await client.query(`COMMENT ON DATABASE ${escapeIdentifier(target.database)} IS ${marker}`);
    }),
  );
}

/** Whether the role and the database both carry the tenant's marker now. */
export async function isMarked(adminUrl: string, target: { role: string; database: string; tenantId: string; stack: string }): Promise<boolean> {
  const notes = await readMarkers(adminUrl, target.role, target.database);
  const marker = tenantMarker(target.tenantId, target.stack);
  return notes.role === marker && notes.database === marker;
}

/** The comments (markers) on a role and a database of those names; undefined for one that does not exist. */
export async function readMarkers(
  adminUrl: string,
  role: string,
  database: string,
): Promise<{ role?: string | null; database?: string | null; databaseOwner?: string; admin: string }> {
  return asAdmin(adminUrl, async (client) => {
    const { rows } = await client.query<{
      role_exists: boolean;
      role_note: string | null;
      db_exists: boolean;
      db_note: string | null;
      db_owner: string | null;
      admin: string;
    }>(
      `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS role_exists,
              (SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1) AS role_note,
              EXISTS (SELECT 1 FROM pg_database WHERE datname = $2) AS db_exists,
              (SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $2) AS db_note,
              (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $2) AS db_owner,
              current_user AS admin`,
      [role, database],
    );
    const row = rows[0]!;
    return {
      ...(row.role_exists ? { role: row.role_note } : {}),
      ...(row.db_exists ? { database: row.db_note, databaseOwner: row.db_owner ?? undefined } : {}),
      admin: row.admin,
    };
  });
}

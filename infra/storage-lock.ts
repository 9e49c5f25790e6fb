/**
 * Storage hard limit: stopping and resuming a tenant's writes, as the
 * server's admin, where the tenant cannot undo it (README "Security").
 *
 * Why this mechanism. The tenant owns its tables and its schema `public`
 * (the seed connects as the tenant), and an owner can always grant itself
 * back whatever is revoked from it; `default_transaction_read_only` (role or
 * database default) is a user setting any session turns off (`SET ... = off`,
 * `BEGIN READ WRITE`). So the admin takes ownership away instead: a
 * per-tenant holding role (`<role>_storage_lock`, NOLOGIN, no powers, of which
 * the tenant is not a member) is given everything the tenant owns in its
 * database (`REASSIGN OWNED`), and the tenant gets back only what cannot grow
 * the database: SELECT, TRUNCATE and DELETE (DELETE only on tables without
 * rules, whose actions run as the table's owner), USAGE on its schemas and
 * sequences. Without ownership it cannot GRANT to itself, ALTER ... OWNER,
 * CREATE in the schema, or write; and on top:
 * - its sessions are ended first (they may hold locks, or be mid-INSERT);
 * - TEMPORARY on the database is revoked (temporary tables are not bounded by
 *   temp_file_limit);
 * - SECURITY DEFINER functions it owned would run as the holding role (the
 *   new owner): they become SECURITY INVOKER while writes are stopped, and
 *   are recorded to be restored;
 * - grants to PUBLIC on its objects (which the tenant could have made
 *   beforehand) are revoked, and so is EXECUTE on the large-object writers.
 * Lifting it is the exact reverse (`REASSIGN OWNED` back, the recorded
 * functions SECURITY DEFINER again, TEMPORARY back), then the holding role is
 * dropped: nothing of the tenant's data is touched either way.
 *
 * The holding role's existence is the state: the builtin provider reads it
 * (operations.ts), so a `pulumi up` keeps it as it is; its comment says when
 * and why (JSON, see LockRecord). A non-superuser admin (managed services)
 * needs CREATEROLE, membership of the tenant roles (REASSIGN OWNED needs the
 * privileges of both roles) and pg_signal_backend.
 */
import { escapeIdentifier, escapeLiteral, type Client } from "pg";
import { withTransaction } from "../lib/transaction";
import { asAdmin } from "./builtin-postgres/admin-session";

/** The holding role of a tenant's role while its writes are stopped. */
export function storageLockRole(tenantRole: string): string {
  return `${tenantRole}_storage_lock`;
}

export interface StorageLockTarget {
  database: string;
  /** The tenant's role (its database's only guest). */
  role: string;
}

/** What the holding role's comment records. */
export interface LockRecord {
  drivergigspro: "storage-lock";
  tenantRole: string;
  since: string;
  reason: string;
  /** SECURITY DEFINER functions made SECURITY INVOKER, by oid: made SECURITY DEFINER again on resume. */
  definers: number[];
}

/** Large-object functions that create or write one (EXECUTE is PUBLIC's by default; no other privilege is checked). */
const LARGE_OBJECT_WRITERS = ["lo_create(oid)", "lo_creat(integer)", "lo_from_bytea(oid, bytea)", "lowrite(integer, bytea)", "lo_put(oid, bigint, bytea)"];

/** How long the stop waits for a lock the tenant's sessions still hold (after they were ended). */
const STOP_LOCK_TIMEOUT_MS = 5_000;
const STOP_ATTEMPTS = 3;

/** Ends the tenant's sessions in its database and waits (up to 5 s each) for them to be gone. */
async function endSessions(client: Client, target: StorageLockTarget): Promise<void> {
  await client.query(
    `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
     WHERE usename = $1 AND datname = $2 AND pid <> pg_backend_pid()`,
    [target.role, target.database],
  );
}

/** Whether the holding role exists (writes stopped), read with any admin session on the server. */
export async function writesStopped(client: Pick<Client, "query">, target: Pick<StorageLockTarget, "role">): Promise<boolean> {
  return (await client.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [storageLockRole(target.role)])).rows.length > 0;
}

/**
 * Stops the tenant's writes (idempotent: run again, it takes whatever the
 * tenant got back since, e.g. TEMPORARY re-granted by a provider's refresh).
 */
export async function stopWrites(adminUrl: string, target: StorageLockTarget, reason: string): Promise<void> {
  await asAdmin(
    adminUrl,
    async (client) => {
      for (let attempt = 1; ; attempt += 1) {
        await endSessions(client, target);
        try {
          await withTransaction(client, () => applyStop(client, target, reason));
          return;
        } catch (error) {
          // 55P03: a lock the tenant took again between the end of its sessions and ours.
          if ((error as { code?: string }).code !== "55P03" || attempt >= STOP_ATTEMPTS) throw error;
        }
      }
    },
    target.database,
  );
}

async function applyStop(client: Client, target: StorageLockTarget, reason: string): Promise<void> {
  const tenant = escapeIdentifier(target.role);
  const holderName = storageLockRole(target.role);
  const holder = escapeIdentifier(holderName);
  await client.query(`SET LOCAL lock_timeout = ${STOP_LOCK_TIMEOUT_MS}`);
  const existing = await readRecord(client, holderName);
  if (existing === undefined) {
    await client.query(`CREATE ROLE ${holder} NOLOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`);
  }
  await client.query(`REASSIGN OWNED BY ${tenant} TO ${holder}`);
  // SECURITY DEFINER functions now run as the holder, the owner of everything: run them as the caller.
  const { rows: definers } = await client.query<{ oid: number; name: string }>(
    "SELECT oid::int AS oid, oid::regprocedure::text AS name FROM pg_proc WHERE proowner = (SELECT oid FROM pg_roles WHERE rolname = $1) AND prosecdef",
    [holderName],
  );
  for (const { name } of definers) await client.query(`ALTER FUNCTION ${name} SECURITY INVOKER`);
  const record: LockRecord = {
    drivergigspro: "storage-lock",
    tenantRole: target.role,
    since: existing?.since ?? new Date().toISOString(),
    reason: existing?.reason ?? reason,
    definers: [...new Set([...(existing?.definers ?? []), ...definers.map((row) => row.oid)])],
  };
  await client.query(`COMMENT ON ROLE ${holder} IS ${escapeLiteral(JSON.stringify(record))}`);
  await client.query(`REVOKE TEMPORARY ON DATABASE ${escapeIdentifier(target.database)} FROM ${tenant}`);
  await client.query(`REVOKE EXECUTE ON FUNCTION ${LARGE_OBJECT_WRITERS.map((name) => `pg_catalog.${name}`).join(", ")} FROM PUBLIC`);
  await grantReadAndDelete(client, holderName, tenant);
}

/** What the tenant keeps on the objects the holder now owns; PUBLIC's grants on them go. */
async function grantReadAndDelete(client: Client, holderName: string, tenant: string): Promise<void> {
  const owner = "(SELECT oid FROM pg_roles WHERE rolname = $1)";
  const schemas = await client.query<{ name: string }>(`SELECT quote_ident(nspname) AS name FROM pg_namespace WHERE nspowner = ${owner}`, [holderName]);
  for (const { name } of schemas.rows) {
    await client.query(`REVOKE CREATE ON SCHEMA ${name} FROM PUBLIC`);
    await client.query(`GRANT USAGE ON SCHEMA ${name} TO ${tenant}`);
  }
  const relations = await client.query<{ name: string; kind: string; rules: boolean }>(
    `SELECT oid::regclass::text AS name, relkind AS kind, relhasrules AS rules FROM pg_class
     WHERE relowner = ${owner} AND relkind IN ('r', 'p', 'v', 'm', 'f', 'S')`,
    [holderName],
  );
  for (const { name, kind, rules } of relations.rows) {
    await client.query(`REVOKE ALL ON ${kind === "S" ? "SEQUENCE" : "TABLE"} ${name} FROM PUBLIC`);
    const privileges = kind === "S" ? "SELECT, USAGE" : kind === "r" || kind === "p" ? (rules ? "SELECT, TRUNCATE" : "SELECT, DELETE, TRUNCATE") : "SELECT";
    await client.query(`GRANT ${privileges} ON ${kind === "S" ? "SEQUENCE" : "TABLE"} ${name} TO ${tenant}`);
  }
  const largeObjects = await client.query<{ oid: string }>(`SELECT oid::text FROM pg_largeobject_metadata WHERE lomowner = ${owner}`, [holderName]);
  for (const { oid } of largeObjects.rows) {
    await client.query(`REVOKE ALL ON LARGE OBJECT ${Number(oid)} FROM PUBLIC`);
    await client.query(`GRANT SELECT ON LARGE OBJECT ${Number(oid)} TO ${tenant}`);
  }
}

async function readRecord(client: Pick<Client, "query">, holderName: string): Promise<LockRecord | undefined> {
  const { rows } = await client.query<{ note: string | null }>("SELECT shobj_description(oid, 'pg_authid') AS note FROM pg_roles WHERE rolname = $1", [
    holderName,
  ]);
  if (rows.length === 0) return undefined;
  try {
    const record = JSON.parse(rows[0]!.note ?? "{}") as Partial<LockRecord>;
    return { drivergigspro: "storage-lock", tenantRole: "", since: "", reason: "", ...record, definers: record.definers ?? [] };
  } catch {
    return { drivergigspro: "storage-lock", tenantRole: "", since: "", reason: "", definers: [] };
  }
}

/** When and why the tenant's writes were stopped; undefined when they are not. */
export function readStorageLock(adminUrl: string, target: StorageLockTarget): Promise<LockRecord | undefined> {
  return asAdmin(adminUrl, (client) => readRecord(client, storageLockRole(target.role)));
}

/** Gives the tenant its writes back: the exact reverse of stopWrites; does nothing when they are not stopped. */
export async function resumeWrites(adminUrl: string, target: StorageLockTarget): Promise<void> {
  const holderName = storageLockRole(target.role);
  const holder = escapeIdentifier(holderName);
  const tenant = escapeIdentifier(target.role);
  await asAdmin(
    adminUrl,
    (client) =>
      withTransaction(client, async () => {
        const record = await readRecord(client, holderName);
        if (record === undefined) return;
        await client.query(`REASSIGN OWNED BY ${holder} TO ${tenant}`);
        const { rows } = await client.query<{ name: string }>(
          "SELECT oid::regprocedure::text AS name FROM pg_proc WHERE oid = ANY($1::oid[]) AND proowner = (SELECT oid FROM pg_roles WHERE rolname = $2)",
          [record.definers, target.role],
        );
        for (const { name } of rows) await client.query(`ALTER FUNCTION ${name} SECURITY DEFINER`);
        await client.query(`GRANT EXECUTE ON FUNCTION ${LARGE_OBJECT_WRITERS.map((name) => `pg_catalog.${name}`).join(", ")} TO PUBLIC`);
        await client.query(`GRANT TEMPORARY ON DATABASE ${escapeIdentifier(target.database)} TO ${tenant}`);
        await client.query(`DROP ROLE ${holder}`);
      }),
    target.database,
  );
}

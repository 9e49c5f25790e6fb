/**
 * Attack probes: what a hostile tenant would try with its own credentials,
 * run as each tenant. PostgreSQL's refusal is the only thing that passes.
 *
 * 1. "cannot connect to non-tenant databases": a real login into every other
 *    database on its server that accepts connections and is not one of the
 *    fleet's tenant databases (postgres, template1, the state and control
 *    databases, anything else listed in pg_database). Other tenants' databases
 *    are covered by "cannot connect to other tenants" and "no CONNECT on other
 *    tenants" (probes.ts).
 * 2. "cannot take control-plane locks": in every database probe 1 got into, it
 *    tries the onboarding service's advisory locks (onboarding/db.ts); it
 *    passes when no such database was reached.
 * 3. "connection limit enforced": the role's own limit (pg_roles.rolconnlimit,
 *    readable by the tenant) is held open and one more connection must be
 *    refused for the role or its database. No limit (-1) is a failure: one
 *    tenant could take every connection of the server.
 * 4. "temporary files bounded": its sessions get a temp_file_limit (-1, none,
 *    fails: one sort could fill the server's disk), which it can neither SET
 *    nor change or reset as its role default (a superuser-only setting), and
 *    a query that spills past it (work_mem at its minimum, an endless
 *    generate_series materialised to disk) is refused with SQLSTATE 53400 in
 *    its own session; PostgreSQL removes the query's files with it. Limits over
 *    256 MB are not exercised (the probe would write that much per tenant).
 *
 * The tenant's limits (connection limit, statement_timeout,
 * idle_in_transaction_session_timeout, temp_file_limit, as its own sessions
 * get them) are read on the way and reported.
 */
import { Client, type ClientConfig } from "pg";
import { LOCK_CLASS, SIGNUP_LOCK_CLASS } from "../onboarding/db";
import { errorMessage } from "../lib/errors";

/** The attack probes' names, in the order they run. */
export const ATTACK_PROBES = [
  "cannot connect to non-tenant databases",
  "cannot take control-plane locks",
  "connection limit enforced",
  "temporary files bounded",
] as const;

/** temp_file_limit is exercised (written up to) only up to this many MB. */
export const TEMP_FILE_PROBE_CAP_MB = 256;

/** At most this many connections are opened to exercise one tenant's limit. */
const CONNECTION_PROBE_CAP = 100;

export interface TenantLimits {
  tenantId: string;
  username: string;
  /** pg_roles.rolconnlimit; null: none (-1). */
  connectionLimit: number | null;
  /** SHOW as the tenant in its own database; "0" means none. */
  statementTimeout: string;
  idleInTransactionSessionTimeout: string;
  /** SHOW temp_file_limit as the tenant ("-1": none). */
  tempFileLimit: string;
}

/** What the tenant can see about itself and its server, from one session in its own database. */
export interface TenantView {
  connectionLimit: number;
  statementTimeout: string;
  idleInTransactionSessionTimeout: string;
  tempFileLimit: string;
  /** temp_file_limit in kB as the server counts it; -1: none. */
  tempFileLimitKb: number;
  /** Connections the server keeps for superusers past this many. */
  usableConnections: number;
  /** Every other database on the server that accepts connections. */
  otherDatabases: string[];
}

export type RecordResult = (probe: string, ok: boolean, detail: string) => void;
type Connect = (database?: string) => ClientConfig;

export async function readTenantView(config: ClientConfig): Promise<TenantView> {
  const client = new Client(config);
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user) AS connection_limit,
              current_setting('statement_timeout') AS statement_timeout,
              current_setting('idle_in_transaction_session_timeout') AS idle_timeout,
              current_setting('temp_file_limit') AS temp_file_limit,
              (SELECT setting::bigint FROM pg_settings WHERE name = 'temp_file_limit') AS temp_file_limit_kb,
              current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int AS usable,
              coalesce((SELECT array_agg(datname::text ORDER BY datname) FROM pg_database
                         WHERE datallowconn AND datname <> current_database()), '{}') AS others`,
    );
    const row = rows[0];
    return {
      connectionLimit: Number(row.connection_limit),
      statementTimeout: row.statement_timeout,
      idleInTransactionSessionTimeout: row.idle_timeout,
      tempFileLimit: row.temp_file_limit,
      tempFileLimitKb: Number(row.temp_file_limit_kb),
      usableConnections: Number(row.usable),
      otherDatabases: row.others,
    };
  } finally {
    await client.end();
  }
}

/** A database the tenant got into, and the control-plane lock classes it could take there. */
interface Reached {
  database: string;
  locks: number[];
}

/** A refusal from the server itself (permission, pg_hba, gone, closed); anything else is no answer. */
function refusedByServer(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? "";
  return code !== "" && !code.startsWith("53") && !code.startsWith("08") && !code.startsWith("57");
}

/** Tries every database, one login at a time; returns those it got into (with the locks it took there) and those it could not try. */
async function tryDatabases(connect: Connect, databases: readonly string[]): Promise<{ reached: Reached[]; untried: string[] }> {
  const reached: Reached[] = [];
  const untried: string[] = [];
  for (const database of databases) {
    const client = new Client(connect(database));
    client.on("error", () => undefined);
    try {
      await client.connect();
    } catch (error) {
      if (!refusedByServer(error)) untried.push(`${database} (${errorMessage(error)})`);
      continue;
    }
    try {
      reached.push({ database, locks: await takeControlLocks(client) });
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return { reached, untried };
}

/**
 * The onboarding service's lock classes the session could take (released
 * again at once). The second key is the tenant's own (hashtext of its role),
 * so probes of several tenants never contend with each other.
 */
async function takeControlLocks(client: Client): Promise<number[]> {
  const taken: number[] = [];
  for (const lockClass of [LOCK_CLASS, SIGNUP_LOCK_CLASS]) {
    const { rows } = await client.query("SELECT pg_try_advisory_lock($1, hashtext(current_user)) AS locked", [lockClass]);
    if (rows[0].locked) {
      taken.push(lockClass);
      await client.query("SELECT pg_advisory_unlock($1, hashtext(current_user))", [lockClass]);
    }
  }
  return taken;
}

const listed = (names: readonly string[], max = 8) => `${names.slice(0, max).join(", ")}${names.length > max ? `, and ${names.length - max} more` : ""}`;

/** Probes 1 and 2. `tenantDatabases`: the fleet's tenant databases on this server. */
export async function probeOtherDatabases(connect: Connect, view: TenantView, tenantDatabases: ReadonlySet<string>, record: RecordResult): Promise<void> {
  const targets = view.otherDatabases.filter((database) => !tenantDatabases.has(database));
  const { reached, untried } = await tryDatabases(connect, targets);
  const names = reached.map((entry) => entry.database);
  record(
    ATTACK_PROBES[0],
    reached.length === 0 && untried.length === 0,
    reached.length > 0
      ? `connected to ${listed(names)}`
      : untried.length > 0
        ? `could not try ${listed(untried, 3)}`
        : `refused by ${targets.length} of ${targets.length}${targets.length > 0 ? ` (${listed(targets)})` : ""}`,
  );
  const locks = reached.filter((entry) => entry.locks.length > 0);
  record(
    ATTACK_PROBES[1],
    locks.length === 0,
    locks.length > 0
      ? `took advisory lock class ${locks[0]!.locks.join(", ")} in ${listed(locks.map((entry) => entry.database))}`
      : names.length > 0
        ? `reached ${listed(names)} but took no lock of classes ${LOCK_CLASS}, ${SIGNUP_LOCK_CLASS}`
        : "no non-tenant database reached",
  );
}

/** Probe 3: hold the role's limit, then one more must be refused for the role or the database. */
export async function probeConnectionLimit(connect: Connect, view: TenantView, record: RecordResult): Promise<void> {
  const probe = ATTACK_PROBES[2];
  const limit = view.connectionLimit;
  if (limit < 0) return record(probe, false, "no limit set (rolconnlimit -1): this tenant can take every connection of the server");
  if (limit >= view.usableConnections) {
    return record(probe, false, `limit ${limit} is not below the server's ${view.usableConnections} usable connections: it protects no one`);
  }
  if (limit > CONNECTION_PROBE_CAP) return record(probe, true, `limit ${limit}, not exercised (over the probe's cap of ${CONNECTION_PROBE_CAP})`);
  const held: Client[] = [];
  try {
    for (;;) {
      const client = new Client(connect());
      client.on("error", () => undefined);
      try {
        await client.connect();
      } catch (error) {
        const message = errorMessage(error);
        const byLimit = (error as { code?: string }).code === "53300" && /too many connections for (role|database)/.test(message);
        return record(probe, byLimit, `limit ${limit}: held ${held.length}, the next was refused${byLimit ? "" : " but not by a tenant limit"} (${message})`);
      }
      held.push(client);
      if (held.length > limit) return record(probe, false, `limit ${limit}: held ${held.length} connections at once`);
    }
  } finally {
    await Promise.all(held.map((client) => client.end().catch(() => undefined)));
  }
}

export function limitsOf(tenant: { tenantId: string; username: string }, view: TenantView): TenantLimits {
  return {
    tenantId: tenant.tenantId,
    username: tenant.username,
    connectionLimit: view.connectionLimit < 0 ? null : view.connectionLimit,
    statementTimeout: view.statementTimeout,
    idleInTransactionSessionTimeout: view.idleInTransactionSessionTimeout,
    tempFileLimit: view.tempFileLimit,
  };
}

/** The SQLSTATE of a statement the tenant tries; "" when it was allowed. */
async function tryStatement(client: Client, sql: string): Promise<string> {
  try {
    await client.query(sql);
    return "";
  } catch (error) {
    return (error as { code?: string }).code ?? "?";
  }
}

/** Probe 4: a temp_file_limit the tenant cannot lift, and a query past it refused. */
export async function probeTempFileLimit(connect: Connect, view: TenantView, record: RecordResult): Promise<void> {
  const probe = ATTACK_PROBES[3];
  if (view.tempFileLimitKb < 0) return record(probe, false, "no temp_file_limit (-1): one sort or hash join of this tenant can fill the server's disk");
  const client = new Client(connect());
  client.on("error", () => undefined);
  await client.connect();
  try {
    // Each must be refused (42501): a superuser-only setting. A role default changed anyway is drift the next update repairs.
    const lifted = [];
    for (const sql of ["SET temp_file_limit = -1", "ALTER ROLE CURRENT_USER SET temp_file_limit = -1", "ALTER ROLE CURRENT_USER RESET temp_file_limit"]) {
      if ((await tryStatement(client, sql)) !== "42501") lifted.push(sql);
    }
    if (lifted.length > 0) return record(probe, false, `limit ${view.tempFileLimit}, but the tenant could run: ${lifted.join("; ")}`);
    if (view.tempFileLimitKb > TEMP_FILE_PROBE_CAP_MB * 1024) {
      return record(probe, true, `limit ${view.tempFileLimit}, cannot be lifted; not exercised (over the probe's cap of ${TEMP_FILE_PROBE_CAP_MB}MB)`);
    }
    // A FROM-clause set-returning function is materialised; past work_mem it spills to temporary files until the limit.
    await client.query("SET work_mem = '64kB'; SET statement_timeout = 0");
    const code = await tryStatement(client, "SELECT count(*) FROM generate_series(1, 1000000000000) g");
    record(
      probe,
      code === "53400",
      code === "53400"
        ? `limit ${view.tempFileLimit}, cannot be lifted; a query past it was refused in its own session (53400)`
        : `limit ${view.tempFileLimit}, but a query past it ended with ${code === "" ? "success" : code}, not 53400`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

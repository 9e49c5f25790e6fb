/**
 * Reads usage from the real servers, as each server's admin.
 *
 * Queries: per server, one admin connection and two statements for all of its
 * tenants at once (pg_database/pg_stat_database/pg_stat_activity in one, and
 * pg_stat_statements in the other, skipped when the extension is absent);
 * per tenant, one connection to its database and one statement (the row
 * counts of `users` and `sessions` and the last scan of any table live in
 * that database's own statistics, so they cannot be read from elsewhere).
 *
 * Row counts are the statistics system's live-tuple counts
 * (pg_stat_user_tables.n_live_tup), not count(*): they cost nothing however
 * big `sessions` grows, and scanning the tables would itself show up as the
 * tenant's activity. They follow committed inserts and deletes (a busy
 * backend reports them within about 10 s) and restart from the next
 * VACUUM/ANALYZE after a statistics reset.
 *
 * The reader's own session in a tenant database commits two transactions
 * (the login and the one statement); every figure records that as
 * `ownTransactions`, and billing subtracts it, so sampling never bills a
 * tenant. Our sessions carry the application_name below and are not counted
 * as connections. Needs PostgreSQL 16+ (pg_stat_user_tables.last_seq_scan).
 *
 * The admin must be able to connect to every tenant database (PUBLIC has no
 * CONNECT) and see every backend: a superuser can; on a managed service give
 * the admin role pg_read_all_stats and membership of the tenant roles.
 */
import { redactSecrets } from "../lib/redact";
import { Client } from "pg";
import { inPool } from "../lib/in-pool";
import { clientConfigFromUrl } from "../lib/postgres-url";
import { serverAddress, type AdminServer, type UsageTenant } from "./inputs";
import { storageLockRole } from "../infra/storage-lock";
import { errorMessage } from "../lib/errors";

const USAGE_APPLICATION_NAME = "drivergigspro-usage";
/** Statements whose mean execution time is at least this are "slow". */
export const DEFAULT_SLOW_STATEMENT_MS = 500;

/** What one read found for one tenant: the raw server figures. */
export interface TenantFigures {
  tenantId: string;
  database: string;
  server: string;
  sampledAt: Date;
  /** False when the server has no such database. */
  exists: boolean;
  sizeBytes: number;
  connections: number;
  /** The database's (or else its owner role's) connection limit; null when unlimited. */
  serverConnectionLimit: number | null;
  xactCommit: number;
  xactRollback: number;
  deadlocks: number;
  tempBytes: number;
  statsReset: Date | null;
  lastActivity: Date | null;
  users: number | null;
  sessions: number | null;
  /** Statements in pg_stat_statements at or over the slow threshold; null when the extension is unavailable. */
  slowStatements: number | null;
  /** Transactions the reader itself committed in the tenant database. */
  ownTransactions: number;
  /** Since when the tenant's writes are stopped (past its storage hard limit, infra/storage-lock.ts); null when they are not. */
  writesStoppedSince: Date | null;
  /** Why a part could not be read (no secrets). */
  problem?: string;
}

/** The tenant's role (the database's name where the outputs do not say). */
export function tenantRole(tenant: Pick<UsageTenant, "role" | "database">): string {
  return tenant.role ?? tenant.database;
}

export interface UsageReading {
  figures: TenantFigures[];
  /** Statements sent, all servers together (connections not counted). */
  queries: number;
  /** Connections opened. */
  connections: number;
}

export interface CollectOptions {
  /** Parallel tenant connections per server (default 8). */
  concurrency?: number;
  slowStatementMs?: number;
}

async function connect(server: AdminServer, database?: string): Promise<Client> {
  const client = new Client(clientConfigFromUrl(server.url, { database, defaultDatabase: "postgres", applicationName: USAGE_APPLICATION_NAME }));
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (error) {
    const where = database ? `database ${database} on server "${server.name}"` : `server "${server.name}"`;
    throw new Error(`cannot reach ${where} (${serverAddress(server)}) as its admin: ${redactSecrets(errorMessage(error))}`);
  }
  return client;
}

const SERVER_SQL = `
SELECT d.datname, pg_database_size(d.oid)::float8 AS size_bytes,
       coalesce(s.xact_commit, 0)::float8 AS xact_commit, coalesce(s.xact_rollback, 0)::float8 AS xact_rollback,
       coalesce(s.deadlocks, 0)::float8 AS deadlocks, coalesce(s.temp_bytes, 0)::float8 AS temp_bytes, s.stats_reset,
       nullif(d.datconnlimit, -1) AS datconnlimit, nullif(r.rolconnlimit, -1) AS rolconnlimit,
       coalesce(a.connections, 0)::int AS connections, a.last_activity, now() AS sampled_at,
       (SELECT coalesce(shobj_description(h.oid, 'pg_authid'), '{}') FROM unnest($1::text[], $3::text[]) AS t(db, holder)
          JOIN pg_roles h ON h.rolname = t.holder WHERE t.db = d.datname) AS storage_lock
FROM pg_database d
LEFT JOIN pg_stat_database s ON s.datid = d.oid
LEFT JOIN pg_roles r ON r.oid = d.datdba
LEFT JOIN (
  SELECT datid, count(*) AS connections, max(coalesce(state_change, backend_start)) AS last_activity
  FROM pg_stat_activity
  WHERE backend_type = 'client backend' AND application_name IS DISTINCT FROM $2
  GROUP BY datid
) a ON a.datid = d.oid
WHERE d.datname = ANY($1::text[])`;

const STATEMENTS_SQL = `
SELECT d.datname, count(*) FILTER (WHERE p.mean_exec_time >= $2)::int AS slow
FROM pg_stat_statements p JOIN pg_database d ON d.oid = p.dbid
WHERE d.datname = ANY($1::text[])
GROUP BY d.datname`;

const TENANT_SQL = `
SELECT (SELECT n_live_tup FROM pg_stat_user_tables WHERE schemaname = 'public' AND relname = 'users')::float8 AS users,
       (SELECT n_live_tup FROM pg_stat_user_tables WHERE schemaname = 'public' AND relname = 'sessions')::float8 AS sessions,
       (SELECT max(greatest(last_seq_scan, last_idx_scan)) FROM pg_stat_user_tables) AS last_scan`;

/** Slow statement counts per database, or undefined when pg_stat_statements is not there (or not preloaded). */
async function slowStatements(client: Client, databases: string[], thresholdMs: number): Promise<Map<string, number> | undefined> {
  try {
    const { rows } = await client.query<{ datname: string; slow: number }>(STATEMENTS_SQL, [databases, thresholdMs]);
    return new Map(rows.map((row) => [row.datname, row.slow]));
  } catch (error) {
    const code = (error as { code?: string }).code;
    // 42P01: no such view (extension not created); 55000: library not in shared_preload_libraries.
    if (code === "42P01" || code === "55000") return undefined;
    throw error;
  }
}

type ServerRow = {
  datname: string;
  size_bytes: number;
  xact_commit: number;
  xact_rollback: number;
  deadlocks: number;
  temp_bytes: number;
  stats_reset: Date | null;
  datconnlimit: number | null;
  rolconnlimit: number | null;
  connections: number;
  last_activity: Date | null;
  sampled_at: Date;
  storage_lock: string | null;
};

/** When the holding role's record says the writes were stopped (the sampling time when it cannot be read). */
function stoppedSince(note: string | null, at: Date): Date | null {
  if (note === null) return null;
  try {
    const since = new Date(String((JSON.parse(note) as { since?: unknown }).since));
    return Number.isNaN(since.getTime()) ? at : since;
  } catch {
    return at;
  }
}

function figuresFrom(tenant: UsageTenant, row: ServerRow | undefined, slow: Map<string, number> | undefined, at: Date): TenantFigures {
  const base = { tenantId: tenant.tenantId, database: tenant.database, server: tenant.server, users: null, sessions: null, ownTransactions: 0 };
  if (row === undefined) {
    return {
      ...base,
      sampledAt: at,
      exists: false,
      sizeBytes: 0,
      connections: 0,
      serverConnectionLimit: null,
      xactCommit: 0,
      xactRollback: 0,
      deadlocks: 0,
      tempBytes: 0,
      statsReset: null,
      lastActivity: null,
      slowStatements: null,
      writesStoppedSince: null,
      problem: `database ${tenant.database} does not exist on server "${tenant.server}"`,
    };
  }
  return {
    ...base,
    sampledAt: row.sampled_at,
    exists: true,
    sizeBytes: row.size_bytes,
    connections: row.connections,
    serverConnectionLimit: row.datconnlimit ?? row.rolconnlimit,
    xactCommit: row.xact_commit,
    xactRollback: row.xact_rollback,
    deadlocks: row.deadlocks,
    tempBytes: row.temp_bytes,
    statsReset: row.stats_reset,
    lastActivity: row.last_activity,
    slowStatements: slow === undefined ? null : (slow.get(tenant.database) ?? 0),
    writesStoppedSince: stoppedSince(row.storage_lock, row.sampled_at),
  };
}

/** Per-tenant part: row counts and last table scan, from the tenant database's own statistics. */
async function readTenantDatabase(server: AdminServer, figures: TenantFigures): Promise<void> {
  let client: Client;
  try {
    client = await connect(server, figures.database);
  } catch (error) {
    figures.problem = errorMessage(error);
    return;
  }
  try {
    const row = (await client.query<{ users: number | null; sessions: number | null; last_scan: Date | null }>(TENANT_SQL)).rows[0]!;
    figures.users = row.users;
    figures.sessions = row.sessions;
    if (row.last_scan && (!figures.lastActivity || row.last_scan > figures.lastActivity)) figures.lastActivity = row.last_scan;
  } catch (error) {
    figures.problem = `reading ${figures.database}: ${errorMessage(error)}`;
  } finally {
    // The login and the statement, both committed in the tenant database (see the header).
    figures.ownTransactions = 2;
    await client.end().catch(() => undefined);
  }
}

/** One server: 2 statements for all its tenants, then one connection and statement per tenant. */
async function collectServer(server: AdminServer, tenants: readonly UsageTenant[], options: CollectOptions = {}): Promise<UsageReading> {
  const databases = tenants.map((tenant) => tenant.database);
  const admin = await connect(server);
  let rows: ServerRow[];
  let slow: Map<string, number> | undefined;
  try {
    const holders = tenants.map((tenant) => storageLockRole(tenantRole(tenant)));
    rows = (await admin.query<ServerRow>(SERVER_SQL, [databases, USAGE_APPLICATION_NAME, holders])).rows;
    slow = await slowStatements(admin, databases, options.slowStatementMs ?? DEFAULT_SLOW_STATEMENT_MS);
  } finally {
    await admin.end().catch(() => undefined);
  }
  const byName = new Map(rows.map((row) => [row.datname, row]));
  const now = new Date();
  const figures = tenants.map((tenant) => figuresFrom(tenant, byName.get(tenant.database), slow, now));
  const present = figures.filter((figure) => figure.exists);
  await inPool(present, options.concurrency ?? 8, (figure) => readTenantDatabase(server, figure));
  return { figures, queries: 2 + present.length, connections: 1 + present.length };
}

/** Every tenant, grouped by server; fails naming the first tenant whose server has no admin connection. */
export async function collectUsage(servers: readonly AdminServer[], tenants: readonly UsageTenant[], options: CollectOptions = {}): Promise<UsageReading> {
  const byServer = new Map<string, UsageTenant[]>();
  for (const tenant of tenants) {
    if (!servers.some((server) => server.name === tenant.server)) {
      const known = servers.map((server) => server.name).join(", ") || "none";
      throw new Error(
        `tenant ${tenant.tenantId} (${tenant.username}) lives on server "${tenant.server}", which has no admin connection (known: ${known}); pass --admin-url ${tenant.server}=postgresql://...`,
      );
    }
    const group = byServer.get(tenant.server);
    if (group) group.push(tenant);
    else byServer.set(tenant.server, [tenant]);
  }
  const readings = await Promise.all(
    [...byServer].map(([name, group]) =>
      collectServer(
        servers.find((server) => server.name === name)!,
        group,
        options,
      ),
    ),
  );
  const figures = readings.flatMap((reading) => reading.figures).sort((a, b) => a.tenantId.localeCompare(b.tenantId));
  return {
    figures,
    queries: readings.reduce((sum, reading) => sum + reading.queries, 0),
    connections: readings.reduce((sum, reading) => sum + reading.connections, 0),
  };
}

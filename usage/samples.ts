/**
 * Usage samples in the control database (the onboarding service's database):
 * one row per tenant per sampling, written by `npm run usage -- --record`
 * (cron) and by the service's sampler, read back for billing.
 *
 * This module owns its table and creates it itself (idempotent SQL under a
 * transaction-level advisory lock, like onboarding/db.ts), so a control
 * database used only for billing needs nothing else. Samplings take a
 * session advisory lock, so two samplers (cron and the service) never
 * interleave their reads of the same tenant (billing subtracts each sample's
 * own transactions from the next delta, which assumes they do not).
 */
import type { Pool } from "pg";
import { withTransaction } from "../lib/transaction";
import type { UsageSample } from "./billing";
import type { UsageReading } from "./collect";
import type { UsageTenant } from "./inputs";

/** Key space of the usage advisory locks (first int4 of the two-key form). */
const USAGE_LOCK_CLASS = 0x0d6e;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS usage_samples (
  id               bigserial PRIMARY KEY,
  tenant_id        text NOT NULL,
  username         text NOT NULL,
  server           text NOT NULL,
  database         text NOT NULL,
  status           text NOT NULL,
  plan             text,
  sampled_at       timestamptz NOT NULL,
  db_exists        boolean NOT NULL,
  size_bytes       bigint NOT NULL,
  connections      integer NOT NULL,
  xact_commit      bigint NOT NULL,
  xact_rollback    bigint NOT NULL,
  deadlocks        bigint NOT NULL,
  temp_bytes       bigint NOT NULL,
  stats_reset      timestamptz,
  users            bigint,
  sessions         bigint,
  slow_statements  integer,
  own_transactions integer NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS usage_samples_tenant_time ON usage_samples (tenant_id, sampled_at);
CREATE INDEX IF NOT EXISTS usage_samples_time ON usage_samples (sampled_at);
ALTER TABLE usage_samples ADD COLUMN IF NOT EXISTS writes_stopped boolean NOT NULL DEFAULT false;
`;

export async function ensureUsageSchema(pool: Pool): Promise<void> {
  await withTransaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock($1, 0)", [USAGE_LOCK_CLASS]);
    await client.query(SCHEMA);
  });
}

/**
 * Reads usage (through `read`) and stores one sample per tenant, while holding
 * the sampling lock. Returns the reading.
 */
export async function recordUsage(pool: Pool, tenants: readonly UsageTenant[], read: () => Promise<UsageReading>): Promise<UsageReading> {
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock($1, 1)", [USAGE_LOCK_CLASS]);
    try {
      const reading = await read();
      const byId = new Map(tenants.map((tenant) => [tenant.tenantId, tenant]));
      const rows = reading.figures.map((figure) => {
        const tenant = byId.get(figure.tenantId)!;
        return {
          tenant_id: figure.tenantId,
          username: tenant.username,
          server: figure.server,
          database: figure.database,
          status: tenant.status,
          plan: tenant.plan ?? null,
          sampled_at: figure.sampledAt.toISOString(),
          db_exists: figure.exists,
          size_bytes: figure.sizeBytes,
          connections: figure.connections,
          xact_commit: figure.xactCommit,
          xact_rollback: figure.xactRollback,
          deadlocks: figure.deadlocks,
          temp_bytes: figure.tempBytes,
          stats_reset: figure.statsReset?.toISOString() ?? null,
          users: figure.users,
          sessions: figure.sessions,
          slow_statements: figure.slowStatements,
          own_transactions: figure.ownTransactions,
          writes_stopped: figure.writesStoppedSince !== null,
        };
      });
      await insertSamples(client, rows);
      return reading;
    } finally {
      await client.query("SELECT pg_advisory_unlock($1, 1)", [USAGE_LOCK_CLASS]).catch(() => undefined);
    }
  } finally {
    client.release();
  }
}

const COLUMNS = `tenant_id text, username text, server text, database text, status text, plan text, sampled_at timestamptz,
  db_exists boolean, size_bytes bigint, connections integer, xact_commit bigint, xact_rollback bigint, deadlocks bigint,
  temp_bytes bigint, stats_reset timestamptz, users bigint, sessions bigint, slow_statements integer, own_transactions integer, writes_stopped boolean`;

/** One statement for any number of rows (the values travel as one JSON parameter). */
export async function insertSamples(client: { query: Pool["query"] }, rows: readonly Record<string, unknown>[]): Promise<void> {
  if (rows.length === 0) return;
  const names = COLUMNS.split(",")
    .map((column) => column.trim().split(/\s+/)[0]!)
    .join(", ");
  // Rows from before writes_stopped existed (or without it) record false.
  const values = names.replace("writes_stopped", "coalesce(writes_stopped, false)");
  await client.query(`INSERT INTO usage_samples (${names}) SELECT ${values} FROM json_to_recordset($1::json) AS r(${COLUMNS})`, [JSON.stringify(rows)]);
}

type SampleRow = {
  tenant_id: string;
  username: string;
  sampled_at: Date;
  status: string;
  db_exists: boolean;
  size_bytes: string;
  connections: number;
  xact_commit: string;
  stats_reset: Date | null;
  own_transactions: number;
};

/** The samples of the period, plus each tenant's last sample before it (the baseline of its first delta). */
export async function readSamples(pool: Pool, start: Date, end: Date): Promise<UsageSample[]> {
  const { rows } = await pool.query<SampleRow>(
    `SELECT tenant_id, username, sampled_at, status, db_exists, size_bytes, connections, xact_commit, stats_reset, own_transactions
     FROM usage_samples WHERE sampled_at >= $1 AND sampled_at < $2
     UNION ALL
     SELECT * FROM (
       SELECT DISTINCT ON (tenant_id) tenant_id, username, sampled_at, status, db_exists, size_bytes, connections, xact_commit, stats_reset, own_transactions
       FROM usage_samples WHERE sampled_at < $1 AND tenant_id IN (SELECT tenant_id FROM usage_samples WHERE sampled_at >= $1 AND sampled_at < $2)
       ORDER BY tenant_id, sampled_at DESC
     ) baseline`,
    [start, end],
  );
  return rows.map((row) => ({
    tenantId: row.tenant_id,
    username: row.username,
    sampledAt: row.sampled_at,
    status: row.status,
    exists: row.db_exists,
    sizeBytes: Number(row.size_bytes),
    connections: row.connections,
    xactCommit: Number(row.xact_commit),
    statsReset: row.stats_reset,
    ownTransactions: row.own_transactions,
  }));
}

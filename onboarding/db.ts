/**
 * The control database: the service's queue, statuses, deployments, replay
 * protection and e-mail outbox. Nothing the service must remember lives in
 * memory, so a crash or a restart loses nothing.
 *
 * The schema is created at start by idempotent SQL, under a transaction-level
 * advisory lock so two instances starting together do not race.
 */
import { escapeIdentifier, Pool } from "pg";
import { withTransaction } from "../lib/transaction";

export const SCHEMA_VERSION = 1;

/** Key space of the deployment and schema advisory locks (first int4 of the two-key form). */
export const LOCK_CLASS = 0x0d6b;
/** Key space of the per-web-address locks that serialise signups (see registry.ts). */
export const SIGNUP_LOCK_CLASS = 0x0d6c;
/** Key space of the fleet's routing lock: one registration at a time chooses a shard (see fleet.ts). */
export const ROUTING_LOCK_CLASS = 0x0d6d;
/** Key space of the claim committers' per-stack locks: one instance commits a shard's pending claims at a time (claim-committer.ts). */
export const COMMIT_LOCK_CLASS = 0x0d6f;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS onboarding_signups (
  username        text PRIMARY KEY,
  label           text NOT NULL UNIQUE,          -- DNS label: john_driver and john-driver collide
  email           text NOT NULL,
  source          text,
  stack           text NOT NULL,
  status          text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'provisioning', 'ready', 'failed', 'suspended')),
  tenant_id       text,
  domain          text,
  attempts        integer NOT NULL DEFAULT 0,
  last_error      text,
  retry           boolean NOT NULL DEFAULT true, -- false: failed for good (e.g. rejected by the tenants file)
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  deployment_id   bigint,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  ready_at        timestamptz
);
CREATE INDEX IF NOT EXISTS onboarding_signups_due ON onboarding_signups (stack, status, next_attempt_at);

CREATE TABLE IF NOT EXISTS onboarding_deployments (
  id          bigserial PRIMARY KEY,
  stack       text NOT NULL,
  status      text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
  usernames   text[] NOT NULL,
  worker      text NOT NULL,                  -- host:pid of the process that ran the engine
  error       text,
  started_at  timestamptz NOT NULL DEFAULT now(),
  engine_started_at timestamptz,
  finished_at timestamptz,
  engine_seconds double precision,
  seed_seconds   double precision
);
-- At most one running deployment per stack, enforced by the database itself.
CREATE UNIQUE INDEX IF NOT EXISTS onboarding_deployments_one_running ON onboarding_deployments (stack) WHERE status = 'running';

CREATE TABLE IF NOT EXISTS onboarding_seen_signatures (
  digest     text PRIMARY KEY,                -- sha256 of the signature header, never the secret
  expires_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS onboarding_outbox (
  id              bigserial PRIMARY KEY,
  idempotency_key text NOT NULL UNIQUE,       -- welcome:<tenantId>: one welcome mail per tenant, ever
  username        text NOT NULL REFERENCES onboarding_signups (username),
  tenant_id       text NOT NULL,
  recipient       text NOT NULL,
  message_id      text NOT NULL,
  attempts        integer NOT NULL DEFAULT 0,
  last_error      text,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  created_at      timestamptz NOT NULL DEFAULT now(),
  sent_at         timestamptz
);
CREATE INDEX IF NOT EXISTS onboarding_outbox_due ON onboarding_outbox (next_attempt_at) WHERE sent_at IS NULL;

-- The warm pool (tenants/pool.ts): pooled tenants a successful update of their stack made in full, and
-- who claimed each. One claim per tenant (the primary key) and one tenant per signup (UNIQUE claimed_by),
-- enforced by the database itself, so several service instances never hand one tenant out twice.
CREATE TABLE IF NOT EXISTS onboarding_pool (
  tenant_id  text PRIMARY KEY,
  stack      text NOT NULL,
  claimed_by text UNIQUE,
  claimed_at timestamptz,
  bound      boolean NOT NULL DEFAULT false,  -- the claim is in the tenants file (pushed in git mode)
  recorded   boolean NOT NULL DEFAULT false   -- an update of the stack has deployed the binding
);
CREATE INDEX IF NOT EXISTS onboarding_pool_free ON onboarding_pool (stack) WHERE claimed_by IS NULL;
-- The claims outbox: claimed, not yet committed to the tenants file (claim-committer.ts picks these up, also after a restart).
CREATE INDEX IF NOT EXISTS onboarding_pool_pending ON onboarding_pool (stack) WHERE claimed_by IS NOT NULL AND NOT bound;

-- Where a tenant's app connects (from the stack's tenants output and servers config; never the password,
-- which is only in the stack's secret output): added to existing tables too.
ALTER TABLE onboarding_signups ADD COLUMN IF NOT EXISTS db_host text;
ALTER TABLE onboarding_signups ADD COLUMN IF NOT EXISTS db_port integer;
ALTER TABLE onboarding_signups ADD COLUMN IF NOT EXISTS db_name text;
ALTER TABLE onboarding_signups ADD COLUMN IF NOT EXISTS db_role text;
ALTER TABLE onboarding_pool ADD COLUMN IF NOT EXISTS db_host text;
ALTER TABLE onboarding_pool ADD COLUMN IF NOT EXISTS db_port integer;
ALTER TABLE onboarding_pool ADD COLUMN IF NOT EXISTS db_name text;
ALTER TABLE onboarding_pool ADD COLUMN IF NOT EXISTS db_role text;

CREATE TABLE IF NOT EXISTS onboarding_schema (version integer NOT NULL);
`;

export function createPool(databaseUrl: string, max = 10): Pool {
  const pool = new Pool({ connectionString: databaseUrl, max, application_name: "drivergigspro-onboarding" });
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on("error", () => undefined);
  // Nor a client held between queries (the stack lock through an engine run, the committer's lock through a push):
  // pg emits a lost connection on the client itself, and without a listener that is an uncaught exception. The
  // lock's holder sees it as its next query's rejection, and the pool drops the client when it is released.
  pool.on("connect", (client) => client.on("error", () => undefined));
  return pool;
}

/** Throws when the control database cannot be reached (/healthz). */
export async function ping(pool: Pool): Promise<void> {
  await pool.query("SELECT 1");
}

export async function migrate(pool: Pool): Promise<void> {
  await withTransaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock($1, 0)", [LOCK_CLASS]);
    await client.query(SCHEMA);
    const { rows } = await client.query<{ version: number }>("SELECT version FROM onboarding_schema");
    if (rows.length === 0) await client.query("INSERT INTO onboarding_schema (version) VALUES ($1)", [SCHEMA_VERSION]);
    else if (rows[0]!.version > SCHEMA_VERSION) {
      throw new Error(`the control database has schema version ${rows[0]!.version}; this service knows ${SCHEMA_VERSION}: upgrade the service`);
    }
  });
}

/**
 * The control database holds the queue, the statuses and the advisory locks
 * every deployment takes: a tenant that could open it could stall every
 * signup. The service refuses to start unless no role but its own (and
 * superusers) may connect: PUBLIC must have no CONNECT, and neither may any
 * role named like a tenant's (`<appName>_...`).
 */
export async function controlDatabaseExposure(pool: Pool, appName = "drivergigspro"): Promise<string | undefined> {
  const { rows } = await pool.query<{ database: string; public_connect: boolean; tenant_roles: string[] }>(
    `SELECT current_database() AS database,
            has_database_privilege('public', current_database(), 'CONNECT') AS public_connect,
            coalesce(array_agg(r.rolname::text ORDER BY r.rolname) FILTER (WHERE has_database_privilege(r.oid, current_database(), 'CONNECT')), '{}'::text[]) AS tenant_roles
       FROM pg_roles r
      WHERE r.rolname LIKE $1 || '\\_%' AND NOT r.rolsuper`,
    [appName],
  );
  const { database, public_connect: publicConnect, tenant_roles: tenants } = rows[0]!;
  if (!publicConnect && tenants.length === 0) return undefined;
  const who = publicConnect ? "every role (PUBLIC has CONNECT)" : `tenant roles (${tenants.slice(0, 3).join(", ")}${tenants.length > 3 ? ", ..." : ""})`;
  return (
    `the control database "${database}" can be opened by ${who}: a tenant could take the service's locks and stall every signup. ` +
    `Run as its owner: REVOKE ALL ON DATABASE ${database} FROM PUBLIC; (and GRANT CONNECT only to the service's role), then start again`
  );
}

/** Creates a control database that only its owner (and superusers) can open. */
export async function createPrivateDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = new Pool({ connectionString: adminUrl, max: 1 });
  try {
    const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (exists.rows.length === 0) await admin.query(`CREATE DATABASE ${escapeIdentifier(name)}`);
    await admin.query(`REVOKE ALL ON DATABASE ${escapeIdentifier(name)} FROM PUBLIC`);
  } finally {
    await admin.end();
  }
}

export type TenantStatus = "queued" | "provisioning" | "ready" | "failed" | "suspended";

export interface SignupRow {
  username: string;
  label: string;
  email: string;
  source: string | null;
  stack: string;
  status: TenantStatus;
  tenant_id: string | null;
  domain: string | null;
  attempts: number;
  last_error: string | null;
  retry: boolean;
  next_attempt_at: Date;
  deployment_id: string | null;
  created_at: Date;
  updated_at: Date;
  ready_at: Date | null;
  db_host: string | null;
  db_port: number | null;
  db_name: string | null;
  db_role: string | null;
}

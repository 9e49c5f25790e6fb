/**
 * The signup registry: every query of the control database's tables
 * (db.ts creates them), so the HTTP handlers, the placement of signups on
 * shards, the scheduler, the deployment and the mailer only orchestrate.
 *
 * - registration: replay protection, one signup per username and per web
 *   address, the shard chosen once (the caller's `place`);
 * - deployments: the stack's advisory lock, claiming a batch, recording its
 *   outcome (success from the stack outputs, failure with the retry backoff
 *   of backoff.ts), the welcome mails of ready tenants;
 * - reads: a signup's status, due stacks, counts per shard, /metrics figures;
 * - the outbox of welcome mails.
 */
import { hostname } from "node:os";
import type { Pool, PoolClient } from "pg";
import { withTransaction } from "../lib/transaction";
import { usernameToLabel } from "../infra/naming";
import { retryDelayMs, type Backoff } from "./backoff";
import { COMMIT_LOCK_CLASS, LOCK_CLASS, ROUTING_LOCK_CLASS, SIGNUP_LOCK_CLASS, type SignupRow } from "./db";
import type { DeployedTenant, DeployResult } from "./deployer";
import type { ControlFigures } from "./metrics";

type Db = Pool | PoolClient;

/** SQL condition for a signup a deployment should pick up, whatever its stack. */
/**
 * SQL condition for a signup a deployment should pick up, whatever its stack:
 * not while its claim of a pooled tenant is being bound (claim.ts); a claimed
 * signup, ready already, until an update has recorded its binding.
 */
const DUE = `(((status IN ('queued', 'provisioning') OR (status = 'failed' AND retry AND next_attempt_at <= now()))
  AND NOT EXISTS (SELECT 1 FROM onboarding_pool p WHERE p.claimed_by = onboarding_signups.username AND NOT p.bound))
  OR (status = 'ready' AND next_attempt_at <= now()
      AND EXISTS (SELECT 1 FROM onboarding_pool p WHERE p.claimed_by = onboarding_signups.username AND p.bound AND NOT p.recorded)))`;

// ---- Registration -------------------------------------------------------

/** Registration refused: a replayed signature (401), or the username is taken (409). Nothing was stored. */
export class SignupRefused extends Error {
  constructor(
    readonly kind: "replay" | "conflict",
    message: string,
  ) {
    super(message);
  }
}

export const REPLAYED = "replayed request: this signature was already used; sign each request anew";

export interface SignupRequest {
  username: string;
  email: string;
  source?: string;
  /** sha256 of the request's signature (replay protection). */
  digest: string;
  /** How long the digest is remembered: until the signature could no longer pass the timestamp check anyway. */
  rememberSeconds: number;
}

/** True when this signature was used before (checked before the body is parsed; registration checks again). */
export async function signatureSeen(pool: Pool, digest: string): Promise<boolean> {
  const { rows } = await pool.query("SELECT 1 FROM onboarding_seen_signatures WHERE digest = $1", [digest]);
  return rows.length > 0;
}

/**
 * Stores a new signup, or finds the same one again (same username and
 * e-mail: `created` false). `place` chooses its stack (fleet.ts), inside the
 * transaction. Throws SignupRefused, or what `place` throws; then nothing is stored.
 */
export async function registerSignup(
  pool: Pool,
  request: SignupRequest,
  place: (client: PoolClient) => Promise<{ stack: string }>,
): Promise<{ row: SignupRow; created: boolean }> {
  const { username, email } = request;
  return withTransaction(pool, async (client) => {
    const fresh = await client.query(
      "INSERT INTO onboarding_seen_signatures (digest, expires_at) VALUES ($1, now() + make_interval(secs => $2)) ON CONFLICT DO NOTHING",
      [request.digest, request.rememberSeconds],
    );
    if (fresh.rowCount === 0) throw new SignupRefused("replay", REPLAYED);
    await client.query("DELETE FROM onboarding_seen_signatures WHERE expires_at < now()");

    // Concurrent signups for one web address wait here for each other, so the
    // second sees the first one's committed row and answers as a duplicate (202)
    // or a clash (409) instead of losing the INSERT race below. The same
    // username always gives the same label, so this also covers exact repeats.
    const label = usernameToLabel(username);
    await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [SIGNUP_LOCK_CLASS, label]);
    const existing = await client.query<SignupRow>("SELECT * FROM onboarding_signups WHERE username = $1 FOR UPDATE", [username]);
    if (existing.rows[0]) {
      const row = existing.rows[0];
      if (row.email.toLowerCase() !== email.toLowerCase()) throw new SignupRefused("conflict", `username "${username}" is already taken; choose another`);
      return { row, created: false };
    }
    const clash = await client.query<{ username: string }>("SELECT username FROM onboarding_signups WHERE label = $1", [label]);
    if (clash.rows[0]) {
      throw new SignupRefused("conflict", `username "${username}" is taken: it gives the same web address as "${clash.rows[0].username}"; choose another`);
    }
    const { stack } = await place(client);
    const inserted = await client.query<SignupRow>(
      `INSERT INTO onboarding_signups (username, label, email, source, stack) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT DO NOTHING RETURNING *`,
      [username, label, email, request.source ?? null, stack],
    );
    if (!inserted.rows[0]) throw new SignupRefused("conflict", `username "${username}" was just taken; choose another`);
    return { row: inserted.rows[0], created: true };
  });
}

// ---- Placement on shards (fleet.ts, inside registration's transaction) ----

/** The fleet's routing lock: one registration at a time chooses a shard, across instances. */
export async function lockPlacement(client: PoolClient, stackPattern: string): Promise<void> {
  await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [ROUTING_LOCK_CLASS, stackPattern]);
}

/** Every stack (matching the LIKE pattern) that signups were placed on. */
export async function stacksWithSignups(db: Db, stackPattern: string): Promise<string[]> {
  const { rows } = await db.query<{ stack: string }>("SELECT DISTINCT stack FROM onboarding_signups WHERE stack LIKE $1", [stackPattern]);
  return rows.map((row) => row.stack);
}

/** Signups placed on these stacks that may still be written to their file: queued, provisioning, or failed and to be retried. */
export async function signupsBoundFor(db: Db, stacks: readonly string[]): Promise<{ stack: string; username: string }[]> {
  const { rows } = await db.query<{ stack: string; username: string }>(
    `SELECT stack, username FROM onboarding_signups
     WHERE stack = ANY($1) AND (status IN ('queued', 'provisioning') OR (status = 'failed' AND retry))`,
    [stacks],
  );
  return rows;
}

// ---- Reads for the API and the scheduler --------------------------------

export async function signupByUsername(pool: Pool, username: string): Promise<SignupRow | undefined> {
  const { rows } = await pool.query<SignupRow>("SELECT * FROM onboarding_signups WHERE username = $1", [username]);
  return rows[0];
}

/** Stacks (matching the LIKE pattern) with due signups, the one whose oldest due signup waits longest first. */
export async function stacksWithDueSignups(pool: Pool, stackPattern: string): Promise<string[]> {
  const { rows } = await pool.query<{ stack: string }>(
    `SELECT stack FROM onboarding_signups WHERE stack LIKE $1 AND ${DUE} GROUP BY stack ORDER BY min(created_at), stack`,
    [stackPattern],
  );
  return rows.map((row) => row.stack);
}

/** What /metrics shows of the control database, for the stacks matching the LIKE pattern. */
export async function controlFigures(pool: Pool, stackPattern: string): Promise<ControlFigures> {
  const [statuses, deployments, durations, outbox] = await Promise.all([
    pool.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM onboarding_signups WHERE stack LIKE $1 GROUP BY status", [stackPattern]),
    pool.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM onboarding_deployments WHERE stack LIKE $1 GROUP BY status", [stackPattern]),
    pool.query<{ seconds: number }>(
      "SELECT extract(epoch FROM finished_at - started_at)::float8 AS seconds FROM onboarding_deployments WHERE stack LIKE $1 AND finished_at IS NOT NULL AND status IN ('succeeded', 'failed')",
      [stackPattern],
    ),
    pool.query<{ pending: string; sent: string }>(
      "SELECT count(*) FILTER (WHERE sent_at IS NULL) AS pending, count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent FROM onboarding_outbox",
    ),
  ]);
  const counts = (rows: { status: string; n: string }[]) => Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
  return {
    signups: counts(statuses.rows),
    deployments: counts(deployments.rows),
    deploymentSeconds: durations.rows.map((row) => row.seconds),
    emailsPending: Number(outbox.rows[0]?.pending ?? 0),
    emailsSent: Number(outbox.rows[0]?.sent ?? 0),
  };
}

// ---- Deployments ----------------------------------------------------------

/** The stack's deployment lock, on this session (held for the whole deployment; PostgreSQL drops it if the process dies). */
export async function tryStackLock(client: PoolClient, stack: string): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked", [LOCK_CLASS, stack]);
  return rows[0]!.locked;
}

export async function unlockStack(client: PoolClient, stack: string): Promise<void> {
  await client.query("SELECT pg_advisory_unlock($1, hashtext($2))", [LOCK_CLASS, stack]);
}

export interface ClaimedBatch {
  deploymentId: string;
  /** In registration order. */
  signups: { username: string; email: string }[];
}

/**
 * With the stack's lock held: a deployment still marked running lost its
 * process (interrupted); every due signup of the stack becomes this
 * deployment's batch (`provisioning`, one more attempt). Undefined: nothing due.
 */
export async function claimBatch(client: PoolClient, stack: string): Promise<ClaimedBatch | undefined> {
  return withTransaction(client, async () => {
    await client.query(
      `UPDATE onboarding_deployments SET status = 'interrupted', finished_at = now(),
              error = 'the process running this deployment stopped; its signups were retried'
       WHERE stack = $1 AND status = 'running'`,
      [stack],
    );
    const { rows } = await client.query<{ username: string; email: string }>(
      `SELECT username, email FROM onboarding_signups WHERE stack = $1 AND ${DUE} ORDER BY created_at, username FOR UPDATE`,
      [stack],
    );
    if (rows.length === 0) return undefined;
    const usernames = rows.map((row) => row.username);
    const { rows: inserted } = await client.query<{ id: string }>(
      "INSERT INTO onboarding_deployments (stack, status, usernames, worker) VALUES ($1, 'running', $2, $3) RETURNING id",
      [stack, usernames, `${hostname()}:${process.pid}`],
    );
    const deploymentId = inserted[0]!.id;
    await client.query(
      // A claimed signup stays ready while the update records its binding.
      `UPDATE onboarding_signups SET status = CASE WHEN status = 'ready' THEN 'ready' ELSE 'provisioning' END,
              deployment_id = $2, attempts = attempts + 1, updated_at = now()
       WHERE username = ANY($1)`,
      [usernames, deploymentId],
    );
    return { deploymentId, signups: rows };
  });
}

/** Signups the tenants file refuses: failed for good, with the file's message. */
export async function recordRejected(db: Db, rejected: readonly { username: string; reason: string }[]): Promise<void> {
  for (const { username, reason } of rejected) {
    await db.query("UPDATE onboarding_signups SET status = 'failed', retry = false, last_error = $2, updated_at = now() WHERE username = $1", [
      username,
      reason,
    ]);
  }
}

export async function recordEngineStarted(db: Db, deploymentId: string): Promise<void> {
  await db.query("UPDATE onboarding_deployments SET engine_started_at = now() WHERE id = $1", [deploymentId]);
}

/**
 * The batch failed: its signups still provisioning become `failed` with the
 * reason, retried after the backoff's delay for their attempt count (while
 * `retryable` and under `maxAttempts`); the deployment is `failed`.
 */
export async function recordFailure(
  client: PoolClient,
  deploymentId: string,
  failure: { reason: string; retryable: boolean; backoff: Backoff },
): Promise<void> {
  const { reason, retryable, backoff } = failure;
  await withTransaction(client, async () => {
    const { rows } = await client.query<{ username: string; attempts: number }>(
      "SELECT username, attempts FROM onboarding_signups WHERE deployment_id = $1 AND status = 'provisioning' FOR UPDATE",
      [deploymentId],
    );
    await client.query(
      `UPDATE onboarding_signups s
       SET status = 'failed', last_error = $2, updated_at = now(),
           retry = $3 AND s.attempts < $4,
           next_attempt_at = now() + make_interval(secs => d.delay_ms / 1000)
       FROM unnest($5::text[], $6::float8[]) AS d(username, delay_ms)
       WHERE s.deployment_id = $1 AND s.status = 'provisioning' AND s.username = d.username`,
      [deploymentId, reason, retryable, backoff.maxAttempts, rows.map((row) => row.username), rows.map((row) => retryDelayMs(backoff, row.attempts))],
    );
    // Claimed signups stay ready; the update that records their binding is retried after the first delay.
    await client.query(
      "UPDATE onboarding_signups SET next_attempt_at = now() + make_interval(secs => $2::float8 / 1000) WHERE deployment_id = $1 AND status = 'ready'",
      [deploymentId, retryDelayMs(backoff, 1)],
    );
    await client.query("UPDATE onboarding_deployments SET status = 'failed', error = $2, finished_at = now() WHERE id = $1", [deploymentId, reason]);
  });
}

/**
 * The update succeeded: every signup of the stack in the outputs is `ready`
 * (or `suspended`) with its tenant ID and domain (a retry or a hand edit may
 * have made earlier ones ready too); one of the batch missing from the
 * outputs is `failed`; one welcome mail is queued per ready tenant.
 */
export async function recordSuccess(
  client: PoolClient,
  deployment: { stack: string; deploymentId: string; result: DeployResult; maxAttempts: number },
): Promise<void> {
  const { stack, deploymentId, result } = deployment;
  await withTransaction(client, async () => {
    const deployed = Object.entries(result.tenants).map(([username, { connection, ...tenant }]) => ({ username, ...tenant, ...connection }));
    await client.query(
      `UPDATE onboarding_signups s
       SET status = CASE WHEN d.status = 'suspended' THEN 'suspended' ELSE 'ready' END,
           tenant_id = d."tenantId", domain = d.domain, last_error = NULL, retry = true,
           db_host = COALESCE(d.host, s.db_host), db_port = COALESCE(d.port, s.db_port),
           db_name = COALESCE(d.database, s.db_name), db_role = COALESCE(d.role, s.db_role),
           ready_at = COALESCE(s.ready_at, now()), updated_at = now()
       FROM json_to_recordset($2::json) AS d(username text, "tenantId" text, domain text, status text, host text, port integer, database text, role text)
       WHERE s.stack = $1 AND s.username = d.username
         AND (s.status IS DISTINCT FROM CASE WHEN d.status = 'suspended' THEN 'suspended' ELSE 'ready' END
              OR s.tenant_id IS DISTINCT FROM d."tenantId" OR s.domain IS DISTINCT FROM d.domain
              OR (d.database IS NOT NULL AND (s.db_name IS DISTINCT FROM d.database OR s.db_host IS DISTINCT FROM d.host OR s.db_port IS DISTINCT FROM d.port)))`,
      [stack, JSON.stringify(deployed)],
    );
    await client.query(
      `UPDATE onboarding_signups SET status = 'failed', last_error = 'the update succeeded but the tenant is not in the stack outputs',
              retry = attempts < $2, updated_at = now()
       WHERE deployment_id = $1 AND status = 'provisioning'`,
      [deploymentId, deployment.maxAttempts],
    );
    // Not for a claim whose binding is not committed yet: its mail goes with the commit (claim-committer.ts).
    await client.query(
      `INSERT INTO onboarding_outbox (idempotency_key, username, tenant_id, recipient, message_id)
       SELECT 'welcome:' || tenant_id, username, tenant_id, email, 'welcome-' || tenant_id
       FROM onboarding_signups s WHERE stack = $1 AND status = 'ready' AND tenant_id IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM onboarding_pool p WHERE p.claimed_by = s.username AND NOT p.bound)
       ON CONFLICT (idempotency_key) DO NOTHING`,
      [stack],
    );
    await recordPooled(client, stack, result.tenants);
    // Claims this update deployed (their usernames are in its outputs): recorded.
    await client.query("UPDATE onboarding_pool SET recorded = true WHERE stack = $1 AND bound AND NOT recorded AND claimed_by = ANY($2)", [
      stack,
      Object.keys(result.tenants),
    ]);
    await client.query("UPDATE onboarding_deployments SET status = 'succeeded', finished_at = now(), engine_seconds = $2, seed_seconds = $3 WHERE id = $1", [
      deploymentId,
      result.engineSeconds,
      result.seedSeconds ?? null,
    ]);
  });
}

// ---- The outbox of welcome mails -----------------------------------------

export interface DueMail {
  id: string;
  username: string;
  tenant_id: string;
  recipient: string;
  message_id: string;
  attempts: number;
  domain: string;
}

/** The next unsent mail that is due, locked for this transaction (others skip it). */
export async function claimDueMail(client: PoolClient): Promise<DueMail | undefined> {
  const { rows } = await client.query<DueMail>(
    `SELECT o.id, o.username, o.tenant_id, o.recipient, o.message_id, o.attempts, s.domain
     FROM onboarding_outbox o JOIN onboarding_signups s USING (username)
     WHERE o.sent_at IS NULL AND o.next_attempt_at <= now()
     ORDER BY o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED`,
  );
  return rows[0];
}

export async function recordMailFailure(client: PoolClient, id: string, reason: string, delayMs: number): Promise<void> {
  await client.query(
    "UPDATE onboarding_outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + make_interval(secs => $3::float8 / 1000) WHERE id = $1",
    [id, reason.slice(0, 1000), delayMs],
  );
}

export async function recordMailSent(client: PoolClient, id: string): Promise<void> {
  await client.query("UPDATE onboarding_outbox SET attempts = attempts + 1, sent_at = now(), last_error = NULL WHERE id = $1", [id]);
}

// ---- The warm pool (tenants/pool.ts) ------------------------------------

/** Where a claimed tenant's app connects, as stored with the pooled row (no secret). */
export type PooledConnection = NonNullable<DeployedTenant["connection"]>;

/**
 * After a successful update: the stack's pooled tenants (status "pooled" in
 * its outputs, so made in full) become claimable, with their connection
 * details; a pooled row the outputs no longer list as pooled and nobody
 * claimed (a person removed it) is dropped.
 */
export async function recordPooled(
  db: Db,
  stack: string,
  tenants: Readonly<Record<string, Pick<DeployedTenant, "tenantId" | "status" | "connection">>>,
): Promise<void> {
  const pooled = Object.values(tenants)
    .filter((tenant) => tenant.status === "pooled")
    .map((tenant) => ({ tenantId: tenant.tenantId, ...tenant.connection }));
  await db.query(
    `INSERT INTO onboarding_pool (tenant_id, stack, db_host, db_port, db_name, db_role)
     SELECT d."tenantId", $1, d.host, d.port, d.database, d.role FROM json_to_recordset($2::json) AS d("tenantId" text, host text, port integer, database text, role text)
     ON CONFLICT (tenant_id) DO UPDATE SET db_host = COALESCE(EXCLUDED.db_host, onboarding_pool.db_host), db_port = COALESCE(EXCLUDED.db_port, onboarding_pool.db_port),
       db_name = COALESCE(EXCLUDED.db_name, onboarding_pool.db_name), db_role = COALESCE(EXCLUDED.db_role, onboarding_pool.db_role)`,
    [stack, JSON.stringify(pooled)],
  );
  await db.query("DELETE FROM onboarding_pool WHERE stack = $1 AND claimed_by IS NULL AND NOT (tenant_id = ANY($2))", [
    stack,
    pooled.map((tenant) => tenant.tenantId),
  ]);
}

export interface PoolClaim {
  tenantId: string;
  stack: string;
  /** Undefined for rows recorded before connection details were stored (the next update fills them in). */
  connection?: PooledConnection;
}

/**
 * Claims one pooled tenant of the stacks matching the LIKE pattern for
 * `username`, durably (committed with the caller's transaction): the row is
 * taken with FOR UPDATE SKIP LOCKED, so concurrent claims (also from other
 * service instances) take different tenants, and the unique constraints
 * refuse a second claim of one tenant or a second tenant for one username.
 * The row is also the claims outbox: `bound` false until the committer
 * (claim-committer.ts) has the binding in the tenants file. Undefined when
 * the pool is empty (the signup takes the path of an update).
 */
export async function claimPooled(db: Db, stackPattern: string, username: string): Promise<PoolClaim | undefined> {
  const { rows } = await db.query<{
    tenant_id: string;
    stack: string;
    db_host: string | null;
    db_port: number | null;
    db_name: string | null;
    db_role: string | null;
  }>(
    `UPDATE onboarding_pool SET claimed_by = $2, claimed_at = clock_timestamp()
     WHERE tenant_id = (SELECT tenant_id FROM onboarding_pool WHERE stack LIKE $1 AND claimed_by IS NULL
                        ORDER BY stack, tenant_id LIMIT 1 FOR UPDATE SKIP LOCKED)
       AND NOT EXISTS (SELECT 1 FROM onboarding_pool WHERE claimed_by = $2)
     RETURNING tenant_id, stack, db_host, db_port, db_name, db_role`,
    [stackPattern, username],
  );
  const row = rows[0];
  if (!row) return undefined;
  const connection =
    row.db_host !== null && row.db_port !== null && row.db_name !== null && row.db_role !== null
      ? { connection: { host: row.db_host, port: row.db_port, database: row.db_name, role: row.db_role } }
      : {};
  return { tenantId: row.tenant_id, stack: row.stack, ...connection };
}

/** A claim the tenants file refused: the tenant is free again (or, `gone`, no longer pooled at all). */
export async function releaseClaim(db: Db, tenantId: string, gone = false): Promise<void> {
  if (gone) await db.query("DELETE FROM onboarding_pool WHERE tenant_id = $1", [tenantId]);
  else await db.query("UPDATE onboarding_pool SET claimed_by = NULL, claimed_at = NULL WHERE tenant_id = $1", [tenantId]);
}

/**
 * The claimed tenant is reachable (its DNS record made): the signup is ready
 * with its tenant ID, domain and connection details, before its binding is
 * in git. Its welcome mail waits for the binding (recordClaimsBound), so a
 * claim the file refuses never mails a tenant ID it does not keep.
 */
export async function recordClaimReady(
  db: Db,
  claim: { username: string; tenantId: string; domain: string; connection?: PooledConnection },
): Promise<SignupRow> {
  const c = claim.connection;
  const { rows } = await db.query<SignupRow>(
    `UPDATE onboarding_signups SET status = 'ready', tenant_id = $2, domain = $3, db_host = $4, db_port = $5, db_name = $6, db_role = $7,
            ready_at = now(), updated_at = now(), next_attempt_at = now()
     WHERE username = $1 RETURNING *`,
    [claim.username, claim.tenantId, claim.domain, c?.host ?? null, c?.port ?? null, c?.database ?? null, c?.role ?? null],
  );
  return rows[0]!;
}

/** The stack's claims-commit lock, on this session (claim-committer.ts); false when another instance commits that stack's claims now. */
export async function tryCommitLock(client: PoolClient, stack: string): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked", [COMMIT_LOCK_CLASS, stack]);
  return rows[0]!.locked;
}

export async function unlockCommit(client: PoolClient, stack: string): Promise<void> {
  await client.query("SELECT pg_advisory_unlock($1, hashtext($2))", [COMMIT_LOCK_CLASS, stack]);
}

/** Stacks (matching the LIKE pattern) with claims not yet committed to their tenants file, the oldest claim first. */
export async function stacksWithPendingClaims(db: Db, stackPattern: string): Promise<string[]> {
  const { rows } = await db.query<{ stack: string }>(
    "SELECT stack FROM onboarding_pool WHERE stack LIKE $1 AND claimed_by IS NOT NULL AND NOT bound GROUP BY stack ORDER BY min(claimed_at), stack",
    [stackPattern],
  );
  return rows.map((row) => row.stack);
}

export interface PendingClaim {
  tenantId: string;
  username: string;
  email: string;
  claimedAt: Date;
}

/** A stack's claims not yet in its tenants file, oldest first. */
export async function pendingClaims(db: Db, stack: string): Promise<PendingClaim[]> {
  const { rows } = await db.query<{ tenant_id: string; username: string; email: string; claimed_at: Date }>(
    `SELECT p.tenant_id, s.username, s.email, p.claimed_at FROM onboarding_pool p JOIN onboarding_signups s ON s.username = p.claimed_by
     WHERE p.stack = $1 AND NOT p.bound ORDER BY p.claimed_at, p.tenant_id`,
    [stack],
  );
  return rows.map((row) => ({ tenantId: row.tenant_id, username: row.username, email: row.email, claimedAt: row.claimed_at }));
}

/** Tenant IDs of a stack's pooled entries claimed but not yet committed: a refill counts them as taken, not pooled. */
export async function pendingClaimIds(db: Db, stack: string): Promise<string[]> {
  const { rows } = await db.query<{ tenant_id: string }>("SELECT tenant_id FROM onboarding_pool WHERE stack = $1 AND claimed_by IS NOT NULL AND NOT bound", [
    stack,
  ]);
  return rows.map((row) => row.tenant_id);
}

/**
 * These claims' bindings are in the tenants file (pushed in git mode), in one
 * transaction: bound (so the stack's next update records them: registry DUE),
 * and each ready signup's welcome mail queued.
 */
export async function recordClaimsBound(pool: Pool, tenantIds: readonly string[]): Promise<void> {
  if (tenantIds.length === 0) return;
  await withTransaction(pool, async (client) => {
    const { rows } = await client.query<{ claimed_by: string }>(
      "UPDATE onboarding_pool SET bound = true WHERE tenant_id = ANY($1) AND claimed_by IS NOT NULL RETURNING claimed_by",
      [tenantIds],
    );
    const usernames = rows.map((row) => row.claimed_by);
    await client.query("UPDATE onboarding_signups SET next_attempt_at = now() WHERE username = ANY($1)", [usernames]);
    await client.query(
      `INSERT INTO onboarding_outbox (idempotency_key, username, tenant_id, recipient, message_id)
       SELECT 'welcome:' || tenant_id, username, tenant_id, email, 'welcome-' || tenant_id FROM onboarding_signups
       WHERE username = ANY($1) AND status = 'ready' AND tenant_id IS NOT NULL
       ON CONFLICT (idempotency_key) DO NOTHING`,
      [usernames],
    );
  });
}

/**
 * The tenants file refused a claim (a person's commit removed or bound the
 * pooled entry, or added the name by hand): the claim is released (the row
 * dropped when the entry is `gone`) and the signup takes the path of an
 * update, as with an empty pool: `queued`, without the claimed tenant's ID,
 * domain or connection details (its DNS record, made already, has the same
 * name, and the update adopts it).
 */
export async function recordClaimRefused(pool: Pool, refused: { tenantId: string; username: string; gone: boolean; reason: string }): Promise<void> {
  await withTransaction(pool, async (client) => {
    await releaseClaim(client, refused.tenantId, refused.gone);
    await client.query(
      `UPDATE onboarding_signups SET status = 'queued', tenant_id = NULL, domain = NULL, ready_at = NULL,
              db_host = NULL, db_port = NULL, db_name = NULL, db_role = NULL,
              last_error = $2, next_attempt_at = now(), updated_at = now()
       WHERE username = $1 AND status IN ('ready', 'queued') AND (tenant_id = $3 OR tenant_id IS NULL)`,
      [
        refused.username,
        `the claim of pooled tenant ${refused.tenantId} was refused by the tenants file (${refused.reason}); an update makes the tenant`,
        refused.tenantId,
      ],
    );
  });
}

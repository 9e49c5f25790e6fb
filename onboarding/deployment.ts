/**
 * One deployment of one stack: take the stack's advisory lock, pick every
 * signup that is due (the batch), add them to the tenants file (a local file,
 * or a commit pushed to the tenants repository: see tenants-repo.ts), run the
 * engine once on exactly that file, and record the outcome. Signups that arrive meanwhile stay `queued` for the next batch.
 *
 * The advisory lock is held on one control-database session for the whole
 * deployment: two processes never run the engine on the same stack, and if
 * the process dies PostgreSQL releases the lock by itself. The next
 * deployment then marks the dead one `interrupted` and retries its signups.
 */
import { hostname } from "node:os";
import { resolve } from "node:path";
import type { Pool, PoolClient } from "pg";
import { LOCK_CLASS } from "./db";
import { failureReason, type Deployer } from "./deployer";
import { LocalTenantsFile, TenantsFileInvalidError, type TenantsStore } from "./tenants-repo";

export interface Backoff {
  /** Delay before the first retry. */
  baseMs: number;
  /** Longest delay between retries. */
  capMs: number;
  /** After this many failed attempts a signup stays `failed` until a person retries it. */
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 10_000, capMs: 10 * 60_000, maxAttempts: 8 };

/** Exponential: base, 2 base, 4 base, ... capped. `attempts` counts the failed attempts so far (>= 1). */
export function retryDelayMs(backoff: Backoff, attempts: number): number {
  return Math.min(backoff.capMs, backoff.baseMs * 2 ** Math.max(0, attempts - 1));
}

export type DeploymentOutcome =
  { ran: false; reason: "locked" | "nothing to do" } | { ran: true; deploymentId: string; ok: boolean; usernames: string[]; error?: string };

export interface DeploymentOptions {
  stack: string;
  deployer: Deployer;
  /** Where signups are written; default: the deployer's tenants file on this host. Its file must be the deployer's. */
  tenants?: TenantsStore;
  backoff?: Backoff;
  log?: (line: string) => void;
}

/** SQL condition for a signup a deployment should pick up, whatever its stack. */
export const DUE = `(status IN ('queued', 'provisioning') OR (status = 'failed' AND retry AND next_attempt_at <= now()))`;
/** SQL predicate for signups a deployment should pick up (parameter $1: stack). */
export const DUE_SIGNUPS = `stack = $1 AND ${DUE}`;

async function tx<T>(client: PoolClient, body: () => Promise<T>): Promise<T> {
  await client.query("BEGIN");
  try {
    const result = await body();
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

export async function tryStackLock(client: PoolClient, stack: string): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked", [LOCK_CLASS, stack]);
  return rows[0]!.locked;
}

export async function unlockStack(client: PoolClient, stack: string): Promise<void> {
  await client.query("SELECT pg_advisory_unlock($1, hashtext($2))", [LOCK_CLASS, stack]);
}

export async function runDeployment(pool: Pool, options: DeploymentOptions): Promise<DeploymentOutcome> {
  const { stack, deployer } = options;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const log = options.log ?? (() => undefined);
  const tenants = options.tenants ?? new LocalTenantsFile(deployer.tenantsFile);
  if (resolve(tenants.file) !== resolve(deployer.tenantsFile)) {
    throw new Error(`the service writes ${tenants.file} but the stack deploys ${deployer.tenantsFile}; they must be the same file`);
  }
  const client = await pool.connect();
  let locked = false;
  try {
    locked = await tryStackLock(client, stack);
    if (!locked) return { ran: false, reason: "locked" };

    const batch = await tx(client, async () => {
      // We hold the lock, so a deployment still marked running has lost its process.
      await client.query(
        `UPDATE onboarding_deployments SET status = 'interrupted', finished_at = now(),
                error = 'the process running this deployment stopped; its signups were retried'
         WHERE stack = $1 AND status = 'running'`,
        [stack],
      );
      const { rows } = await client.query<{ username: string; email: string }>(
        `SELECT username, email FROM onboarding_signups WHERE ${DUE_SIGNUPS} ORDER BY created_at, username FOR UPDATE`,
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
        `UPDATE onboarding_signups SET status = 'provisioning', deployment_id = $2, attempts = attempts + 1, updated_at = now()
         WHERE username = ANY($1)`,
        [usernames, deploymentId],
      );
      return { deploymentId, signups: rows };
    });
    if (!batch) return { ran: false, reason: "nothing to do" };
    const { deploymentId, signups } = batch;
    const usernames = signups.map((signup) => signup.username);
    log(`deployment ${deploymentId}: ${usernames.length} signup(s): ${usernames.join(", ")}`);

    const fail = async (reason: string, retryable: boolean) => {
      await tx(client, async () => {
        await client.query(
          `UPDATE onboarding_signups
           SET status = 'failed', last_error = $2, updated_at = now(),
               retry = $3 AND attempts < $4,
               next_attempt_at = now() + make_interval(secs => LEAST($5::float8 * power(2, GREATEST(attempts - 1, 0)), $6::float8) / 1000)
           WHERE deployment_id = $1 AND status = 'provisioning'`,
          [deploymentId, reason, retryable, backoff.maxAttempts, backoff.baseMs, backoff.capMs],
        );
        await client.query("UPDATE onboarding_deployments SET status = 'failed', error = $2, finished_at = now() WHERE id = $1", [deploymentId, reason]);
      });
      log(`deployment ${deploymentId} failed: ${reason}`);
      return { ran: true as const, deploymentId, ok: false, usernames, error: reason };
    };

    // 1. The tenants file (a local file, or a commit pushed to the tenants repository): add every
    //    signup of the batch that is not in it yet; a signup the file rejects fails alone, for good.
    let added;
    try {
      added = await tenants.addSignups(signups);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return await fail(error instanceof TenantsFileInvalidError ? message : `the tenants file could not be updated, nothing was deployed: ${message}`, true);
    }
    for (const { username, reason } of added.rejected) {
      await client.query("UPDATE onboarding_signups SET status = 'failed', retry = false, last_error = $2, updated_at = now() WHERE username = $1", [
        username,
        reason,
      ]);
    }
    if (added.commit) log(`deployment ${deploymentId}: deploying tenants commit ${added.commit}`);

    // 2. The engine.
    await client.query("UPDATE onboarding_deployments SET engine_started_at = now() WHERE id = $1", [deploymentId]);
    let result;
    try {
      result = await deployer.deploy();
    } catch (error) {
      return await fail(failureReason(error), true);
    }

    // 3. Statuses from the outputs, for every signup of the stack (a retry or a hand edit may
    //    have made earlier ones ready or suspended too), and one welcome mail per ready tenant.
    await tx(client, async () => {
      const deployed = Object.entries(result.tenants).map(([username, tenant]) => ({ username, ...tenant }));
      await client.query(
        `UPDATE onboarding_signups s
         SET status = CASE WHEN d.status = 'suspended' THEN 'suspended' ELSE 'ready' END,
             tenant_id = d."tenantId", domain = d.domain, last_error = NULL, retry = true,
             ready_at = COALESCE(s.ready_at, now()), updated_at = now()
         FROM json_to_recordset($2::json) AS d(username text, "tenantId" text, domain text, status text)
         WHERE s.stack = $1 AND s.username = d.username
           AND (s.status IS DISTINCT FROM CASE WHEN d.status = 'suspended' THEN 'suspended' ELSE 'ready' END
                OR s.tenant_id IS DISTINCT FROM d."tenantId" OR s.domain IS DISTINCT FROM d.domain)`,
        [stack, JSON.stringify(deployed)],
      );
      await client.query(
        `UPDATE onboarding_signups SET status = 'failed', last_error = 'the update succeeded but the tenant is not in the stack outputs',
                retry = attempts < $2, updated_at = now()
         WHERE deployment_id = $1 AND status = 'provisioning'`,
        [deploymentId, backoff.maxAttempts],
      );
      await client.query(
        `INSERT INTO onboarding_outbox (idempotency_key, username, tenant_id, recipient, message_id)
         SELECT 'welcome:' || tenant_id, username, tenant_id, email, 'welcome-' || tenant_id
         FROM onboarding_signups WHERE stack = $1 AND status = 'ready' AND tenant_id IS NOT NULL
         ON CONFLICT (idempotency_key) DO NOTHING`,
        [stack],
      );
      await client.query("UPDATE onboarding_deployments SET status = 'succeeded', finished_at = now(), engine_seconds = $2, seed_seconds = $3 WHERE id = $1", [
        deploymentId,
        result.engineSeconds,
        result.seedSeconds ?? null,
      ]);
    });
    log(`deployment ${deploymentId} succeeded in ${result.engineSeconds.toFixed(1)} s`);
    return { ran: true, deploymentId, ok: true, usernames };
  } finally {
    if (locked) await unlockStack(client, stack).catch(() => undefined);
    client.release();
  }
}

/**
 * Serialises seeders of one database. PostgreSQL scopes advisory locks to the
 * current database, so seeders of different tenants never wait for each
 * other. Session-level locks nest, so code holding the lock may call other
 * code that takes it again.
 *
 * The tenant can take the same lock in its own database, so the seeder never
 * waits for it unboundedly: it tries (pg_try_advisory_lock) until `waitMs`
 * has passed, then fails with a message saying who holds it and that the
 * next `pulumi up` retries.
 */
import type { ClientBase } from "pg";

// Arbitrary, fixed: "DGP seed" in ASCII. Every seeder must use the same key.
export const SEED_LOCK_KEY = BigInt("0x4447502073656564").toString();
/** How long a seeder waits for the seed lock, and for any lock (lock_timeout), by default. */
export const SEED_LOCK_WAIT_MS = 10_000;
const RETRY_EVERY_MS = 200;

export class SeedLockTimeout extends Error {
  override readonly name = "SeedLockTimeout";
}

async function acquire(client: ClientBase, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock($1::bigint) AS locked", [SEED_LOCK_KEY]);
    if (rows[0]?.locked) return;
    if (Date.now() >= deadline) {
      throw new SeedLockTimeout(
        `another session holds the seed lock (advisory lock ${SEED_LOCK_KEY}) on this database and kept it for ${waitMs} ms; ` +
          "the next pulumi up retries (pg_locks shows the holder's pid)",
      );
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_EVERY_MS));
  }
}

export async function withSeedLock<T>(client: ClientBase, work: () => Promise<T>, waitMs = SEED_LOCK_WAIT_MS): Promise<T> {
  await acquire(client, waitMs);
  let succeeded = false;
  try {
    const result = await work();
    succeeded = true;
    return result;
  } finally {
    try {
      await client.query("SELECT pg_advisory_unlock($1::bigint)", [SEED_LOCK_KEY]);
    } catch (error) {
      // After a failure the connection may be unusable; closing it releases
      // the lock, and the original error is the one worth reporting.
      // eslint-disable-next-line no-unsafe-finally -- only after success, when no other error is in flight
      if (succeeded) throw error;
    }
  }
}

/**
 * Bounds the session's waits where the caller left them unbounded (0):
 * lock_timeout for a table lock a tenant holds, statement_timeout for the rest.
 */
export async function boundSessionWaits(client: ClientBase, lockTimeoutMs = SEED_LOCK_WAIT_MS, statementTimeoutMs = 300_000): Promise<void> {
  const { rows } = await client.query<{ lock: string; statement: string }>(
    "SELECT current_setting('lock_timeout') AS lock, current_setting('statement_timeout') AS statement",
  );
  if (rows[0]?.lock === "0") await client.query("SELECT set_config('lock_timeout', $1, false)", [`${lockTimeoutMs}ms`]);
  if (rows[0]?.statement === "0") await client.query("SELECT set_config('statement_timeout', $1, false)", [`${statementTimeoutMs}ms`]);
}

/** What a timed-out wait means for a tenant, or undefined for any other error. */
export function lockFailureReason(error: unknown): string | undefined {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof SeedLockTimeout) return cause.message;
    const code = (cause as { code?: string }).code;
    if (code === "55P03") {
      return `another session holds a lock this seed needs (${cause.message}); the next pulumi up retries`;
    }
    if (code === "57014") {
      return `a statement ran past the seed's statement_timeout (${cause.message}), e.g. waiting behind another session; the next pulumi up retries`;
    }
  }
  return undefined;
}

/**
 * Serialises seeders of one database. PostgreSQL scopes advisory locks to the
 * current database, so seeders of different tenants never wait for each
 * other. Session-level locks nest, so code holding the lock may call other
 * code that takes it again.
 */
import type { ClientBase } from "pg";

// Arbitrary, fixed: "DGP seed" in ASCII. Every seeder must use the same key.
const SEED_LOCK_KEY = BigInt("0x4447502073656564").toString();

export async function withSeedLock<T>(client: ClientBase, work: () => Promise<T>): Promise<T> {
  await client.query("SELECT pg_advisory_lock($1::bigint)", [SEED_LOCK_KEY]);
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

/**
 * The signup registry (onboarding/registry.ts) against a real PostgreSQL: a
 * failed batch's signups wait exactly the backoff's delay (backoff.ts) for
 * their own attempt count, the one definition of the retry backoff.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import { retryDelayMs, type Backoff } from "../../onboarding/backoff";
import { createPool, migrate } from "../../onboarding/db";
import { claimBatch, recordFailure, registerSignup } from "../../onboarding/registry";

let server: LocalPostgres;
let pool: ReturnType<typeof createPool>;

beforeAll(async () => {
  server = await startLocalPostgres();
  const admin = await server.connect();
  await admin.query("CREATE DATABASE registry_test");
  await admin.end();
  pool = createPool(server.url("registry_test"), 2);
  await migrate(pool);
});
afterAll(async () => {
  await pool?.end();
  await server?.stop();
});

describe("recordFailure", () => {
  it("sets each signup's next attempt to now + retryDelayMs(its attempts), and stops retrying at maxAttempts", async () => {
    const backoff: Backoff = { baseMs: 1000, capMs: 5000, maxAttempts: 4 };
    for (const [i, username] of ["first_try", "third_try", "last_try"].entries()) {
      await registerSignup(pool, { username, email: `${username}@example.com`, digest: `digest-${i}`, rememberSeconds: 60 }, async () => ({ stack: "s" }));
    }
    // Earlier failed attempts: the batch below is the 1st, 3rd and 4th (last) attempt of these signups.
    await pool.query("UPDATE onboarding_signups SET attempts = 2 WHERE username = 'third_try'");
    await pool.query("UPDATE onboarding_signups SET attempts = 3 WHERE username = 'last_try'");

    const client = await pool.connect();
    try {
      const batch = await claimBatch(client, "s");
      expect(batch!.signups.map((signup) => signup.username)).toEqual(["first_try", "third_try", "last_try"]);
      await recordFailure(client, batch!.deploymentId, { reason: "error: connection refused", retryable: true, backoff });
    } finally {
      client.release();
    }

    const { rows } = await pool.query<{ username: string; attempts: number; status: string; retry: boolean; last_error: string; delay_ms: number }>(
      `SELECT username, attempts, status, retry, last_error, extract(epoch FROM next_attempt_at - updated_at)::float8 * 1000 AS delay_ms
       FROM onboarding_signups ORDER BY created_at, username`,
    );
    expect(rows.map((row) => [row.username, row.attempts, row.status, row.retry, row.last_error])).toEqual([
      ["first_try", 1, "failed", true, "error: connection refused"],
      ["third_try", 3, "failed", true, "error: connection refused"],
      ["last_try", 4, "failed", false, "error: connection refused"],
    ]);
    for (const row of rows) expect(row.delay_ms).toBeCloseTo(retryDelayMs(backoff, row.attempts), 3);
    expect(rows.map((row) => Math.round(row.delay_ms))).toEqual([1000, 4000, 5000]);
    const { rows: deployments } = await pool.query("SELECT status, error FROM onboarding_deployments");
    expect(deployments).toEqual([{ status: "failed", error: "error: connection refused" }]);
  });
});

describe("retryDelayMs", () => {
  it("doubles from the base and stops at the cap", () => {
    const backoff = { baseMs: 10_000, capMs: 60_000 };
    expect([1, 2, 3, 4, 5, 10].map((n) => retryDelayMs(backoff, n))).toEqual([10_000, 20_000, 40_000, 60_000, 60_000, 60_000]);
  });
});

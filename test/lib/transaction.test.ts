/** The one transaction helper (lib/transaction.ts), on a recording stand-in for a client and a pool. */
import { Pool, type PoolClient } from "pg";
import { describe, expect, it } from "vitest";
import { withTransaction } from "../../lib/transaction";

function fakeClient() {
  const log: string[] = [];
  const client = {
    query: async (text: string) => {
      log.push(text);
      return { rows: [], rowCount: 0 };
    },
    release: () => log.push("release"),
  } as unknown as PoolClient;
  return { client, log };
}

/** A pg Pool whose connect() hands out the fake client. */
function fakePool(client: PoolClient): Pool {
  const pool = Object.create(Pool.prototype) as Pool;
  (pool as unknown as { connect: () => Promise<PoolClient> }).connect = async () => client;
  return pool;
}

describe("withTransaction", () => {
  it("on a pool: BEGIN, the body, COMMIT, and the client released", async () => {
    const { client, log } = fakeClient();
    const result = await withTransaction(fakePool(client), async (tx) => {
      await tx.query("UPDATE t SET x = 1");
      return 42;
    });
    expect(result).toBe(42);
    expect(log).toEqual(["BEGIN", "UPDATE t SET x = 1", "COMMIT", "release"]);
  });

  it("on a pool: an error rolls back, is rethrown, and the client is released", async () => {
    const { client, log } = fakeClient();
    await expect(
      withTransaction(fakePool(client), async (tx) => {
        await tx.query("UPDATE t SET x = 1");
        throw new Error("refused");
      }),
    ).rejects.toThrow("refused");
    expect(log).toEqual(["BEGIN", "UPDATE t SET x = 1", "ROLLBACK", "release"]);
  });

  it("on a client (one holding a session lock): the same transaction, and the client stays open", async () => {
    const { client, log } = fakeClient();
    await withTransaction(client, async (tx) => {
      expect(tx).toBe(client);
      await tx.query("SELECT 1");
    });
    await expect(withTransaction(client, async () => Promise.reject(new Error("no")))).rejects.toThrow("no");
    expect(log).toEqual(["BEGIN", "SELECT 1", "COMMIT", "BEGIN", "ROLLBACK"]);
  });
});

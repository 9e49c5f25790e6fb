/**
 * The one transaction helper: `body` runs between BEGIN and COMMIT; an error
 * rolls back and is rethrown. Given a pool, it takes a client for the
 * transaction and releases it afterwards; given a client (one that holds a
 * session lock, say), it runs on that client and leaves it open.
 */
import { Pool, type PoolClient } from "pg";

export async function withTransaction<T>(db: Pool | PoolClient, body: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = db instanceof Pool ? await db.connect() : db;
  try {
    await client.query("BEGIN");
    try {
      const result = await body(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    }
  } finally {
    if (client !== db) client.release();
  }
}

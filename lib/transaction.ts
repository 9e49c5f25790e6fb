/**
 * The one transaction helper: `body` runs between BEGIN and COMMIT; an error
 * rolls back and is rethrown. Given a pool, it takes a client for the
 * transaction and releases it afterwards; given a client (one that holds a
 * session lock, say, or the seed's or the builtin provider's own
 * connection), it runs on that client and leaves it open.
 */
import { Pool, type ClientBase, type PoolClient } from "pg";

export function withTransaction<T>(db: Pool, body: (client: PoolClient) => Promise<T>): Promise<T>;
export function withTransaction<C extends ClientBase, T>(db: C, body: (client: C) => Promise<T>): Promise<T>;
export async function withTransaction<T>(db: Pool | ClientBase, body: (client: any) => Promise<T>): Promise<T> {
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
    if (client !== db) (client as PoolClient).release();
  }
}

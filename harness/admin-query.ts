/** A query as the server's superuser, on a connection of its own (opened and closed for the call). */
import type { LocalPostgres } from "../local/embedded-postgres";

export async function adminQuery<T = Record<string, unknown>>(
  server: LocalPostgres,
  query: string,
  values: unknown[] = [],
  database = "postgres",
): Promise<T[]> {
  const client = await server.connect(database);
  try {
    return (await client.query(query, values)).rows as T[];
  } finally {
    await client.end();
  }
}

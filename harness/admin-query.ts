/** One query on a connection of its own (opened and closed for the call): as the server's superuser, or at a database URL. */
import { Client } from "pg";
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

/** A query at `databaseUrl` (a tenant's connection URL, the control database's), as whoever the URL logs in as. */
export async function urlQuery<T = Record<string, any>>(databaseUrl: string, query: string, values: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(query, values)).rows as T[];
  } finally {
    await client.end();
  }
}

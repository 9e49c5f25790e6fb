/**
 * The builtin provider's admin sessions: connect as the server's admin with
 * bounded lock and statement timeouts, so a lock a tenant holds can never
 * stall an update for good.
 */
import { Client } from "pg";
import { errorMessage } from "../../lib/errors";

/** Admin sessions never wait long on a lock a tenant holds (e.g. on its schema). */
const ADMIN_LOCK_TIMEOUT_MS = 10_000;
const ADMIN_STATEMENT_TIMEOUT_MS = 120_000;

/** Connects as the admin (to `database` instead of the URL's, when given) and runs `work`. */
export async function asAdmin<T>(adminUrl: string, work: (client: Client) => Promise<T>, database?: string): Promise<T> {
  const url = new URL(adminUrl);
  if (database !== undefined) url.pathname = `/${encodeURIComponent(database)}`;
  const client = new Client({
    connectionString: url.toString(),
    application_name: "drivergigspro-provider",
    connectionTimeoutMillis: 15_000,
    lock_timeout: ADMIN_LOCK_TIMEOUT_MS,
    statement_timeout: ADMIN_STATEMENT_TIMEOUT_MS,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (error) {
    // The URL carries the admin password: name only the server.
    const { hostname, port, username } = url;
    throw new Error(
      `cannot reach PostgreSQL at ${hostname}:${port || 5432} as ${decodeURIComponent(username)}${database ? ` in database "${database}"` : ""} ` +
        `(${errorMessage(error)}); check the server's host, port, adminUser and adminPassword in the stack config`,
    );
  }
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

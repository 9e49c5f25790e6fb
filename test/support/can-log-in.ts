/** Whether PostgreSQL lets these credentials in: true, or the server's refusal message. */
import { Client, type ClientConfig } from "pg";

export async function canLogIn(connection: string | ClientConfig): Promise<true | string> {
  const client = new Client(typeof connection === "string" ? { connectionString: connection } : connection);
  try {
    await client.connect();
    await client.end();
    return true;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Whether a tenant's database URL gets it into its own database or, given `database`, into that one. */
export function canLogInWithUrl(databaseUrl: string, database?: string): Promise<true | string> {
  const url = new URL(databaseUrl);
  if (database) url.pathname = `/${database}`;
  return canLogIn(url.toString());
}

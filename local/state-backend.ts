/**
 * The local state database: `pulumi_state` on the embedded (or a test's)
 * PostgreSQL server, made here for `npm start`, the local onboarding service
 * and the tests. Its URL is engine/state-backend.ts's.
 */
import { Client, escapeIdentifier } from "pg";
import { postgresBackendUrl, STATE_DATABASE, type StateServer } from "../engine/state-backend";

/**
 * Creates the state database when missing and keeps it private: PUBLIC loses
 * CONNECT and TEMPORARY, so only the admin (and roles it names) can open it.
 * Returns the backend URL.
 */
export async function ensureStateDatabase(server: StateServer, database = STATE_DATABASE): Promise<string> {
  const client = new Client({
    host: server.host,
    port: server.port,
    user: server.adminUser,
    password: server.adminPassword,
    database: "postgres",
    connectionTimeoutMillis: 15_000,
  });
  await client.connect();
  try {
    const { rows } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (rows.length === 0) await client.query(`CREATE DATABASE ${escapeIdentifier(database)}`);
    await client.query(`REVOKE ALL ON DATABASE ${escapeIdentifier(database)} FROM PUBLIC`);
  } finally {
    await client.end();
  }
  return postgresBackendUrl(server, database);
}

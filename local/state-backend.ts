/**
 * Pulumi state in PostgreSQL: Pulumi's own DIY backend (`pulumi login
 * postgres://...`, pkg/backend/diy/postgres) keeps every state file, lock and
 * history entry as one row of a table, and each write is one statement, so a
 * killed `pulumi up` cannot leave a torn checkpoint the way a half-written
 * file can.
 *
 * Locally (`npm start`, the onboarding service's `--embedded` mode, the tests)
 * the state lives in its own database on the same server as the tenants,
 * `pulumi_state`, with CONNECT revoked from PUBLIC so no tenant role can
 * reach it. Production points PULUMI_BACKEND_URL at a dedicated server
 * instead (README, "Where state lives").
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Client, escapeIdentifier } from "pg";

export const STATE_DATABASE = "pulumi_state";

export interface StateServer {
  host: string;
  port: number;
  adminUser: string;
  adminPassword: string;
}

/** The backend URL Pulumi's CLI takes (`postgres://`; `postgresql://` is not recognised by the CLI). */
export function postgresBackendUrl(server: StateServer, database = STATE_DATABASE): string {
  const user = encodeURIComponent(server.adminUser);
  const password = encodeURIComponent(server.adminPassword);
  return `postgres://${user}:${password}@${server.host}:${server.port}/${database}?sslmode=disable&application_name=pulumi-state`;
}

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

/**
 * npm start's backend URL when its embedded server's password is kept in
 * `.state/` (see local/embedded-postgres.ts); undefined before the first npm start.
 */
export function localBackendUrl(projectDir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const passwordFile = join(projectDir, ".state", "postgres-superuser-password");
  if (!existsSync(passwordFile)) return undefined;
  const port = Number(env.DGP_LOCAL_PG_PORT || 55432);
  return postgresBackendUrl({ host: "127.0.0.1", port, adminUser: "postgres", adminPassword: readFileSync(passwordFile, "utf8").trim() });
}

/**
 * Where the Pulumi state is: Pulumi's own DIY backend in PostgreSQL (`pulumi
 * login postgres://...`, pkg/backend/diy/postgres) keeps every state file,
 * lock and history entry as one row of a table, and each write is one
 * statement, so a killed `pulumi up` cannot leave a torn checkpoint the way a
 * half-written file can.
 *
 * Locally (`npm start`, the local onboarding service, the tests) the state
 * lives in its own database on the same server as the tenants,
 * `pulumi_state`, with CONNECT revoked from PUBLIC so no tenant role can
 * reach it (made by local/state-backend.ts). Production points
 * PULUMI_BACKEND_URL at a dedicated server instead (README, "Where state lives").
 */
import { existsSync, readFileSync } from "node:fs";
import { localPostgresFiles, localPostgresPort } from "./paths";

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
 * npm start's backend URL when its embedded server's password is kept in
 * `.state/` (see local/embedded-postgres.ts); undefined before the first npm start.
 */
export function localBackendUrl(projectDir: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const { passwordFile } = localPostgresFiles(projectDir);
  if (!existsSync(passwordFile)) return undefined;
  const port = localPostgresPort(env);
  return postgresBackendUrl({ host: "127.0.0.1", port, adminUser: "postgres", adminPassword: readFileSync(passwordFile, "utf8").trim() });
}

/**
 * Which PostgreSQL a test runs against: the embedded one (the package's major,
 * 18 today) or Debian's PostgreSQL 15 (local/system-postgres.ts). Suites that
 * must hold on every supported major take a `PostgresKind`; the end-to-end
 * suite reads it from E2E_POSTGRES.
 */
import { startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import { DEBIAN_POSTGRES_15, startSystemPostgres } from "../../local/system-postgres";

export type PostgresKind = "embedded" | "15";
export const POSTGRES_KINDS: readonly PostgresKind[] = ["embedded", "15"];
export const POSTGRES_ENV = "E2E_POSTGRES";

/** E2E_POSTGRES: "embedded" (default) or "15". */
export function postgresKindFromEnv(env: NodeJS.ProcessEnv = process.env): PostgresKind {
  const value = env[POSTGRES_ENV] ?? "embedded";
  if (value === "" || value === "embedded") return "embedded";
  if (value === "15") return "15";
  throw new Error(`${POSTGRES_ENV}=${JSON.stringify(value.slice(0, 40))}: use "embedded" or "15"`);
}

export function startTestPostgres(kind: PostgresKind): Promise<LocalPostgres> {
  return kind === "15" ? startSystemPostgres({ binDir: DEBIAN_POSTGRES_15 }) : startLocalPostgres();
}

/** The running server's major version, e.g. "15", read from the server itself. */
export async function serverMajor(server: LocalPostgres): Promise<string> {
  const client = await server.connect();
  try {
    return String(Math.floor(Number((await client.query("SHOW server_version_num")).rows[0].server_version_num) / 10000));
  } finally {
    await client.end();
  }
}

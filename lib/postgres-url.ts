/**
 * A `postgresql://user:password@host:port/db?sslmode=...` URL as `pg` client
 * settings: the one reading of connection URLs for the clients that connect
 * per tenant (usage, verify), with TLS when the URL asks for it.
 */
import type { ClientConfig } from "pg";

export function clientConfigFromUrl(url: string, options: { database?: string; defaultDatabase?: string; applicationName?: string } = {}): ClientConfig {
  const parsed = new URL(url);
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ""),
    port: Number(parsed.port || 5432),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    database: options.database ?? (decodeURIComponent(parsed.pathname.slice(1)) || options.defaultDatabase),
    ssl: ["require", "verify-ca", "verify-full"].includes(parsed.searchParams.get("sslmode") ?? "") ? { rejectUnauthorized: false } : false,
    ...(options.applicationName !== undefined ? { application_name: options.applicationName } : {}),
    connectionTimeoutMillis: 10_000,
  };
}

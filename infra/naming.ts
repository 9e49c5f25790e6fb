/**
 * How a tenant's names are derived. Pure functions: the Pulumi program, the
 * CLI and the tests all compute names here, so they can never disagree.
 */
import { usernameToLabel } from "../tenants/schema";

/** The stack config's defaults for names (infra/config.ts uses these; so does the CLI before a deployment). */
export const DEFAULT_APP_NAME = "drivergigspro";
export const DEFAULT_RECORD_TEMPLATE = "{user}-{app}";

/** Database and role name: `drivergigspro_a1b2c3d4`, lower case so it never needs quoting. */
export function databaseName(appName: string, tenantId: string): string {
  return `${appName}_${tenantId.toLowerCase()}`;
}

/** The tenant's DNS label from the stack's template, e.g. `john-driver-drivergigspro`. */
export function dnsLabel(template: string, appName: string, username: string): string {
  return template.replaceAll("{user}", usernameToLabel(username)).replaceAll("{app}", appName);
}

/** The tenant's fully-qualified host name, e.g. `john-driver-drivergigspro.example.com`. */
export function domainName(template: string, appName: string, zone: string, username: string): string {
  return `${dnsLabel(template, appName, username)}.${zone}`;
}

/** A RandomId's hex output as the support handle: 8 upper-case hex digits. */
export function tenantIdFromHex(hex: string): string {
  return hex.toUpperCase();
}

/** A libpq URL; every part is percent-encoded, so no value can break out of its slot. */
export function databaseUrl(parts: { user: string; password: string; host: string; port: number; database: string; sslmode: string }): string {
  const host = parts.host.includes(":") ? `[${parts.host}]` : parts.host;
  return (
    `postgresql://${encodeURIComponent(parts.user)}:${encodeURIComponent(parts.password)}` +
    `@${host}:${parts.port}/${encodeURIComponent(parts.database)}?sslmode=${encodeURIComponent(parts.sslmode)}`
  );
}

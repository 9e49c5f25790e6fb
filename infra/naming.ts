/**
 * How a tenant's names are derived. Pure functions: the Pulumi program, the
 * CLI, the tenants file's schema and the tests all compute names here, so they
 * can never disagree. Imports nothing, so anything may import it.
 */

/** The stack config's defaults for names (infra/config.ts uses these; so does the CLI before a deployment). */
export const DEFAULT_APP_NAME = "drivergigspro";
export const DEFAULT_RECORD_TEMPLATE = "{user}-{app}";

/** The tenant ID's digits: a 4-byte RandomId in upper-case hex, e.g. `A1B2C3D4`. */
const TENANT_ID_DIGITS = "[0-9A-F]{8}";

/** A tenant ID, the support handle and (in lower case) the suffix of every name: 8 upper-case hex digits. */
export const TENANT_ID_PATTERN = new RegExp(`^${TENANT_ID_DIGITS}$`);

/** The DNS label a username maps to: underscores become hyphens. */
export function usernameToLabel(username: string): string {
  return username.replace(/_/g, "-");
}

/** Database and role name: `drivergigspro_a1b2c3d4`, lower case so it never needs quoting. */
export function databaseName(appName: string, tenantId: string): string {
  return `${appName}_${tenantId.toLowerCase()}`;
}

/**
 * Every tenant database (and role) name of an app, `^drivergigspro_([0-9a-f]{8})$`, capturing
 * the tenant ID: a regular expression for JavaScript and for PostgreSQL's `~` alike.
 */
export function databaseNamePattern(appName: string): string {
  return `^${appName}_(${TENANT_ID_DIGITS.toLowerCase()})$`;
}

/** The tenant ID of a database named by databaseName (in any case), or undefined. */
export function tenantIdOfDatabase(appName: string, database: string): string | undefined {
  return new RegExp(databaseNamePattern(appName), "i").exec(database)?.[1]?.toUpperCase();
}

/** The tenant's DNS label from the stack's template, e.g. `john-driver-drivergigspro`. */
export function dnsLabel(template: string, appName: string, username: string): string {
  return template.replaceAll("{user}", usernameToLabel(username)).replaceAll("{app}", appName);
}

/** The tenant's fully-qualified host name, e.g. `john-driver-drivergigspro.example.com`. */
export function domainName(template: string, appName: string, zone: string, username: string): string {
  return `${dnsLabel(template, appName, username)}.${zone}`;
}

/**
 * The Pulumi name of a tenant's component (and the prefix of its children's):
 * its tenant ID as written, e.g. `A1B2C3D4`. Upper case, so it can never be a
 * username (the names stacks deployed before IDs were allocated in the file
 * used, kept as aliases), and stable for the tenant's life whatever its username.
 */
export function tenantResourceName(tenantId: string): string {
  return tenantId;
}

/**
 * The marker (a COMMENT) on a tenant's role and database: which tenant of which
 * stack they belong to. A create adopts an existing role or database only when
 * its marker names the same tenant of the same stack.
 */
export function tenantMarker(tenantId: string, stack: string): string {
  return `drivergigspro tenant ${tenantId} of stack ${stack}`;
}

/** What a marker names: the tenant and stack, or (markers of older programs) only the role; undefined for anything else. */
export function parseTenantMarker(comment: string | null | undefined): { tenantId: string; stack: string } | { role: string } | undefined {
  if (comment === null || comment === undefined) return undefined;
  const current = /^drivergigspro tenant ([0-9A-F]{8}) of stack (\S+)$/.exec(comment);
  if (current) return { tenantId: current[1]!, stack: current[2]! };
  const legacy = /^drivergigspro tenant database of role (\S+)$/.exec(comment);
  return legacy ? { role: legacy[1]! } : undefined;
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

/**
 * What usage tracking reads: the stack's `tenants` output (no secrets needed)
 * and one admin connection per PostgreSQL server. Plans, limits and the seed
 * version are optional in the outputs: older stacks do not export them.
 */
import { redactSecrets } from "../lib/redact";
import { z } from "zod";
import { TENANT_ID_PATTERN } from "../infra/naming";
import { tenantSummarySchema } from "../infra/outputs";

export const limitsSchema = z.object({
  connectionLimit: z.number().int().optional(),
  statementTimeoutMs: z.number().int().optional(),
  tempFileLimitMb: z.number().int().optional(),
  storageQuotaMb: z.number().optional(),
  storageHardLimitMb: z.number().optional(),
});

/**
 * A tenant's summary as infra/outputs.ts defines it (the one owner of the
 * outputs' shape), read leniently where older stacks wrote less: limits may
 * lack fields, and seedVersion was once a number.
 */
const summary = tenantSummarySchema.shape;
export const usageTenantSchema = z.object({
  tenantId: summary.tenantId.regex(TENANT_ID_PATTERN, { error: "tenantId must be 8 upper-case hex digits" }),
  username: summary.username,
  database: summary.database.min(1),
  /** The tenant's role; absent in hand-written outputs: the database's name (they are the same). */
  role: summary.role.min(1).optional(),
  server: summary.server.min(1),
  status: summary.status,
  plan: summary.plan,
  limits: limitsSchema.partial().optional(),
  seedVersion: z.union([z.string(), z.number()]).optional(),
});
export type UsageTenant = z.infer<typeof usageTenantSchema>;

/** Only `tenants` is needed; `connections` (secrets) is ignored when present. */
export const usageOutputsSchema = z.object({ tenants: z.record(z.string(), usageTenantSchema) });

/** Tenants from `pulumi stack output --json`, sorted by tenant ID; throws naming the entry. */
export function tenantsFromStackOutputs(outputs: unknown): UsageTenant[] {
  const parsed = usageOutputsSchema.safeParse(outputs);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`the stack outputs have no usable "tenants" (${issue.path.join(".")}: ${issue.message}); run "pulumi up" first`);
  }
  return Object.values(parsed.data.tenants).sort((a, b) => a.tenantId.localeCompare(b.tenantId));
}

/** One server's admin connection, by the server name the tenants use. */
export interface AdminServer {
  name: string;
  url: string;
}

/** `NAME=postgresql://...` (the --admin-url flag, or USAGE_ADMIN_URLS, comma-separated). */
export function parseAdminUrl(text: string): AdminServer {
  const at = text.indexOf("=");
  const name = text.slice(0, at);
  const url = text.slice(at + 1);
  if (at <= 0 || !/^postgres(ql)?:\/\//.test(url)) {
    throw new Error(`--admin-url must be NAME=postgresql://user:password@host:port/database (got "${redactSecrets(text)}")`);
  }
  return { name, url };
}

/** The stack config's `servers` (as `pulumi config --json --show-secrets` gives them) as admin URLs. */
export function adminServersFromConfig(servers: readonly Record<string, unknown>[]): AdminServer[] {
  return servers.map((server, index) => {
    const name = String(server.name ?? "");
    const host = String(server.host ?? "");
    const password = server.adminPassword;
    if (!name || !host || typeof password !== "string") {
      throw new Error(`servers[${index}] in the stack config lacks name, host or adminPassword`);
    }
    const user = encodeURIComponent(String(server.adminUser ?? "postgres"));
    const database = encodeURIComponent(String(server.adminDatabase ?? "postgres"));
    const port = String(server.port ?? 5432);
    const sslmode = String(server.sslmode ?? "require");
    const hostPart = host.includes(":") ? `[${host}]` : host;
    return { name, url: `postgresql://${user}:${encodeURIComponent(password)}@${hostPart}:${port}/${database}?sslmode=${sslmode}` };
  });
}

/** "host:port" of an admin URL: how an unreachable server is named. */
export function serverAddress(server: AdminServer): string {
  try {
    const url = new URL(server.url);
    return `${url.hostname}:${url.port || 5432}`;
  } catch {
    return "?";
  }
}

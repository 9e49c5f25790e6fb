/**
 * The stack outputs' contract: what `index.ts` exports and every reader
 * (verify, the tenants CLI, npm start, the onboarding service, the program's
 * own last-update read) parses. Written once here, as zod schemas; the types
 * are inferred.
 */
import { z } from "zod";

/** Per username: what support sees about a tenant. Never a secret. */
export const tenantSummarySchema = z
  .object({
    username: z.string(),
    tenantId: z.string(),
    database: z.string(),
    role: z.string(),
    domain: z.string(),
    server: z.string(),
    /**
     * "active", "suspended", "removed" (a tombstone: its data is kept unless purged) or "pooled"
     * (a warm-pool tenant: keyed by its tenant ID, username = tenant ID, domain "", no one's yet).
     */
    status: z.string(),
    /** The tenant's plan and its limits (infra/config.ts plans); absent on tombstones and older stacks. */
    plan: z.string().optional(),
    limits: z
      .object({
        connectionLimit: z.number().int(),
        statementTimeoutMs: z.number().int(),
        idleInTransactionTimeoutMs: z.number().int(),
        tempFileLimitMb: z.number().int(),
        storageQuotaMb: z.number(),
        storageHardLimitMb: z.number(),
      })
      .partial()
      .optional(),
    /** The seed release the tenant runs (infra/rollout.ts); absent in outputs of older programs. */
    seedVersion: z.string().optional(),
    /** False once the tenant has no RandomId (its ID was allocated in the file); absent in outputs of older programs (it has one). */
    randomId: z.boolean().optional(),
  })
  .loose();

export const tenantConnectionSchema = z.object({ databaseUrl: z.string(), sessionSecret: z.string() });

/** `pulumi stack output --json --show-secrets`. */
export const stackOutputsSchema = z.object({
  tenants: z.record(z.string(), tenantSummarySchema),
  connections: z.record(z.string(), tenantConnectionSchema),
});

export type TenantSummaryOutput = z.infer<typeof tenantSummarySchema>;
export type StackOutputs = z.infer<typeof stackOutputsSchema>;

/** The outputs of several shards' stacks as one fleet (usernames are unique across shards). */
export function mergeOutputs(all: readonly StackOutputs[]): StackOutputs {
  return {
    tenants: Object.assign({}, ...all.map((outputs) => outputs.tenants)),
    connections: Object.assign({}, ...all.map((outputs) => outputs.connections)),
  };
}

/** Only the `tenants` output (no secrets needed), e.g. from `pulumi stack output --json` without --show-secrets. */
export function parseDeployedTenants(json: unknown): Record<string, TenantSummaryOutput> {
  return z.record(z.string(), tenantSummarySchema).parse((json as { tenants?: unknown } | null)?.tenants ?? {});
}

/** A stack never deployed has no outputs: read it as an empty fleet. */
export function parseStackOutputs(json: unknown): StackOutputs {
  const value = json as { tenants?: unknown; connections?: unknown } | null;
  return stackOutputsSchema.parse({ tenants: value?.tenants ?? {}, connections: value?.connections ?? {} });
}

/**
 * The `adopted` output: tenants whose existing role or database this update
 * imported (infra/adoption.ts). Their password, limits and seed come with the
 * next update, which the deployment paths run at once (engine/converge.ts).
 */
export function adoptedTenants(json: unknown): string[] {
  const parsed = z.array(z.string()).safeParse((json as { adopted?: unknown } | null)?.adopted);
  return parsed.success ? parsed.data : [];
}

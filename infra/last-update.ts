/**
 * What this stack's last update deployed, read from its own `tenants`
 * output (see fleet.ts) through a StackReference to itself. The program
 * uses it to keep every deployed tenant where and what it is: on its server
 * (placement.ts), with its tenant ID and database (identity.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { isPooled, type LocatedTenant } from "../tenants/schema";
import { tenantSummarySchema } from "./outputs";

/**
 * The part of a tenant's summary output (infra/outputs.ts) that later updates
 * must respect; status and seedVersion are absent in outputs of older programs.
 */
const deployedTenantSchema = tenantSummarySchema
  .pick({ server: true, tenantId: true, database: true, status: true, seedVersion: true, randomId: true })
  .partial({ status: true })
  .strip();
export type DeployedTenant = z.infer<typeof deployedTenantSchema>;

/** Username → what the last update recorded; empty for a stack never deployed. */
export type LastUpdate = Readonly<Record<string, DeployedTenant>>;

export interface StackRecord {
  tenants: LastUpdate;
  /** The database provider the stack was created with; absent before its first update. */
  databaseProvider?: string;
  /** The last update's `seedRollout` output (infra/rollout.ts), if it had one. */
  seedRollout?: { stable?: string };
}

export async function readLastUpdate(): Promise<LastUpdate> {
  return (await readStackRecord()).tenants;
}

/** What the last update recorded: its tenants and the settings a stack keeps for life. */
export async function readStackRecord(): Promise<StackRecord> {
  const self = new pulumi.StackReference("last-update", {
    name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
  });
  const [tenants, provider, rollout] = await Promise.all(["tenants", "databaseProvider", "seedRollout"].map((name) => self.getOutputDetails(name)));
  const stable = z.object({ stable: z.string() }).safeParse(rollout!.value);
  return {
    tenants: parseDeployed(tenants!.value),
    databaseProvider: typeof provider!.value === "string" ? provider!.value : undefined,
    seedRollout: stable.success ? { stable: stable.data.stable } : undefined,
  };
}

function parseDeployed(value: unknown): LastUpdate {
  // Outputs written by an older program may lack a field: then there is nothing to hold that tenant to.
  const parsed = z.record(z.string(), z.unknown()).safeParse(value ?? {});
  if (!parsed.success) return {};
  const deployed: Record<string, DeployedTenant> = {};
  for (const [username, summary] of Object.entries(parsed.data)) {
    const tenant = deployedTenantSchema.safeParse(summary);
    if (tenant.success) deployed[username] = tenant.data;
  }
  return deployed;
}

/**
 * The last update's record as the file's entries key it now: a pooled tenant
 * (recorded under its tenant ID) whose entry a signup has claimed since (the
 * same tenantId, now with a username) is that username's record, so the
 * update that records the claim keeps its server, ID, database and seed
 * release and changes nothing but the username and the DNS record.
 */
export function withClaimsBound(tenants: readonly LocatedTenant[], deployed: LastUpdate): LastUpdate {
  const bound: Record<string, DeployedTenant> = { ...deployed };
  for (const tenant of tenants) {
    if (isPooled(tenant) || tenant.tenantId === undefined || bound[tenant.username] !== undefined) continue;
    const pooled = bound[tenant.tenantId];
    if (pooled === undefined || pooled.status !== "pooled" || pooled.tenantId !== tenant.tenantId) continue;
    bound[tenant.username] = pooled;
    delete bound[tenant.tenantId];
  }
  return bound;
}

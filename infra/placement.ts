/**
 * Which server each tenant lives on, and the rule that keeps it there.
 *
 * A tenant is placed once: on its `server:` from the tenants file, else on
 * the stack's `defaultServer`. After that the last update's own outputs say
 * where it lives, and that wins over a later change of `defaultServer` or of
 * the order of `servers`. An explicit `server:` that contradicts it is an
 * error: Pulumi would create an empty database on the new server and leave
 * the tenant's data behind on the old one.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import type { TenantsProblem } from "../tenants/load";
import type { LocatedTenant } from "../tenants/schema";
import { serverFor, type FleetSettings } from "./config";

/** Username → server, as the last update of this stack recorded it. */
export type DeployedPlacement = Readonly<Record<string, string>>;

/** The part of the stack output `tenants` (see fleet.ts) that placement needs. */
const placementOutputSchema = z.record(z.string(), z.object({ server: z.string() }).loose());

/**
 * Reads the `tenants` output of this very stack's last update. A stack that
 * was never deployed has no outputs yet: every tenant is new.
 */
export async function readDeployedPlacement(): Promise<DeployedPlacement> {
  const self = new pulumi.StackReference("last-update", {
    name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
  });
  const { value } = await self.getOutputDetails("tenants");
  const parsed = placementOutputSchema.safeParse(value ?? {});
  if (!parsed.success) return {};
  return Object.fromEntries(Object.entries(parsed.data).map(([username, summary]) => [username, summary.server]));
}

export interface Placement {
  /** Username → the configured server it lives on. */
  servers: Map<string, string>;
  problems: TenantsProblem[];
}

export function placeTenants(settings: FleetSettings, tenants: readonly LocatedTenant[], deployed: DeployedPlacement): Placement {
  const known = settings.servers.map((server) => server.name);
  const servers = new Map<string, string>();
  const problems: TenantsProblem[] = [];
  const problem = (tenant: LocatedTenant, message: string) => problems.push({ line: tenant.line, username: tenant.username, message });

  for (const tenant of tenants) {
    const current = deployed[tenant.username];
    if (current !== undefined && !known.includes(current)) {
      problem(tenant, `lives on server "${current}", which is no longer in the stack config; put that server back (servers: ${known.join(", ")})`);
    } else if (current !== undefined && tenant.server !== undefined && tenant.server !== current) {
      problem(
        tenant,
        `lives on server "${current}"; moving it to "${tenant.server}" would create an empty database there and leave its data behind: write server: ${current}`,
      );
    } else if (tenant.server !== undefined && !known.includes(tenant.server)) {
      problem(tenant, `server "${tenant.server}" is not in the stack config (servers: ${known.join(", ")}); fix the entry or add the server`);
    } else {
      servers.set(tenant.username, current ?? serverFor(settings, tenant.server));
    }
  }
  return { servers, problems };
}

/**
 * Which server each tenant lives on, and the rule that keeps it there.
 *
 * A tenant is placed once: on its `server:` from the tenants file, else on
 * the stack's `defaultServer`. After that the last update says where it
 * lives (last-update.ts), and that wins over a later change of
 * `defaultServer` or of the order of `servers`. An explicit `server:` that
 * contradicts it is an error: Pulumi would create an empty database on the
 * new server and leave the tenant's data behind on the old one.
 */
import type { TenantsProblem } from "../tenants/load";
import type { LocatedTenant } from "../tenants/schema";
import { serverFor, type FleetSettings } from "./config";
import type { LastUpdate } from "./last-update";

export interface Placement {
  /** Username → the configured server it lives on. */
  servers: Map<string, string>;
  problems: TenantsProblem[];
}

export function placeTenants(settings: FleetSettings, tenants: readonly LocatedTenant[], deployed: LastUpdate): Placement {
  const known = settings.servers.map((server) => server.name);
  const servers = new Map<string, string>();
  const problems: TenantsProblem[] = [];
  const problem = (tenant: LocatedTenant, message: string) => problems.push({ line: tenant.line, username: tenant.username, message });

  for (const tenant of tenants) {
    const current = deployed[tenant.username]?.server;
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

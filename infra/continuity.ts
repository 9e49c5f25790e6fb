/**
 * Offboarding is explicit. Every tenant the last update deployed must still
 * have an entry in the tenants file: active, suspended, or a tombstone
 * (`status: removed`). A file that merely lacks one (a stale copy, a bad
 * merge, a service that deployed its own old copy) fails the update, naming
 * the tenant, its tenant ID and the file, before anything is declared; so no
 * copy of the file can remove anyone by leaving them out.
 */
import type { TenantsProblem } from "../tenants/load";
import type { LocatedTenant } from "../tenants/schema";
import type { LastUpdate } from "./last-update";

export function missingTenantProblems(tenants: readonly LocatedTenant[], deployed: LastUpdate): TenantsProblem[] {
  const present = new Set(tenants.map((tenant) => tenant.username));
  return Object.entries(deployed)
    .filter(([username]) => !present.has(username))
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([username, tenant]) => ({
      line: 0,
      username,
      message:
        `tenant ${tenant.tenantId} (database ${tenant.database}) was deployed by the last update but has no entry in this file; ` +
        `a tenant is never removed by leaving it out. Restore its entry, or offboard it explicitly with ` +
        `"npm run tenants -- remove ${username}" (writes status: removed, data kept)`,
    }));
}

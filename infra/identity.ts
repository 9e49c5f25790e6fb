/**
 * A deployed tenant keeps its tenant ID and its database name. Either
 * changing would make Pulumi create a new, empty database and role (the old
 * ones kept or dropped, but no longer the tenant's), so a change is refused
 * before anything is declared:
 * - a `tenantId:` pinned in the file that differs from the deployed one;
 * - a stack `appName` that renames every existing database.
 */
import type { TenantsProblem } from "../tenants/load";
import type { LocatedTenant } from "../tenants/schema";
import type { FleetSettings } from "./config";
import type { LastUpdate } from "./last-update";
import { idTakenMessage } from "../tenants/shards";
import { databaseName } from "./naming";

export function identityProblems(settings: FleetSettings, tenants: readonly LocatedTenant[], deployed: LastUpdate): TenantsProblem[] {
  const problems: TenantsProblem[] = [];
  for (const tenant of tenants) {
    const current = deployed[tenant.username];
    if (current === undefined) continue;
    const problem = (message: string) => problems.push({ line: tenant.line, username: tenant.username, message });
    if (current.status === "removed" && tenant.tenantId === undefined) {
      // Its RandomId went with the tombstone: without the ID it would get a new, empty database.
      problem(
        `was offboarded as tenant ${current.tenantId}; to bring it back onto its kept database write tenantId: ${current.tenantId} ` +
          `(npm run tenants -- resume ${tenant.username} does), or choose another username for a new tenant`,
      );
    } else if (tenant.tenantId !== undefined && tenant.tenantId !== current.tenantId) {
      problem(
        `was deployed as tenant ${current.tenantId}; pinning ${tenant.tenantId} would give it a new, empty database: write tenantId: ${current.tenantId} or remove the line`,
      );
    } else if (databaseName(settings.appName, current.tenantId) !== current.database) {
      problem(
        `its database is "${current.database}"; appName "${settings.appName}" would make it "${databaseName(settings.appName, current.tenantId)}", a new, empty one: put appName back`,
      );
    }
  }
  return problems;
}

/**
 * The database provider is chosen when a stack is created and kept for life:
 * switching between `postgresql` and `builtin` would hand every role and
 * database to a provider that has no record of them (every create would fail
 * on "already exists", every delete would be lost).
 */
export function databaseProviderProblem(settings: FleetSettings, deployedWith: string | undefined, stack: string): string | undefined {
  if (deployedWith === undefined || deployedWith === settings.databaseProvider) return undefined;
  return (
    `  drivergigspro:databaseProvider: stack "${stack}" was created with databaseProvider "${deployedWith}"; ` +
    `"${settings.databaseProvider}" would hand its roles and databases to a provider with no record of them. ` +
    `Set it back: pulumi config set drivergigspro:databaseProvider ${deployedWith} --stack ${stack}`
  );
}

/**
 * A pinned tenantId that this stack's last update deployed for another
 * username (active, suspended or a tombstone whose data is kept): refused,
 * naming both tenants and lines, before anything is declared.
 */
export function idOwnerProblems(tenants: readonly LocatedTenant[], deployed: LastUpdate): TenantsProblem[] {
  const owners = new Map(Object.entries(deployed).map(([username, tenant]) => [tenant.tenantId, username]));
  return tenants.flatMap((tenant) => {
    const owner = tenant.tenantId !== undefined ? owners.get(tenant.tenantId) : undefined;
    if (owner === undefined || owner === tenant.username) return [];
    const line = tenants.find((other) => other.username === owner)?.line;
    const where = `${line !== undefined ? `line ${line} of this file, ` : ""}deployed by this stack as database ${deployed[owner]!.database}`;
    return [{ line: tenant.line, username: tenant.username, message: idTakenMessage(tenant.tenantId!, { username: owner, where }) }];
  });
}

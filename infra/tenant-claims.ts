/**
 * Before anything is declared, the server is asked whether a tenant new to
 * this stack (or a tombstone brought back) may use its names: a role or
 * database `drivergigspro_<id>` that already exists must carry this tenant's
 * marker (tenant ID and stack, infra/naming.ts tenantMarker). One of another
 * tenant (another stack, a colliding ID) or without any marker is refused,
 * naming the tenant, its line and what was found, so the update changes
 * nothing. Both database providers: the builtin provider's create checks the
 * same again; with @pulumi/postgresql this is the check.
 *
 * Allowed besides a matching marker: for a tenant this stack itself deployed
 * under this ID (a tombstone brought back), an older program's marker or none;
 * a database of the admin's with no marker (a run killed between CREATE
 * DATABASE and its COMMENT: the builtin create adopts it only while empty);
 * a killed update's pending create handed over by the deployment paths.
 */
import type { TenantsProblem } from "../tenants/load";
import type { LocatedTenant } from "../tenants/schema";
import { readMarkers } from "./builtin-postgres/database-operations";
import { ownershipProblem } from "./builtin-postgres/operations";
import { serverAdminUrl, type FleetSettings } from "./config";
import type { LastUpdate } from "./last-update";
import { databaseName } from "./naming";
import { placeTenants } from "./placement";

export async function claimProblems(
  settings: FleetSettings,
  tenants: readonly LocatedTenant[],
  deployed: LastUpdate,
  stack: string,
  /** Usernames whose killed update's pending creates the deployment path hands over (infra/adoption.ts). */
  pending: ReadonlySet<string> = new Set(),
): Promise<TenantsProblem[]> {
  const live = tenants.filter((tenant) => tenant.status !== "removed");
  const placed = placeTenants(settings, live, deployed).servers;
  const candidates = live.filter(
    (tenant) => tenant.tenantId !== undefined && (deployed[tenant.username] === undefined || deployed[tenant.username]!.status === "removed"),
  );
  const problems: TenantsProblem[] = [];
  for (const tenant of candidates) {
    const server = settings.servers.find((candidate) => candidate.name === placed.get(tenant.username));
    // A tenant without a valid server fails the update in declareFleet, with the file's other problems.
    if (server === undefined) continue;
    const name = databaseName(settings.appName, tenant.tenantId!);
    const owner = { tenantId: tenant.tenantId!, stack, adoptLegacy: deployed[tenant.username]?.tenantId === tenant.tenantId };
    const found = await readMarkers(serverAdminUrl(server), name, name);
    const handedOver = pending.has(tenant.username);
    const messages: (string | undefined)[] = [];
    if (found.role !== undefined && !(handedOver && found.role === null)) messages.push(ownershipProblem("role", name, found.role, owner));
    if (found.database !== undefined) {
      const killedBetweenCreateAndMark = found.database === null && found.databaseOwner === found.admin;
      if (!killedBetweenCreateAndMark) {
        const olderDesign = owner.adoptLegacy && found.databaseOwner === name;
        if (!olderDesign) messages.push(ownershipProblem("database", name, found.database, owner, `owned by "${found.databaseOwner}"`));
      }
    }
    for (const message of messages) {
      if (message !== undefined) problems.push({ line: tenant.line, username: tenant.username, message: `on server "${server.name}": ${message}` });
    }
  }
  return problems;
}

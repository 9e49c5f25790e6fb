/**
 * The whole fleet: one PostgreSQL provider per configured server and one
 * `Tenant` per entry of the tenants file. Returns the stack outputs.
 */
import * as pulumi from "@pulumi/pulumi";
import { TenantsFileError, type TenantsProblem } from "../tenants/load";
import type { LocatedTenant } from "../tenants/schema";
import { planFor, type FleetSettings, type PlanLimits } from "./config";
import { builtinBackend, postgresqlProviderBackend } from "./database-backend";
import { missingTenantProblems } from "./continuity";
import { identityProblems, idOwnerProblems } from "./identity";
import type { DeployedTenant, LastUpdate } from "./last-update";
import type { Adoption } from "./adoption";
import { placeTenants } from "./placement";
import { planSeedRollout, type RolloutRecord } from "./rollout";
import { tenantResourceName } from "./naming";
import { Tenant } from "./tenant";

/** What support sees about a tenant: never a secret. */
export interface TenantSummary {
  username: string;
  tenantId: pulumi.Output<string>;
  database: pulumi.Output<string>;
  role: pulumi.Output<string>;
  domain: string;
  server: string;
  status: string;
  /** The tenant's plan and the limits it sets (read by usage/); absent on tombstones. */
  plan?: string;
  limits?: PlanLimits;
  /** The seed release it runs (infra/rollout.ts); for a suspended tenant, the one it had. */
  seedVersion?: pulumi.Output<string>;
  /** Whether it still has the RandomId older programs drew its ID with (infra/tenant.ts); absent on tombstones. */
  randomId?: boolean;
}

export interface TenantConnection {
  databaseUrl: string;
  sessionSecret: string;
}

export interface FleetOutputs {
  /** Per username: the non-secret summary. */
  tenants: Record<string, TenantSummary>;
  /** Per username: database URL and session secret, as one secret. */
  connections: pulumi.Output<Record<string, TenantConnection>>;
  /** The Tenant components, for programs that build on the fleet. */
  components: Record<string, Tenant>;
  /** The `seedRollout` stack output: target, waves, promoted wave, stable release. */
  seedRollout: RolloutRecord;
  /** The `adopted` stack output: tenants imported by this update, whose settings and seed the next update completes. */
  adopted: string[];
}

/**
 * Declares the fleet. `deployed` is what the last update recorded for each
 * tenant (see last-update.ts): deployed tenants keep their server, ID and
 * database. Without it every tenant is treated as new.
 */
export function declareFleet(
  settings: FleetSettings,
  tenants: readonly LocatedTenant[],
  deployed: LastUpdate = {},
  previousRollout?: Partial<RolloutRecord>,
  /** Per username: what exists on its server and is imported (adoption.ts; postgresql provider only). */
  adoptions: ReadonlyMap<string, Adoption> = new Map(),
): FleetOutputs {
  const live = tenants.filter((entry) => entry.status !== "removed");
  const placement = placeTenants(settings, live, deployed);
  const rollout = planSeedRollout(settings, live, deployed, previousRollout);
  const problems = [
    ...missingTenantProblems(tenants, deployed),
    ...placement.problems,
    ...identityProblems(settings, live, deployed),
    ...idOwnerProblems(tenants, deployed),
    ...planProblems(settings, live),
    ...rollout.problems,
  ].sort((a, b) => a.line - b.line);
  if (problems.length > 0) throw new TenantsFileError(settings.tenantsFile, problems);

  // Only servers that hold tenants get a provider, so an unused (or not yet
  // reachable) server in the config costs nothing.
  const used = new Set(placement.servers.values());
  const backendFor = settings.databaseProvider === "builtin" ? builtinBackend : postgresqlProviderBackend;
  const backends = new Map(settings.servers.filter((server) => used.has(server.name)).map((server) => [server.name, backendFor(server)]));
  // Once per used server: CONNECT and TEMPORARY taken from PUBLIC on every non-tenant database.
  for (const backend of backends.values()) backend.hardenServer(settings.appName);

  const components: Record<string, Tenant> = {};
  const summaries: Record<string, TenantSummary> = {};
  for (const entry of tenants) {
    if (entry.status === "removed") {
      // A tombstone declares nothing (so its RandomId, secrets, seed and DNS record go, and
      // its database and role are deleted or kept as retainOnDelete says), but stays in the
      // outputs with its tenant ID and database, so support can find the kept data and the
      // next update still holds the file to it (continuity.ts).
      const last = deployed[entry.username];
      if (last !== undefined) summaries[entry.username] = tombstone(entry.username, last);
      continue;
    }
    const serverName = placement.servers.get(entry.username)!;
    const server = settings.servers.find((candidate) => candidate.name === serverName)!;
    const plan = planFor(settings, entry.plan);
    const limits = settings.plans[plan]!;
    const last = deployed[entry.username];
    // The ID allocated before the engine: the entry's, or (an entry written before allocation) what its stack deployed.
    const tenantId = entry.tenantId ?? (last?.status !== "removed" ? last?.tenantId : undefined);
    // Only tenants a stack of the older programs deployed still have a RandomId; a tombstone's went with it.
    const randomId = tenantId === undefined || (last !== undefined && last.status !== "removed" && last.randomId !== false);
    const name = tenantId !== undefined ? tenantResourceName(tenantId) : entry.username;
    const tenant = new Tenant(
      name,
      {
        username: entry.username,
        status: entry.status,
        pinnedTenantId: tenantId,
        randomId,
        stack: pulumi.getStack(),
        adoptLegacy: tenantId !== undefined && last?.tenantId === tenantId,
        ...(adoptions.has(entry.username) ? { adopt: adoptions.get(entry.username)! } : {}),
        appName: settings.appName,
        server: { host: server.host, port: server.port, sslmode: server.sslmode },
        backend: backends.get(serverName)!,
        dns: settings.dns,
        retainOnDelete: !settings.allowPurge,
        seedVersion: rollout.versions.get(entry.username)!,
        seedReleases: settings.seedReleases,
        limits,
      },
      // Stacks deployed before allocation named the tenant by username: the same resources, renamed, never replaced.
      name !== entry.username ? renamedFrom(entry.username, name) : {},
    );
    components[entry.username] = tenant;
    summaries[entry.username] = {
      username: entry.username,
      tenantId: tenant.tenantId,
      database: tenant.databaseName,
      role: tenant.roleName,
      domain: tenant.domain,
      server: serverName,
      status: entry.status,
      plan,
      limits,
      // What the seed recorded, so a failed seed never claims the release it failed on.
      seedVersion: tenant.seed?.seedVersion ?? pulumi.output(rollout.versions.get(entry.username)!),
      randomId,
    };
  }

  const perTenant = Object.entries(components).map(([username, tenant]) =>
    pulumi
      .all([tenant.databaseUrl, tenant.sessionSecret])
      .apply(([databaseUrl, sessionSecret]): [string, TenantConnection] => [username, { databaseUrl, sessionSecret }]),
  );
  const connections = pulumi.secret(pulumi.all(perTenant).apply((pairs) => Object.fromEntries(pairs)));
  return { tenants: summaries, connections, components, seedRollout: rollout.record, adopted: [...adoptions.keys()].sort() };
}

/** A `plan:` that the stack config does not define. */
function planProblems(settings: FleetSettings, tenants: readonly LocatedTenant[]): TenantsProblem[] {
  const known = Object.keys(settings.plans);
  return tenants
    .filter((tenant) => tenant.plan !== undefined && !Object.hasOwn(settings.plans, tenant.plan))
    .map((tenant) => ({
      line: tenant.line,
      username: tenant.username,
      message: `plan "${tenant.plan}" is not in the stack config (plans: ${known.join(", ")}); fix the entry or add the plan to "plans"`,
    }));
}

function tombstone(username: string, last: DeployedTenant): TenantSummary {
  const [tenantId, database] = [pulumi.output(last.tenantId), pulumi.output(last.database)];
  return { username, tenantId, database, role: database, domain: "", server: last.server, status: "removed" };
}

/**
 * Options that carry a tenant's resources from the username-keyed names older
 * programs gave them to its tenant-ID name: the component's alias, and the same
 * alias written out on every child (`john_driver-role` for `A1B2C3D4-role`). The
 * engine's own inheritance of a parent's alias is not enough: after an update
 * killed mid-rename (the component already renamed in the state, its children
 * not yet), the next update found no alias for the children, created them anew
 * and deleted the old ones, and with allowPurge that delete dropped the tenant's
 * database (test/e2e/engine-suite.ts kills updates with purging allowed).
 */
function renamedFrom(oldName: string, newName: string): pulumi.ComponentResourceOptions {
  return {
    aliases: [{ name: oldName }],
    transformations: [
      (child) =>
        child.name.startsWith(`${newName}-`)
          ? { props: child.props, opts: pulumi.mergeOptions(child.opts, { aliases: [{ name: `${oldName}${child.name.slice(newName.length)}` }] }) }
          : undefined,
    ],
  };
}

/**
 * The DriverGigsPro tenant fleet. Reads the stack config and the tenants
 * file, validates both completely, then declares every tenant.
 *
 * Where things are declared:
 *   infra/tenant.ts  one tenant's database, role, secrets and DNS record
 *   infra/fleet.ts   providers per server, a Tenant per entry, stack outputs
 *   infra/placement.ts, infra/identity.ts  a deployed tenant keeps its server, ID and database
 *   infra/continuity.ts  a deployed tenant is never removed by leaving it out of the file
 *   tenants/shards.ts    a tenant lives in one shard (stack + tenants file)
 *   tenants/         the tenant list people edit, and its schema
 */
import * as pulumi from "@pulumi/pulumi";
import { AdoptionError, adoptionCandidates, findAdoptions, pendingAdoptionsFromEnv } from "./infra/adoption";
import { readFleetSettings, StackConfigError } from "./infra/config";
import { declareFleet } from "./infra/fleet";
import { databaseProviderProblem } from "./infra/identity";
import { readStackRecord, withClaimsBound } from "./infra/last-update";
import { claimProblems } from "./infra/tenant-claims";
import { requireValidTenants, TenantsFileError } from "./tenants/load";
import { crossShardProblems } from "./tenants/shards";

async function run() {
  try {
    const settings = readFleetSettings();
    const tenants = requireValidTenants(settings.tenantsFile);
    const recorded = await readStackRecord();
    // A pool entry a signup claimed since the last update is that username's tenant now (tenants/pool.ts).
    const record = { ...recorded, tenants: withClaimsBound(tenants, recorded.tenants) };
    const providerProblem = databaseProviderProblem(settings, record.databaseProvider, pulumi.getStack());
    if (providerProblem !== undefined) throw new StackConfigError([providerProblem]);
    // A new tenant (or a new tenantId) must not already live in another shard (only those: the other files are read only then).
    const fresh = tenants.filter((tenant) => {
      const deployed = record.tenants[tenant.username];
      return deployed === undefined || (tenant.tenantId !== undefined && deployed.tenantId !== tenant.tenantId);
    });
    const elsewhere = fresh.length > 0 ? crossShardProblems(process.cwd(), settings.tenantsFile, fresh) : [];
    if (elsewhere.length > 0) throw new TenantsFileError(settings.tenantsFile, elsewhere);
    // Both providers: a new tenant's role or database that exists on its server must carry its own marker.
    const pending = pendingAdoptionsFromEnv(settings.appName);
    const claimed = await claimProblems(settings, tenants, record.tenants, pulumi.getStack(), new Set(Object.keys(pending)));
    if (claimed.length > 0) throw new TenantsFileError(settings.tenantsFile, claimed);
    // postgresql provider: what a pinned tenant already has on its server is imported, after an ownership check.
    const adoptions = await findAdoptions(adoptionCandidates(settings, tenants, record.tenants, pending));
    const fleet = withoutPromiseStackTraces(() => declareFleet(settings, tenants, record.tenants, record.seedRollout, adoptions));
    return {
      tenants: fleet.tenants,
      connections: fleet.connections,
      databaseProvider: settings.databaseProvider,
      seedRollout: fleet.seedRollout,
      adopted: fleet.adopted,
    };
  } catch (error) {
    // Validation errors are for people: show the list, not a stack trace.
    if (error instanceof TenantsFileError || error instanceof StackConfigError || error instanceof AdoptionError) {
      throw new pulumi.RunError(error.message);
    }
    throw error;
  }
}

/**
 * The SDK records a stack trace for every promise it makes (`debuggablePromise`),
 * about eight per resource, which is most of the program's evaluation time at
 * fleet scale (35 s of 1,000 tenants' evaluation, 13 s without). Declaring the
 * fleet creates those promises synchronously, so traces are off just for that;
 * our own errors are messages for people and carry no trace anyway.
 */
function withoutPromiseStackTraces<T>(declare: () => T): T {
  // DGP_PROMISE_STACK_TRACES=true keeps them, to debug the SDK or to measure the difference (bench/signup-fleet.ts).
  if (process.env.DGP_PROMISE_STACK_TRACES === "true") return declare();
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return declare();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export = run();

/**
 * The DriverGigsPro tenant fleet. Reads the stack config and the tenants
 * file, validates both completely, then declares every tenant.
 *
 * Where things are declared:
 *   infra/tenant.ts  one tenant's database, role, secrets and DNS record
 *   infra/fleet.ts   providers per server, a Tenant per entry, stack outputs
 *   infra/placement.ts, infra/identity.ts  a deployed tenant keeps its server, ID and database
 *   tenants/         the tenant list people edit, and its schema
 */
import * as pulumi from "@pulumi/pulumi";
import { readFleetSettings, StackConfigError } from "./infra/config";
import { declareFleet } from "./infra/fleet";
import { readLastUpdate } from "./infra/last-update";
import { requireValidTenants, TenantsFileError } from "./tenants/load";

async function run() {
  try {
    const settings = readFleetSettings();
    const tenants = requireValidTenants(settings.tenantsFile);
    const fleet = declareFleet(settings, tenants, await readLastUpdate());
    return { tenants: fleet.tenants, connections: fleet.connections };
  } catch (error) {
    // Validation errors are for people: show the list, not a stack trace.
    if (error instanceof TenantsFileError || error instanceof StackConfigError) {
      throw new pulumi.RunError(error.message);
    }
    throw error;
  }
}

export = run();

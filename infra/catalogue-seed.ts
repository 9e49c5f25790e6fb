/**
 * The post-deploy seed hook: a dynamic resource per active tenant whose
 * create/update runs the seed (migrations, then the courier catalogue) as the
 * tenant's own role, inside `pulumi up`.
 *
 * Why a dynamic resource rather than a log line or a script after `up`:
 * - a seed failure fails the update, with the tenant ID in the message;
 * - a failed create leaves no state, so the next `pulumi up` retries it;
 * - it re-runs exactly when the seed version (catalogue + migrations) changes,
 *   and `pulumi preview` shows that as an update of `<user>-catalogue`.
 */
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { loadCatalogue } from "../seed/catalogue/load";
import { readMigrations } from "../seed/migrate";
import { loadTypeScriptModule } from "./dynamic-module";

/**
 * Identifies what the seed would load: the catalogue's content hash and every
 * migration's checksum. Changing either re-runs the seed for every tenant.
 */
export function currentSeedVersion(): { seedVersion: string; catalogueVersion: string } {
  const catalogueVersion = loadCatalogue().version;
  const migrations = readMigrations().map((migration) => `${migration.name}:${migration.checksum}`);
  const seedVersion = createHash("sha256").update([catalogueVersion, ...migrations].join("\n")).digest("hex").slice(0, 16);
  return { seedVersion, catalogueVersion };
}

export interface CatalogueSeedArgs {
  readonly tenantId: pulumi.Input<string>;
  readonly database: pulumi.Input<string>;
  /** The tenant role's own URL (a secret): the seed never uses admin rights. */
  readonly databaseUrl: pulumi.Input<string>;
  readonly seedVersion: pulumi.Input<string>;
}

interface SeedInputs {
  tenantId: string;
  database: string;
  databaseUrl: string;
  seedVersion: string;
}

/** Where the seed's TypeScript lives; captured by value into the serialized provider. */
const SEED_MODULE = join(__dirname, "..", "seed", "seed.ts");

/** Runs in the dynamic-provider process; Pulumi serializes it into the state. */
async function runSeed(inputs: SeedInputs): Promise<Record<string, unknown>> {
  const { seedTenantDatabase } = loadTypeScriptModule(SEED_MODULE) as typeof import("../seed/seed");
  const report = await seedTenantDatabase({ databaseUrl: inputs.databaseUrl, tenantId: inputs.tenantId });
  return {
    tenantId: inputs.tenantId,
    database: inputs.database,
    seedVersion: inputs.seedVersion,
    catalogueVersion: report.catalogueVersion,
    migrationsApplied: report.migrationsApplied,
    inserted: report.inserted,
    updated: report.updated,
    deactivated: report.deactivated,
  };
}

const seedProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: SeedInputs) {
    return { id: inputs.tenantId, outs: await runSeed(inputs) };
  },
  // Old outputs vs new inputs: re-seed when what would be loaded, or where, changed.
  async diff(_id: string, olds: SeedInputs, news: SeedInputs) {
    const changed = (["seedVersion", "database", "tenantId"] as const).filter((key) => olds[key] !== news[key]);
    return { changes: changed.length > 0, replaces: [] };
  },
  async update(_id: string, _olds: SeedInputs, news: SeedInputs) {
    return { outs: await runSeed(news) };
  },
  // The catalogue belongs to the tenant's database, whose fate is decided by
  // the Database resource (kept unless purging is allowed): nothing to undo.
  async delete() {},
};

export class CatalogueSeed extends pulumi.dynamic.Resource {
  public declare readonly catalogueVersion: pulumi.Output<string>;
  public declare readonly seedVersion: pulumi.Output<string>;

  constructor(name: string, args: CatalogueSeedArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      seedProvider,
      name,
      { ...args, catalogueVersion: undefined, migrationsApplied: undefined, inserted: undefined, updated: undefined, deactivated: undefined },
      { ...opts, additionalSecretOutputs: ["databaseUrl"] },
      "drivergigspro",
      "CatalogueSeed",
    );
  }
}

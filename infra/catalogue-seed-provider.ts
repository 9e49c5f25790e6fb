/**
 * The seed hook's resource provider: what the engine calls for each
 * CatalogueSeed. Loaded at run time inside the dynamic-provider process from
 * the checkout the engine runs in (infra/dynamic-module.ts).
 */
import type * as pulumi from "@pulumi/pulumi";
import { seedTenantDatabase } from "../seed/seed";

export interface SeedInputs {
  tenantId: string;
  database: string;
  databaseUrl: string;
  seedVersion: string;
  databaseIncarnation?: string;
}

async function runSeed(inputs: SeedInputs): Promise<Record<string, unknown>> {
  const report = await seedTenantDatabase({ databaseUrl: inputs.databaseUrl, tenantId: inputs.tenantId });
  return {
    tenantId: inputs.tenantId,
    database: inputs.database,
    seedVersion: inputs.seedVersion,
    ...(inputs.databaseIncarnation === undefined ? {} : { databaseIncarnation: inputs.databaseIncarnation }),
    catalogueVersion: report.catalogueVersion,
    migrationsApplied: report.migrationsApplied,
    inserted: report.inserted,
    updated: report.updated,
    deactivated: report.deactivated,
  };
}

export const seedProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: SeedInputs) {
    return { id: inputs.tenantId, outs: await runSeed(inputs) };
  },
  // Old outputs vs new inputs: re-seed when what would be loaded, or where, changed.
  async diff(_id: string, olds: SeedInputs, news: SeedInputs) {
    // databaseIncarnation: a database dropped and made again is empty (README "Security").
    const changed = (["seedVersion", "database", "tenantId", "databaseIncarnation"] as const).filter((key) => olds[key] !== news[key]);
    return { changes: changed.length > 0, replaces: [] };
  },
  async update(_id: string, _olds: SeedInputs, news: SeedInputs) {
    return { outs: await runSeed(news) };
  },
  // The catalogue belongs to the tenant's database, whose fate is decided by
  // the Database resource (kept unless purging is allowed): nothing to undo.
  async delete() {},
};


/**
 * The seed hook's resource provider: what the engine calls for each
 * CatalogueSeed. Loaded at run time inside the dynamic-provider process from
 * the checkout the engine runs in (infra/dynamic-module.ts).
 */
import type * as pulumi from "@pulumi/pulumi";
import path from "node:path";
import { seedRelease } from "../seed/releases";
import { projectRoot } from "./dynamic-module";

export interface SeedInputs {
  tenantId: string;
  database: string;
  databaseUrl: string;
  seedVersion: string;
  /** Absent in the state of seeds created before releases: then the committed seed/releases. */
  releases?: string;
}

async function runSeed(inputs: SeedInputs): Promise<Record<string, unknown>> {
  const directory = path.resolve(projectRoot(), inputs.releases ?? "seed/releases");
  const report = await seedRelease({ databaseUrl: inputs.databaseUrl, tenantId: inputs.tenantId, version: inputs.seedVersion, directory });
  return {
    tenantId: inputs.tenantId,
    database: inputs.database,
    seedVersion: inputs.seedVersion,
    releases: inputs.releases,
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
  // Old outputs vs new inputs: re-seed when the release, or the database, changed.
  // Only the release named in the inputs is ever loaded, so a tenant whose
  // release stays (held, or outside the promoted waves) is never re-seeded.
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


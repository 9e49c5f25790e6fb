/**
 * The seed hook's resource provider: what the engine calls for each
 * CatalogueSeed. Loaded at run time inside the dynamic-provider process from
 * the checkout the engine runs in (infra/dynamic-module.ts).
 */
import type * as pulumi from "@pulumi/pulumi";
import { Client } from "pg";
import path from "node:path";
import { seedRelease } from "../seed/releases";
import { projectRoot } from "./dynamic-module";

export interface SeedInputs {
  tenantId: string;
  database: string;
  databaseUrl: string;
  seedVersion: string;
  databaseIncarnation?: string;
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
    ...(inputs.databaseIncarnation === undefined ? {} : { databaseIncarnation: inputs.databaseIncarnation }),
    releases: inputs.releases,
    catalogueVersion: report.catalogueVersion,
    migrationsApplied: report.migrationsApplied,
    inserted: report.inserted,
    updated: report.updated,
    deactivated: report.deactivated,
  };
}

/**
 * Whether the tenant's database still holds a catalogue: false when the
 * database or its catalogue is gone (dropped and made again empty), undefined
 * when it cannot be told (the tenant changed its password, the database takes
 * no connections: other resources' drift, repaired first).
 */
async function catalogueStillThere(databaseUrl: string): Promise<boolean | undefined> {
  const client = new Client({ connectionString: databaseUrl, connectionTimeoutMillis: 15_000, lock_timeout: 5_000, statement_timeout: 15_000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    return (await client.query("SELECT version FROM catalogue_version")).rows.length > 0;
  } catch (error) {
    const code = (error as { code?: string }).code;
    return code === "3D000" || code === "42P01" ? false : undefined; // no such database / no such table
  } finally {
    await client.end().catch(() => undefined);
  }
}

export const seedProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: SeedInputs) {
    return { id: inputs.tenantId, outs: await runSeed(inputs) };
  },
  // Old outputs vs new inputs: re-seed when the release, or the database, changed.
  // Only the release named in the inputs is ever loaded, so a tenant whose
  // release stays (held, or outside the promoted waves) is never re-seeded.
  async diff(_id: string, olds: SeedInputs, news: SeedInputs) {
    // databaseIncarnation: a database dropped and made again is empty (README "Security").
    const changed = (["seedVersion", "database", "tenantId", "databaseIncarnation"] as const).filter((key) => olds[key] !== news[key]);
    const catalogueGone = (olds as { catalogueVersion?: unknown }).catalogueVersion === null;
    return { changes: changed.length > 0 || catalogueGone, replaces: [] };
  },
  async update(_id: string, _olds: SeedInputs, news: SeedInputs) {
    return { outs: await runSeed(news) };
  },
  // `pulumi refresh`: a database whose catalogue is gone (dropped, made again empty) is seeded by the next update.
  async read(id: string, props: SeedInputs & { catalogueVersion?: string | null }) {
    const there = await catalogueStillThere(props.databaseUrl);
    return { id, props: there === false ? { ...props, catalogueVersion: null } : props };
  },
  // The catalogue belongs to the tenant's database, whose fate is decided by
  // the Database resource (kept unless purging is allowed): nothing to undo.
  async delete() {},
};

/**
 * Tenant IDs are allocated before the engine runs and written into the
 * tenant's entry (`tenantId:`), by `npm run tenants -- add`, by the signup
 * service and by the one-time `npm run tenants -- assign-ids`. The ID keeps
 * the `A1B2C3D4` format (8 upper-case hex digits, 32 bits): at a million
 * tenants two random IDs coincide somewhere with a chance of about 11%, too
 * much to leave to width alone, so every allocation is checked against every
 * ID the environment already has (every shard's entries, the deployed
 * outputs where readable) and drawn again on a clash. The allocators run
 * under the tenants-file lock (tenants/lock.ts) that also covers the write,
 * so two allocators never pick the same ID. The program checks again, against
 * the other shards' files and the server itself (infra/tenant-claims.ts).
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { TENANT_ID_PATTERN } from "../infra/naming";
import { loadTenantsFile } from "./load";
import { readShards } from "./shards";

/** Draws one candidate ID; tests inject their own to force a collision. */
export type TenantIdGenerator = () => string;

/**
 * IDs a YAML reader takes for a number, not a string: all digits (`48862689`) or digits, `E`,
 * digits (`12E45678`, a float). Written plainly they would come back as numbers, so such IDs are
 * never allocated (about 2.4% of draws): every allocated ID can be written and read unquoted.
 */
const YAML_NUMBER = /^[0-9]+(E[0-9]+)?$/;

/** 4 random bytes from node:crypto as 8 upper-case hex digits, none that YAML reads as a number. */
export const randomTenantId: TenantIdGenerator = () => {
  for (;;) {
    const id = randomBytes(4).toString("hex").toUpperCase();
    if (!YAML_NUMBER.test(id)) return id;
  }
};

/** Draws before an allocation gives up (each clash with a taken ID draws again); 32 bits make even 2 clashes rare. */
const MAX_DRAWS = 16;

export class TenantIdAllocationError extends Error {}

/** Where an ID is already used: for messages that name the other tenant, its file and line. */
export interface IdOwner {
  readonly tenantId: string;
  readonly username: string;
  /** `tenants/s002.yaml:14`, or `deployed in stack local-s001`. */
  readonly where: string;
}

/**
 * `count` new IDs, none in `taken` nor equal to each other; `taken` gets them
 * added. Throws after MAX_DRAWS clashes in a row (a broken generator), naming
 * the ID it kept drawing.
 */
export function allocateTenantIds(count: number, taken: Set<string>, generate: TenantIdGenerator = randomTenantId): string[] {
  const ids: string[] = [];
  while (ids.length < count) {
    let draws = 0;
    for (;;) {
      const candidate = generate();
      if (!TENANT_ID_PATTERN.test(candidate)) throw new TenantIdAllocationError(`the tenant ID generator gave "${candidate}", not 8 upper-case hex digits`);
      if (!taken.has(candidate)) {
        taken.add(candidate);
        ids.push(candidate);
        break;
      }
      draws += 1;
      if (draws >= MAX_DRAWS) {
        throw new TenantIdAllocationError(
          `could not allocate a tenant ID: ${draws} draws in a row were already taken (last ${candidate}); nothing was changed. Check the ID generator`,
        );
      }
    }
  }
  return ids;
}

/**
 * Every pinned tenant ID in the environment's shard files (tombstones
 * included: their data is kept under that ID), with who holds it.
 * `extraFiles`: files outside the manifest to read too (a --file given by hand).
 */
export function declaredTenantIds(projectDir: string, extraFiles: readonly string[] = []): Map<string, IdOwner> {
  const files = [...readShards(projectDir).shards.map((shard) => shard.file), ...extraFiles];
  const owners = new Map<string, IdOwner>();
  for (const file of new Set(files.map((path) => resolve(projectDir, path)))) {
    if (!existsSync(file)) continue;
    const result = loadTenantsFile(file);
    if (!result.ok) continue;
    const shown = files.find((path) => resolve(projectDir, path) === file) ?? file;
    for (const tenant of result.tenants) {
      if (tenant.tenantId !== undefined && !owners.has(tenant.tenantId)) {
        owners.set(tenant.tenantId, { tenantId: tenant.tenantId, username: tenant.username, where: `${shown}:${tenant.line}` });
      }
    }
  }
  return owners;
}

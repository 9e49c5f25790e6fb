/**
 * The fleet's shards. A fleet of thousands of tenants is split into stacks of
 * bounded size: each shard is one Pulumi stack reconciling one tenants file,
 * so a signup or a pull request touches one shard, and its `pulumi up` costs
 * the same in a fleet of 10 or 10,000. `tenants/shards.yaml` lists them:
 *
 *   maxTenants: 100          # entries per shard (pooled ones included) before a new tenant goes to the next one
 *   poolSize: 3              # unclaimed, fully made tenants each shard keeps for instant signups (tenants/pool.ts)
 *   shards:
 *     - name: s001           # the stack is "<environment>-<name>", e.g. local-s001, prod-s001
 *       file: tenants/tenants.yaml
 *
 * A new tenant goes to the first shard with room (tombstones do not count:
 * they declare nothing). A tenant stays in its shard: the same username (or
 * one that gives the same DNS label) in two shard files is refused, and
 * leaving a deployed tenant out of its shard's file fails that shard's
 * update (infra/continuity.ts).
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Document, parse, parseDocument, type YAMLSeq } from "yaml";
import { z } from "zod";
import { writeFileAtomic } from "./edit";
import { loadTenantsFile, type TenantsFileResult, type TenantsProblem } from "./load";
import { usernameToLabel } from "../infra/naming";
import { isUnnamed, type LocatedTenant } from "./schema";

import { DEFAULT_TENANTS_FILE, SHARDS_MANIFEST } from "./paths";

export { DEFAULT_TENANTS_FILE, SHARDS_MANIFEST };
/**
 * Why 100: one signup's `pulumi up` grows with the tenants in its stack (6 s
 * at 10 tenants, 17-23 s at 100, 47 s at 300, 103-134 s at 1,000 on the
 * landed code; README "Shards"), and a no-change preview of the whole fleet
 * is the sum over shards. 100 keeps a shard's update and preview well under
 * a CI step's patience while a 10,000-tenant fleet stays at 100 stacks.
 */
const DEFAULT_MAX_TENANTS = 100;

const shardNameSchema = z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, { error: "a shard name is 1-31 characters of a-z, 0-9 and -, starting with a letter" });

/**
 * Why 3: unclaimed tenants per shard (tenants/pool.ts). A pool is refilled by
 * the update that follows every claim, so it only has to cover the signups
 * that arrive during one update (about 20 s with 100 tenants): 3 covers a
 * signup every ~7 s, and costs 3 idle databases per shard.
 */
export const DEFAULT_POOL_SIZE = 3;

const poolSizeSchema = z.number({ error: "poolSize must be a whole number from 0 to 100" }).int().min(0).max(100);

export const shardsManifestSchema = z.strictObject({
  maxTenants: z.number().int().min(1).max(5000).default(DEFAULT_MAX_TENANTS),
  /** Warm-pool size of every shard that does not set its own (0: no pool). */
  poolSize: poolSizeSchema.default(DEFAULT_POOL_SIZE),
  shards: z
    .array(
      z.strictObject({
        /** This shard's pool size, instead of the manifest's (e.g. 0 for a shard that takes no more signups). */
        poolSize: poolSizeSchema.optional(),
        name: shardNameSchema,
        file: z
          .string()
          .min(1)
          .regex(/\.ya?ml$/, { error: "a shard's file must end in .yaml" }),
      }),
    )
    .min(1, { error: "list at least one shard" }),
});

export type ShardsManifest = z.output<typeof shardsManifestSchema>;
export interface Shard {
  readonly name: string;
  /** As written in the manifest, relative to the project folder. */
  readonly file: string;
  /** Its own warm-pool size, when the manifest gives one (poolSizeOf). */
  readonly poolSize?: number;
}

/** How many unclaimed tenants a shard keeps: its own poolSize, else the manifest's. */
export function poolSizeOf(manifest: { readonly poolSize?: number }, shard: Shard): number {
  return shard.poolSize ?? manifest.poolSize ?? DEFAULT_POOL_SIZE;
}

/** The manifest, or the one-shard fleet of `tenants/tenants.yaml` when there is none. */
export function readShards(projectDir: string): ShardsManifest {
  const path = join(projectDir, SHARDS_MANIFEST);
  if (!existsSync(path)) return { maxTenants: DEFAULT_MAX_TENANTS, poolSize: DEFAULT_POOL_SIZE, shards: [{ name: "s001", file: DEFAULT_TENANTS_FILE }] };
  const parsed = shardsManifestSchema.safeParse(parse(readFileSync(path, "utf8")));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  ${issue.path.join(".") || "(file)"}: ${issue.message}`);
    throw new Error(`${SHARDS_MANIFEST} is not valid; fix it and run again:\n${problems.join("\n")}`);
  }
  const names = parsed.data.shards.map((shard) => shard.name);
  const files = parsed.data.shards.map((shard) => resolve(projectDir, shard.file));
  const twice = names.find((name, i) => names.indexOf(name) !== i) ?? parsed.data.shards.find((_, i) => files.indexOf(files[i]!) !== i)?.file;
  if (twice !== undefined) throw new Error(`${SHARDS_MANIFEST}: "${twice}" is listed twice; every shard has its own name and file`);
  return parsed.data;
}

/** The stack that reconciles a shard in an environment ("local", "prod", ...). */
export function shardStack(environment: string, shard: Shard): string {
  return `${environment}-${shard.name}`;
}

/**
 * A new, empty shard after the last one: appended to the manifest (comments
 * kept), its file `tenants/<name>.yaml`. Its stacks are created by the next
 * deployment of each environment (npm start does it locally; CI's workflow
 * initialises a stack it does not find).
 */
export function addShard(projectDir: string, manifest: ShardsManifest): Shard {
  const numbers = manifest.shards
    .map((shard) => /^s(\d+)$/.exec(shard.name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number);
  const name = `s${String(Math.max(0, ...numbers) + 1).padStart(3, "0")}`;
  const shard = { name, file: `tenants/${name}.yaml` };
  const path = join(projectDir, SHARDS_MANIFEST);
  const doc = existsSync(path) ? parseDocument(readFileSync(path, "utf8")) : new Document({ maxTenants: manifest.maxTenants, shards: manifest.shards });
  (doc.get("shards") as YAMLSeq).add(doc.createNode(shard));
  writeFileAtomic(path, doc.toString());
  manifest.shards.push(shard);
  return shard;
}

/** Entries that occupy room in a shard: tombstones declare nothing; pooled entries are made in full, so they count. */
export function liveCount(tenants: readonly LocatedTenant[]): number {
  return tenants.filter((tenant) => tenant.status !== "removed").length;
}

/** What the choice of a shard counts besides the shards' files, and how it reads them. */
export interface ShardCounts<S extends Shard> {
  /**
   * A shard's file, read and validated; undefined when it does not exist yet
   * (then the shard has room). Default: the file under the project folder.
   */
  read?: (shard: S) => TenantsFileResult | undefined;
  /** Entries bound for the shard that its file does not list yet (the service's placed signups); default none. */
  pending?: (shard: S, inFile: readonly LocatedTenant[]) => number;
}

/**
 * Where new tenants go: the first shard with room for `adding` more (its
 * live entries plus `pending` ones within `maxTenants`; a file that does not
 * parse has none), or undefined when every shard is full.
 */
export function shardWithRoom<S extends Shard>(
  projectDir: string,
  manifest: { readonly maxTenants: number; readonly shards: readonly S[] },
  adding = 1,
  counts: ShardCounts<S> = {},
): S | undefined {
  const read =
    counts.read ??
    ((shard: S) => {
      const path = resolve(projectDir, shard.file);
      return existsSync(path) ? loadTenantsFile(path) : undefined;
    });
  return manifest.shards.find((shard) => {
    const result = read(shard);
    if (result === undefined) return true;
    if (!result.ok) return false;
    return liveCount(result.tenants) + (counts.pending?.(shard, result.tenants) ?? 0) + adding <= manifest.maxTenants;
  });
}

/**
 * Problems with `tenants` (the entries of `ownFile`, one of the manifest's
 * shards) that only the other shards can show: a username, or a DNS label, that another shard's file
 * already has. Files that do not exist yet or do not parse are that shard's
 * own business and are skipped here.
 */
export function crossShardProblems(projectDir: string, ownFile: string, tenants: readonly LocatedTenant[]): TenantsProblem[] {
  const manifest = readShards(projectDir);
  const own = resolve(projectDir, ownFile);
  // A stack whose file is not one of the manifest's shards is a fleet of its own (a test stack, another product).
  if (!manifest.shards.some((shard) => resolve(projectDir, shard.file) === own)) return [];
  const elsewhere = new Map<string, string>();
  const ids = new Map<string, { username: string; where: string }>();
  for (const shard of manifest.shards) {
    const path = resolve(projectDir, shard.file);
    if (path === own || !existsSync(path)) continue;
    const result = loadTenantsFile(path);
    if (!result.ok) continue;
    for (const tenant of result.tenants) {
      // A pooled entry's key (or its tombstone's) is its tenant ID, checked below; it has no username to collide with.
      if (!isUnnamed(tenant)) elsewhere.set(usernameToLabel(tenant.username), `${shard.file} (shard ${shard.name})`);
      if (tenant.tenantId !== undefined) ids.set(tenant.tenantId, { username: tenant.username, where: `${shard.file}:${tenant.line} (shard ${shard.name})` });
    }
  }
  return tenants.flatMap((tenant) => {
    const problems: TenantsProblem[] = [];
    const where = isUnnamed(tenant) ? undefined : elsewhere.get(usernameToLabel(tenant.username));
    if (where !== undefined) {
      problems.push({
        line: tenant.line,
        username: tenant.username,
        message: `is already a tenant in ${where}; a tenant lives in exactly one shard and never moves by accident: remove this entry (or, for a different person, choose another username)`,
      });
    }
    const owner = tenant.tenantId !== undefined ? ids.get(tenant.tenantId) : undefined;
    if (owner !== undefined) problems.push({ line: tenant.line, username: tenant.username, message: idTakenMessage(tenant.tenantId!, owner) });
    return problems;
  });
}

/** A tenant ID that another tenant has: naming that tenant and where it is. */
export function idTakenMessage(tenantId: string, owner: { username: string; where: string }): string {
  return (
    `tenantId ${tenantId} belongs to tenant "${owner.username}" (${owner.where}); tenant IDs are unique across every shard of the environment, ` +
    `and two tenants with one ID would share a database: remove this tenantId line (npm run tenants -- assign-ids writes a new one)`
  );
}

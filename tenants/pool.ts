/**
 * The warm pool: per shard, a few tenants made in full before anyone asks for
 * them (database, role, catalogue at the stable seed release, session secret,
 * tenant ID; no username, no DNS record), so a signup claims one instead of
 * waiting for an engine run. They are ordinary entries of the shard's tenants
 * file, so git stays the one source of truth:
 *
 *   - tenantId: 3F2A9C01
 *     status: pooled
 *
 * `tenants/shards.yaml` gives the size (`poolSize`, per shard or for all);
 * pooled entries count toward the shard's `maxTenants`, so a full shard keeps
 * no pool. `refillPools` tops each shard's pool up to its size with IDs from
 * the allocator (tenants/ids.ts), under the manifest's lock and each file's
 * lock (the locks `npm run tenants -- add` takes), so two refills (or a
 * refill and an add) never overfill a shard or hand out one ID twice. The
 * next `pulumi up` of the shard makes what the refill wrote. It is run by
 * `npm run tenants -- pool refill` and by the signup service after each
 * deployment of a shard.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { addPooledTenants, withTenantsFileLock, writeFileAtomic } from "./edit";
import { allocateTenantIds, declaredTenantIds, randomTenantId, type TenantIdGenerator } from "./ids";
import { formatProblem, validateTenantsText, type TenantsProblem } from "./load";
import { isPooled, type LocatedTenant } from "./schema";
import { liveCount, poolSizeOf, readShards, SHARDS_MANIFEST, type Shard } from "./shards";

const NEW_SHARD_FILE = "# A shard of the fleet (tenants/shards.yaml); see tenants/tenants.yaml for the format.\ntenants: []\n";

/**
 * How many pooled entries a shard lacks: up to its pool size, within the room
 * `maxTenants` leaves once the file's live entries and the `reserved` ones
 * (signups the service has placed on the shard and not written to its file
 * yet: they were promised that room) are counted.
 */
export function poolShortfall(tenants: readonly LocatedTenant[], maxTenants: number, poolSize: number, reserved = 0): number {
  const pooled = tenants.filter(isPooled).length;
  const room = maxTenants - liveCount(tenants) - reserved;
  return Math.max(0, Math.min(poolSize - pooled, room));
}

/** Of the usernames placed on a shard, how many its file does not list yet (each holds a place in the shard). */
function unwritten(tenants: readonly LocatedTenant[], placed: readonly string[] = []): number {
  const written = new Set(tenants.map((tenant) => tenant.username));
  return new Set(placed.filter((username) => !written.has(username))).size;
}

/** What a refill did to one shard. */
export interface ShardRefill {
  readonly shard: string;
  readonly file: string;
  /** The pool's size for this shard, and how many pooled entries it has now. */
  readonly size: number;
  readonly pooled: number;
  /** Tenant IDs of the entries this refill appended. */
  readonly added: string[];
  /** Why the shard was left alone (its file is invalid); the refill fails. */
  readonly problems: string[];
}

export interface RefillOptions {
  /** Only these shards (names); default every shard of the manifest. */
  readonly shards?: readonly string[];
  /** IDs taken outside the shard files (e.g. the deployed outputs), never handed out. */
  readonly takenIds?: Iterable<string>;
  /** Tests force collisions with their own generator. */
  readonly generate?: TenantIdGenerator;
  /**
   * Usernames the signup service has placed on a shard (its control
   * database), read with the manifest's lock held: those not in the file yet
   * keep their room, so the refill never fills it (cli/tenants.ts reads them
   * under the service's placement lock when DATABASE_URL is set).
   */
  readonly placed?: (shard: Shard) => readonly string[];
  /** Pooled entries of a shard claimed by signups whose binding is not committed yet (the same control database): taken, not pooled. */
  readonly claimed?: (shard: Shard) => ReadonlySet<string>;
}

/**
 * Tops every shard's pool up (tenants/shards.yaml under `projectDir`): the
 * manifest's lock, then each shard file's own lock around its
 * read-validate-append-write. A shard whose file is invalid is left as it is,
 * with its problems in the result (the other shards are still refilled).
 */
export async function refillPools(projectDir: string, options: RefillOptions = {}): Promise<ShardRefill[]> {
  return withTenantsFileLock(join(projectDir, SHARDS_MANIFEST), async () => {
    const manifest = readShards(projectDir);
    const wanted = options.shards === undefined ? manifest.shards : manifest.shards.filter((shard) => options.shards!.includes(shard.name));
    const taken = new Set([...declaredTenantIds(projectDir).keys(), ...(options.takenIds ?? [])]);
    const results: ShardRefill[] = [];
    for (const shard of wanted) {
      const path = resolve(projectDir, shard.file);
      const service = { placed: options.placed?.(shard) ?? [], ...(options.claimed ? { claimed: options.claimed(shard) } : {}) };
      results.push(
        await withTenantsFileLock(path, () =>
          refillShard(path, shard, { maxTenants: manifest.maxTenants, size: poolSizeOf(manifest, shard), taken, ...service }, options.generate),
        ),
      );
    }
    return results;
  });
}

function refillShard(path: string, shard: Shard, pool: Omit<PoolLimits, "generate">, generate?: TenantIdGenerator): ShardRefill {
  const text = existsSync(path) ? readFileSync(path, "utf8") : NEW_SHARD_FILE;
  const base = { shard: shard.name, file: shard.file, size: pool.size };
  const topUp = topUpPoolText(text, { ...pool, ...(generate ? { generate } : {}) });
  if (!topUp.ok) return { ...base, pooled: 0, added: [], problems: topUp.problems.map((problem) => formatProblem(shard.file, problem)) };
  if (topUp.added.length > 0) writeFileAtomic(path, topUp.text);
  return { ...base, pooled: topUp.pooled, added: topUp.added, problems: [] };
}

export type TopUp = { ok: true; text: string; added: string[]; pooled: number } | { ok: false; problems: TenantsProblem[] };

/** What a top-up of one shard file works within. */
export interface PoolLimits {
  maxTenants: number;
  size: number;
  taken: Set<string>;
  /** Usernames placed on the shard by the signup service; those not in the file keep their room (poolShortfall). */
  placed?: readonly string[];
  /** Pooled entries claimed by signups whose binding is not committed yet: taken, not part of the pool. */
  claimed?: ReadonlySet<string>;
  generate?: TenantIdGenerator;
}

/**
 * One shard file's text with its pool topped up (pure but for the ID
 * generator): the caller holds the file's lock and writes the text. `taken`
 * gets the new IDs (and the file's own) added.
 */
export function topUpPoolText(text: string, pool: PoolLimits): TopUp {
  const before = validateTenantsText(text);
  if (!before.ok) return { ok: false, problems: before.problems };
  for (const tenant of before.tenants) if (tenant.tenantId !== undefined) pool.taken.add(tenant.tenantId);
  // A pooled entry a signup claimed whose binding is not committed yet counts as taken (it is about to be active).
  const claimed = pool.claimed ?? new Set<string>();
  const tenants = before.tenants.map((tenant) => (isPooled(tenant) && claimed.has(tenant.tenantId ?? "") ? { ...tenant, status: "active" as const } : tenant));
  const pooled = tenants.filter(isPooled).length;
  const count = poolShortfall(tenants, pool.maxTenants, pool.size, unwritten(tenants, pool.placed));
  if (count === 0) return { ok: true, text, added: [], pooled };
  const ids = allocateTenantIds(count, pool.taken, pool.generate ?? randomTenantId);
  const edit = addPooledTenants(text, ids);
  if (!edit.ok) return { ok: false, problems: edit.problems };
  return { ok: true, text: edit.text, added: ids, pooled: pooled + ids.length };
}

/**
 * The signup service's top-up of one shard, in the same write (and commit) as
 * a batch's signups (onboarding/tenants-repo.ts): `dir` holds the manifest
 * (the project folder or the service's clone); every shard file there is
 * read for taken IDs. `placed`: the usernames the service has placed on the
 * shard (its control database), so signups not in this write keep their room. A shard the manifest does not list (a new one in git
 * mode) uses the manifest's pool size.
 */
export function topUpShardText(
  text: string,
  dir: string,
  shardName: string,
  service: { claimed?: ReadonlySet<string>; placed?: readonly string[] } = {},
): TopUp {
  const manifest = readShards(dir);
  const shard = manifest.shards.find((candidate) => candidate.name === shardName) ?? { name: shardName, file: "" };
  const taken = new Set(declaredTenantIds(dir).keys());
  return topUpPoolText(text, { maxTenants: manifest.maxTenants, size: poolSizeOf(manifest, shard), taken, ...service });
}

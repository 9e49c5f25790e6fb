/**
 * The stacks the service serves, and where a new signup goes.
 *
 * - `SingleStackFleet` (PULUMI_STACK): one stack, one tenants file, no size
 *   limit: every signup goes there, as before shards existed.
 * - `ShardedFleet` (FLEET_ENV): the shards of `tenants/shards.yaml`, each the
 *   stack `<env>-<name>` reconciling its own file. The manifest and the files
 *   are those of the project folder (local mode) or of the service's clone of
 *   the tenants repository (git mode).
 *
 * A signup is placed when it is registered, inside registration's
 * transaction and under the fleet's routing lock (one PostgreSQL advisory
 * lock, so two instances of the service never place concurrently), plus the
 * manifest's file lock (the one `npm run tenants -- add` takes): the first
 * shard whose live entries plus signups already placed there but not yet in
 * its file leave room under `maxTenants`; when every shard is full, a new
 * one. Locally the new shard is written to the manifest at once, with an
 * empty file (as the CLI does). In git mode nothing is written then: the
 * shard is "pending" (known from the signups placed on its stack) and is
 * listed in the manifest by the commit that adds its first tenants
 * (tenants-repo.ts). A signup's shard (its `stack` column) never changes.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { PoolClient } from "pg";
import { Document, parseDocument, type YAMLSeq } from "yaml";
import { addTenants, withTenantsFileLock, writeFileAtomic } from "../tenants/edit";
import { validateTenantsText, type TenantsFileResult } from "../tenants/load";
import { usernameToLabel } from "../infra/naming";
import { addShard, readShards, shardStack, shardWithRoom, SHARDS_MANIFEST, type Shard } from "../tenants/shards";
import { lockPlacement, signupsBoundFor, stacksWithSignups } from "./registry";

export interface FleetShard {
  /** The shard's name (s001, ...); the stack's name for a single-stack fleet. */
  readonly name: string;
  readonly stack: string;
  /** As written in the manifest (relative to the manifest's folder), or absolute. */
  readonly file: string;
  /** Absolute. */
  readonly path: string;
}

/** The username cannot be placed (taken in some tenants file, or refused by the chosen one): a 409. */
export class PlacementConflict extends Error {}

export interface Fleet {
  /** For logs and /healthz: the stack, or "<env>-* (N shards)". */
  describe(): string;
  /** SQL LIKE pattern (escape character \) matching this fleet's stacks in the control database. */
  readonly stackPattern: string;
  /** Chooses the shard of a new signup; runs inside registration's transaction. Throws PlacementConflict. */
  place(client: PoolClient, signup: { username: string; email: string }): Promise<FleetShard>;
  /**
   * A signup that claims a pooled tenant: only the name checks of `place` (a
   * username or web address a file has: PlacementConflict), without the
   * routing lock, so a claim never waits for placements (which wait for the
   * tenants files' lock while a batch is written). A name a person adds
   * meanwhile makes the binding fail, and the signup then takes the update's path.
   */
  checkName(signup: { username: string }): void;
  /**
   * Reads and validates every shard file that changed since it was last read
   * (an update or a batch rewrote it), so the next `checkName` finds it parsed:
   * called off the answer's path (the claims committer's tick), it keeps the
   * validation of a 1,000-entry file out of a claim's answer.
   */
  warmNameCheck(): void;
  /** The shard a stack of this fleet deploys. */
  shardOf(stack: string): FleetShard;
  /** The stack whose config a new shard's stack copies (the first shard's); none for one stack. */
  templateStack(): string | undefined;
  /** The stacks of the shards listed now (not those pending in git mode). */
  stacks(): string[];
}

/** Escapes LIKE's wildcards (and the escape character \) in a literal. */
export const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

const NEW_SHARD_FILE = "# A shard of the fleet (tenants/shards.yaml); see tenants/tenants.yaml for the format.\ntenants: []\n";

export class SingleStackFleet implements Fleet {
  readonly stackPattern: string;
  private readonly shard: FleetShard;
  constructor(stack: string, tenantsFile: string) {
    this.shard = { name: stack, stack, file: tenantsFile, path: resolve(tenantsFile) };
    this.stackPattern = likeLiteral(stack);
  }
  describe(): string {
    return this.shard.stack;
  }
  async place(client: PoolClient, signup: { username: string; email: string }): Promise<FleetShard> {
    await lockPlacement(client, this.stackPattern);
    return placeIn(client, [this.shard], Number.POSITIVE_INFINITY, signup, () => this.shard);
  }
  checkName(signup: { username: string }): void {
    refuseTaken(new Map([[this.shard, readShardFile(this.shard.path)]]), signup.username);
  }
  warmNameCheck(): void {
    readShardFile(this.shard.path);
  }
  shardOf(stack: string): FleetShard {
    if (stack !== this.shard.stack) throw new Error(`this service deploys stack "${this.shard.stack}", not "${stack}"`);
    return this.shard;
  }
  templateStack(): undefined {
    return undefined;
  }
  stacks(): string[] {
    return [this.shard.stack];
  }
}

export interface ShardedFleetOptions {
  /** The environment: stacks are `<environment>-<shard>`. */
  environment: string;
  /** The folder holding tenants/shards.yaml: the project folder, or the service's git clone. */
  dir: string;
  /** Git mode: new shards stay pending until the commit of their first tenants lists them. */
  git: boolean;
}

export class ShardedFleet implements Fleet {
  readonly stackPattern: string;
  private readonly prefix: string;
  constructor(private readonly options: ShardedFleetOptions) {
    this.prefix = `${options.environment}-`;
    this.stackPattern = `${likeLiteral(this.prefix)}%`;
  }

  describe(): string {
    const manifest = join(this.options.dir, SHARDS_MANIFEST);
    try {
      return `${this.prefix}* (${readShards(this.options.dir).shards.length} shard(s) in ${manifest})`;
    } catch {
      return `${this.prefix}* (${manifest} is not valid)`;
    }
  }

  /** The manifest's lock: the CLI's choice of a shard and the git store's batches take it too. */
  get lockFile(): string {
    return join(this.options.dir, SHARDS_MANIFEST);
  }

  private fleetShard(shard: Shard): FleetShard {
    return { name: shard.name, stack: shardStack(this.options.environment, shard), file: shard.file, path: resolve(this.options.dir, shard.file) };
  }

  /** Git mode: shards that signups were placed on but that the manifest does not list yet, in order. */
  private async pending(client: PoolClient, listed: readonly Shard[]): Promise<Shard[]> {
    if (!this.options.git) return [];
    const names = new Set(listed.map((shard) => shard.name));
    return (await stacksWithSignups(client, this.stackPattern))
      .map((stack) => stack.slice(this.prefix.length))
      .filter((name) => !names.has(name))
      .sort((a, b) => shardNumber(a) - shardNumber(b) || a.localeCompare(b))
      .map((name) => ({ name, file: `tenants/${name}.yaml` }));
  }

  async place(client: PoolClient, signup: { username: string; email: string }): Promise<FleetShard> {
    await lockPlacement(client, this.stackPattern);
    return withTenantsFileLock(this.lockFile, async () => {
      const manifest = readShards(this.options.dir);
      const known = [...manifest.shards, ...(await this.pending(client, manifest.shards))];
      const grow = (): FleetShard => {
        if (this.options.git) return this.fleetShard({ name: nextShardName(known), file: `tenants/${nextShardName(known)}.yaml` });
        const shard = addShard(this.options.dir, manifest);
        const path = resolve(this.options.dir, shard.file);
        if (!existsSync(path)) writeFileAtomic(path, NEW_SHARD_FILE);
        return this.fleetShard(shard);
      };
      return placeIn(
        client,
        known.map((shard) => this.fleetShard(shard)),
        manifest.maxTenants,
        signup,
        grow,
      );
    });
  }

  checkName(signup: { username: string }): void {
    const shards = readShards(this.options.dir).shards.map((shard) => this.fleetShard(shard));
    refuseTaken(new Map(shards.map((shard) => [shard, readShardFile(shard.path)])), signup.username);
  }

  warmNameCheck(): void {
    for (const shard of readShards(this.options.dir).shards) readShardFile(this.fleetShard(shard).path);
  }

  shardOf(stack: string): FleetShard {
    if (!stack.startsWith(this.prefix))
      throw new Error(`stack "${stack}" is not of environment "${this.options.environment}" (stacks "${this.prefix}<shard>")`);
    const name = stack.slice(this.prefix.length);
    const listed = readShards(this.options.dir).shards.find((shard) => shard.name === name);
    if (listed) return this.fleetShard(listed);
    if (this.options.git) return this.fleetShard({ name, file: `tenants/${name}.yaml` });
    throw new Error(`stack "${stack}": no shard "${name}" in ${join(this.options.dir, SHARDS_MANIFEST)}`);
  }

  templateStack(): string {
    return this.stacks()[0]!;
  }
  stacks(): string[] {
    return readShards(this.options.dir).shards.map((shard) => shardStack(this.options.environment, shard));
  }
}

const shardNumber = (name: string) => Number(/^s(\d+)$/.exec(name)?.[1] ?? Number.NaN) || 0;

/** The name after the highest `sNNN`, as addShard (tenants/shards.ts) names them. */
export function nextShardName(shards: readonly Shard[]): string {
  return `s${String(Math.max(0, ...shards.map((shard) => shardNumber(shard.name))) + 1).padStart(3, "0")}`;
}

const EMPTY = "tenants: []\n";
const parsedFiles = new Map<string, { key: string; text: string; parsed: TenantsFileResult }>();

/**
 * A shard's file, read and validated; kept while its inode, size and mtime
 * stay the same (every writer replaces the file: atomic rename, git checkout),
 * so a signup into a fleet of many shards re-reads only the files that changed.
 */
function readShardFile(path: string): { text: string; parsed: TenantsFileResult } {
  const stat = statSync(path, { bigint: true, throwIfNoEntry: false });
  if (stat === undefined) return { text: EMPTY, parsed: validateTenantsText(EMPTY) };
  const key = `${stat.ino}:${stat.size}:${stat.mtimeNs}`;
  const cached = parsedFiles.get(path);
  if (cached?.key === key) return cached;
  const text = readFileSync(path, "utf8");
  const entry = { key, text, parsed: validateTenantsText(text) };
  parsedFiles.set(path, entry);
  return entry;
}

/**
 * The placement itself: refuse a username (or web address) that any shard's
 * file has, then the first shard with room (tenants/shards.ts, counting the
 * signups placed there and not in its file yet); `grow` makes a new one. A
 * shard whose file is invalid has no room (a single stack takes signups
 * anyway, through `grow`: its batch fails until a person fixes the file, as before shards).
 */
async function placeIn(
  client: PoolClient,
  shards: readonly FleetShard[],
  maxTenants: number,
  signup: { username: string; email: string },
  grow: () => FleetShard,
): Promise<FleetShard> {
  const files = new Map(shards.map((shard) => [shard, readShardFile(shard.path)]));
  refuseTaken(files, signup.username);
  const stacks = shards.map((shard) => shard.stack);
  const bound = await signupsBoundFor(client, stacks);
  // The files are read above (`read`), so the project folder argument is not used.
  const chosen = shardWithRoom("", { maxTenants, shards }, 1, {
    read: (shard) => files.get(shard)!.parsed,
    pending: (shard, inFile) => {
      const written = new Set(inFile.map((tenant) => tenant.username));
      return bound.filter((row) => row.stack === shard.stack && !written.has(row.username)).length;
    },
  });
  if (chosen === undefined) return grow();
  const { text, parsed } = files.get(chosen)!;
  if (parsed.ok) {
    const edit = addTenants(text, [{ username: signup.username, email: signup.email }]);
    if (!edit.ok) throw new PlacementConflict(`username "${signup.username}" cannot be used: ${edit.problems.map((p) => p.message).join("; ")}`);
  }
  return chosen;
}

/** A username, or (across shards) a web address, that some shard's file already has: PlacementConflict. */
function refuseTaken(files: ReadonlyMap<FleetShard, { parsed: TenantsFileResult }>, username: string): void {
  const label = usernameToLabel(username);
  for (const [shard, { parsed }] of files) {
    if (!parsed.ok) continue;
    if (parsed.tenants.some((tenant) => tenant.username === username)) throw new PlacementConflict(`username "${username}" is already taken; choose another`);
    const twin = parsed.tenants.find((tenant) => usernameToLabel(tenant.username) === label);
    if (twin && files.size > 1) {
      throw new PlacementConflict(`username "${username}" is taken: it gives the same web address as "${twin.username}" (shard ${shard.name}); choose another`);
    }
  }
}

/**
 * Git mode: lists `shard` in the manifest of the clone at `dir` (comments
 * kept) when it is not listed yet; true when it wrote. A shard listed under
 * another file is refused: the signups were placed on the shard's stack, and
 * that stack's file must be the one they are written to.
 */
export function ensureShardListed(dir: string, shard: Shard): boolean {
  const manifest = readShards(dir);
  const listed = manifest.shards.find((entry) => entry.name === shard.name);
  if (listed) {
    if (resolve(dir, listed.file) === resolve(dir, shard.file)) return false;
    throw new Error(
      `${SHARDS_MANIFEST} lists shard ${shard.name} with file ${listed.file}, but its signups were written for ${shard.file}; list it with ${shard.file}`,
    );
  }
  const path = join(dir, SHARDS_MANIFEST);
  const doc = existsSync(path) ? parseDocument(readFileSync(path, "utf8")) : new Document({ maxTenants: manifest.maxTenants, shards: manifest.shards });
  (doc.get("shards") as YAMLSeq).add(doc.createNode({ name: shard.name, file: shard.file }));
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, doc.toString());
  readShards(dir);
  return true;
}

export { NEW_SHARD_FILE };

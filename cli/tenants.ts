/**
 * `npm run tenants -- <command>`: the safe way to edit the tenants file.
 * Every command validates the whole resulting file before writing it, and a
 * rejected command leaves the file byte-for-byte unchanged.
 */
import { randomInt } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_APP_NAME, DEFAULT_RECORD_TEMPLATE, databaseName, domainName, usernameToLabel } from "../infra/naming";
import { parseDeployedTenants, type TenantSummaryOutput } from "../infra/outputs";
import { LOCAL_ENVIRONMENT, PROJECT_DIR } from "../engine/paths";
import { BUILD_COMMAND, EngineNotFoundError, findEngine } from "../engine/pulumi";
import { readFleetOutputs, resolveFleet, type Fleet } from "../engine/fleet-access";
import { redactSecrets } from "../lib/redact";
import { Pool } from "pg";
import {
  addShard,
  crossShardProblems,
  DEFAULT_TENANTS_FILE,
  idTakenMessage,
  liveCount,
  readShards,
  shardStack,
  shardWithRoom,
  SHARDS_MANIFEST,
} from "../tenants/shards";
import { withTransaction } from "../lib/transaction";
import { lockPlacement, pendingClaimIds, signupsBoundFor } from "../onboarding/registry";
import { likeLiteral } from "../onboarding/fleet";
import { refillPools, type RefillOptions } from "../tenants/pool";
import { addTenants, pinTenantIds, removeTenant, setStatus, withTenantsFileLock, writeFileAtomic, type EditResult, type NewTenant } from "../tenants/edit";
import { allocateTenantIds, declaredTenantIds, type IdOwner } from "../tenants/ids";
import { formatProblem, loadTenantsFile, type TenantsProblem } from "../tenants/load";
import { isUnnamed, tenantIdSchema, usernameProblems, type LocatedTenant } from "../tenants/schema";
import { printTable } from "../lib/table";
import { errorMessage } from "../lib/errors";
import { runMain } from "../lib/run-main";

const USAGE = `usage: npm run tenants -- <command> [options]

commands:
  add <username> [--email E] [--server S] [--tenant-id ID]   append one tenant, with a new tenant ID unless --tenant-id
  add --count N [--server S]                                  append N generated tenants and print them
  assign-ids [--undeployed]                                   one-time: write every entry's tenantId (the deployed one, or a new one)
  validate                                                    every shard's file, and tenant IDs unique across shards and stacks
  list [--json]                                               every tenant, as a table
  show <username | tenant ID> [--json]                        what support needs to find a tenant
  suspend <username>                                          role cannot log in, DNS removed, data kept (a pooled entry: refused)
  resume <username | tenant ID>                               undo suspend; a pooled entry's tombstone goes back into the pool
  remove <username | tenant ID>                               offboard: the entry becomes a tombstone (status: removed); data kept by default;
                                                              a pooled entry (by its tenant ID) leaves the warm pool
  pool refill [--json]                                        top each shard's warm pool up to its poolSize (tenants/shards.yaml) with
                                                              pooled entries (status: pooled, a new tenantId); "pulumi up" makes them

options:
  --file PATH      one tenants file (default: every shard in tenants/shards.yaml; add picks the
                   first shard with room, suspend/resume/remove the shard that has the tenant)
  --env NAME       the environment whose shard stacks list and show read: "<env>-<shard>" (default: local;
                   state: PULUMI_BACKEND_URL, else npm start's, its PostgreSQL started when not running)
  --stack NAME     read this one stack's outputs instead
  --outputs FILE   the stack's outputs as JSON ("pulumi stack output --json") instead of asking pulumi
  --json           machine-readable output (list, show)
  --undeployed     assign-ids without reading the deployed stacks (only when no shard was ever deployed)
  -h, --help       this text`;

/** Wrong command line: exit status 2, like most Unix tools. */
class UsageError extends Error {}
/** The file or the request is invalid: exit status 1, one line per problem. */
class ProblemsError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join("\n"));
  }
}

const OPTIONS = {
  file: { type: "string" },
  env: { type: "string", default: LOCAL_ENVIRONMENT },
  outputs: { type: "string" },
  stack: { type: "string" },
  email: { type: "string" },
  server: { type: "string" },
  "tenant-id": { type: "string" },
  count: { type: "string" },
  json: { type: "boolean", default: false },
  undeployed: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

type Options = ReturnType<typeof parseCommandLine>["values"];

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${errorMessage(error).split("\n")[0]}; see "npm run tenants -- --help"`);
  }
}

type Deployed = Record<string, TenantSummaryOutput>;

/**
 * What the last `pulumi up` of each shard recorded, so `list` and `show` can
 * print tenant IDs and domains, and `remove`/`resume` can pin the deployed ID.
 * The stacks, engine and backend are engine/fleet-access.ts's: every shard of
 * --env (default local) or --stack, on PULUMI_BACKEND_URL or else the
 * checkout's local state (its embedded PostgreSQL started for the command
 * when not running, and stopped again). A stack that does not exist yet (a
 * shard never deployed) has nothing to show. A stack or backend that cannot
 * be read fails `remove` and `resume` (`pin`), which would otherwise write an
 * entry without the deployed tenant ID; for `list` and `show` a note on
 * stderr says why (the command goes on). Never builds the engine.
 */
async function readDeployed(options: Options, purpose: "show" | "pin" | "ids" = "show"): Promise<Deployed> {
  if (options.outputs !== undefined) {
    try {
      return parseDeployedTenants(JSON.parse(readFileSync(options.outputs, "utf8")));
    } catch (error) {
      throw new ProblemsError([`${options.outputs}: cannot read stack outputs (${errorMessage(error)}); pass "pulumi stack output --json" saved to a file`]);
    }
  }
  const deployed: Deployed = {};
  let fleet: Fleet;
  try {
    fleet = await resolveFleet({ environment: options.env, stack: options.stack, mayBuild: false });
  } catch (error) {
    if (error instanceof EngineNotFoundError) {
      // add: no engine or state here (a fresh checkout, CI's unit job): the files are checked; the program checks the rest.
      if (purpose !== "ids") {
        console.error(`note: deployed tenant IDs are not shown: no pulumi on PATH and no built toolchain (npm start builds it, or: ${BUILD_COMMAND})`);
      }
      return deployed;
    }
    if (purpose === "pin") throw new ProblemsError([unreadableStack(options.stack ?? `${options.env}-*`, errorMessage(error))]);
    console.error(redactSecrets(`note: deployed tenant IDs are not shown (${errorMessage(error).split("\n")[0]})`));
    return deployed;
  }
  try {
    const { readings } = await readFleetOutputs(fleet);
    for (const reading of readings) {
      if (reading.error === undefined) {
        Object.assign(deployed, parseDeployedTenants(reading.outputs));
        continue;
      }
      if (purpose === "pin") throw new ProblemsError([unreadableStack(reading.stack, reading.error)]);
      console.error(
        purpose === "ids"
          ? `note: stack ${reading.stack} not read (${reading.error}); new tenant IDs are checked against the files, and by the program before anything changes`
          : `note: stack ${reading.stack} not read (${reading.error}); its tenants show no deployed IDs`,
      );
    }
  } catch (error) {
    if (error instanceof ProblemsError) throw error;
    if (purpose === "pin") throw new ProblemsError([unreadableStack(fleet.stacks.join(", "), errorMessage(error))]);
    console.error(
      redactSecrets(
        `note: deployed tenant IDs are not shown (${
          errorMessage(error)
            .split("\n")
            .find((line) => /error/i.test(line)) ?? "the state backend cannot be read"
        })`,
      ),
    );
  } finally {
    await fleet.close();
  }
  return deployed;
}

function unreadableStack(stack: string, reason: string): string {
  return redactSecrets(
    `cannot read the deployed tenants of stack ${stack} (${reason.slice(0, 200)}), so the deployed tenant ID cannot be pinned; nothing was changed. ` +
      `Make the stack readable (npm start's state for stacks local-*, started by this command when it is not running; else PULUMI_BACKEND_URL and PULUMI_CONFIG_PASSPHRASE), ` +
      `or pass --outputs FILE with "pulumi stack output --json --stack ${stack}" saved to it`,
  );
}

/** Whether an engine is here to read the deployed stacks with (never builds one). */
function engineFound(): boolean {
  try {
    findEngine({ mayBuild: false });
    return true;
  } catch (error) {
    if (error instanceof EngineNotFoundError) return false;
    throw error;
  }
}

/** The tenants files a read-only command covers: --file, or every shard's. */
function filesToRead(options: Options): { file: string; shard?: string }[] {
  if (options.file !== undefined) return [{ file: options.file }];
  return readShards(PROJECT_DIR).shards.map((shard) => ({ file: shard.file, shard: shard.name }));
}

/**
 * The file holding the entry people typed, and its key in the file: a
 * username, or the tenant ID of an entry without one (pooled, or its
 * tombstone), in any case. --file, or the shard whose file has it.
 */
function locate(options: Options, typed: string): { file: string; key: string } {
  const keys = [typed, ...(tenantIdSchema.safeParse(typed.toUpperCase()).success && typed !== typed.toUpperCase() ? [typed.toUpperCase()] : [])];
  for (const key of keys) {
    for (const { file } of filesToRead(options)) {
      const result = existsSync(file) ? loadTenantsFile(file) : undefined;
      if (result?.ok && result.tenants.some((tenant) => tenant.username === key && (key === typed || isUnnamed(tenant)))) return { file, key };
    }
  }
  // --file: its own messages (file missing or invalid, no such tenant) come from the edit.
  if (options.file !== undefined) return { file: options.file, key: typed };
  throw new ProblemsError([`no tenant "${typed}" in any shard (${SHARDS_MANIFEST}); see "npm run tenants -- list"`]);
}

/** Where `count` new tenants go: --file, else the first shard with room, else a new shard (written to the manifest). */
function fileForNewTenants(options: Options, count: number): string {
  if (options.file !== undefined) return options.file;
  const manifest = readShards(PROJECT_DIR);
  const shard = shardWithRoom(PROJECT_DIR, manifest, count) ?? addShard(PROJECT_DIR, manifest);
  if (!existsSync(shard.file))
    writeFileAtomic(shard.file, "# A shard of the fleet (tenants/shards.yaml); see tenants/tenants.yaml for the format.\ntenants: []\n");
  return shard.file;
}

function loadValid(file: string): { text: string; tenants: LocatedTenant[] } {
  if (!existsSync(file)) throw new ProblemsError([`${file}: file not found; create it with "tenants: []" or pass --file`]);
  const result = loadTenantsFile(file);
  if (!result.ok) throw new ProblemsError(result.problems.map((problem) => formatProblem(file, problem)));
  return { text: readFileSync(file, "utf8"), tenants: result.tenants };
}

function apply(file: string, before: string, result: EditResult): LocatedTenant[] {
  if (!result.ok) {
    // Lines past the end of the current file belong to entries this command
    // would have appended: name them as new entries, not as lines of the file.
    const lineCount = before.split("\n").length - (before.endsWith("\n") ? 1 : 0);
    const located = (problem: TenantsProblem): TenantsProblem => (problem.line > lineCount ? { ...problem, line: 0 } : problem);
    throw new ProblemsError(result.problems.map((problem) => formatProblem(file, located(problem)).replace(`${file}: tenant`, `${file}: new tenant`)));
  }
  writeFileAtomic(file, result.text);
  return result.tenants;
}

function onePositional(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected exactly one ${what}, got ${positionals.length}; see "npm run tenants -- --help"`);
  return positionals[0]!;
}

/** Usernames like `driver_k3x9qa` that pass every rule and collide with nothing. */
function generateUsernames(count: number, taken: Set<string>): string[] {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const names: string[] = [];
  while (names.length < count) {
    const name = `driver_${Array.from({ length: 6 }, () => alphabet[randomInt(alphabet.length)]).join("")}`;
    const label = usernameToLabel(name);
    if (usernameProblems(name).length === 0 && !taken.has(label)) {
      taken.add(label);
      names.push(name);
    }
  }
  return names;
}

/**
 * Without --file the shard is chosen (or made) under a lock on the shard
 * manifest, so concurrent adds neither overfill a shard nor make two new ones;
 * the chosen file is then edited under its own lock, like every edit.
 */
async function commandAdd(positionals: string[], options: Options): Promise<void> {
  const count = options.count !== undefined && /^[1-9][0-9]{0,4}$/.test(options.count) ? Number(options.count) : 1;
  // Read before taking the locks: asking the deployed stacks can take seconds (and their tenants are in the files anyway).
  const deployed = deployedIdsNeeded(options) ? deployedIdOwners(options, await readDeployed(options, "ids")) : new Map<string, IdOwner>();
  // Tenant IDs of a fleet's shard are allocated under the manifest's lock (the signup service takes it too), so no two
  // allocators of the environment overlap; a --file outside the manifest is a fleet of its own: its own lock is enough.
  const inFleet = options.file === undefined || readShards(PROJECT_DIR).shards.some((shard) => resolve(PROJECT_DIR, shard.file) === resolve(options.file!));
  const add = async () => {
    const file = fileForNewTenants(options, count);
    await withTenantsFileLock(file, () => addTo(file, positionals, options, deployed));
  };
  await (inFleet ? withTenantsFileLock(join(PROJECT_DIR, SHARDS_MANIFEST), add) : add());
}

/**
 * Whether `add` must read the deployed stacks to know every ID in use. A
 * deployed tenant always has its entry (a deployed tenant missing from its
 * file fails the update, infra/continuity.ts), so when every entry of every
 * shard's file (and of --file) carries its tenantId, the files hold every
 * deployed ID and reading the state adds nothing; it would only cost an engine
 * start per stack, and with the local backend a start of the embedded
 * PostgreSQL. Entries without an ID (files written before allocation, until
 * `assign-ids`) have their deployed IDs only in the state: then it is read,
 * as it is when --outputs names a saved copy. A file that cannot be read is
 * treated as having such entries. The program checks again, server included.
 */
function deployedIdsNeeded(options: Options): boolean {
  if (options.outputs !== undefined) return true;
  // The files whose tenants the stacks that would be read deploy: --stack's (--file, else the default file), else every shard's.
  const shardFiles = options.stack !== undefined ? [] : readShards(PROJECT_DIR).shards.map((shard) => resolve(PROJECT_DIR, shard.file));
  const files = [...shardFiles, resolve(options.file ?? (options.stack !== undefined ? join(PROJECT_DIR, DEFAULT_TENANTS_FILE) : shardFiles[0]!))];
  return [...new Set(files)].some((file) => {
    if (!existsSync(file)) return false;
    const result = loadTenantsFile(file);
    return !result.ok || result.tenants.some((tenant) => tenant.tenantId === undefined);
  });
}

/**
 * Tenant IDs the deployed stacks hold, with their tenants, where the stacks
 * can be read; a note says when they cannot (the files are still checked,
 * and the program checks again, server included, before anything changes).
 */
function deployedIdOwners(options: Options, deployed: Deployed): Map<string, IdOwner> {
  const where = options.outputs ?? (options.stack !== undefined ? `stack ${options.stack}` : `the ${options.env} stacks`);
  return new Map(Object.entries(deployed).map(([username, tenant]) => [tenant.tenantId, { tenantId: tenant.tenantId, username, where: `deployed, ${where}` }]));
}

/** Every ID taken in the environment: the deployed ones and every shard's (and `file`'s) entries, read now. */
function takenIds(file: string, deployed: ReadonlyMap<string, IdOwner>): Map<string, IdOwner> {
  return new Map([...deployed, ...declaredTenantIds(PROJECT_DIR, [file])]);
}

function addTo(file: string, positionals: string[], options: Options, deployed: ReadonlyMap<string, IdOwner>): void {
  const { text, tenants } = loadValid(file);
  const additions: NewTenant[] = [];
  if (options.count !== undefined) {
    if (positionals.length > 0) throw new UsageError("give either a username or --count N, not both");
    if (!/^[1-9][0-9]{0,4}$/.test(options.count) || Number(options.count) > 10_000) {
      throw new UsageError(`--count must be a whole number from 1 to 10000, got "${options.count}"`);
    }
    const taken = new Set(tenants.map((tenant) => usernameToLabel(tenant.username)));
    for (const username of generateUsernames(Number(options.count), taken)) additions.push({ username, server: options.server });
  } else {
    const username = onePositional(positionals, "username");
    additions.push({ username, email: options.email, server: options.server, tenantId: options["tenant-id"] });
  }
  const taken = takenIds(file, deployed);
  const pinned = options["tenant-id"];
  const owner = pinned !== undefined ? taken.get(pinned) : undefined;
  if (owner !== undefined && owner.username !== additions[0]?.username) {
    throw new ProblemsError([`${file}: new tenant "${additions[0]!.username}": ${idTakenMessage(pinned!, owner)}`]);
  }
  const fresh = allocateTenantIds(additions.filter((addition) => addition.tenantId === undefined).length, new Set(taken.keys()));
  for (const addition of additions) if (addition.tenantId === undefined) addition.tenantId = fresh.shift();
  const elsewhere = crossShardProblems(
    PROJECT_DIR,
    file,
    additions.map((addition) => ({ ...addition, status: "active" as const, line: 0 })),
  );
  if (elsewhere.length > 0) throw new ProblemsError(elsewhere.map((problem) => formatProblem(file, problem).replace(`${file}: tenant`, `${file}: new tenant`)));
  const after = apply(file, text, addTenants(text, additions));
  for (const addition of additions) {
    const line = after.find((tenant) => tenant.username === addition.username)?.line;
    console.log(`added ${addition.username} as tenant ${addition.tenantId} (${file}:${line}); "pulumi up" creates it`);
  }
}

async function commandStatus(positionals: string[], options: Options, status: "active" | "suspended"): Promise<void> {
  const { file, key: username } = locate(options, onePositional(positionals, "username (or, for a pooled entry, tenant ID)"));
  await withTenantsFileLock(file, () => changeStatus(file, username, options, status));
}

/**
 * suspend/resume of an entry without a username (tenants/schema.ts isUnnamed):
 * a pooled entry cannot be suspended or resumed (nobody uses it; it has no DNS
 * record); the tombstone of one is resumed back into the pool (`status:
 * pooled`). Returns the status to write, or throws naming the entry and what to do.
 */
function unnamedStatus(file: string, entry: LocatedTenant, status: "active" | "suspended"): "pooled" {
  const where = `${file}:${entry.line}: tenant ${entry.tenantId}`;
  if (entry.status === "pooled") {
    throw new ProblemsError([
      status === "suspended"
        ? `${where} is a pooled (unclaimed) entry: nobody can use it and it has no DNS record, so there is nothing to suspend; nothing was changed. ` +
          `To take it out of the warm pool: npm run tenants -- remove ${entry.tenantId} (its data is kept; "pool refill" makes a new one)`
        : `${where} is a pooled (unclaimed) entry, not suspended; nothing to resume`,
    ]);
  }
  if (status === "suspended") {
    throw new ProblemsError([
      `${where} is the tombstone of a pooled entry (no username), so it cannot be suspended; nothing was changed. ` +
        `npm run tenants -- resume ${entry.tenantId} puts it back into the warm pool`,
    ]);
  }
  return "pooled";
}

/** A pooled entry's tombstone goes back into the pool only where its shard has room (pooled entries count toward maxTenants). */
function refuseOverFull(file: string, tenants: readonly LocatedTenant[], entry: LocatedTenant): void {
  const manifest = readShards(PROJECT_DIR);
  if (!manifest.shards.some((shard) => resolve(PROJECT_DIR, shard.file) === resolve(file))) return;
  if (liveCount(tenants) + 1 <= manifest.maxTenants) return;
  throw new ProblemsError([
    `${file}:${entry.line}: tenant ${entry.tenantId}: the shard is full (${liveCount(tenants)} of maxTenants ${manifest.maxTenants}, pooled entries included), ` +
      `so it cannot go back into the pool; nothing was changed. Its data is kept; remove a pooled entry first (npm run tenants -- remove <tenant ID>), or leave it removed`,
  ]);
}

async function changeStatus(file: string, username: string, options: Options, status: "active" | "suspended"): Promise<void> {
  const { text, tenants } = loadValid(file);
  const entry = tenants.find((tenant) => tenant.username === username);
  if (entry !== undefined && isUnnamed(entry)) {
    const next = unnamedStatus(file, entry, status);
    refuseOverFull(file, tenants, entry);
    apply(file, text, setStatus(text, username, next));
    console.log(
      `returned ${username} to the warm pool (status: pooled): on the next "pulumi up" its role can log in again and it is claimable; its data was kept`,
    );
    return;
  }
  // A tombstone brought back needs its deployed tenant ID pinned, or it would get a new, empty database.
  const pin =
    status === "active" && entry?.status === "removed" && entry.tenantId === undefined ? (await readDeployed(options, "pin"))[username]?.tenantId : undefined;
  apply(file, text, setStatus(text, username, status, pin));
  console.log(
    status === "suspended"
      ? `suspended ${username}: on the next "pulumi up" its role cannot log in and its DNS record is removed; its data is kept`
      : `resumed ${username}: on the next "pulumi up" its role can log in again and its DNS record returns`,
  );
}

async function commandRemove(positionals: string[], options: Options): Promise<void> {
  const { file, key: username } = locate(options, onePositional(positionals, "username (or, for a pooled entry, tenant ID)"));
  // Read before taking the lock: asking the deployed stacks can take seconds.
  const deployed = (await readDeployed(options, "pin"))[username];
  await withTenantsFileLock(file, () => tombstone(file, username, deployed));
}

function tombstone(file: string, username: string, deployed: TenantSummaryOutput | undefined): void {
  const { text, tenants } = loadValid(file);
  const entry = tenants.find((tenant) => tenant.username === username);
  if (entry !== undefined && isUnnamed(entry)) return tombstonePooled(file, text, entry, deployed);
  const id = deployed?.tenantId;
  apply(file, text, removeTenant(text, username, id));
  console.log(`removed ${username}: its entry in ${file} is now a tombstone (status: removed); keep the line.`);
  console.log(`On the next "pulumi up":`);
  console.log(`  - its DNS record, tenant ID record and secrets leave the stack;`);
  console.log(
    `  - its database${deployed ? ` ${deployed.database}` : ""} and role are KEPT with all data,` +
      ` unless the stack config sets allowPurge: true (then they are dropped);`,
  );
  console.log(`To bring it back with its data: npm run tenants -- resume ${username}`);
}

/**
 * A pooled entry taken out of the warm pool: its entry becomes a tombstone
 * keyed by its tenant ID (`tenantId` + `status: removed`), so the next update
 * drops it like any offboarded tenant (data kept unless allowPurge) and a
 * signup's claim of it is refused (the signup takes the next pooled tenant,
 * or an update); `pool refill` then makes a new one.
 */
function tombstonePooled(file: string, text: string, entry: LocatedTenant, deployed: TenantSummaryOutput | undefined): void {
  const id = entry.tenantId!;
  if (entry.status !== "removed") apply(file, text, removeTenant(text, id));
  console.log(`removed pooled tenant ${id}: its entry in ${file} is now a tombstone (tenantId + status: removed); keep the line.`);
  console.log(`On the next "pulumi up":`);
  console.log(`  - it leaves the warm pool: no signup can claim it any more; its secrets and seed leave the stack;`);
  console.log(
    `  - its database ${deployed?.database ?? databaseName(DEFAULT_APP_NAME, id)} and role are KEPT with all data,` +
      ` unless the stack config sets allowPurge: true (then they are dropped);`,
  );
  console.log(`  - "npm run tenants -- pool refill" writes a new pooled entry in its place.`);
  console.log(`To put it back into the pool with its data: npm run tenants -- resume ${id}`);
}

/**
 * The one-time, idempotent step from RandomId-drawn IDs to allocated ones:
 * every entry without a `tenantId:` gets the one its stack deployed (so
 * nothing changes on the next update), or a new unique one if it was never
 * deployed. The deployed stacks must be readable: an unread stack would get
 * new IDs for deployed tenants (which the program then refuses).
 */
async function commandAssignIds(options: Options): Promise<void> {
  if (options.outputs === undefined && !options.undeployed && !engineFound()) {
    throw new ProblemsError([
      `cannot read the deployed stacks (no pulumi on PATH or built toolchain, or no state backend), so deployed tenants' IDs are unknown; nothing was changed. ` +
        `Make them readable (npm start's state, or PULUMI_BACKEND_URL), pass --outputs FILE, or --undeployed if no shard was ever deployed`,
    ]);
  }
  const deployed = options.undeployed ? {} : await readDeployed(options, "pin");
  const owners = deployedIdOwners(options, deployed);
  await withTenantsFileLock(join(PROJECT_DIR, SHARDS_MANIFEST), async () => {
    for (const { file } of filesToRead(options)) {
      if (!existsSync(file)) continue;
      await withTenantsFileLock(file, () => {
        const { text, tenants } = loadValid(file);
        const taken = new Set(takenIds(file, owners).keys());
        const ids = new Map<string, string>();
        for (const tenant of tenants.filter((entry) => entry.tenantId === undefined)) {
          const known = deployed[tenant.username]?.tenantId;
          // A tombstone never deployed holds no data: it needs no ID.
          if (known === undefined && tenant.status === "removed") continue;
          ids.set(tenant.username, known ?? allocateTenantIds(1, taken)[0]!);
        }
        if (ids.size === 0) return console.log(`${file}: every entry has its tenantId`);
        apply(file, text, pinTenantIds(text, ids));
        for (const [username, id] of ids) console.log(`${file}: ${username} tenantId: ${id} (${deployed[username] ? "deployed" : "new"})`);
      });
    }
  });
}

/** Every shard's file, then what only the whole environment shows: usernames and tenant IDs in two shards. Exit 1 on any problem. */
function commandValidate(options: Options): void {
  const lines: string[] = [];
  const files = filesToRead(options);
  for (const { file } of files) {
    if (!existsSync(file)) continue;
    const result = loadTenantsFile(file);
    if (!result.ok) {
      lines.push(...result.problems.map((problem) => formatProblem(file, problem)));
      continue;
    }
    lines.push(...crossShardProblems(PROJECT_DIR, file, result.tenants).map((problem) => formatProblem(file, problem)));
    const unpinned = result.tenants.filter((tenant) => tenant.tenantId === undefined && tenant.status !== "removed");
    if (unpinned.length > 0) {
      console.error(
        `note: ${file}: ${unpinned.length} entr${unpinned.length === 1 ? "y has" : "ies have"} no tenantId (${unpinned
          .slice(0, 5)
          .map((tenant) => tenant.username)
          .join(", ")}); npm run tenants -- assign-ids writes them`,
      );
    }
  }
  if (lines.length > 0) throw new ProblemsError(lines);
  console.log(`${files.length} file(s) valid; usernames and tenant IDs unique across shards`);
}

interface Row {
  username: string;
  tenantId: string;
  status: string;
  server: string;
  database: string;
  domain: string;
  /** The seed release the last update deployed, its rollout ring and hold (infra/rollout.ts). */
  seed: string;
  ring: string;
  hold: boolean;
  email: string;
  shard: string;
  file: string;
  line: number;
}

async function rows(options: Options): Promise<Row[]> {
  const deployed = await readDeployed(options);
  return filesToRead(options).flatMap(({ file, shard }) =>
    loadValid(file).tenants.map((tenant) => {
      const live = deployed[tenant.username];
      const tenantId = tenant.tenantId ?? live?.tenantId ?? "";
      return {
        // A pooled entry (its key is its tenant ID) has no username until a signup claims it.
        username: tenant.status === "pooled" ? "(pooled)" : tenant.username,
        tenantId: tenantId || "(next up)",
        status: tenant.status,
        server: tenant.server ?? live?.server ?? "(default)",
        database: live?.database ?? (tenantId ? databaseName(DEFAULT_APP_NAME, tenantId) : ""),
        domain: live?.domain || (tenant.status === "active" ? domainName(DEFAULT_RECORD_TEMPLATE, DEFAULT_APP_NAME, "<zone>", tenant.username) : ""),
        seed: live?.seedVersion ?? "",
        ring: tenant.ring ?? "(last wave)",
        hold: tenant.hold === true,
        email: tenant.email ?? "",
        shard: shard ?? "",
        file,
        line: tenant.line,
      };
    }),
  );
}

async function commandList(options: Options): Promise<void> {
  const table = await rows(options);
  if (options.json) {
    console.log(JSON.stringify(table, null, 2));
    return;
  }
  printTable(
    ["username", "tenant ID", "status", "server", "database", "domain", "seed", "shard"],
    table.map((row) => [row.username, row.tenantId, row.status, row.server, row.database, row.domain, `${row.seed}${row.hold ? " held" : ""}`, row.shard]),
  );
  const files = filesToRead(options);
  console.log(`${table.length} tenant(s) in ${files.length === 1 ? files[0]!.file : `${files.length} shards`}`);
}

async function commandShow(positionals: string[], options: Options): Promise<void> {
  const key = onePositional(positionals, "username or tenant ID");
  const byId = tenantIdSchema.safeParse(key.toUpperCase()).success ? key.toUpperCase() : undefined;
  const row = (await rows(options)).find((candidate) => candidate.username === key || candidate.tenantId === byId);
  if (row === undefined) throw new ProblemsError([`no tenant with username or tenant ID "${key}" in ${options.file ?? "any shard"}`]);
  const { file, line, ...fields } = row;
  if (options.json) {
    console.log(JSON.stringify(row, null, 2));
    return;
  }
  printTable(
    ["field", "value"],
    Object.entries({ ...fields, line: `${file}:${line}` }).map(([field, value]) => [field, String(value)]),
  );
}

/**
 * With the signup service's control database (DATABASE_URL, as the service
 * reads it): its placement lock for the environment's stacks, held while the
 * refill runs (the lock every signup's placement takes before the manifest's,
 * so in-flight placements commit first and new ones wait), the signups it
 * has placed on each shard, whose room the refill leaves free, and the pooled
 * entries its signups claimed whose binding is not committed yet (taken, not
 * pooled). Without DATABASE_URL there is no service to race: `run` gets none.
 */
async function withPlacedSignups<T>(environment: string, run: (service?: Pick<RefillOptions, "placed" | "claimed">) => Promise<T>): Promise<T> {
  const url = process.env.DATABASE_URL;
  if (url === undefined || url === "") return run();
  const db = new Pool({ connectionString: url, max: 1 });
  const unreadable = (error: unknown) =>
    new ProblemsError([
      redactSecrets(
        `cannot read the signups placed by the service from DATABASE_URL (${errorMessage(error)}); nothing was refilled. Fix DATABASE_URL, or unset it where no service runs`,
      ),
    ]);
  try {
    return await withTransaction(db, async (client) => {
      const stacks = readShards(PROJECT_DIR).shards.map((shard) => shardStack(environment, shard));
      const read = async () => {
        await lockPlacement(client, `${likeLiteral(`${environment}-`)}%`);
        const claims = await Promise.all(stacks.map(async (stack) => [stack, new Set(await pendingClaimIds(client, stack))] as const));
        return { placed: await signupsBoundFor(client, stacks), claimed: new Map(claims) };
      };
      const { placed, claimed } = await read().catch((error: unknown) => Promise.reject(unreadable(error)));
      return run({
        placed: (shard) => placed.filter((row) => row.stack === shardStack(environment, shard)).map((row) => row.username),
        claimed: (shard) => claimed.get(shardStack(environment, shard)) ?? new Set(),
      });
    });
  } catch (error) {
    // The pool's connection itself (connect, BEGIN) failing is the same unreadable control database.
    if (error instanceof ProblemsError || !(error instanceof Error && "code" in error)) throw error;
    throw unreadable(error);
  } finally {
    await db.end();
  }
}

/**
 * `pool refill`: tops every shard's warm pool up (tenants/pool.ts), with IDs
 * checked against every shard's entries and, where readable, the deployed outputs.
 */
async function commandPool(positionals: string[], options: Options): Promise<void> {
  if (positionals.length !== 1 || positionals[0] !== "refill") throw new UsageError('expected "pool refill"; see "npm run tenants -- --help"');
  if (options.file !== undefined) throw new UsageError("pool refill works on the shards of tenants/shards.yaml; --file is not used");
  const deployed = Object.values(await readDeployed(options, "ids")).map((tenant) => tenant.tenantId);
  const refills = await withPlacedSignups(options.env, (service) => refillPools(PROJECT_DIR, { takenIds: deployed, ...service }));
  if (options.json) console.log(JSON.stringify(refills, null, 2));
  else {
    printTable(
      ["shard", "file", "pool size", "pooled", "added"],
      refills.map((refill) => [refill.shard, refill.file, String(refill.size), String(refill.pooled), refill.added.join(" ") || "-"]),
    );
    const added = refills.reduce((sum, refill) => sum + refill.added.length, 0);
    console.log(`${added} pooled tenant(s) added; "pulumi up" of each shard makes them`);
  }
  const problems = refills.flatMap((refill) => refill.problems);
  if (problems.length > 0) throw new ProblemsError(problems.map((problem) => `${problem} (this shard's pool was not refilled)`));
}

async function main(argv: string[]): Promise<number> {
  try {
    const { values: options, positionals } = parseCommandLine(argv);
    const [command, ...rest] = positionals;
    if (options.help || command === undefined || command === "help") {
      console.log(USAGE);
      return command === undefined && !options.help ? 2 : 0;
    }
    switch (command) {
      case "add":
        await commandAdd(rest, options);
        break;
      case "list":
        await commandList(options);
        break;
      case "show":
        await commandShow(rest, options);
        break;
      case "suspend":
        await commandStatus(rest, options, "suspended");
        break;
      case "resume":
        await commandStatus(rest, options, "active");
        break;
      case "remove":
        await commandRemove(rest, options);
        break;
      case "pool":
        await commandPool(rest, options);
        break;
      case "assign-ids":
        await commandAssignIds(options);
        break;
      case "validate":
        commandValidate(options);
        break;
      default:
        throw new UsageError(`unknown command "${command}"; commands: add, list, show, suspend, resume, remove, assign-ids, validate, pool`);
    }
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`error: ${error.message}`);
      return 2;
    }
    if (error instanceof ProblemsError) {
      for (const line of error.lines) console.error(`error: ${line}`);
      return 1;
    }
    throw error;
  }
}

runMain(() => main(process.argv.slice(2)));

/**
 * Where the service's signups go: the tenants file the engine deploys.
 *
 * - `LocalTenantsFile`: a file on this host (the default, as before): read,
 *   add, write, under the tenants-file lock.
 * - `GitTenantsRepo`: the tenants file in a git repository, the one source of
 *   truth people edit through pull requests. Per batch: fetch, hard-reset
 *   the service's clone to the remote branch (a stale local copy is never
 *   deployed), add the signups that are not in the file yet, commit, push.
 *   A rejected push (someone pushed meanwhile) is retried on the new remote
 *   head: fetch, reset, the same additions again; after `pushAttempts` the
 *   batch fails and the service's retry backoff takes over.
 *
 * Either way the file left at `file` is exactly what was written (and, for
 * git, pushed), so the engine deploys that.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, normalize, resolve } from "node:path";
import { simpleGit, type SimpleGit } from "simple-git";
import { addTenants, claimPooledTenants, withTenantsFileLock, writeFileAtomic } from "../tenants/edit";
import { formatProblem, validateTenantsText } from "../tenants/load";
import { allocateTenantIds, declaredTenantIds, randomTenantId, type TenantIdGenerator } from "../tenants/ids";
import { topUpShardText } from "../tenants/pool";
import { SHARDS_MANIFEST, type Shard } from "../tenants/shards";
import { ensureShardListed, NEW_SHARD_FILE } from "./fleet";
import { exponentialDelayMs } from "../lib/backoff";
import { errorMessage } from "../lib/errors";
import { maskValues, redactSecrets } from "../lib/redact";

export interface Signup {
  username: string;
  email: string;
}

export interface AddOutcome {
  /** Signups written by this batch (not those already in the file). */
  added: string[];
  /** Signups the file refuses (e.g. a DNS-label clash with a hand-added entry), with the file's message. */
  rejected: { username: string; reason: string }[];
  /** Git mode: the commit whose file is deployed (the pushed one, or the remote head when nothing was new). */
  commit?: string;
  /** Tenant IDs of the pooled entries this write added to top the shard's warm pool up (tenants/pool.ts). */
  pooled?: string[];
}

/** The tenants file as it stands is invalid: nothing can be added or deployed until a person fixes it. */
export class TenantsFileInvalidError extends Error {}

/** A signup's claim of a pooled entry, to be written into the file (claim-committer.ts). */
export interface ClaimBinding extends Signup {
  tenantId: string;
}

export interface BindOutcome {
  /** Tenant IDs whose binding is in the file now (written by this call, or already there: a retry after a crash). */
  bound: string[];
  /** Claims the file refuses, each with the file's message: `gone` when the pooled entry is no longer there as pooled (a person removed or bound it), otherwise the signup itself (its name was added by hand meanwhile). */
  refused: { tenantId: string; username: string; gone: boolean; reason: string }[];
  /** Git mode: the pushed commit (undefined when nothing had to be written). */
  commit?: string;
}

export interface AddOptions {
  /** Pooled entries of this file claimed by signups whose binding is not committed yet: the pool's top-up counts them as taken. */
  claimed?: readonly string[];
  /**
   * Every username placed on this stack (the control database), read with the store's lock held; those not in
   * the file keep their room from the pool's top-up (tenants/pool.ts).
   */
  placed?: PlacedSignups;
}

export interface TenantsStore {
  /** Absolute path of the file the engine deploys. */
  readonly file: string;
  /** Adds every signup that is not in the file yet; the file is then what the engine must deploy. */
  addSignups(signups: readonly Signup[], options?: AddOptions): Promise<AddOutcome>;
  /**
   * Binds signups to their pooled entries in the file, all in one write (git: one commit and push, a
   * racing commit re-applied on top). A claim the file refuses is returned in `refused`, the others still bound.
   */
  bindClaims(claims: readonly ClaimBinding[]): Promise<BindOutcome>;
}

const EMPTY_FILE = "tenants: []\n";

/** The usernames the service has placed on a stack, read when the store holds its lock. */
export type PlacedSignups = () => Promise<readonly string[]>;
const nonePlaced: PlacedSignups = () => Promise.resolve([]);

/**
 * How a store allocates tenant IDs (tenants/ids.ts): the IDs taken besides
 * the file's own (every shard's entries of the fleet), read while the
 * store's lock is held, and the generator (tests force collisions with theirs).
 */
export interface IdAllocation {
  taken?: () => Iterable<string>;
  generate?: TenantIdGenerator;
}

/**
 * The additions on one version of the file: one at a time, so a signup the
 * file rejects fails alone; signups already present (a person added them, or
 * an earlier attempt did) are skipped. Each signup gets a tenant ID that no
 * entry of the file nor any ID `ids.taken` lists has.
 */
export function applySignups(
  text: string,
  file: string,
  signups: readonly Signup[],
  ids: IdAllocation = {},
): { text: string; added: string[]; rejected: AddOutcome["rejected"] } {
  const current = validateTenantsText(text);
  if (!current.ok) {
    throw new TenantsFileInvalidError(`the tenants file is invalid, nothing was deployed:\n${current.problems.map((p) => formatProblem(file, p)).join("\n")}`);
  }
  const taken = new Set([...current.tenants.flatMap((tenant) => (tenant.tenantId ? [tenant.tenantId] : [])), ...(ids.taken?.() ?? [])]);
  const present = new Set(current.tenants.map((tenant) => tenant.username));
  const added: string[] = [];
  const rejected: AddOutcome["rejected"] = [];
  for (const signup of signups) {
    if (present.has(signup.username)) continue;
    const [tenantId] = allocateTenantIds(1, taken, ids.generate ?? randomTenantId);
    const edit = addTenants(text, [{ username: signup.username, email: signup.email, tenantId }]);
    if (edit.ok) {
      text = edit.text;
      present.add(signup.username);
      added.push(signup.username);
    } else {
      rejected.push({ username: signup.username, reason: `the tenants file rejects this signup: ${edit.problems.map((p) => p.message).join("; ")}` });
    }
  }
  return { text, added, rejected };
}

/**
 * A shard of a fleet: the same write tops its warm pool up (tenants/pool.ts),
 * so the update that creates the batch's signups also makes the new pooled
 * tenants. `dir` holds the manifest. An invalid file was refused by applySignups already.
 */
function withPoolTopUp(
  result: ReturnType<typeof applySignups>,
  pool: { dir: string; shard: string } | undefined,
  options: AddOptions = {},
  placed: readonly string[] = [],
): { text: string; pooled: string[] } {
  if (pool === undefined) return { text: result.text, pooled: [] };
  const topUp = topUpShardText(result.text, pool.dir, pool.shard, { claimed: new Set(options.claimed ?? []), placed });
  if (!topUp.ok) throw new TenantsFileInvalidError(`the tenants file is invalid, nothing was deployed: ${topUp.problems.map((p) => p.message).join("; ")}`);
  return { text: topUp.text, pooled: topUp.added };
}

/**
 * The file's text with each claim's pooled entry bound to its signup, in one
 * edit (tenants/edit.ts claimPooledTenants: one parse and one validation for
 * all of them). An entry already bound to that same username (our own earlier
 * commit, pushed before a crash) counts as bound and changes nothing; a claim
 * whose entry is gone or taken is refused (`gone`). When the claims together
 * do not validate (a name a person added by hand meanwhile), they are applied
 * one at a time so only the clashing one is refused (not `gone`: its entry
 * stays in the pool).
 */
export function bindClaimsText(text: string, file: string, claims: readonly ClaimBinding[]): Omit<BindOutcome, "commit"> & { text: string; changed: boolean } {
  const all = claimPooledTenants(text, claims);
  if (all.ok) {
    const refused = all.refused.map((r) => ({
      tenantId: r.tenantId,
      username: claims.find((c) => c.tenantId === r.tenantId)!.username,
      gone: true,
      reason: r.message,
    }));
    return { text: all.text, changed: all.text !== text, bound: all.bound, refused };
  }
  if (claims.length <= 1) {
    if (!validateTenantsText(text).ok) {
      throw new TenantsFileInvalidError(`the tenants file is invalid, no claim was written:\n${all.problems.map((p) => formatProblem(file, p)).join("\n")}`);
    }
    const [claim] = claims;
    if (!claim) return { text, changed: false, bound: [], refused: [] };
    const reason = all.problems.map((problem) => formatProblem(file, problem)).join("; ");
    return { text, changed: false, bound: [], refused: [{ tenantId: claim.tenantId, username: claim.username, gone: false, reason }] };
  }
  const outcome = { text, changed: false, bound: [] as string[], refused: [] as BindOutcome["refused"] };
  for (const claim of claims) {
    const one = bindClaimsText(outcome.text, file, [claim]);
    outcome.text = one.text;
    outcome.changed ||= one.changed;
    outcome.bound.push(...one.bound);
    outcome.refused.push(...one.refused);
  }
  return outcome;
}

const readOrEmpty = (file: string, empty = EMPTY_FILE) => (existsSync(file) ? readFileSync(file, "utf8") : empty);

export interface LocalTenantsFileOptions {
  /** A shard of a fleet: the folder of its tenants/shards.yaml; its lock is held and every shard's IDs are taken. */
  fleetDir?: string;
  /** With fleetDir: the shard's name; each write tops its warm pool up (tenants/pool.ts). */
  shard?: string;
  generate?: TenantIdGenerator;
}

export class LocalTenantsFile implements TenantsStore {
  readonly file: string;
  constructor(
    file: string,
    private readonly options: LocalTenantsFileOptions = {},
  ) {
    this.file = resolve(file);
  }

  addSignups(signups: readonly Signup[], options: AddOptions = {}): Promise<AddOutcome> {
    const fleetDir = this.options.fleetDir;
    const pool = fleetDir !== undefined && this.options.shard !== undefined ? { dir: fleetDir, shard: this.options.shard } : undefined;
    // In a fleet, the manifest's lock (the CLI's `add` takes it too): no two allocators of the environment at once.
    return withTenantsFileLock(fleetDir !== undefined ? join(fleetDir, SHARDS_MANIFEST) : this.file, async () => {
      const ids: IdAllocation = {
        taken: () => (fleetDir !== undefined ? declaredTenantIds(fleetDir).keys() : []),
        ...(this.options.generate ? { generate: this.options.generate } : {}),
      };
      const result = applySignups(readOrEmpty(this.file), this.file, signups, ids);
      const { text, pooled } = withPoolTopUp(result, pool, options, pool ? await (options.placed ?? nonePlaced)() : []);
      if (result.added.length > 0 || pooled.length > 0) writeFileAtomic(this.file, text);
      return { added: result.added, rejected: result.rejected, pooled };
    });
  }

  bindClaims(claims: readonly ClaimBinding[]): Promise<BindOutcome> {
    const lock = this.options.fleetDir !== undefined ? join(this.options.fleetDir, SHARDS_MANIFEST) : this.file;
    return withTenantsFileLock(lock, () => {
      const { text, changed, bound, refused } = bindClaimsText(readOrEmpty(this.file), this.file, claims);
      if (changed) writeFileAtomic(this.file, text);
      return { bound, refused };
    });
  }
}

export interface GitTenantsRepoOptions {
  /** The remote: a URL (https://, ssh://, git@host:...) or a path. May carry credentials; they are never logged. */
  url: string;
  branch: string;
  /** The service's own clone (created when missing). Nothing else may write to it. */
  dir: string;
  /** The tenants file inside the repository, e.g. "tenants/tenants.yaml". */
  path: string;
  author: { name: string; email: string };
  /** Pushes per batch before it fails (each after fetch, reset and the same additions again). */
  pushAttempts: number;
  /** First wait between push attempts; doubles, with jitter. */
  pushBackoffMs?: number;
  log?: (line: string) => void;
  /** Called before each push with its attempt number (1, 2, ...); tests use it to race a push deterministically. */
  beforePush?: (attempt: number) => Promise<void>;
  /** The lock every batch holds (default: the file's); a fleet's shards share one clone, so they share the manifest's. */
  lockFile?: string;
  /** A shard of a fleet: listed in tenants/shards.yaml by the commit that adds its first tenants (see fleet.ts). */
  shard?: Shard;
  /** Draws tenant IDs (default: node:crypto); every shard's IDs in the clone are taken. */
  generate?: TenantIdGenerator;
}

export class GitTenantsError extends Error {}

/** Hides the credentials of a remote URL (https://user:token@host/...) in any text. */
export function redactor(url: string): (text: string) => string {
  let secrets: string[] = [];
  try {
    const parsed = new URL(url);
    secrets = [parsed.password, parsed.username].filter((part) => part.length > 0).map(decodeURIComponent);
  } catch {
    // A path or scp-like address: no credentials in it.
  }
  // The token may stand alone (https://TOKEN@host): the user name is masked too.
  return (text) => maskValues(redactSecrets(text), secrets);
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * Git as the unattended service needs it: never prompts (a missing
 * credential fails the push), never opens an editor or pager, no commit
 * signing; the operator's SSH settings (GIT_SSH_COMMAND, SSH_AUTH_SOCK) pass.
 * Other git-related variables of the service's environment are left out.
 */
function gitClient(baseDir: string, config: string[] = []): SimpleGit {
  const passed = new Set(["git_ssh_command", "git_ssh"]);
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => {
      const lower = key.toLowerCase();
      return passed.has(lower) || !(lower.startsWith("git_") || ["editor", "visual", "pager", "prefix", "ssh_askpass"].includes(lower));
    }),
  );
  return simpleGit({
    baseDir,
    maxConcurrentProcesses: 1,
    timeout: { block: 120_000 },
    config: [...config, "commit.gpgsign=false"],
    allowEnvironment: ["GIT_TERMINAL_PROMPT", "GIT_SSH_COMMAND", "GIT_SSH"],
    unsafe: { allowUnsafeSshCommand: true },
  }).env({ ...env, GIT_TERMINAL_PROMPT: "0" });
}

export class GitTenantsRepo implements TenantsStore {
  readonly file: string;
  /** The service's clone (absolute). */
  readonly dir: string;
  private readonly git: SimpleGit;
  private readonly redact: (text: string) => string;
  private readonly log: (line: string) => void;

  private constructor(private readonly options: GitTenantsRepoOptions) {
    this.file = resolve(options.dir, options.path);
    this.dir = resolve(options.dir);
    this.redact = redactor(options.url);
    this.log = options.log ?? (() => undefined);
    this.git = gitClient(options.dir, [`user.name=${options.author.name}`, `user.email=${options.author.email}`]);
  }

  /**
   * Clones the repository into `dir` when it is not there yet (then checks
   * out the branch, so the API sees the file right away). An existing clone
   * is left alone: a deployment runner may be using it; every batch resets it.
   */
  static async open(options: GitTenantsRepoOptions): Promise<GitTenantsRepo> {
    const dir = resolve(options.dir);
    const redact = redactor(options.url);
    if (!existsSync(join(dir, ".git"))) {
      if (existsSync(dir) && readdirSync(dir).length > 0) {
        throw new GitTenantsError(`TENANTS_GIT_DIR ${dir} is not empty and not a git clone; point it at an empty or missing folder`);
      }
      mkdirSync(dirname(dir), { recursive: true });
      try {
        await gitClient(dirname(dir)).clone(options.url, dir, ["--no-checkout", "--origin", "origin"]);
      } catch (error) {
        throw new GitTenantsError(redact(`cannot clone the tenants repository ${options.url} into ${dir}: ${errorMessage(error)}`));
      }
      const repo = new GitTenantsRepo({ ...options, dir });
      await repo.sync();
      return repo;
    }
    const repo = new GitTenantsRepo({ ...options, dir });
    // The configured remote wins over whatever the clone had (the URL may have changed, e.g. a rotated token).
    if ((await repo.run("read the remote", ["remote", "get-url", "origin"])).trim() !== options.url) {
      await repo.run("set the remote", ["remote", "set-url", "origin", options.url]);
    }
    return repo;
  }

  /** The store of one shard of the fleet in this same clone: its file, listed in the manifest when it is new. */
  forShard(shard: Shard): GitTenantsRepo {
    return new GitTenantsRepo({ ...this.options, path: normalize(shard.file), shard, lockFile: join(this.dir, SHARDS_MANIFEST) });
  }

  /** Paths a batch may write (and so commits, and cleans when untracked). */
  private get paths(): string[] {
    return this.options.shard ? [this.options.path, SHARDS_MANIFEST] : [this.options.path];
  }

  private async run(what: string, args: string[]): Promise<string> {
    try {
      return await this.git.raw(args);
    } catch (error) {
      throw new GitTenantsError(this.redact(`git: cannot ${what} (${this.options.dir}): ${errorMessage(error).trim()}`));
    }
  }

  /** The clone becomes exactly the remote branch: fetched, checked out, reset, the file's untracked copy removed. */
  private async sync(): Promise<void> {
    const { branch } = this.options;
    // Only this service writes to the clone, one batch at a time (stack lock + file lock): a git lock left here is from a killed run.
    rmSync(join(this.options.dir, ".git", "index.lock"), { force: true });
    try {
      await this.git.raw(["fetch", "--prune", "origin", `+refs/heads/${branch}:refs/remotes/origin/${branch}`]);
    } catch (error) {
      const message = errorMessage(error);
      const hint = /couldn't find remote ref/i.test(message)
        ? `the branch "${branch}" does not exist there; push a first commit with the tenants file (or set TENANTS_GIT_BRANCH)`
        : message.trim();
      throw new GitTenantsError(this.redact(`git: cannot fetch ${this.options.url}: ${hint}`));
    }
    await this.run("check out the remote branch", ["checkout", "--force", "-B", branch, `refs/remotes/origin/${branch}`]);
    await this.run("reset the clone", ["reset", "--hard", `refs/remotes/origin/${branch}`]);
    // A file the remote does not track (left by a killed run) must not be deployed.
    await this.run("clean the tenants file", ["clean", "--force", "-x", "--", ...this.paths]);
  }

  async addSignups(signups: readonly Signup[], options: AddOptions = {}): Promise<AddOutcome> {
    mkdirSync(dirname(this.file), { recursive: true });
    return withTenantsFileLock(this.options.lockFile ?? this.file, async () => {
      for (let attempt = 1; ; attempt += 1) {
        await this.sync();
        const newShard = this.listShard();
        const result = applySignups(
          readOrEmpty(this.file, this.options.shard ? NEW_SHARD_FILE : EMPTY_FILE),
          `${this.options.path} (${this.options.branch})`,
          signups,
          // Every shard's IDs as the remote has them now (the clone was just reset to it).
          { taken: () => declaredTenantIds(this.dir).keys(), ...(this.options.generate ? { generate: this.options.generate } : {}) },
        );
        const shard = this.options.shard ? { dir: this.dir, shard: this.options.shard.name } : undefined;
        const { text, pooled } = withPoolTopUp(result, shard, options, shard ? await (options.placed ?? nonePlaced)() : []);
        if (result.added.length === 0 && pooled.length === 0) {
          return { added: [], rejected: result.rejected, commit: (await this.run("read HEAD", ["rev-parse", "HEAD"])).trim(), pooled };
        }
        writeFileAtomic(this.file, text);
        const commit = await this.commit(result.added, newShard, pooled);
        if (await this.pushOrWait(attempt, "the batch")) {
          this.log(`tenants repository: pushed ${commit.slice(0, 12)} to ${this.options.branch} (${result.added.join(", ")})`);
          return { added: result.added, rejected: result.rejected, commit, pooled };
        }
      }
    });
  }

  /**
   * Pushes HEAD (after the beforePush hook): true when the remote took it;
   * false after a rejection, having waited (doubling, jittered) so the caller
   * fetches, resets and applies its edit again; throws after the last attempt,
   * leaving the clone as the remote is.
   */
  private async pushOrWait(attempt: number, what: string): Promise<boolean> {
    await this.options.beforePush?.(attempt);
    try {
      await this.git.raw(["push", "--porcelain", "origin", `HEAD:refs/heads/${this.options.branch}`]);
      return true;
    } catch (error) {
      const reason = this.redact(errorMessage(error).trim().split("\n").slice(-3).join(" "));
      if (attempt >= this.options.pushAttempts) {
        await this.sync().catch(() => undefined);
        throw new GitTenantsError(
          `git: the push to ${this.redact(this.options.url)} (${this.options.branch}) failed ${attempt} time(s); ${what} is retried later. Last: ${reason}`,
        );
      }
      this.log(`tenants repository: push attempt ${attempt} rejected (${reason}); fetching and applying again`);
      const base = exponentialDelayMs(this.options.pushBackoffMs ?? 250, Infinity, attempt);
      await sleep(base / 2 + Math.random() * base);
      return false;
    }
  }

  /**
   * Signups' claims of pooled tenants (tenants/pool.ts), all in ONE commit and
   * push (the committer's group commit): each entry gets its username and
   * e-mail. A person's commit racing it is kept (fetch, reset, the same edits
   * again, as for batches, with the same backoff). A claim the newest file
   * refuses is returned in `refused` (nothing of it is written); when nothing
   * is left to write, no commit is made. Throws GitTenantsError when git fails.
   */
  async bindClaims(claims: readonly ClaimBinding[]): Promise<BindOutcome> {
    return withTenantsFileLock(this.options.lockFile ?? this.file, async () => {
      for (let attempt = 1; ; attempt += 1) {
        await this.sync();
        const { text, changed, bound, refused } = bindClaimsText(readOrEmpty(this.file), this.options.path, claims);
        if (!changed) return { bound, refused };
        writeFileAtomic(this.file, text);
        const written = claims.filter((claim) => bound.includes(claim.tenantId));
        const named = written.map((claim) => `${claim.username} (${claim.tenantId})`);
        const subject =
          written.length === 1
            ? `Claim pooled tenant ${written[0]!.tenantId} for signup ${written[0]!.username}`
            : `Claim ${written.length} pooled tenants for signups`;
        const list = written.length > 1 ? `${named.join(", ")}\n\n` : "";
        const message = `${subject}\n\n${list}Written by the DriverGigsPro signup service: the signups are ready; the next deployment of this shard records them.\n`;
        await this.run("stage the tenants file", ["add", "--", this.options.path]);
        await this.run("commit", [
          "commit",
          "--quiet",
          "--no-verify",
          `--author=${this.options.author.name} <${this.options.author.email}>`,
          "-m",
          message,
          "--",
          this.options.path,
        ]);
        const commit = (await this.run("read HEAD", ["rev-parse", "HEAD"])).trim();
        if (await this.pushOrWait(attempt, "the claims")) {
          this.log(`tenants repository: pushed ${commit.slice(0, 12)} (claims: ${named.join(", ")})`);
          return { bound, refused, commit };
        }
      }
    });
  }

  /** A fleet's shard the manifest does not list yet is listed now (in this batch's commit); true when it is new. */
  private listShard(): boolean {
    if (!this.options.shard) return false;
    try {
      return ensureShardListed(this.dir, this.options.shard);
    } catch (error) {
      throw new TenantsFileInvalidError(`${SHARDS_MANIFEST} (${this.options.branch}): ${errorMessage(error)}`);
    }
  }

  private async commit(usernames: string[], newShard: boolean, pooled: string[] = []): Promise<string> {
    const { author, path } = this.options;
    const named = usernames.length > 20 ? `${usernames.slice(0, 20).join(", ")} and ${usernames.length - 20} more` : usernames.join(", ");
    const shard = this.options.shard;
    const listed = newShard && shard ? `New shard ${shard.name} (${shard.file}), listed in ${SHARDS_MANIFEST}.\n\n` : "";
    const topUp = pooled.length > 0 ? `Warm pool topped up with ${pooled.length} pooled tenant(s): ${pooled.join(", ")}.\n\n` : "";
    const subject = usernames.length > 0 ? `Add ${usernames.length} tenant(s) from signups: ${named}` : `Top up the warm pool of shard ${shard?.name ?? path}`;
    const message = `${subject}\n\n${listed}${topUp}Written by the DriverGigsPro signup service; the service deploys this commit.\n`;
    const paths = newShard ? [path, SHARDS_MANIFEST] : [path];
    await this.run("stage the tenants file", ["add", "--", ...paths]);
    await this.run("commit", ["commit", "--quiet", "--no-verify", `--author=${author.name} <${author.email}>`, "-m", message, "--", ...paths]);
    return (await this.run("read HEAD", ["rev-parse", "HEAD"])).trim();
  }
}

/**
 * The engine runner: finds the Pulumi CLI (findEngine) and runs it with the
 * project's settings (pulumiContext, pulumi, spawnPulumi): passphrase
 * secrets, every network feature (update checks, plugin downloads) switched
 * off, the state where PULUMI_BACKEND_URL (or the caller) says. Used by the
 * CLIs, `npm run deploy`, the onboarding service, and by `npm start` and the
 * tests through local/.
 */
import { execFileSync, spawn, spawnSync, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { PROJECT_DIR, projectName } from "./paths";
import { removableStaleLocks } from "./stale-lock";

/**
 * Set for every engine run we start, unless the caller's environment says
 * otherwise. Pulumi's TypeScript runtime type-checks the whole program on
 * every preview and update by default; `npm run typecheck` (tsc, run by CI)
 * already does that, and skipping it makes each preview about 3.5 s faster
 * here (9.5 s to 6.0 s for the 3-tenant stack).
 */
export const ENGINE_DEFAULTS: Record<string, string> = {
  PULUMI_NODEJS_TRANSPILE_ONLY: process.env.PULUMI_NODEJS_TRANSPILE_ONLY ?? "true",
  /*
   * The postgres:// state backend (pulumi v3.259.0, pkg/backend/diy/postgres)
   * lists keys holding one pooled connection while it asks for each key's size
   * on another, and its pool has 2 x GOMAXPROCS connections (4 on 2 cores);
   * `pulumi stack ls` reads the stacks with 10 workers by default. With 4 or more
   * stacks every connection ended up held by a listing waiting for a second one:
   * `pulumi stack ls` hung for good (seen with the fleet bench's 5th shard, and
   * so `npm run deploy` on more than 3 shards). One worker needs at most 2 of
   * the pool's (at least 2) connections, so it cannot deadlock.
   */
  PULUMI_DIY_BACKEND_PARALLEL: process.env.PULUMI_DIY_BACKEND_PARALLEL ?? "1",
};

/** What to run when no engine is found and the caller may not build one. */
export const BUILD_COMMAND = "bash toolchain/build.sh";

/** No usable engine here, and the caller may not build one: the message says what to run. */
export class EngineNotFoundError extends Error {
  constructor(detail?: string) {
    super(
      `no Pulumi engine: no pulumi v3.259.0 or newer (with its plugins) on PATH and the offline toolchain is not built${detail ? ` (${detail})` : ""}; ` +
        `run: ${BUILD_COMMAND} (about 14 minutes the first time, then cached; see toolchain/README.md)`,
    );
    this.name = "EngineNotFoundError";
  }
}

let foundEngine: string | undefined;

/**
 * The one way to find the engine: the folder holding `pulumi` and the plugins
 * an engine run needs. toolchain/build.sh decides: a `pulumi` on PATH of the
 * toolchain's version or newer (with what it lacks added from the cache),
 * else the cached offline toolchain. When neither is there, it builds the
 * toolchain (minutes; Go needed) only if `mayBuild`; otherwise it throws
 * EngineNotFoundError, naming the command to run. Found once per process.
 */
export function findEngine(options: { mayBuild: boolean }): string {
  if (foundEngine !== undefined) return foundEngine;
  const script = join(PROJECT_DIR, "toolchain", "build.sh");
  const result = spawnSync("bash", options.mayBuild ? [script] : [script, "--cached-only"], {
    encoding: "utf8",
    // A build shows its progress; a look-up stays quiet unless it fails.
    stdio: ["ignore", "pipe", options.mayBuild ? "inherit" : "pipe"],
  });
  const bin = result.stdout?.trim().split("\n").pop();
  if (result.status === 0 && bin) {
    foundEngine = bin;
    return bin;
  }
  if (options.mayBuild) throw new Error(`toolchain/build.sh failed (exit ${result.status}); see the messages above`);
  // build.sh --cached-only exits 3 when the toolchain is not built yet, 1 when it cannot even look (no go, no node).
  throw new EngineNotFoundError(result.status === 3 ? undefined : (result.stderr ?? "").trim().split("\n").pop());
}

/** Whether an executable of that name is in one of PATH's folders. */
export function onPath(command: string, path = process.env.PATH): boolean {
  return (path ?? "").split(delimiter).some((dir) => dir !== "" && existsSync(join(dir, command)));
}

/** The caller's environment with the engine's folder first on PATH (the caller's backend and passphrase as they are). */
export function withEngine(bin: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...env, PATH: `${bin}:${env.PATH ?? ""}` };
}

export interface PulumiContext {
  /** Folder for the passphrase and PULUMI_HOME (and the state itself with a file backend). */
  readonly stateDir: string;
  /** Where the state lives: `postgres://...` (the default setup) or `file://...`. */
  readonly backendUrl: string;
  readonly env: NodeJS.ProcessEnv;
}

/**
 * The environment for the engine. The passphrase for local secrets is made
 * once per state folder and kept beside it (never committed), unless
 * PULUMI_CONFIG_PASSPHRASE is already set, as it is in CI. The state goes to
 * `backendUrl` (see state-backend.ts), or to a file backend in
 * `stateDir` when none is given.
 */
export function pulumiContext(toolchainBin: string, stateDir: string, backendUrl = `file://${stateDir}`): PulumiContext {
  mkdirSync(stateDir, { recursive: true });
  const passphraseFile = join(stateDir, ".passphrase");
  if (process.env.PULUMI_CONFIG_PASSPHRASE === undefined && !existsSync(passphraseFile)) {
    writeFileSync(passphraseFile, randomBytes(24).toString("base64url"), { mode: 0o600 });
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${toolchainBin}:${process.env.PATH ?? ""}`,
    PULUMI_BACKEND_URL: backendUrl,
    PULUMI_CONFIG_PASSPHRASE: process.env.PULUMI_CONFIG_PASSPHRASE ?? readFileSync(passphraseFile, "utf8"),
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_HOME: process.env.PULUMI_HOME ?? join(stateDir, ".pulumi-home"),
    ...ENGINE_DEFAULTS,
  };
  return { stateDir, backendUrl, env };
}

/** Runs `pulumi ARGS` to completion and returns its output; throws with stderr on failure. */
export function pulumi(context: PulumiContext, args: string[], options: { cwd?: string; input?: string } = {}): string {
  try {
    return execFileSync("pulumi", args, {
      cwd: options.cwd ?? PROJECT_DIR,
      env: context.env,
      encoding: "utf8",
      input: options.input,
      maxBuffer: 64 * 1024 * 1024,
      stdio: ["pipe", "pipe", "pipe"],
    });
  } catch (error) {
    const failure = error as { status?: number; stdout?: string; stderr?: string };
    throw new Error(`pulumi ${args.join(" ")} exited ${failure.status}:\n${failure.stdout ?? ""}\n${failure.stderr ?? ""}`);
  }
}

/** Starts `pulumi ARGS` without waiting, e.g. to show its own progress display or to interrupt it. */
export function spawnPulumi(context: PulumiContext, args: string[], options: SpawnOptions = {}) {
  return spawn("pulumi", args, { cwd: PROJECT_DIR, env: context.env, ...options });
}

/**
 * Whether the engine can load the postgresql provider plugin: on PATH (as an
 * ambient plugin) or installed in PULUMI_HOME. Offline builds lack it.
 */
export function hasPostgresqlPlugin(context: PulumiContext): boolean {
  if (onPath("pulumi-resource-postgresql", context.env.PATH)) return true;
  try {
    const plugins = JSON.parse(pulumi(context, ["plugin", "ls", "--json"])) as { name: string; kind: string }[];
    return plugins.some((plugin) => plugin.name === "postgresql" && plugin.kind === "resource");
  } catch {
    return false;
  }
}

/**
 * Sets config values by path (`servers[0].host`), plain values in one
 * `pulumi config set-all` (one engine start instead of one per key). Secret
 * values go one by one through stdin, so they never appear in a process listing.
 */
export function setStackConfig(context: PulumiContext, stack: string, values: Record<string, string>, options: { secret?: boolean } = {}): void {
  if (options.secret) {
    for (const [path, value] of Object.entries(values)) {
      pulumi(context, ["config", "set", "--path", "--secret", "--stack", stack, path], { input: value });
    }
    return;
  }
  const pairs = Object.entries(values).flatMap(([path, value]) => ["--plaintext", `${path}=${value}`]);
  if (pairs.length > 0) pulumi(context, ["config", "set-all", "--path", "--stack", stack, ...pairs]);
}

/**
 * Removes the stack's lock when the only processes that held it are gone
 * (a `pulumi up` killed outright; see stale-lock.ts) and says what it did.
 * The engine then resolves the killed run's pending operations itself, and
 * the builtin provider adopts what the killed run created but never recorded.
 * A lock held by a live process or another machine is left alone.
 */
export async function releaseStaleLock(context: PulumiContext, stack: string): Promise<string | undefined> {
  const stale = await removableStaleLocks(context.backendUrl, projectName(), stack);
  if (stale === undefined) return undefined;
  pulumi(context, ["cancel", "--yes", "--stack", stack]);
  return `removed the lock left by an interrupted pulumi up (${stale})`;
}

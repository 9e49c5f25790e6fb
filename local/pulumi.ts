/**
 * Runs the real Pulumi CLI offline: the toolchain from toolchain/build.sh, a
 * local file backend and passphrase secrets, with every network feature
 * (update checks, plugin downloads) switched off.
 */
import { execFileSync, spawn, spawnSync, type SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";
import { parse } from "yaml";
import { LOCAL_DNS_ZONE } from "../infra/config";
import { removableStaleLocks } from "./stale-lock";

export const PROJECT_DIR = resolve(__dirname, "..");
/** The project name from Pulumi.yaml; the file backend files locks and state under it. */
export const PROJECT_NAME = (parse(readFileSync(join(PROJECT_DIR, "Pulumi.yaml"), "utf8")) as { name: string }).name;

/**
 * Set for every engine run we start, unless the caller's environment says
 * otherwise. Pulumi's TypeScript runtime type-checks the whole program on
 * every preview and update by default; `npm run typecheck` (tsc, run by CI)
 * already does that, and skipping it makes each preview about 3.5 s faster
 * here (9.5 s to 6.0 s for the 3-tenant stack).
 */
export const ENGINE_DEFAULTS: Record<string, string> = {
  PULUMI_NODEJS_TRANSPILE_ONLY: process.env.PULUMI_NODEJS_TRANSPILE_ONLY ?? "true",
};

/** Builds or reuses the toolchain; returns the folder holding `pulumi` and the plugins. */
export function ensureToolchain(): string {
  const result = spawnSync("bash", [join(PROJECT_DIR, "toolchain", "build.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const bin = result.stdout?.trim().split("\n").pop();
  if (result.status !== 0 || !bin) {
    throw new Error(`toolchain/build.sh failed (exit ${result.status}); see the messages above`);
  }
  return bin;
}

/** The toolchain's bin folder if it is already built (never builds, never downloads). */
export function findBuiltToolchain(): string | undefined {
  const result = spawnSync("bash", [join(PROJECT_DIR, "toolchain", "build.sh"), "--cached-only"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  return result.status === 0 ? result.stdout.trim().split("\n").pop() : undefined;
}

/** Whether an executable of that name is in one of PATH's folders. */
export function onPath(command: string, path = process.env.PATH): boolean {
  return (path ?? "").split(delimiter).some((dir) => dir !== "" && existsSync(join(dir, command)));
}

/** Where `npm start` keeps its stack: a file backend in the project folder. */
export const LOCAL_STATE_DIR = join(PROJECT_DIR, ".state");
/** `npm start`'s environment: each shard's stack is "local-<shard>" (tenants/shards.ts). */
export const LOCAL_ENVIRONMENT = "local";

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
 * `backendUrl` (see local/state-backend.ts), or to a file backend in
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

export interface StackServer {
  host: string;
  port: number;
  adminPassword: string;
}

/**
 * Creates (or selects) a stack pointed at one PostgreSQL server. Used by
 * `npm start`, the onboarding service's embedded mode and the end-to-end tests.
 * What a stack keeps for life is written only when the stack is new: the
 * database provider (the one the engine can load; the program refuses a later
 * change) and the DNS settings (so a stack someone pointed at a real DNS
 * server keeps them). The server's address and password are refreshed on
 * every call, since a local server may move.
 */
export function configureLocalStack(
  context: PulumiContext,
  stack: string,
  server: StackServer,
  extra: Record<string, string> = {},
): { databaseProvider: "postgresql" | "builtin" } {
  const stacks = JSON.parse(pulumi(context, ["stack", "ls", "--json"])) as { name: string }[];
  const isNew = !stacks.some((existing) => existing.name === stack);
  if (isNew) pulumi(context, ["stack", "init", stack]);
  const config = JSON.parse(pulumi(context, ["config", "--json", "--stack", stack])) as Record<string, { value?: unknown }>;
  const kept = config[`${PROJECT_NAME}:databaseProvider`]?.value;
  // Offline toolchains cannot build the postgresql plugin (toolchain/README.md).
  const databaseProvider = kept === "postgresql" || kept === "builtin" ? kept : hasPostgresqlPlugin(context) ? "postgresql" : "builtin";
  const firstTime: Record<string, string> = kept === undefined ? { databaseProvider } : {};
  if (config[`${PROJECT_NAME}:dns`] === undefined) Object.assign(firstTime, { "dns.provider": "none", "dns.zone": LOCAL_DNS_ZONE });
  setStackConfig(context, stack, {
    "servers[0].name": "local",
    "servers[0].host": server.host,
    "servers[0].port": String(server.port),
    "servers[0].sslmode": "disable",
    ...firstTime,
    ...extra,
  });
  setStackConfig(context, stack, { "servers[0].adminPassword": server.adminPassword }, { secret: true });
  return { databaseProvider };
}

/**
 * Removes the stack's lock when the only processes that held it are gone
 * (a `pulumi up` killed outright; see stale-lock.ts) and says what it did.
 * The engine then resolves the killed run's pending operations itself, and
 * the builtin provider adopts what the killed run created but never recorded.
 * A lock held by a live process or another machine is left alone.
 */
export async function releaseStaleLock(context: PulumiContext, stack: string): Promise<string | undefined> {
  const stale = await removableStaleLocks(context.backendUrl, PROJECT_NAME, stack);
  if (stale === undefined) return undefined;
  pulumi(context, ["cancel", "--yes", "--stack", stack]);
  return `removed the lock left by an interrupted pulumi up (${stale})`;
}

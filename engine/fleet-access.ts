/**
 * How a command reaches the fleet: the one place that decides, for every
 * command (`npm run tenants`, `verify`, `usage`, `deploy`, `npm start`, the
 * signup service, the benchmarks),
 *
 * - which engine: findEngine (a new enough `pulumi` on PATH, else the offline toolchain);
 * - which backend: PULUMI_BACKEND_URL when set, else the local one: the
 *   `pulumi_state` database on this checkout's embedded PostgreSQL, which only
 *   a development entry point can reach (it registers itself here with
 *   registerLocalBackend: local/fleet-backend.ts; production code never imports local/);
 * - which environment: the caller's (`--env`), else `local` (npm start's);
 * - which stacks: every shard of tenants/shards.yaml as `<environment>-<shard>`,
 *   narrowed by `--shard NAME` (one or more) or replaced by `--stack NAME`.
 *
 * It also holds the one way a new shard's stack is created (createShardStack),
 * used by `npm run deploy` and the signup service alike, and the one decision,
 * per shard, whether an update skips the engine's intermediate checkpoints
 * (checkpointDecision, applied by engine/converge.ts on every deployment path).
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { LOCAL_ENVIRONMENT, LOCAL_STATE_DIR, PROJECT_DIR, projectName } from "./paths";
import { ENGINE_DEFAULTS, findEngine, onPath, pulumiContext, withEngine, type PulumiContext } from "./pulumi";
import { DEFAULT_TENANTS_FILE, readShards, shardStack, type Shard } from "../tenants/shards";
import { loadTenantsFile } from "../tenants/load";
import { redactSecrets } from "../lib/redact";

/** The local state backend, reached by a development entry point: its URL, and how to let go of what was started for it. */
export interface LocalBackend {
  readonly backendUrl: string;
  /** Stops what was started to serve it (nothing, when it was already running). */
  release(): Promise<void>;
}

export type LocalBackendProvider = (options: { log: (line: string) => void }) => Promise<LocalBackend>;

let localProvider: LocalBackendProvider | undefined;

/** Called by the development entry points (local/fleet-backend.ts): where the state is when PULUMI_BACKEND_URL is not set. */
export function registerLocalBackend(provider: LocalBackendProvider | undefined): void {
  localProvider = provider;
}

export interface FleetOptions {
  /** The environment whose shard stacks are meant; default `local`. */
  environment?: string;
  /** One stack instead of the environment's shards. */
  stack?: string;
  /** Only these shards (names in tenants/shards.yaml); default: every shard. */
  shards?: readonly string[];
  /** May build the offline toolchain when no engine is found (minutes); default false. */
  mayBuild?: boolean;
  /** The caller's environment (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where passphrase and PULUMI_HOME live for the project's own engine settings (default .state/). */
  stateDir?: string;
  /** The project folder whose shards are read (default: this checkout). */
  projectDir?: string;
  /** Progress lines (the local server started or stopped). */
  log?: (line: string) => void;
}

export interface FleetTarget {
  readonly stack: string;
  /** The shard, unless a single stack was asked for by name. */
  readonly shard?: Shard;
}

export interface Fleet {
  /** The folder holding `pulumi` and its plugins. */
  readonly engine: string;
  readonly backendUrl: string;
  /** True when the backend is this checkout's local one (PULUMI_BACKEND_URL not set). */
  readonly local: boolean;
  readonly environment: string;
  readonly targets: readonly FleetTarget[];
  readonly stacks: readonly string[];
  /** The engine's environment for these stacks. */
  readonly context: PulumiContext;
  /** Lets go of what was started to reach the fleet (the local server); call once, when done. */
  close(): Promise<void>;
}

/** No backend to read: outside a checkout's development entry points PULUMI_BACKEND_URL is required. */
export class NoBackendError extends Error {}

/** The stacks a command covers (no engine, no backend): `stack`, else the environment's shards, narrowed by `shards`. */
export function fleetTargets(options: Pick<FleetOptions, "environment" | "stack" | "shards" | "projectDir">): FleetTarget[] {
  if (options.stack !== undefined) {
    if (options.shards !== undefined && options.shards.length > 0) throw new Error("give --stack or --shard, not both");
    return [{ stack: options.stack }];
  }
  const environment = options.environment ?? LOCAL_ENVIRONMENT;
  const manifest = readShards(options.projectDir ?? PROJECT_DIR);
  const wanted = options.shards ?? [];
  const unknown = wanted.filter((name) => !manifest.shards.some((shard) => shard.name === name));
  if (unknown.length > 0) {
    throw new Error(
      `no shard ${unknown.map((name) => `"${name}"`).join(", ")} in tenants/shards.yaml (shards: ${manifest.shards.map((s) => s.name).join(", ")})`,
    );
  }
  return manifest.shards
    .filter((shard) => wanted.length === 0 || wanted.includes(shard.name))
    .map((shard) => ({ stack: shardStack(environment, shard), shard }));
}

/**
 * The engine's environment on `backendUrl`. A backend the caller gave
 * (PULUMI_BACKEND_URL) with a `pulumi` of its own on PATH (CI, production) is
 * used with the caller's environment as it is (its PULUMI_HOME, plugins and
 * passphrase); otherwise the project's settings (passphrase and PULUMI_HOME in `stateDir`).
 */
function engineContext(bin: string, backendUrl: string, fromCaller: boolean, env: NodeJS.ProcessEnv, stateDir: string): PulumiContext {
  if (fromCaller && onPath("pulumi", env.PATH)) {
    return {
      stateDir,
      backendUrl,
      env: { ...withEngine(bin, env), PULUMI_SKIP_UPDATE_CHECK: "true", ...ENGINE_DEFAULTS, ...pickDefined(env, Object.keys(ENGINE_DEFAULTS)) },
    };
  }
  return pulumiContext(bin, stateDir, backendUrl);
}

function pickDefined(env: NodeJS.ProcessEnv, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(keys.flatMap((key) => (env[key] !== undefined ? [[key, env[key]!]] : [])));
}

/** The engine and backend half of a Fleet: for callers whose stacks come from elsewhere (the signup service's clone). */
export type FleetEngine = Pick<Fleet, "engine" | "backendUrl" | "local" | "context" | "close">;

/**
 * The engine (findEngine), then the backend: PULUMI_BACKEND_URL, else the
 * registered local one (which may start the checkout's server: close()
 * stops it again), else NoBackendError. Never a file backend made up here:
 * every deployment path (CI, the service, npm start) shares one backend and
 * so sees the others' stack locks.
 */
export async function resolveEngine(options: Pick<FleetOptions, "mayBuild" | "env" | "stateDir" | "log"> = {}): Promise<FleetEngine> {
  const env = options.env ?? process.env;
  const engine = findEngine({ mayBuild: options.mayBuild ?? false });
  const stateDir = options.stateDir ?? LOCAL_STATE_DIR;
  const given = env.PULUMI_BACKEND_URL;
  if (given !== undefined && given !== "") {
    return { engine, backendUrl: given, local: false, context: engineContext(engine, given, true, env, stateDir), close: async () => undefined };
  }
  if (localProvider === undefined) {
    throw new NoBackendError(
      'set PULUMI_BACKEND_URL to the state server (postgres://user:password@host:5432/pulumi_state?sslmode=require); see README, "Where state lives"',
    );
  }
  const local = await localProvider({ log: options.log ?? ((line: string) => console.error(line)) });
  return {
    engine,
    backendUrl: local.backendUrl,
    local: true,
    context: engineContext(engine, local.backendUrl, false, env, stateDir),
    close: () => local.release(),
  };
}

/**
 * Resolves engine, backend, environment and stacks, in that order of cost:
 * the stacks and the engine first (a bad --shard or a missing toolchain
 * fails before any server starts), then the backend.
 */
export async function resolveFleet(options: FleetOptions = {}): Promise<Fleet> {
  const environment = options.environment ?? LOCAL_ENVIRONMENT;
  const targets = fleetTargets({ ...options, environment });
  return { ...(await resolveEngine(options)), environment, targets, stacks: targets.map((target) => target.stack) };
}

/** Runs `fn` with the fleet resolved, and always closes it (the local server started for it is stopped). */
export async function withFleet<T>(options: FleetOptions, fn: (fleet: Fleet) => Promise<T>): Promise<T> {
  const fleet = await resolveFleet(options);
  try {
    return await fn(fleet);
  } finally {
    await fleet.close();
  }
}

const execFileAsync = promisify(execFile);

/** `pulumi ARGS` without blocking the event loop (the signup service keeps answering meanwhile); throws with stderr, passwords masked. */
export async function pulumiAsync(context: PulumiContext, args: string[], options: { cwd?: string } = {}): Promise<string> {
  try {
    const { stdout } = await execFileAsync("pulumi", args, {
      cwd: options.cwd ?? PROJECT_DIR,
      env: context.env,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const failure = error as { code?: number | string; stdout?: string; stderr?: string };
    throw new Error(redactSecrets(`pulumi ${args.join(" ")} exited ${failure.code}:\n${failure.stdout ?? ""}\n${failure.stderr ?? ""}`.trim()));
  }
}

/** What `pulumi` says about a stack that was never created. */
export const NO_SUCH_STACK = /no stack named '[^']*' found/;

/** The stacks of this project on the backend. */
export async function listStacks(context: PulumiContext, cwd = PROJECT_DIR): Promise<string[]> {
  return (JSON.parse(await pulumiAsync(context, ["stack", "ls", "--json"], { cwd })) as { name: string }[]).map((stack) => stack.name);
}

export const tenantsFileKey = () => `${projectName()}:tenantsFile`;

/**
 * Creates the stack of a new shard: the config of `template` (another shard's
 * stack of the same environment: servers, DNS, database provider; secrets
 * re-encrypted for the new stack) copied, and `tenantsFile` set to the
 * shard's file as tenants/shards.yaml names it (relative to the project, so
 * the `Pulumi.<stack>.yaml` it writes can be committed). Without a template
 * the stack starts with no config. Returns false when the stack exists
 * already (made meanwhile by another deployment: left as it is).
 */
export async function createShardStack(
  context: PulumiContext,
  stack: string,
  shard: Pick<Shard, "name" | "file">,
  template: string | undefined,
  options: { cwd?: string; log?: (line: string) => void } = {},
): Promise<boolean> {
  const cwd = options.cwd ?? PROJECT_DIR;
  const stacks = await listStacks(context, cwd);
  if (stacks.includes(stack)) return false;
  if (template !== undefined && !stacks.includes(template)) {
    throw new Error(
      `cannot create stack "${stack}": the stack "${template}" whose config a new shard copies does not exist; create it first (npm start, or CI)`,
    );
  }
  try {
    await pulumiAsync(context, ["stack", "init", stack, ...(template ? ["--copy-config-from", template] : [])], { cwd });
  } catch (error) {
    if ((await listStacks(context, cwd)).includes(stack)) return false; // another process created it meanwhile
    throw error;
  }
  await pulumiAsync(context, ["config", "set", "--stack", stack, tenantsFileKey(), shard.file], { cwd });
  options.log?.(
    template
      ? `created stack ${stack} for the new shard ${shard.name}, config copied from ${template}; commit Pulumi.${stack}.yaml`
      : `created stack ${stack}; it has no config yet: set its servers (README, "Stack config") and commit Pulumi.${stack}.yaml`,
  );
  return true;
}

export interface StackReading {
  readonly stack: string;
  /** `pulumi stack output --json` of the stack, when it could be read. */
  readonly outputs?: unknown;
  /** Why it could not be read (passwords masked). */
  readonly error?: string;
}

/**
 * The outputs of the fleet's stacks that exist on the backend (a shard never
 * deployed has none: listed in `missing`), each read on its own so one
 * unreadable stack does not hide the others (its `error`: the engine's error
 * line, passwords masked). `showSecrets` adds the `connections` output (needs the passphrase).
 */
export async function readFleetOutputs(
  fleet: Pick<Fleet, "stacks" | "context">,
  options: { showSecrets?: boolean } = {},
): Promise<{ readings: StackReading[]; missing: string[] }> {
  const readings: StackReading[] = [];
  const missing: string[] = [];
  for (const stack of fleet.stacks) {
    try {
      const args = ["stack", "output", "--json", "--stack", stack, ...(options.showSecrets ? ["--show-secrets"] : [])];
      readings.push({ stack, outputs: JSON.parse(await pulumiAsync(fleet.context, args)) });
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      if (NO_SUCH_STACK.test(text)) {
        missing.push(stack);
        continue;
      }
      const lines = redactSecrets(text)
        .split("\n")
        .map((line) => line.trim())
        .filter(Boolean);
      readings.push({ stack, error: (lines.find((line) => /^error:/i.test(line)) ?? lines.pop() ?? "unknown error").slice(0, 300) });
    }
  }
  return { readings, missing };
}

/** The engine's switch for intermediate checkpoints (its state written after every step); "true" writes the state once, at the end. */
export const SKIP_CHECKPOINTS_VARIABLE = "PULUMI_SKIP_CHECKPOINTS";

/** A stack's `Pulumi.<stack>.yaml` config (project-prefixed keys), {} when the file is not there. */
export function stackConfigFile(projectDir: string, stack: string): Record<string, unknown> {
  const file = join(projectDir, `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) return {};
  return (parse(readFileSync(file, "utf8")) as { config?: Record<string, unknown> } | null)?.config ?? {};
}

export interface CheckpointDecision {
  /** What goes into the update's environment: `PULUMI_SKIP_CHECKPOINTS=true`, or nothing (the engine's default: checkpoints). */
  readonly env: Readonly<Record<string, string>>;
  /** One line for the deployment's output: what was chosen and why. */
  readonly reason: string;
}

/**
 * Whether an update of `stack` skips the engine's intermediate checkpoints,
 * decided here for every deployment path (npm run deploy, the signup service,
 * npm start, through engine/converge.ts). Skipping them makes an update of a
 * 100-tenant shard faster (README "Engine settings": the measured factor), and
 * a killed update then leaves the state as the last finished update wrote it:
 * what the killed run made is made again by the next one, which adopts the
 * roles and databases by their tenant markers, upserts the DNS records and
 * re-runs the idempotent seed (test/e2e/kill-skip-checkpoints.test.ts). That
 * is safe only when every name is known before the engine runs:
 *
 * - every live entry of the stack's tenants file carries its allocated
 *   `tenantId:`. An entry without one draws its ID from a RandomId inside the
 *   update, and a killed update that never recorded it would draw a new ID
 *   (a second database). `npm run tenants -- assign-ids` writes the IDs.
 * - the stack is on the builtin provider. With `@pulumi/postgresql` a role
 *   created but not yet marked when the update was killed is adopted only
 *   because a checkpoint recorded its pending create (engine/pending-creates.ts).
 *
 * PULUMI_SKIP_CHECKPOINTS in the caller's environment always wins.
 */
export function checkpointDecision(projectDir: string, stack: string, env: NodeJS.ProcessEnv = process.env): CheckpointDecision {
  const given = env[SKIP_CHECKPOINTS_VARIABLE];
  if (given !== undefined && given !== "") return { env: {}, reason: `${SKIP_CHECKPOINTS_VARIABLE}=${given} from the environment` };
  const kept = (why: string) => ({ env: {}, reason: `intermediate checkpoints kept for stack ${stack}: ${why}` });
  const config = stackConfigFile(projectDir, stack);
  if (config[`${projectName()}:databaseProvider`] !== "builtin") {
    return kept("the postgresql provider adopts a role a killed update created but never marked only through the pending create a checkpoint records");
  }
  const configured = config[`${projectName()}:tenantsFile`];
  const file = typeof configured === "string" ? configured : DEFAULT_TENANTS_FILE;
  const loaded = loadTenantsFile(isAbsolute(file) ? file : resolve(projectDir, file));
  if (!loaded.ok) return kept(`${file} has problems (the update reports them)`);
  const unallocated = loaded.tenants.filter((tenant) => tenant.status !== "removed" && tenant.tenantId === undefined);
  if (unallocated.length > 0) {
    const named = unallocated.slice(0, 3).map((tenant) => `line ${tenant.line} "${tenant.username}"`);
    return kept(
      `${unallocated.length} entr${unallocated.length === 1 ? "y" : "ies"} of ${file} ha${unallocated.length === 1 ? "s" : "ve"} no tenantId ` +
        `(${named.join(", ")}${unallocated.length > 3 ? ", ..." : ""}), and a killed update without checkpoints would draw their IDs again; ` +
        "npm run tenants -- assign-ids writes them, and the updates after that skip the checkpoints",
    );
  }
  return {
    env: { [SKIP_CHECKPOINTS_VARIABLE]: "true" },
    reason: `every entry of ${file} carries its tenantId: intermediate checkpoints skipped (${SKIP_CHECKPOINTS_VARIABLE}=true; README "Engine settings")`,
  };
}

/**
 * `npm run serve`: the onboarding service, configured by environment
 * variables (see onboarding/README.md). Production: it imports nothing of
 * the local development setup; `npm run serve:local` (local/serve-embedded.ts)
 * runs the same service on npm start's embedded PostgreSQL.
 */
import { join, resolve } from "node:path";
import type { Pool } from "pg";
import { LOCAL_STATE_DIR, PROJECT_DIR } from "../engine/paths";
import { NoBackendError, resolveEngine } from "../engine/fleet-access";
import { contextFromEnv } from "../engine/converge";
import { runMain } from "../lib/run-main";
import { ConfigError, readServiceConfig, type ServiceConfig } from "./config";
import { CONTROL_DATABASE_VARIABLE, SERVICE_SECRETS } from "./secrets";
import { controlDatabaseExposure, createPool } from "./db";
import { engineEnvVars } from "./deployer";
import type { Fleet } from "./fleet";
import { openFleet } from "./fleet-setup";
import { createTransport } from "./mailer";
import { ChildProcessLauncher, InProcessLauncher } from "./scheduler";
import { startService, type ServiceOptions } from "./service";
import { GitTenantsError } from "./tenants-repo";
import { adminServers, stackTenants } from "../usage/stack";

/**
 * Runs the service from `env` (the service's variables; its secrets are
 * removed from it and from process.env once read) until SIGINT or SIGTERM,
 * then stops it and returns.
 */
export async function serveUntilStopped(env: NodeJS.ProcessEnv): Promise<void> {
  const config = readServiceConfig(env);
  // Read once; from here on no child of this process (engine, runner, git) inherits them.
  for (const name of [...SERVICE_SECRETS, CONTROL_DATABASE_VARIABLE]) {
    delete process.env[name];
    delete env[name];
  }
  const exposure = await withPool(config.databaseUrl, (pool) => controlDatabaseExposure(pool));
  if (exposure !== undefined) throw new ControlDatabaseExposed(exposure);

  // The engine and the state backend (engine/fleet-access.ts): PULUMI_BACKEND_URL, which `npm run serve:local` sets to npm start's.
  const engine = await resolveEngine({ mayBuild: true, env, stateDir: resolve(config.pulumiStateDir ?? LOCAL_STATE_DIR) });
  const engineEnv = engine.context.env;
  const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
  // The stacks served (one, or every shard of FLEET_ENV), their files, and what deploys each (fleet-setup.ts).
  const opened = await openFleet(config, { envVars: engineEnvVars(engineEnv), onOutput: (text) => process.stdout.write(text), log });
  const { fleet } = opened;
  // Fleet mode: the first shard's stack must exist (its config is what new shards' stacks copy); opened now to fail early.
  if (config.fleetEnv !== undefined) await opened.deployment(fleet.templateStack()!);
  const launcher = (pool: Pool) =>
    config.deployMode === "inprocess"
      ? new InProcessLauncher(pool, async (stack) => ({ stack, ...(await opened.deployment(stack)), backoff: config.backoff, log }))
      : new ChildProcessLauncher({
          env: (stack) => {
            const { PULUMI_STACK: _single, ...rest } = engineEnv;
            return { ...rest, DATABASE_URL: config.databaseUrl, ...opened.runnerEnv(stack) };
          },
          logFile: config.runnerLog ?? join(LOCAL_STATE_DIR, "onboarding-runner.log"),
          cwd: PROJECT_DIR,
        });
  const service = await startService({
    databaseUrl: config.databaseUrl,
    fleet,
    webhookSecret: config.webhookSecret,
    apiToken: config.apiToken,
    mailFrom: config.mailFrom,
    transport: createTransport(config.smtp),
    launcher,
    host: config.host,
    port: config.port,
    publicUrl: config.publicUrl,
    debounceMs: config.debounceMs,
    pollMs: config.pollMs,
    log,
    usage: usageSampling(config, fleet, engineEnv),
    ...(opened.claims ? { claims: opened.claims } : {}),
  });
  const source = config.git ? `, committed to branch ${config.git.branch} of the tenants repository` : "";
  log(`onboarding service for ${fleet.describe()} listening on ${service.url} (tenants: ${opened.describeFiles()}${source})`);

  const signal = await new Promise<NodeJS.Signals>((done) => {
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
  log(`${signal}: stopping (a running deployment finishes in its own process)`);
  await service.close();
}

/** The service's usage sampler: every shard's tenants; admin connections from USAGE_ADMIN_URLS, else the shards' stack config (see usage/stack.ts). */
function usageSampling(config: ServiceConfig, fleet: Fleet, engineEnv: NodeJS.ProcessEnv): ServiceOptions["usage"] {
  if (config.usageIntervalSeconds <= 0) return undefined;
  return {
    intervalMs: config.usageIntervalSeconds * 1000,
    source: async () => ({
      tenants: await stackTenants({ stacks: fleet.stacks(), context: contextFromEnv(engineEnvVars(engineEnv)), env: engineEnv }),
      servers: await adminServers({ stacks: fleet.stacks(), context: contextFromEnv(engineEnvVars(engineEnv)), env: engineEnv }),
    }),
  };
}

async function withPool<T>(databaseUrl: string, work: (pool: ReturnType<typeof createPool>) => Promise<T>): Promise<T> {
  const pool = createPool(databaseUrl, 1);
  try {
    return await work(pool);
  } finally {
    await pool.end();
  }
}

/** The control database is reachable by tenants: refused at start (see db.ts). */
export class ControlDatabaseExposed extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "ControlDatabaseExposed";
  }
}

/** `npm run serve` takes no arguments: everything is an environment variable. */
class ArgumentsError extends Error {}

function refuseArguments(args: readonly string[]): void {
  if (args.length === 0) return;
  const local = args.includes("--embedded") ? "; the service on the embedded PostgreSQL of npm start is now: npm run serve:local" : "";
  throw new ArgumentsError(`npm run serve takes no arguments (got ${args.join(" ").slice(0, 60)}): configure it with environment variables${local}`);
}

/** The failures the service anticipates: printed as one line, without a stack trace. */
export const EXPECTED_ERRORS = [ConfigError, GitTenantsError, ControlDatabaseExposed, ArgumentsError, NoBackendError];

if (require.main === module) {
  // Exits at once: the pool, the HTTP server and the timers would otherwise keep the process alive.
  runMain(
    async () => {
      refuseArguments(process.argv.slice(2));
      await serveUntilStopped(process.env);
    },
    { expected: EXPECTED_ERRORS, exitNow: true },
  );
}

/**
 * `npm run serve`: the onboarding service, configured by environment
 * variables (see onboarding/README.md).
 *
 *   --embedded   start the project's embedded PostgreSQL (.data/postgres,
 *                port 55432, the one `npm start` uses) and keep the control
 *                database in it (database "onboarding"); FLEET_ENV
 *                defaults to "local".
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Pool } from "pg";
import { checkoutPostgresOptions, startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { ensureToolchain, LOCAL_ENVIRONMENT, LOCAL_STATE_DIR, onPath, PROJECT_DIR, pulumiContext } from "../local/pulumi";
import { ensureStateDatabase } from "../local/state-backend";
import { ConfigError, readServiceConfig } from "./config";
import { CONTROL_DATABASE_VARIABLE, SERVICE_SECRETS } from "./secrets";
import { controlDatabaseExposure, createPool, createPrivateDatabase } from "./db";
import { engineEnvVars } from "./deployer";
import { openFleet } from "./fleet-setup";
import { createTransport } from "./mailer";
import { ChildProcessLauncher, InProcessLauncher } from "./scheduler";
import { startService } from "./service";
import { GitTenantsError } from "./tenants-repo";
import { adminServers, stackTenants } from "../usage/stack";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { embedded: { type: "boolean", default: false } }, strict: true });
  const env: NodeJS.ProcessEnv = { ...process.env };
  let postgres: LocalPostgres | undefined;
  if (values.embedded) {
    postgres = await startLocalPostgres(checkoutPostgresOptions(PROJECT_DIR));
    // Private from the start: no tenant role can open the control database (or take its locks).
    await createPrivateDatabase(postgres.url(), "onboarding");
    env.DATABASE_URL = postgres.url("onboarding");
    // Every local shard (the stacks npm start deploys: local-s001, ...), unless one stack is asked for.
    if (!env.PULUMI_STACK && !env.FLEET_ENV) env.FLEET_ENV = LOCAL_ENVIRONMENT;
    // npm start's state: the private pulumi_state database on the same server.
    env.PULUMI_BACKEND_URL ??= await ensureStateDatabase(postgres);
  }
  const config = readServiceConfig(env);
  // Read once; from here on no child of this process (engine, runner, git) inherits them.
  for (const name of [...SERVICE_SECRETS, CONTROL_DATABASE_VARIABLE]) {
    delete process.env[name];
    delete env[name];
  }
  const exposure = await withPool(config.databaseUrl, (pool) => controlDatabaseExposure(pool));
  if (exposure !== undefined) throw new ControlDatabaseExposed(exposure);

  // The engine's environment: the toolchain's pulumi unless one is on PATH; the backend from PULUMI_BACKEND_URL.
  const engineEnv: NodeJS.ProcessEnv =
    env.PULUMI_BACKEND_URL !== undefined && onPath("pulumi")
      ? env
      : pulumiContext(ensureToolchain(), resolve(config.pulumiStateDir ?? LOCAL_STATE_DIR), env.PULUMI_BACKEND_URL).env;
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
          logFile: config.runnerLog ?? join(PROJECT_DIR, ".state", "onboarding-runner.log"),
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
    // Admin connections: USAGE_ADMIN_URLS, else the stack config's servers (see usage/stack.ts).
    usage:
      config.usageIntervalSeconds > 0
        ? {
            intervalMs: config.usageIntervalSeconds * 1000,
            // Every shard's tenants; the servers of the first shard's stack (new shards copy its config).
            source: async () => ({
              tenants: (await Promise.all(fleet.stacks().map((stack) => stackTenants({ stack, env: engineEnv })))).flat(),
              servers: await adminServers({ stack: fleet.stacks()[0]!, env: engineEnv }),
            }),
          }
        : undefined,
  });
  const source = config.git ? `, committed to branch ${config.git.branch} of the tenants repository` : "";
  log(`onboarding service for ${fleet.describe()} listening on ${service.url} (tenants: ${opened.describeFiles()}${source})`);

  const shutdown = async (signal: string) => {
    log(`${signal}: stopping (a running deployment finishes in its own process)`);
    await service.close();
    await postgres?.stop();
    process.exit(0);
  };
  process.once("SIGINT", () => void shutdown("SIGINT"));
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
}

main().catch((error) => {
  const known = error instanceof ConfigError || error instanceof GitTenantsError || error instanceof ControlDatabaseExposed;
  console.error(known ? error.message : `error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});

async function withPool<T>(databaseUrl: string, work: (pool: ReturnType<typeof createPool>) => Promise<T>): Promise<T> {
  const pool = createPool(databaseUrl, 1);
  try {
    return await work(pool);
  } finally {
    await pool.end();
  }
}

/** The control database is reachable by tenants: refused at start (see db.ts). */
class ControlDatabaseExposed extends Error {
  constructor(reason: string) {
    super(`error: ${reason}`);
  }
}

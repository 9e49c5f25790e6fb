/**
 * `npm run serve`: the onboarding service, configured by environment
 * variables (see onboarding/README.md).
 *
 *   --embedded   start the project's embedded PostgreSQL (.data/postgres,
 *                port 55432, the one `npm start` uses) and keep the control
 *                database in it (database "onboarding"); PULUMI_STACK
 *                defaults to "local".
 */
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Pool } from "pg";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { ensureToolchain, PROJECT_DIR, pulumiContext } from "../local/pulumi";
import { ConfigError, readServiceConfig } from "./config";
import { AutomationDeployer } from "./deployer";
import { createTransport } from "./mailer";
import { ChildProcessLauncher, InProcessLauncher } from "./scheduler";
import { startService } from "./service";
import { adminServers, stackTenants } from "../usage/stack";

const EMBEDDED_PORT = 55432;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { embedded: { type: "boolean", default: false } }, strict: true });
  const env: NodeJS.ProcessEnv = { ...process.env };
  let postgres: LocalPostgres | undefined;
  if (values.embedded) {
    postgres = await startLocalPostgres({ dataDir: join(PROJECT_DIR, ".data", "postgres"), port: EMBEDDED_PORT });
    const admin = await postgres.connect();
    const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = 'onboarding'");
    if (exists.rows.length === 0) await admin.query("CREATE DATABASE onboarding");
    await admin.end();
    env.DATABASE_URL = postgres.url("onboarding");
    env.PULUMI_STACK ??= "local";
  }
  const config = readServiceConfig(env);

  // The engine's environment: as given (PULUMI_BACKEND_URL set, pulumi on PATH), or the offline toolchain + .state.
  const engineEnv: NodeJS.ProcessEnv =
    env.PULUMI_BACKEND_URL !== undefined
      ? env
      : { ...env, ...pulumiContext(ensureToolchain(), resolve(config.pulumiStateDir ?? join(PROJECT_DIR, ".state"))).env };
  const envVars = Object.fromEntries(Object.entries(engineEnv).filter((e): e is [string, string] => e[1] !== undefined));
  const deployer = await AutomationDeployer.open({
    stackName: config.stack,
    workDir: config.workDir,
    envVars,
    tenantsFile: config.tenantsFile,
    onOutput: (text) => process.stdout.write(text),
  });
  const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
  const launcher = (pool: Pool) =>
    config.deployMode === "inprocess"
      ? new InProcessLauncher(pool, { stack: config.stack, deployer, backoff: config.backoff, log })
      : new ChildProcessLauncher({
          env: { ...engineEnv, DATABASE_URL: config.databaseUrl, PULUMI_STACK: config.stack, TENANTS_FILE: deployer.tenantsFile },
          logFile: config.runnerLog ?? join(PROJECT_DIR, ".state", "onboarding-runner.log"),
          cwd: PROJECT_DIR,
        });
  const service = await startService({
    databaseUrl: config.databaseUrl,
    stack: config.stack,
    tenantsFile: deployer.tenantsFile,
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
            source: async () => ({
              tenants: await stackTenants({ stack: config.stack, env: engineEnv }),
              servers: await adminServers({ stack: config.stack, env: engineEnv }),
            }),
          }
        : undefined,
  });
  log(`onboarding service for stack "${config.stack}" listening on ${service.url} (tenants file ${deployer.tenantsFile})`);

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
  console.error(error instanceof ConfigError ? error.message : `error: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  process.exit(1);
});

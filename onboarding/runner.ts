/**
 * One deployment in its own process, started by ChildProcessLauncher (see
 * scheduler.ts). Reads the same environment as the service; exits 0 when the
 * deployment ran (successfully or not: the outcome is in the control
 * database) or had nothing to do, 1 when it could not run at all.
 */
import { engineEnvVars } from "./deployer";
import { createPool } from "./db";
import { runDeployment } from "./deployment";
import { ConfigError, readRunnerConfig } from "./config";
import { CONTROL_DATABASE_VARIABLE } from "./secrets";
import { openFleet } from "./fleet-setup";
import { GitTenantsError } from "./tenants-repo";
import { runMain } from "../lib/run-main";

async function main(): Promise<number> {
  const config = readRunnerConfig(process.env);
  // Read once: the engine this runner starts inherits its environment and has no use for it.
  delete process.env[CONTROL_DATABASE_VARIABLE];
  const pool = createPool(config.databaseUrl, 3);
  const log = (line: string) => console.log(`${new Date().toISOString()} [runner ${process.pid}] ${line}`);
  try {
    // Fleet mode: the shard's stack the service launched this runner for.
    const stack = config.stack ?? config.deployStack;
    if (stack === undefined) throw new ConfigError(["DEPLOY_STACK is required with FLEET_ENV (the service sets it for each runner)"]);
    const opened = await openFleet(config, { envVars: engineEnvVars(process.env), onOutput: (text) => process.stdout.write(text), log });
    const { deployer, tenants } = await opened.deployment(stack);
    const outcome = await runDeployment(pool, { stack, deployer, tenants, backoff: config.backoff, log });
    if (!outcome.ran) log(`not run: ${outcome.reason}`);
    return 0;
  } finally {
    await pool.end();
  }
}

// Exits at once with main's status: the engine's and the pool's handles would otherwise keep the process alive.
runMain(main, { prefix: "deployment runner", expected: [ConfigError, GitTenantsError], exitNow: true });

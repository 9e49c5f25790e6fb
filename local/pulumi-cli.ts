/**
 * `npm run pulumi -- ARGS`: the Pulumi CLI on this checkout's fleet, as every
 * other command reaches it (engine/fleet-access.ts): the engine findEngine
 * finds, the state on PULUMI_BACKEND_URL or else npm start's (its embedded
 * PostgreSQL started for the command when not running, and stopped after),
 * the passphrase from .state/ (or PULUMI_CONFIG_PASSPHRASE). For the README's
 * walk-throughs, e.g.
 *
 *   npm run pulumi -- config set --stack local-s001 --path drivergigspro:rollout.target 2
 *
 * Exits with pulumi's status.
 */
import { spawn } from "node:child_process";
import { resolveEngine } from "../engine/fleet-access";
import { PROJECT_DIR } from "../engine/paths";
import { runMain } from "../lib/run-main";
import { useLocalFleetBackend } from "./fleet-backend";

async function main(): Promise<number> {
  useLocalFleetBackend();
  const engine = await resolveEngine({ mayBuild: false });
  try {
    return await new Promise<number>((resolve, reject) => {
      const child = spawn("pulumi", process.argv.slice(2), { cwd: PROJECT_DIR, env: engine.context.env, stdio: "inherit" });
      child.on("error", reject);
      child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    });
  } finally {
    await engine.close();
  }
}

runMain(main);

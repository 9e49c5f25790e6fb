/**
 * `npm run serve:local`: the onboarding service (onboarding/main.ts) on this
 * checkout's embedded PostgreSQL (.data/postgres, port 55432 or
 * DGP_LOCAL_PG_PORT, the one `npm start` uses), for local development:
 *
 * - the control database is the server's database "onboarding" (DATABASE_URL);
 * - FLEET_ENV defaults to "local": every local shard (local-s001, ...), the
 *   stacks `npm start` deploys, unless PULUMI_STACK or FLEET_ENV says otherwise;
 * - the state is npm start's: the private pulumi_state database on that server
 *   (PULUMI_BACKEND_URL, unless set).
 *
 * The server is stopped when the service stops (SIGINT, SIGTERM) or fails to start.
 */
import { LOCAL_ENVIRONMENT, PROJECT_DIR } from "../engine/paths";
import { runMain } from "../lib/run-main";
import { createPrivateDatabase } from "../onboarding/db";
import { EXPECTED_ERRORS, serveUntilStopped } from "../onboarding/main";
import { checkoutPostgresOptions, startLocalPostgres, type LocalPostgres } from "./embedded-postgres";
import { ensureStateDatabase } from "./state-backend";

/** The service's environment on the embedded server: `env` with the control database, the fleet and the state backend filled in. */
async function embeddedServiceEnv(postgres: LocalPostgres, env: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  const serviceEnv: NodeJS.ProcessEnv = { ...env };
  // Private from the start: no tenant role can open the control database (or take its locks).
  await createPrivateDatabase(postgres.url(), "onboarding");
  serviceEnv.DATABASE_URL = postgres.url("onboarding");
  // Every local shard (the stacks npm start deploys: local-s001, ...), unless one stack is asked for.
  if (!serviceEnv.PULUMI_STACK && !serviceEnv.FLEET_ENV) serviceEnv.FLEET_ENV = LOCAL_ENVIRONMENT;
  // npm start's state: the private pulumi_state database on the same server.
  serviceEnv.PULUMI_BACKEND_URL ??= await ensureStateDatabase(postgres);
  return serviceEnv;
}

async function main(): Promise<void> {
  const postgres = await startLocalPostgres(checkoutPostgresOptions(PROJECT_DIR));
  try {
    await serveUntilStopped(await embeddedServiceEnv(postgres, process.env));
  } finally {
    await postgres.stop();
  }
}

runMain(main, { expected: EXPECTED_ERRORS, exitNow: true });

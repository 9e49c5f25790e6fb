/**
 * The project's names and local folders: the one place they are written.
 * Production (the CLIs, the service, `npm run deploy`) and the local
 * development setup (local/, `npm start`, the tests) both import them.
 *
 * - the project folder and the project name (from Pulumi.yaml, read on first use);
 * - `.state/`: the engine's passphrase and PULUMI_HOME, the embedded server's
 *   superuser password, the service's clones and logs (never committed);
 * - `.data/`: the embedded PostgreSQL's data folder;
 * - the local server's port (55432, or DGP_LOCAL_PG_PORT) and the local environment's name.
 *
 * The tenants files' paths are in tenants/paths.ts.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "yaml";

export const PROJECT_DIR = resolve(__dirname, "..");

let projectNameCache: string | undefined;
/** The project name from Pulumi.yaml (config keys are `<name>:key`; the DIY backends file state and locks under it). Read once, on first use. */
export function projectName(): string {
  projectNameCache ??= (parse(readFileSync(join(PROJECT_DIR, "Pulumi.yaml"), "utf8")) as { name: string }).name;
  return projectNameCache;
}

/** The local state folder of a checkout: passphrase, PULUMI_HOME, the embedded server's password, the service's clones. */
export function localStateDir(projectDir: string = PROJECT_DIR): string {
  return join(projectDir, ".state");
}

/** The local data folder of a checkout: the embedded PostgreSQL's data lives in its `postgres/`. */
export function localDataDir(projectDir: string = PROJECT_DIR): string {
  return join(projectDir, ".data");
}

/** This checkout's `.state/`, where `npm start` keeps its engine settings. */
export const LOCAL_STATE_DIR = localStateDir();

/** `npm start`'s environment: each shard's stack is "local-<shard>" (tenants/shards.ts). */
export const LOCAL_ENVIRONMENT = "local";

/** The embedded server of a checkout: its data folder and the file with its random superuser password. */
export function localPostgresFiles(projectDir: string = PROJECT_DIR): { dataDir: string; passwordFile: string } {
  return { dataDir: join(localDataDir(projectDir), "postgres"), passwordFile: join(localStateDir(projectDir), "postgres-superuser-password") };
}

/** The port `npm start` and the local service (`npm run serve:local`) use, unless DGP_LOCAL_PG_PORT says otherwise. */
export const DEFAULT_LOCAL_PORT = 55432;
export const LOCAL_PORT_ENV = "DGP_LOCAL_PG_PORT";

/** The local server's port: DGP_LOCAL_PG_PORT, else 55432. Throws on anything that is not a port from 1024 to 65535. */
export function localPostgresPort(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[LOCAL_PORT_ENV];
  const port = raw === undefined || raw === "" ? DEFAULT_LOCAL_PORT : Number(raw);
  if (!Number.isInteger(port) || port < 1024 || port > 65535) {
    throw new Error(`${LOCAL_PORT_ENV}=${JSON.stringify(raw).slice(0, 40)} is not a port; use a number from 1024 to 65535`);
  }
  return port;
}

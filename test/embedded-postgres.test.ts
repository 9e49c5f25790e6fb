/** The embedded PostgreSQL that `npm start` keeps in .data/postgres, and the throw-away ones tests use. */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { bundledPostgresMajor, checkoutPostgresOptions, freePort, startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { canLogIn } from "./support/can-log-in";

const TSX = join(__dirname, "..", "node_modules", ".bin", "tsx");

function keptRoot(prefix: string): string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(root, 0o755); // the unprivileged server user must be able to enter it
  return root;
}

interface KeptFolder {
  root: string;
  dataDir: string;
  passwordFile: string;
}

/** A kept data folder (`postgres`) and its password file (`state/postgres-superuser-password`) in a new folder, removed after `body`. */
async function inKeptFolder(prefix: string, body: (folder: KeptFolder) => Promise<void>): Promise<void> {
  const root = keptRoot(prefix);
  try {
    await body({ root, dataDir: join(root, "postgres"), passwordFile: join(root, "state", "postgres-superuser-password") });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** A folder as an older checkout left it: started with the old constant password "postgres", `sql` run as the superuser, stopped. */
async function legacyFolder(dataDir: string, sql: string): Promise<void> {
  const legacy = await startLocalPostgres({ dataDir, adminPassword: "postgres" });
  const client = await legacy.connect();
  await client.query(sql);
  await client.end();
  await legacy.stop();
}

const loginAs = (server: LocalPostgres, password: string) =>
  canLogIn({ host: server.host, port: server.port, user: "postgres", password, database: "postgres" });

describe("startLocalPostgres with a kept data folder", () => {
  it("refuses a folder from another PostgreSQL major, says what to do, and touches nothing", async () => {
    const root = mkdtempSync(join(tmpdir(), "dgp-old-pg-"));
    const dataDir = join(root, "postgres");
    mkdirSync(dataDir);
    const older = String(Number(bundledPostgresMajor()) - 1);
    writeFileSync(join(dataDir, "PG_VERSION"), `${older}\n`);
    try {
      await expect(startLocalPostgres({ dataDir, passwordFile: join(root, "pw") })).rejects.toThrow(
        new RegExp(`was made by PostgreSQL ${older}, but the embedded server is PostgreSQL ${bundledPostgresMajor()}.*delete .* and \\.state/`),
      );
      expect(readdirSync(dataDir)).toEqual(["PG_VERSION"]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("keeps data and a random superuser password (file mode 0600) across a stop and a start", async () => {
    await inKeptFolder("dgp-kept-pg-", async ({ dataDir, passwordFile }) => {
      const first = await startLocalPostgres({ dataDir, passwordFile });
      const password = readFileSync(passwordFile, "utf8").trim();
      expect(statSync(passwordFile).mode & 0o777).toBe(0o600);
      expect(password).toHaveLength(32);
      expect(first.adminPassword).toBe(password);
      expect(await loginAs(first, "postgres")).toMatch(/password authentication failed/);
      const client = await first.connect();
      await client.query("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here')");
      await client.end();
      await first.stop();

      const second = await startLocalPostgres({ dataDir, passwordFile });
      expect(second.adminPassword).toBe(password);
      const again = await second.connect();
      expect((await again.query("SELECT note FROM kept")).rows).toEqual([{ note: "still here" }]);
      await again.end();
      await second.stop();
    });
  });

  it("moves a folder made with the old constant password to a new random one, data kept", async () => {
    await inKeptFolder("dgp-legacy-pg-", async ({ dataDir, passwordFile }) => {
      await legacyFolder(dataDir, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('from before')");

      const moved = await startLocalPostgres({ dataDir, passwordFile });
      const password = readFileSync(passwordFile, "utf8").trim();
      expect(moved.adminPassword).toBe(password);
      expect(existsSync(`${passwordFile}.new`)).toBe(false);
      expect(statSync(passwordFile).mode & 0o777).toBe(0o600);
      expect(await loginAs(moved, "postgres")).toMatch(/password authentication failed/);
      expect(await loginAs(moved, password)).toBe(true);
      const again = await moved.connect();
      expect((await again.query("SELECT note FROM kept")).rows).toEqual([{ note: "from before" }]);
      await again.end();
      await moved.stop();
    });
  });

  it("says why a start failed, never just 'undefined'", async () => {
    const root = keptRoot("dgp-broken-pg-");
    const dataDir = join(root, "postgres");
    mkdirSync(dataDir, { mode: 0o700 });
    writeFileSync(join(dataDir, "PG_VERSION"), `${bundledPostgresMajor()}\n`); // a folder PostgreSQL cannot run from
    writeFileSync(join(root, "pw"), "kept-password\n");
    try {
      const failure = startLocalPostgres({ dataDir, passwordFile: join(root, "pw") });
      await expect(failure).rejects.toThrow(
        new RegExp(`^could not start the embedded PostgreSQL on port \\d+ in ${dataDir}: the server exited before it was ready\nlast server log lines:\n.+`),
      );
      await expect(failure).rejects.not.toThrow(/undefined/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("finishes a move a crash interrupted after the ALTER ROLE but before the password file was renamed", async () => {
    await inKeptFolder("dgp-half-moved-pg-", async ({ root, dataDir, passwordFile }) => {
      await legacyFolder(dataDir, "ALTER ROLE postgres PASSWORD 'pending-one'");
      mkdirSync(join(root, "state"));
      writeFileSync(`${passwordFile}.new`, "pending-one\n", { mode: 0o600 });

      const moved = await startLocalPostgres({ dataDir, passwordFile });
      expect(moved.adminPassword).toBe("pending-one");
      expect(readFileSync(passwordFile, "utf8").trim()).toBe("pending-one");
      expect(existsSync(`${passwordFile}.new`)).toBe(false);
      await moved.stop();
    });
  });

  it("wants a password file for a kept folder", async () => {
    await expect(startLocalPostgres({ dataDir: join(tmpdir(), "dgp-never-made") })).rejects.toThrow(/a kept dataDir needs passwordFile/);
  });
});

describe("throw-away servers", () => {
  it("each get their own random superuser password", async () => {
    const [a, b] = [await startLocalPostgres(), await startLocalPostgres()];
    try {
      expect(a.adminPassword).not.toBe(b.adminPassword);
      expect(a.adminPassword).not.toBe("postgres");
      expect(await loginAs(a, a.adminPassword)).toBe(true);
      expect(await loginAs(a, b.adminPassword)).toMatch(/password authentication failed/);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe("exit codes of a process that used the embedded server (embedded-postgres' exit hook)", () => {
  const run = (mode: string) => spawnSync(TSX, [join(__dirname, "support", "embedded-exit-child.ts"), mode], { encoding: "utf8" });

  it("keeps process.exitCode", () => {
    const result = run("exit-code-3");
    expect(result.stderr).toBe("");
    expect(result.status).toBe(3);
  });

  it("exits non-zero on an unhandled failure", () => {
    const result = run("throw");
    expect(result.stderr).toMatch(/failed after the server stopped/);
    expect(result.status).not.toBe(0);
    expect(result.status).not.toBeNull();
  });
});

describe("a fixed port someone else holds", () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  it("names the holding process, its pid and what to do", async () => {
    const port = await freePort();
    const holder = spawn(process.execPath, ["-e", `require("net").createServer().listen(${port}, "127.0.0.1", () => console.log("listening"))`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    cleanup = async () => void holder.kill();
    await new Promise((resolve) => holder.stdout!.once("data", resolve));
    const options = { ...checkoutPostgresOptions("/nonexistent-checkout", { DGP_LOCAL_PG_PORT: String(port) }), dataDir: undefined, passwordFile: undefined };
    const failure = startLocalPostgres(options);
    await expect(failure).rejects.toThrow(
      new RegExp(
        `^cannot start the embedded PostgreSQL: port ${port} is held by pid ${holder.pid} \\(user \\S+\\): \\S*node -e .*DGP_LOCAL_PG_PORT=${port + 1} npm start$`,
      ),
    );
    await expect(failure).rejects.not.toThrow(/undefined/);
  });

  it("npm start exits 1 naming the holder and the variable to set", async () => {
    const other = await startLocalPostgres();
    cleanup = () => other.stop();
    const result = spawnSync(TSX, [join(__dirname, "..", "scripts", "local-up.ts")], {
      env: { ...process.env, DGP_LOCAL_PG_PORT: String(other.port) },
      encoding: "utf8",
    });
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toBe(
      `error: cannot start the embedded PostgreSQL: port ${other.port} is held by the PostgreSQL server of data folder ${other.dataDir} ` +
        `(pid ${readFileSync(join(other.dataDir, "postmaster.pid"), "utf8").split("\n")[0]}, user ${process.getuid?.() === 0 ? "postgres" : userInfo().username}); ` +
        `stop it, or give this checkout another port: DGP_LOCAL_PG_PORT=${other.port + 1} npm start`,
    );
  });

  it("names another checkout's embedded PostgreSQL by its data folder", async () => {
    const other = await startLocalPostgres();
    cleanup = () => other.stop();
    await expect(startLocalPostgres({ port: other.port, portHint: "pick another" })).rejects.toThrow(
      new RegExp(`port ${other.port} is held by the PostgreSQL server of data folder ${other.dataDir} \\(pid \\d+, user \\S+\\); pick another$`),
    );
  });

  it("says when the holder is a server of the same data folder", async () => {
    const root = keptRoot("dgp-same-folder-");
    const options = { dataDir: join(root, "postgres"), passwordFile: join(root, "pw"), port: await freePort() };
    const running = await startLocalPostgres(options);
    cleanup = async () => {
      await running.stop();
      rmSync(root, { recursive: true, force: true });
    };
    await expect(startLocalPostgres(options)).rejects.toThrow(
      new RegExp(
        `^cannot start the embedded PostgreSQL: its data folder ${options.dataDir} is already served on port ${options.port} by pid \\d+ .*stop that first$`,
      ),
    );
  });

  it("refuses a bad DGP_LOCAL_PG_PORT", () => {
    expect(() => checkoutPostgresOptions("/x", { DGP_LOCAL_PG_PORT: "55432; rm -rf /" })).toThrow(
      /DGP_LOCAL_PG_PORT=.* is not a port; use a number from 1024 to 65535/,
    );
  });
});

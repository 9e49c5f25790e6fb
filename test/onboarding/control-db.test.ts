/**
 * The control database holds the advisory locks every deployment takes: the
 * service refuses to start on one that a tenant role (or PUBLIC) can open,
 * and `npm run serve:local` makes it private. Against a real PostgreSQL.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import { controlDatabaseExposure, createPool, createPrivateDatabase } from "../../onboarding/db";
import { canLogIn } from "../support/can-log-in";

const ROOT = join(__dirname, "..", "..");
let server: LocalPostgres;

beforeAll(async () => {
  server = await startLocalPostgres();
  const admin = await server.connect();
  await admin.query("CREATE DATABASE open_control");
  await admin.query("CREATE ROLE drivergigspro_0a0a0a0a LOGIN PASSWORD 'tenant-pw'");
  await admin.end();
});
afterAll(async () => {
  await server?.stop();
});

async function exposure(database: string): Promise<string | undefined> {
  const pool = createPool(server.url(database), 1);
  try {
    return await controlDatabaseExposure(pool);
  } finally {
    await pool.end();
  }
}

describe("the control database", () => {
  it("is reported open while PUBLIC can connect, and a tenant can in fact log in to it", async () => {
    expect(await exposure("open_control")).toMatch(
      /control database "open_control" can be opened by every role \(PUBLIC has CONNECT\).*REVOKE ALL ON DATABASE open_control FROM PUBLIC/,
    );
    expect(await canLogIn({ host: server.host, port: server.port, user: "drivergigspro_0a0a0a0a", password: "tenant-pw", database: "open_control" })).toBe(
      true,
    );
  });

  it("made by createPrivateDatabase (as npm run serve:local does) refuses tenants and passes the check", async () => {
    await createPrivateDatabase(server.url(), "onboarding");
    expect(await exposure("onboarding")).toBeUndefined();
    expect(await canLogIn({ host: server.host, port: server.port, user: "drivergigspro_0a0a0a0a", password: "tenant-pw", database: "onboarding" })).toMatch(
      /permission denied for database/,
    );
  });

  it("is reported open when a tenant role was granted CONNECT, naming the role", async () => {
    const admin = await server.connect();
    await admin.query("GRANT CONNECT ON DATABASE onboarding TO drivergigspro_0a0a0a0a");
    await admin.end();
    expect(await exposure("onboarding")).toMatch(/can be opened by tenant roles \(drivergigspro_0a0a0a0a\)/);
    const fixed = await server.connect();
    await fixed.query("REVOKE CONNECT ON DATABASE onboarding FROM drivergigspro_0a0a0a0a");
    await fixed.end();
  });

  it("npm run serve refuses to start on an open control database, exit status 1, before anything else", () => {
    const result = spawnSync(join(ROOT, "node_modules", ".bin", "tsx"), [join(ROOT, "onboarding", "main.ts")], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 60_000,
      env: {
        ...process.env,
        DATABASE_URL: server.url("open_control"),
        PULUMI_STACK: "local-s001",
        WEBHOOK_SECRET: "w".repeat(32),
        API_TOKEN: "t".repeat(32),
        SMTP_URL: "smtp://127.0.0.1:1",
        MAIL_FROM: "DriverGigsPro <welcome@example.com>",
      },
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/control database "open_control" can be opened by every role/);
  });
});

describe("a control-database client held between queries (the stack lock through an engine run)", () => {
  it("losing its server connection is its next query's rejection, not an uncaught exception that ends the service", async () => {
    const pool = createPool(server.url("open_control"), 2);
    const held = await pool.connect();
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on("uncaughtException", onUncaught);
    try {
      const pid = (await held.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
      const admin = await server.connect();
      await admin.query("SELECT pg_terminate_backend($1)", [pid]);
      await admin.end();
      await expect(held.query("SELECT 1")).rejects.toThrow();
      expect(uncaught).toEqual([]);
      held.release(true);
      // The pool still serves: the lost client was dropped.
      expect((await pool.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one).toBe(1);
    } finally {
      process.off("uncaughtException", onUncaught);
      await pool.end();
    }
  });
});

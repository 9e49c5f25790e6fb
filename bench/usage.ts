/**
 * `npm run usage` over 100 and 1,000 tenant databases, printed as JSON lines
 * for bench/index.ts. The databases are small and empty (CREATE DATABASE from
 * template0, on a throw-away server) with the app's `users` and `sessions`
 * tables, so creating 1,000 of them takes minutes rather than the hours
 * seeding would; what `npm run usage` reads does not depend on the catalogue.
 * The timing is the whole command as a person runs it (process start included).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Client, escapeIdentifier } from "pg";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { runMain } from "../lib/run-main";
import { DEFAULT_APP_NAME, databaseName as tenantDatabaseName } from "../infra/naming";

const SIZES = (process.env.USAGE_BENCH_SIZES ?? "100,1000").split(",").map(Number);
const TABLES =
  "CREATE TABLE users (id serial PRIMARY KEY, username text NOT NULL UNIQUE); CREATE TABLE sessions (sid varchar PRIMARY KEY, sess jsonb NOT NULL, expire timestamp NOT NULL)";

/** Creates databases up to `count` (names drivergigspro_00000000, ...), each with the app's two tables. */
async function growTo(postgres: LocalPostgres, from: number, count: number): Promise<void> {
  const admin = await postgres.connect();
  try {
    for (let i = from; i < count; i++) {
      await admin.query(`CREATE DATABASE ${escapeIdentifier(databaseName(i))} TEMPLATE template0`);
      const client = new Client({ connectionString: postgres.url(databaseName(i)) });
      await client.connect();
      await client.query(TABLES);
      await client.end();
    }
  } finally {
    await admin.end();
  }
}

const tenantId = (i: number) => i.toString(16).toUpperCase().padStart(8, "0");
const databaseName = (i: number) => tenantDatabaseName(DEFAULT_APP_NAME, tenantId(i));

async function main(): Promise<void> {
  const postgres = await startLocalPostgres();
  const dir = mkdtempSync(join(tmpdir(), "dgp-usage-bench-"));
  try {
    let created = 0;
    for (const size of SIZES) {
      const started = performance.now();
      await growTo(postgres, created, size);
      const createSeconds = (performance.now() - started) / 1000;
      created = size;
      const tenants = Object.fromEntries(
        Array.from({ length: size }, (_, i) => [
          `driver_${i}`,
          { tenantId: tenantId(i), username: `driver_${i}`, database: databaseName(i), server: "local", status: "active" },
        ]),
      );
      const outputs = join(dir, "outputs.json");
      writeFileSync(outputs, JSON.stringify({ tenants }));
      const runStarted = performance.now();
      const run = spawnSync(
        join(__dirname, "..", "node_modules", ".bin", "tsx"),
        [join(__dirname, "..", "usage", "cli.ts"), "--json", "--outputs", outputs, "--admin-url", `local=${postgres.url()}`],
        {
          encoding: "utf8",
          maxBuffer: 256 * 1024 * 1024,
        },
      );
      const seconds = (performance.now() - runStarted) / 1000;
      if (run.status !== 0) throw new Error(`npm run usage failed over ${size} tenants: ${run.stderr}`);
      const result = JSON.parse(run.stdout) as { queries: number; connections: number; tenants: unknown[] };
      console.log(
        JSON.stringify({ tenants: size, createSeconds, seconds, queries: result.queries, connections: result.connections, rows: result.tenants.length }),
      );
    }
  } finally {
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// The message alone, no prefix; exit at once so open pools and servers cannot hold the process.
runMain(main, { prefix: "", exitNow: true });

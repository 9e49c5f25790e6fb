/**
 * Noisy neighbours (`npm run bench -- neighbours`): tenant B runs a light,
 * steady pgbench workload (rate-limited reads and small updates) on the same
 * server as tenant A; B's latency is measured alone and while A runs at its
 * full connection limit, first write-heavy (pgbench tpcb-like, unthrottled),
 * then large sorts up to its temp_file_limit. Both tenants are made exactly as
 * the builtin provider makes them (infra/builtin-postgres/operations.ts), with
 * the limits of the plan under test, so A's role carries its plan's
 * connection limit, statement timeout and temp_file_limit.
 *
 * Load tool: pgbench from PostgreSQL's own packages (Debian's postgresql-15,
 * /usr/lib/postgresql/15/bin/pgbench; a pgbench client drives any server
 * major). B's per-transaction log (`pgbench -l`) gives its p50/p99.
 *
 * The phases are interleaved (alone, under A's writes, alone, under A's
 * sorts, repeated), so load from other processes on the machine hits every
 * phase alike; what is compared is ratios within one run. While a phase
 * runs, A's and B's backends are sampled in pg_stat_activity every 100 ms
 * (running on CPU, or waiting on IO, WAL/LWLock, Lock, client), to say what A
 * takes from B.
 *
 * Prints one JSON row per (lever, phase); bench/index.ts renders the table.
 * Flags: --rounds N (default 3), --seconds S per phase (default 10),
 * --levers a,b (default: every lever below).
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { DEFAULT_PLAN, DEFAULT_PLANS, type PlanLimits } from "../infra/config";
import * as ops from "../infra/builtin-postgres/operations";
import { DEFAULT_APP_NAME, tenantIdOfDatabase } from "../infra/naming";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { DEBIAN_POSTGRES_15 } from "../local/system-postgres";

const run = promisify(execFile);
const PGBENCH = process.env.PGBENCH ?? join(DEBIAN_POSTGRES_15, "pgbench");

interface Tenant {
  name: string;
  password: string;
}

/** A lever: a plan for A (and B) and server settings, compared with the shipped default plan. */
interface Lever {
  name: string;
  plan: PlanLimits;
  /** Server settings (-c name=value) for this lever's server. */
  server: string[];
}

const shipped = DEFAULT_PLANS[DEFAULT_PLAN]!;
const LEVERS: Record<string, Lever> = {
  shipped: { name: `default plan (${DEFAULT_PLAN})`, plan: shipped, server: [] },
  "connections-3": { name: "connectionLimit 3", plan: { ...shipped, connectionLimit: 3 }, server: [] },
  "connections-4": { name: "connectionLimit 4", plan: { ...shipped, connectionLimit: 4 }, server: [] },
  "connections-10": { name: "connectionLimit 10 (the earlier default)", plan: { ...shipped, connectionLimit: 10 }, server: [] },
  "no-parallel": { name: "connectionLimit 10 + max_parallel_workers 0", plan: { ...shipped, connectionLimit: 10 }, server: ["max_parallel_workers=0"] },
};

function pgbenchEnv(server: LocalPostgres, tenant: Tenant): NodeJS.ProcessEnv {
  return { ...process.env, PGHOST: server.host, PGPORT: String(server.port), PGUSER: tenant.name, PGPASSWORD: tenant.password, PGDATABASE: tenant.name };
}

async function makeTenant(server: LocalPostgres, name: string, plan: PlanLimits): Promise<Tenant> {
  const password = `${name}-bench-pw`;
  const adminUrl = server.url();
  // The marker a role and database carry (infra/naming.ts tenantMarker): the tenant ID in the name, of stack "bench".
  const owner = { tenantId: tenantIdOfDatabase(DEFAULT_APP_NAME, name) ?? "00000000", stack: "bench" };
  await ops.createRole(adminUrl, {
    name,
    ...owner,
    password,
    login: true,
    connectionLimit: plan.connectionLimit,
    statementTimeoutMs: plan.statementTimeoutMs,
    idleInTransactionTimeoutMs: plan.idleInTransactionTimeoutMs,
    tempFileLimitMb: plan.tempFileLimitMb,
  });
  await ops.createDatabase(adminUrl, { name, ...owner, tenantRole: name, connectionLimit: plan.connectionLimit });
  await ops.revokePublic(adminUrl, name);
  return { name, password };
}

/** B's workload: 9 reads for 1 small update, at a fixed rate (a light, steady app). */
const B_RATE = 50;
/** A's sort: one statement sorting about `rows` random values (spills to temporary files past work_mem). */
const sortScript = (rows: number) => `SELECT count(*) FROM (SELECT md5(g::text) AS h FROM generate_series(1, ${rows}) g ORDER BY 1) s;\n`;

interface PhaseResult {
  latenciesMs: number[];
  aTps: number | null;
  aErrors: number;
  waits: Record<string, number>;
}

async function pgbench(server: LocalPostgres, tenant: Tenant, args: string[], cwd: string) {
  try {
    const { stdout, stderr } = await run(PGBENCH, args, { env: pgbenchEnv(server, tenant), cwd, maxBuffer: 64 * 1024 * 1024 });
    return `${stdout}\n${stderr}`;
  } catch (error) {
    // pgbench exits 2 when some transactions failed (A's sorts past temp_file_limit do): still a result.
    const failure = error as { stdout?: string; stderr?: string };
    return `${failure.stdout ?? ""}\n${failure.stderr ?? ""}`;
  }
}

/** Samples what A's and B's backends are doing (wait_event_type, or CPU when none) until `done`. */
async function sampleWaits(server: LocalPostgres, a: Tenant, until: Promise<unknown>): Promise<Record<string, number>> {
  const admin = await server.connect();
  const counts: Record<string, number> = {};
  let finished = false;
  void until.finally(() => (finished = true));
  try {
    while (!finished) {
      const { rows } = await admin.query<{ who: string; what: string }>(
        `SELECT CASE WHEN usename = $1 THEN 'A' ELSE 'B' END AS who,
                CASE WHEN state = 'active' THEN coalesce(wait_event_type || ':' || wait_event, 'CPU') ELSE 'idle' END AS what
         FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename IS NOT NULL AND usename <> current_user`,
        [a.name],
      );
      for (const row of rows) counts[`${row.who} ${row.what}`] = (counts[`${row.who} ${row.what}`] ?? 0) + 1;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await admin.end();
  }
  return counts;
}

function readLatencies(dir: string, prefix: string): number[] {
  const latencies: number[] = [];
  for (const file of readdirSync(dir).filter((name) => name.startsWith(prefix))) {
    for (const line of readFileSync(join(dir, file), "utf8").split("\n")) {
      const fields = line.trim().split(/\s+/);
      // client_id transaction_no time script_no time_epoch time_us [schedule_lag]
      if (fields.length >= 6 && fields[2] !== "skipped" && fields[2] !== "failed") latencies.push(Number(fields[2]) / 1000);
    }
    rmSync(join(dir, file));
  }
  return latencies;
}

async function phase(server: LocalPostgres, a: Tenant, b: Tenant, lever: Lever, kind: "alone" | "writes" | "sorts", seconds: number, dir: string) {
  const prefix = `b-${kind}-${Date.now()}`;
  const bRun = pgbench(
    server,
    b,
    ["-n", "-c", "2", "-j", "1", "-R", String(B_RATE), "-T", String(seconds), "-b", "select-only@9", "-b", "simple-update@1", "-l", `--log-prefix=${prefix}`],
    dir,
  );
  const connections = String(lever.plan.connectionLimit);
  // Rows per sort: about half of temp_file_limit per sort in temporary files (≈ 80 bytes a row on disk).
  const rows = Math.max(100_000, Math.floor((lever.plan.tempFileLimitMb * 1024 * 1024) / 80 / 2));
  const aRun =
    kind === "alone"
      ? Promise.resolve("")
      : kind === "writes"
        ? pgbench(server, a, ["-n", "-c", connections, "-j", "2", "-T", String(seconds), "-b", "tpcb-like"], dir)
        : pgbench(server, a, ["-n", "-c", connections, "-j", "2", "-T", String(seconds), "-f", join(dir, `sort-${rows}.sql`)], dir);
  if (kind === "sorts" && !existsSync(join(dir, `sort-${rows}.sql`))) throw new Error("sort script missing");
  const both = Promise.all([bRun, aRun]);
  const waits = await sampleWaits(server, a, both);
  const [, aOut] = await both;
  const tps = /tps = ([\d.]+)/.exec(aOut);
  const failed = /number of failed transactions: (\d+)/.exec(aOut);
  const result: PhaseResult = { latenciesMs: readLatencies(dir, prefix), aTps: tps ? Number(tps[1]) : null, aErrors: failed ? Number(failed[1]) : 0, waits };
  return result;
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};

async function benchLever(key: string, rounds: number, seconds: number): Promise<void> {
  const lever = LEVERS[key]!;
  const server = await startLocalPostgres({ postgresFlags: ["-c", "fsync=on", ...lever.server.flatMap((setting) => ["-c", setting])] });
  const dir = mkdtempSync(join(tmpdir(), "dgp-neighbours-"));
  try {
    const a = await makeTenant(server, "drivergigspro_aaaaaaaa", lever.plan);
    const b = await makeTenant(server, "drivergigspro_bbbbbbbb", lever.plan);
    await pgbench(server, a, ["-i", "-q", "-s", "10"], dir);
    await pgbench(server, b, ["-i", "-q", "-s", "1"], dir);
    const rows = Math.max(100_000, Math.floor((lever.plan.tempFileLimitMb * 1024 * 1024) / 80 / 2));
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(dir, `sort-${rows}.sql`), sortScript(rows));
    const results: Record<string, PhaseResult[]> = { alone: [], writes: [], sorts: [] };
    for (let round = 0; round < rounds; round += 1) {
      for (const kind of ["alone", "writes", "alone", "sorts"] as const) results[kind]!.push(await phase(server, a, b, lever, kind, seconds, dir));
    }
    const aloneP99 = percentile(
      results.alone!.flatMap((result) => result.latenciesMs),
      99,
    );
    for (const kind of ["alone", "writes", "sorts"] as const) {
      const latencies = results[kind]!.flatMap((result) => result.latenciesMs);
      const tps = results[kind]!.map((result) => result.aTps).filter((value): value is number => value !== null);
      const waits: Record<string, number> = {};
      for (const result of results[kind]!) for (const [what, count] of Object.entries(result.waits)) waits[what] = (waits[what] ?? 0) + count;
      const top = (who: string) =>
        Object.entries(waits)
          .filter(([what]) => what.startsWith(`${who} `) && !what.endsWith(" idle") && !what.includes("Client:"))
          .sort((x, y) => y[1] - x[1])
          .slice(0, 2)
          .map(([what, count]) => `${what.slice(2)} ${count}`)
          .join(", ");
      console.log(
        JSON.stringify({
          bench: "neighbours",
          lever: lever.name,
          phase: kind,
          aConnections: lever.plan.connectionLimit,
          tempFileLimitMb: lever.plan.tempFileLimitMb,
          bTransactions: latencies.length,
          bP50Ms: percentile(latencies, 50),
          bP99Ms: percentile(latencies, 99),
          p99VsAlone: percentile(latencies, 99) / aloneP99,
          aTps: tps.length === 0 ? null : tps.reduce((sum, value) => sum + value, 0) / tps.length,
          aFailed: results[kind]!.reduce((sum, result) => sum + result.aErrors, 0),
          aBusy: top("A"),
          bBusy: top("B"),
        }),
      );
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "3" },
      seconds: { type: "string", default: "10" },
      levers: { type: "string", default: "shipped,connections-3,connections-10" },
    },
  });
  if (!existsSync(PGBENCH)) throw new Error(`no pgbench at ${PGBENCH}: apt-get install -y postgresql-15 (or set PGBENCH to another pgbench)`);
  for (const key of values.levers.split(",")) {
    if (!(key in LEVERS)) throw new Error(`unknown lever "${key}" (levers: ${Object.keys(LEVERS).join(", ")})`);
    await benchLever(key, Number(values.rounds), Number(values.seconds));
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

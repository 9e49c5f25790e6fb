/**
 * `npm run usage`: per-tenant usage read from the real servers, as a table
 * (--json, --csv); --record stores it as billing samples in the control
 * database; --period YYYY-MM bills a month from those samples; --serve PORT
 * exports per-tenant Prometheus metrics. Exits non-zero on any failure.
 */
import { parseArgs } from "node:util";
import { createPool } from "../onboarding/db";
import { billPeriod, parsePeriod, type BillingLine } from "./billing";
import { collectUsage, DEFAULT_SLOW_STATEMENT_MS, type UsageReading } from "./collect";
import { startExporter } from "./exporter";
import { DEFAULT_MAX_EXPORTED_TENANTS, UsageMetrics } from "./metrics";
import { renderCsv, renderUsageTable, USAGE_CSV_COLUMNS, usageRows } from "./report";
import { ensureUsageSchema, readSamples, recordUsage } from "./samples";
import { UsageSampler } from "./sampler";
import { adminServers, stackTenants, type FleetSourceOptions } from "./stack";
import { withFleet } from "../engine/fleet-access";
import { renderTable } from "../lib/table";
import { errorMessage } from "../lib/errors";
import { runMain } from "../lib/run-main";

const USAGE = `usage: npm run usage -- [--outputs FILE | --env NAME [--shard NAME ...] | --stack NAME] [--admin-url NAME=URL ...] [--json | --csv]
       npm run usage -- --record [--database-url URL]          store one sample per tenant (for cron)
       npm run usage -- --period YYYY-MM [--json | --csv]       bill a month from the stored samples
       npm run usage -- --serve PORT [--interval SECONDS]       per-tenant Prometheus metrics on /metrics

  --outputs FILE      saved "pulumi stack output --json" (default: ask the stacks)
  --env NAME          the environment whose shard stacks are read, "<env>-<shard>" (default: local)
  --shard NAME        only this shard (repeatable; default: every shard of tenants/shards.yaml)
  --stack NAME        one stack instead (state: PULUMI_BACKEND_URL, else npm start's, its
                      embedded PostgreSQL started for the command when not running)
  --admin-url N=URL   admin connection of server N (repeatable; or USAGE_ADMIN_URLS="N=URL,...");
                      default: the stack config's servers
  --database-url URL  the control database for --record/--period (default: DATABASE_URL)
  --slow-ms MS        a statement is slow from this mean time (default ${DEFAULT_SLOW_STATEMENT_MS}, needs pg_stat_statements)
  --max-tenants N     per-tenant series exported by --serve (default ${DEFAULT_MAX_EXPORTED_TENANTS})`;

const OPTIONS = {
  outputs: { type: "string" },
  env: { type: "string", default: "local" },
  shard: { type: "string", multiple: true, default: [] as string[] },
  stack: { type: "string" },
  "admin-url": { type: "string", multiple: true, default: [] as string[] },
  json: { type: "boolean", default: false },
  csv: { type: "boolean", default: false },
  record: { type: "boolean", default: false },
  period: { type: "string" },
  "database-url": { type: "string" },
  serve: { type: "string" },
  interval: { type: "string", default: "60" },
  "slow-ms": { type: "string", default: String(DEFAULT_SLOW_STATEMENT_MS) },
  "max-tenants": { type: "string", default: String(DEFAULT_MAX_EXPORTED_TENANTS) },
  help: { type: "boolean", short: "h", default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"];

class UsageError extends Error {}

function positiveInt(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new UsageError(`--${name} must be a positive whole number (got "${text}")`);
  return value;
}

function controlUrl(values: Values): string {
  const url = values["database-url"] ?? process.env.DATABASE_URL;
  if (!url) throw new UsageError("--record, --period and --serve with samples need the control database: --database-url URL or DATABASE_URL");
  return url;
}

const MIB = 1024 * 1024;

function printBilling(lines: BillingLine[], values: Values, period: string): void {
  if (values.json) return console.log(JSON.stringify({ period, tenants: lines }, null, 2));
  const columns = ["tenantId", "username", "daysActive", "averageStorageBytes", "peakStorageBytes", "peakConnections", "transactions", "samples"] as const;
  if (values.csv) return void process.stdout.write(renderCsv(lines, columns));
  console.log(
    renderTable(
      ["tenant ID", "username", "days active", "avg storage MB", "peak storage MB", "peak connections", "transactions"],
      lines.map((line) => [
        line.tenantId,
        line.username,
        String(line.daysActive),
        (line.averageStorageBytes / MIB).toFixed(1),
        (line.peakStorageBytes / MIB).toFixed(1),
        String(line.peakConnections),
        String(line.transactions),
      ]),
    ),
  );
  if (lines.length === 0) console.log(`no samples in ${period}: record them with "npm run usage -- --record" (cron) or the onboarding service`);
}

async function billing(values: Values): Promise<number> {
  const period = parsePeriod(values.period!);
  const pool = createPool(controlUrl(values), 2);
  try {
    await ensureUsageSchema(pool);
    printBilling(billPeriod(await readSamples(pool, period.start, period.end), period), values, period.label);
    return 0;
  } finally {
    await pool.end();
  }
}

async function serve(values: Values, source: FleetSourceOptions): Promise<number> {
  const port = Number(values.serve);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--serve must be a port number (got "${values.serve}")`);
  const metrics = new UsageMetrics({ maxTenants: positiveInt("max-tenants", values["max-tenants"]) });
  const pool = values.record ? createPool(controlUrl(values), 2) : undefined;
  const sampler = new UsageSampler({
    source: async () => ({ tenants: await stackTenants(source), servers: await adminServers(source) }),
    intervalMs: positiveInt("interval", values.interval) * 1000,
    pool,
    metrics,
    collect: { slowStatementMs: positiveInt("slow-ms", values["slow-ms"]) },
    log: (line) => console.error(`${new Date().toISOString()} ${line}`),
  });
  await sampler.sampleOnce(); // fail fast, with the real message, before serving
  const exporter = await startExporter([metrics.registry], { port, host: process.env.HOST ?? "127.0.0.1" });
  sampler.start();
  console.log(`per-tenant metrics on ${exporter.url}/metrics (read every ${values.interval} s)`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await sampler.stop();
  await exporter.close();
  await pool?.end();
  return 0;
}

function printReading(reading: UsageReading, rows: ReturnType<typeof usageRows>, values: Values): void {
  if (values.json) console.log(JSON.stringify({ queries: reading.queries, connections: reading.connections, tenants: rows }, null, 2));
  else if (values.csv) process.stdout.write(renderCsv(rows, USAGE_CSV_COLUMNS));
  else {
    console.log(renderUsageTable(rows));
    const servers = new Set(rows.map((row) => row.server)).size;
    console.log(`\n${rows.length} tenant(s) on ${servers} server(s): ${reading.queries} queries over ${reading.connections} connections.`);
  }
}

async function run(values: Values): Promise<number> {
  if (values.json && values.csv) throw new UsageError("choose one of --json and --csv");
  if (values.period !== undefined) return billing(values);
  const explicitServers = values["admin-url"].length > 0 || (process.env.USAGE_ADMIN_URLS ?? "") !== "";
  const base = { outputsFile: values.outputs, adminUrls: values["admin-url"] };
  // A saved outputs file with explicit admin URLs needs no engine and no backend.
  if (values.outputs !== undefined && explicitServers) return readUsage(values, { ...base, stacks: [] });
  // The fleet stays open while its servers are read: a local server started for it is stopped after.
  // A read builds no engine: without one, the error names the command that builds it.
  return withFleet({ environment: values.env, shards: values.shard, stack: values.stack, mayBuild: false }, (fleet) =>
    readUsage(values, { ...base, stacks: fleet.stacks, context: fleet.context }),
  );
}

async function readUsage(values: Values, source: FleetSourceOptions): Promise<number> {
  if (values.serve !== undefined) return serve(values, source);
  const tenants = await stackTenants(source);
  const servers = await adminServers(source);
  const read = () => collectUsage(servers, tenants, { slowStatementMs: positiveInt("slow-ms", values["slow-ms"]) });
  let reading: UsageReading;
  if (values.record) {
    const pool = createPool(controlUrl(values), 2);
    try {
      await ensureUsageSchema(pool);
      reading = await recordUsage(pool, tenants, read);
    } finally {
      await pool.end();
    }
  } else {
    reading = await read();
  }
  const rows = usageRows(tenants, reading.figures);
  printReading(reading, rows, values);
  const problems = rows.filter((row) => row.problem !== null);
  for (const row of problems) console.error(`error: tenant ${row.tenantId} (${row.username}): ${row.problem}`);
  return problems.length === 0 ? 0 : 1;
}

async function main(): Promise<number> {
  let values: Values;
  try {
    ({ values } = parseArgs({ options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    console.error(`error: ${errorMessage(error).split("\n")[0]}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  return run(values);
}

// A failure prints "error: ..." with any connection password hidden (lib/run-main.ts); a wrong command line exits 2.
runMain(main, { usage: [UsageError] });

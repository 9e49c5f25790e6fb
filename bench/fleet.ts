/**
 * A change that reaches every shard (issue 21): over every shard of a
 * deployed N-tenant fleet, in one run and interleaved, `npm run deploy --
 * preview` with no change and `npm run deploy -- up` of a one-line change
 * (the starter plan's statement timeout, a stack config value, which every
 * tenant's role takes), each sequentially (`--parallel 1`) and with
 * `--parallel 2` (or `--parallel`), through the real command in a clone of this
 * checkout (its tenants/shards.yaml lists the bench's shards), the state in
 * PostgreSQL as in production.
 *
 *   tsx bench/fleet.ts [--tenants 1000] [--shard-size 100] [--parallel 2]
 *
 * Every entry carries its allocated tenantId (as `tenants add` and the signup
 * service write them), so every update skips the intermediate checkpoints
 * (engine/fleet-access.ts; `npm run bench -- checkpoints` measures the factor).
 * Deploying the fleet first is not timed.
 * Prints one JSON line per shard and per run on stdout (the deploy command's
 * own --json); progress on stderr.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startLocalPostgres } from "../local/embedded-postgres";
import { configureLocalStack } from "../local/stack";
import { findEngine, pulumi, pulumiContext, type PulumiContext } from "../engine/pulumi";
import { localStateDir, PROJECT_DIR } from "../engine/paths";
import { ensureStateDatabase } from "../local/state-backend";
import { cloneCheckout, copyStackConfig } from "../harness/checkout";
import type { DeployReport } from "../deploy/report";
import { allocateTenantIds } from "../tenants/ids";
import { runMain } from "../lib/run-main";

const log = (line: string) => console.error(`[bench] ${line}`);
const ENVIRONMENT = "bench";
const STARTER = { connectionLimit: 10, idleInTransactionTimeoutMs: 60_000, storageQuotaMb: 500 };

/** `npm run deploy -- ARGS --json` in the clone, as a person runs it (tsx directly: npm's own start is not the deploy's cost). */
function deploy(clone: string, context: PulumiContext, args: string[]): DeployReport {
  const tsx = join(PROJECT_DIR, "node_modules", ".bin", "tsx");
  const started = Date.now();
  let stdout: string;
  try {
    stdout = execFileSync(tsx, [join(clone, "scripts", "deploy.ts"), ...args, "--env", ENVIRONMENT, "--json"], {
      cwd: clone,
      env: context.env,
      encoding: "utf8",
      maxBuffer: 256 * 1024 * 1024,
      // Each shard's progress and its "ok in N s" line go to the bench's stderr as they come, so a run
      // stopped part-way still shows the shards that finished.
      stdio: ["ignore", "pipe", "inherit"],
    });
  } catch (error) {
    const report = (error as { stdout?: string }).stdout;
    throw new Error(`npm run deploy -- ${args.join(" ")} failed: ${report ? report.slice(0, 2000) : String(error)}`);
  }
  log(`deploy ${args.join(" ")}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return JSON.parse(stdout) as DeployReport;
}

/** Every shard's stack gets the starter plan with this statement timeout: one config line, a change to every tenant's role. */
function setTimeoutEverywhere(clone: string, context: PulumiContext, stacks: readonly string[], statementTimeoutMs: number): void {
  for (const stack of stacks) {
    pulumi(context, ["config", "set", "--path", "--stack", stack, "drivergigspro:plans.starter.statementTimeoutMs", String(statementTimeoutMs)], {
      cwd: clone,
    });
  }
}

async function main() {
  const { values } = parseArgs({
    options: { tenants: { type: "string", default: "1000" }, "shard-size": { type: "string", default: "100" }, parallel: { type: "string", default: "2" } },
    strict: true,
  });
  const tenants = Number(values.tenants);
  const size = Number(values["shard-size"]);
  const parallel = Number(values.parallel);
  if (![tenants, size, parallel].every((n) => Number.isInteger(n) && n > 0))
    throw new Error("--tenants, --shard-size and --parallel take whole numbers from 1");
  const clone = cloneCheckout("bench-fleet");
  const server = await startLocalPostgres();
  const context = pulumiContext(findEngine({ mayBuild: true }), localStateDir(clone), await ensureStateDatabase(server));
  const shards = Array.from({ length: Math.ceil(tenants / size) }, (_, i) => `f${String(i + 1).padStart(3, "0")}`);
  const stacks = shards.map((shard) => `${ENVIRONMENT}-${shard}`);
  try {
    writeFileSync(
      join(clone, "tenants", "shards.yaml"),
      `maxTenants: ${size}\nshards:\n${shards.map((s) => `  - name: ${s}\n    file: tenants/${s}.yaml\n`).join("")}`,
    );
    let made = 0;
    const taken = new Set<string>();
    for (const [index, shard] of shards.entries()) {
      const count = Math.min(size, tenants - index * size);
      // Every entry with its allocated tenantId, as `tenants add` and the signup service write them: so the
      // deployment paths skip the intermediate checkpoints (engine/fleet-access.ts checkpointDecision).
      const entries = allocateTenantIds(count, taken).map((id) => {
        const name = `fleet_driver_${made++}`;
        return `  - username: ${name}\n    email: ${name}@example.com\n    tenantId: ${id}\n`;
      });
      writeFileSync(join(clone, "tenants", `${shard}.yaml`), `tenants:\n${entries.join("")}`);
      const plan = Object.fromEntries(
        Object.entries({ ...STARTER, statementTimeoutMs: 30_000 }).map(([key, value]) => [`plans.starter.${key}`, String(value)]),
      );
      configureLocalStack(context, stacks[index]!, server, { tenantsFile: `tenants/${shard}.yaml`, ...plan });
      copyStackConfig(stacks[index]!, clone);
      rmSync(join(PROJECT_DIR, `Pulumi.${stacks[index]}.yaml`), { force: true });
    }
    log(`deploying ${tenants} tenants in ${shards.length} shards of ${size} (not timed)`);
    deploy(clone, context, ["up", "--parallel", String(parallel)]);
    const emit = (bench: string, mode: string, report: DeployReport) => {
      const rows = [
        ...report.shards.map((shard) => ({ bench, mode, tenants, shardSize: size, shard: shard.shard, result: shard.result, seconds: shard.seconds })),
        { bench, mode, tenants, shardSize: size, shard: "total", result: "ok", seconds: report.seconds },
      ];
      for (const row of rows) {
        console.log(JSON.stringify(row));
        log(`row ${JSON.stringify(row)}`); // also in the progress, should the run be stopped before its table
      }
    };
    const modes: [string, string][] = [
      ["sequential", "1"],
      [`--parallel ${parallel}`, String(parallel)],
    ];
    for (const [mode, n] of modes) emit("no-change preview", mode, deploy(clone, context, ["preview", "--parallel", n]));
    for (const [index, [mode, n]] of modes.entries()) {
      setTimeoutEverywhere(clone, context, stacks, 31_000 + index * 1000);
      emit("one-line change up", mode, deploy(clone, context, ["up", "--parallel", n]));
    }
  } finally {
    await server.stop();
    rmSync(join(clone, ".."), { recursive: true, force: true });
    for (const file of readdirSync(PROJECT_DIR).filter((name) => /^Pulumi\.bench-f\d+\.yaml$/.test(name))) rmSync(join(PROJECT_DIR, file));
  }
}

runMain(main, { prefix: "", exitNow: true });

/**
 * What skipping the engine's intermediate checkpoints saves (issue 21 item 4):
 * one shard of N tenants, every entry with its allocated tenantId (the case in
 * which the deployment paths skip them: engine/fleet-access.ts
 * checkpointDecision), deployed (not timed), then a one-line change that
 * updates every tenant's role (the starter plan's statement timeout) applied
 * by `pulumi up` with checkpoints (PULUMI_SKIP_CHECKPOINTS=false) and without
 * (=true), interleaved, the order alternating each round. The state is in
 * PostgreSQL as in production, on a throw-away server (harness/engine-stack.ts).
 *
 *   tsx bench/checkpoints.ts [--tenants 100] [--rounds 3]
 *
 * Prints one JSON line per timed update on stdout; progress on stderr.
 */
import { parseArgs } from "node:util";
import { pulumi, setStackConfig } from "../engine/pulumi";
import { setUpEngineStack } from "../harness/engine-stack";
import { allocateTenantIds } from "../tenants/ids";
import { runMain } from "../lib/run-main";

const log = (line: string) => console.error(`[bench] ${line}`);
const STARTER = { connectionLimit: 10, idleInTransactionTimeoutMs: 60_000, storageQuotaMb: 500 };

async function main() {
  const { values } = parseArgs({ options: { tenants: { type: "string", default: "100" }, rounds: { type: "string", default: "3" } }, strict: true });
  const tenants = Number(values.tenants);
  const rounds = Number(values.rounds);
  if (![tenants, rounds].every((n) => Number.isInteger(n) && n > 0)) throw new Error("--tenants and --rounds take whole numbers from 1");
  const plan = (statementTimeoutMs: number) =>
    Object.fromEntries(Object.entries({ ...STARTER, statementTimeoutMs }).map(([key, value]) => [`plans.starter.${key}`, String(value)]));
  const engine = await setUpEngineStack({ name: "bench-ckpt", config: plan(30_000) });
  try {
    const ids = allocateTenantIds(tenants, new Set());
    engine.writeTenants(...ids.map((id, i) => `username: ckpt_driver_${i}\n    tenantId: ${id}`));
    log(`deploying ${tenants} tenants (not timed; without checkpoints, as the deployment paths make a shard whose entries all carry IDs)`);
    pulumi({ ...engine.context, env: { ...engine.context.env, PULUMI_SKIP_CHECKPOINTS: "true" } }, ["up", "--yes", "--skip-preview", "--stack", engine.stack]);
    let timeout = 31_000;
    for (let round = 0; round < rounds; round++) {
      // Alternating order, so neither mode always runs first (a warm cache, a busier minute).
      const order = round % 2 === 0 ? ["with checkpoints", "without"] : ["without", "with checkpoints"];
      for (const mode of order) {
        setStackConfig(engine.context, engine.stack, plan(timeout++));
        const env = { ...engine.context.env, PULUMI_SKIP_CHECKPOINTS: mode === "without" ? "true" : "false" };
        const started = performance.now();
        pulumi({ ...engine.context, env }, ["up", "--yes", "--skip-preview", "--stack", engine.stack, "--non-interactive"]);
        const seconds = (performance.now() - started) / 1000;
        log(`round ${round + 1}, ${mode}: ${seconds.toFixed(1)} s`);
        console.log(JSON.stringify({ bench: "checkpoints", tenants, round: round + 1, mode, seconds }));
      }
    }
  } finally {
    await engine.cleanup();
  }
}

runMain(main, { prefix: "", exitNow: true });

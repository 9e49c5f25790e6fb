/**
 * One signup into a fleet of N existing tenants (default 10 and 100), through
 * the real engine: time from the webhook call to `ready`, split into
 * queueing (webhook → deployment start, includes the debounce), the engine's
 * update (program + every resource, seeding included), seeding (first seed
 * hook start → last seed hook end, measured from the engine's events; a part
 * of the update) and the welcome e-mail (ready → accepted by the SMTP server).
 *
 *   tsx bench/onboarding.ts [--tenants 10,100]
 *
 * Prints one JSON line per fleet size on stdout; progress on stderr.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { PROJECT_DIR } from "../engine/paths";
import { pulumi } from "../engine/pulumi";
import { AutomationDeployer } from "../onboarding/deployer";
import { InProcessLauncher } from "../onboarding/scheduler";
import { setUpEngineStack, startServiceOnEngine, TENANTS_HEADER } from "../harness/service-engine-stack";
import { signup, startMailSink, waitFor } from "../harness/onboarding";
import { runMain } from "../lib/run-main";

const DEBOUNCE_MS = 200;

async function measure(size: number) {
  const engine = await setUpEngineStack(`bench-onb-${size}`);
  const sink = await startMailSink();
  try {
    const existing = Array.from({ length: size }, (_, i) => `  - username: fleet_driver_${i}\n    email: fleet${i}@example.com\n`).join("");
    writeFileSync(engine.tenantsFile, TENANTS_HEADER.replace("tenants: []\n", `tenants:\n${existing}`));
    console.error(`[bench] ${size} existing tenants: pulumi up (not timed) ...`);
    pulumi(engine.context, ["up", "--yes", "--skip-preview", "--stack", engine.stack]);

    const envVars = Object.fromEntries(Object.entries(engine.context.env).filter((e): e is [string, string] => e[1] !== undefined));
    const deployer = await AutomationDeployer.open({ stackName: engine.stack, workDir: PROJECT_DIR, envVars, tenantsFile: engine.tenantsFile });
    const service = await startServiceOnEngine(engine, sink.url, {
      launcher: (pool) => new InProcessLauncher(pool, { stack: engine.stack, deployer }),
      debounceMs: DEBOUNCE_MS,
      pollMs: 500,
      mailPollMs: 100,
    });
    try {
      console.error(`[bench] ${size} existing tenants: one signup ...`);
      const called = Date.now();
      const answer = await signup(service.url, { username: "bench_newcomer", email: "newcomer@example.com" });
      if (answer.status !== 202) throw new Error(`signup answered ${answer.status}: ${JSON.stringify(answer.body)}`);
      await waitFor("the welcome mail", async () => sink.mails.length === 1, 30 * 60 * 1000, 50);
      const mailed = Date.now();
      const { rows } = await service.pool.query(
        `SELECT s.created_at, s.ready_at, s.status, d.started_at, d.engine_started_at, d.finished_at, d.engine_seconds, d.seed_seconds, o.sent_at
         FROM onboarding_signups s JOIN onboarding_deployments d ON d.id = s.deployment_id JOIN onboarding_outbox o USING (username)
         WHERE s.username = 'bench_newcomer'`,
      );
      const row = rows[0];
      if (!row || row.status !== "ready") throw new Error(`the signup did not become ready: ${JSON.stringify(row)}`);
      const seconds = (a: Date | number, b: Date | number) => (new Date(b).getTime() - new Date(a).getTime()) / 1000;
      return {
        bench: "onboarding",
        tenants: size,
        queueSeconds: seconds(called, row.started_at),
        fileWriteSeconds: seconds(row.started_at, row.engine_started_at),
        engineSeconds: row.engine_seconds as number,
        seedSeconds: (row.seed_seconds as number | null) ?? 0,
        webhookToReadySeconds: seconds(called, row.ready_at),
        emailSeconds: seconds(row.ready_at, row.sent_at),
        totalSeconds: seconds(called, mailed),
      };
    } finally {
      await service.close();
    }
  } finally {
    await sink.close();
    await engine.cleanup();
  }
}

async function main() {
  const { values } = parseArgs({ options: { tenants: { type: "string", default: "10,100" } }, strict: true });
  for (const size of values.tenants.split(",").map(Number)) {
    console.log(JSON.stringify(await measure(size)));
  }
}

// The message alone, no prefix; exit at once so open pools and servers cannot hold the process.
runMain(main, { prefix: "", exitNow: true });

/**
 * One signup into a sharded fleet of N existing tenants (issue 8: "a signup
 * ready in seconds at any fleet size"), through the real engine and the real
 * service, in a clone of this checkout whose tenants/shards.yaml lists the
 * bench's shards (so the program's cross-shard check reads them all, as in
 * production). The fleet is filled so that the signup lands in a shard that
 * already holds maxTenants - 1 tenants: the most expensive case.
 *
 *   tsx bench/signup-fleet.ts [--tenants 100,1000] [--shard-size 100] [--levers] [--deploy-all]
 *
 * Only the signup's shard is deployed unless --deploy-all (deploying 99 tenants
 * takes about 4 minutes here, so a deployed 1,000-tenant fleet takes 40): a
 * signup's update reads every shard's file but only its own stack.
 *
 * Prints one JSON line per measurement on stdout; progress on stderr.
 * --levers also times a bare `pulumi up` adding one tenant to that shard with
 * each lever on and off, interleaved (promise stack traces, skipped checkpoints).
 */
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startLocalPostgres } from "../local/embedded-postgres";
import { configureLocalStack } from "../local/stack";
import { pulumi, type PulumiContext } from "../engine/pulumi";
import { resolveEngine } from "../engine/fleet-access";
import { localStateDir, PROJECT_DIR } from "../engine/paths";
import { ensureStateDatabase } from "../local/state-backend";
import { createPrivateDatabase } from "../onboarding/db";
import { AutomationDeployer } from "../onboarding/deployer";
import { InProcessLauncher } from "../onboarding/scheduler";
import { startService } from "../onboarding/service";
import { createTransport } from "../onboarding/mailer";
import { cloneCheckout, copyStackConfig } from "../harness/checkout";
import { SECRET, signup, startMailSink, TOKEN, waitFor } from "../harness/onboarding";
import { runMain } from "../lib/run-main";

const log = (line: string) => console.error(`[bench] ${line}`);

interface Fleet {
  clone: string;
  context: PulumiContext;
  lastStack: string;
  lastFile: string;
  lastEntries: string[];
  controlUrl: string;
  stop(): Promise<void>;
}

const entry = (name: string) => `  - username: ${name}\n    email: ${name.replace(/_/g, ".")}@example.com\n`;

/** N tenants in shards of `size`; the last shard holds size - 1 (the signup fills it). */
async function buildFleet(tenants: number, size: number, deployAll: boolean): Promise<Fleet> {
  const clone = cloneCheckout(`bench-${tenants}`);
  const server = await startLocalPostgres();
  // Engine and backend as every command resolves them (engine/fleet-access.ts): this run's state database, the clone's engine settings.
  const backendUrl = await ensureStateDatabase(server);
  const { context } = await resolveEngine({ mayBuild: true, stateDir: localStateDir(clone), env: { ...process.env, PULUMI_BACKEND_URL: backendUrl } });
  const shardCount = Math.ceil(tenants / size);
  const shards = Array.from({ length: shardCount }, (_, i) => ({
    name: `b${String(i + 1).padStart(3, "0")}`,
    file: `tenants/b${String(i + 1).padStart(3, "0")}.yaml`,
  }));
  writeFileSync(
    join(clone, "tenants", "shards.yaml"),
    `maxTenants: ${size}\nshards:\n${shards.map((s) => `  - name: ${s.name}\n    file: ${s.file}\n`).join("")}`,
  );
  let made = 0;
  let last = { stack: "", file: "", entries: [] as string[] };
  for (const [index, shard] of shards.entries()) {
    const count = index === shards.length - 1 ? size - 1 : size;
    const entries = Array.from({ length: count }, () => entry(`fleet_driver_${made++}`));
    writeFileSync(join(clone, shard.file), `tenants:\n${entries.join("")}`);
    // Only the signup's shard is deployed: a signup's update reads the other shards' files (the
    // cross-shard check), never their stacks, whose state rows are other keys of pulumi_state.
    if (index < shards.length - 1 && !deployAll) continue;
    const stack = `bench-${shard.name}`;
    configureLocalStack(context, stack, server, { tenantsFile: shard.file });
    copyStackConfig(stack, clone);
    const started = Date.now();
    pulumi(context, ["up", "--yes", "--skip-preview", "--stack", stack], { cwd: clone });
    log(`${stack}: ${count} tenants deployed in ${((Date.now() - started) / 1000).toFixed(1)} s (not timed)`);
    last = { stack, file: join(clone, shard.file), entries };
  }
  await createPrivateDatabase(server.url(), "onboarding");
  return {
    clone,
    context,
    lastStack: last.stack,
    lastFile: last.file,
    lastEntries: last.entries,
    controlUrl: server.url("onboarding"),
    stop: () => server.stop(),
  };
}

async function signupToReady(fleet: Fleet, username: string) {
  const sink = await startMailSink();
  const envVars = Object.fromEntries(Object.entries(fleet.context.env).filter((e): e is [string, string] => e[1] !== undefined));
  const deployer = await AutomationDeployer.open({ stackName: fleet.lastStack, workDir: fleet.clone, envVars, tenantsFile: fleet.lastFile });
  const service = await startService({
    databaseUrl: fleet.controlUrl,
    stack: fleet.lastStack,
    tenantsFile: fleet.lastFile,
    webhookSecret: SECRET,
    apiToken: TOKEN,
    mailFrom: "DriverGigsPro <welcome@drivergigspro.test>",
    transport: createTransport(sink.url),
    log: () => undefined,
    launcher: (pool) => new InProcessLauncher(pool, { stack: fleet.lastStack, deployer }),
    debounceMs: 200,
    pollMs: 500,
    mailPollMs: 100,
  });
  try {
    const called = Date.now();
    const answer = await signup(service.url, { username, email: `${username}@example.com` });
    if (answer.status !== 202) throw new Error(`signup answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    await waitFor(
      "ready",
      async () => {
        const { rows } = await service.pool.query("SELECT status, ready_at FROM onboarding_signups WHERE username = $1", [username]);
        if (rows[0]?.status === "failed") throw new Error(`signup failed: ${JSON.stringify(rows[0])}`);
        return rows[0]?.status === "ready" ? rows[0] : undefined;
      },
      30 * 60 * 1000,
      50,
    );
    const { rows } = await service.pool.query(
      `SELECT s.ready_at, d.engine_seconds, d.seed_seconds FROM onboarding_signups s JOIN onboarding_deployments d ON d.id = s.deployment_id WHERE s.username = $1`,
      [username],
    );
    return { webhookToReadySeconds: (new Date(rows[0].ready_at).getTime() - called) / 1000, engineSeconds: Number(rows[0].engine_seconds) };
  } finally {
    await service.close();
    await sink.close();
  }
}

/** A bare `pulumi up` adding one tenant to the last shard, with the given environment. */
function timedUp(fleet: Fleet, username: string, env: Record<string, string>): number {
  writeFileSync(fleet.lastFile, `tenants:\n${[...fleet.lastEntries, entry(username)].join("")}`);
  const context = { ...fleet.context, env: { ...fleet.context.env, ...env } };
  const started = Date.now();
  pulumi(context, ["up", "--yes", "--skip-preview", "--stack", fleet.lastStack], { cwd: fleet.clone });
  const seconds = (Date.now() - started) / 1000;
  // Back to a shard of size - 1 live tenants: the tenant is offboarded again (tombstone, data kept), untimed.
  writeFileSync(fleet.lastFile, `tenants:\n${fleet.lastEntries.join("")}  - username: ${username}\n    status: removed\n`);
  pulumi(fleet.context, ["up", "--yes", "--skip-preview", "--stack", fleet.lastStack], { cwd: fleet.clone });
  fleet.lastEntries.push(`  - username: ${username}\n    status: removed\n`);
  return seconds;
}

const LEVERS: Record<string, Record<string, string>> = {
  "as shipped": {},
  "promise stack traces on": { DGP_PROMISE_STACK_TRACES: "true" },
  "skip checkpoints": { PULUMI_SKIP_CHECKPOINTS: "true" },
};

async function main() {
  const { values } = parseArgs({
    options: {
      tenants: { type: "string", default: "100,1000" },
      "shard-size": { type: "string", default: "100" },
      levers: { type: "boolean", default: false },
      "deploy-all": { type: "boolean", default: false },
    },
    strict: true,
  });
  const size = Number(values["shard-size"]);
  for (const tenants of values.tenants.split(",").map(Number)) {
    const fleet = await buildFleet(tenants, size, values["deploy-all"]);
    try {
      for (let run = 0; run < 3; run++) {
        const username = `bench_new_${run}`;
        const result = await signupToReady(fleet, username);
        console.log(JSON.stringify({ bench: "signup-fleet", tenants, shardSize: size, run, ...result }));
        // Offboard it again so every run lands in a shard of size - 1 live tenants.
        writeFileSync(
          fleet.lastFile,
          `tenants:\n${fleet.lastEntries.join("")}  - username: ${username}\n    email: ${username}@example.com\n    status: removed\n`,
        );
        pulumi(fleet.context, ["up", "--yes", "--skip-preview", "--stack", fleet.lastStack], { cwd: fleet.clone });
        fleet.lastEntries.push(`  - username: ${username}\n    email: ${username}@example.com\n    status: removed\n`);
      }
      // The levers on the largest fleet only (each is two more updates per round).
      if (values.levers && tenants === Math.max(...values.tenants.split(",").map(Number))) {
        for (let round = 0; round < 3; round++) {
          for (const [lever, env] of Object.entries(LEVERS)) {
            const seconds = timedUp(fleet, `lever_${round}_${Object.keys(LEVERS).indexOf(lever)}`, env);
            console.log(JSON.stringify({ bench: "signup-lever", tenants, shardSize: size, round, lever, seconds }));
          }
        }
      }
    } finally {
      await fleet.stop();
      // configureLocalStack writes each stack's config beside the program; none of it belongs to the checkout.
      for (const file of readdirSync(PROJECT_DIR).filter((name) => /^Pulumi\.bench-b\d+\.yaml$/.test(name))) rmSync(join(PROJECT_DIR, file));
    }
  }
}

// The message alone, no prefix; exit at once so open pools and servers cannot hold the process.
runMain(main, { prefix: "", exitNow: true });

/**
 * `npm start`: the whole job on one machine, with nothing installed by hand.
 *
 *   1. starts the embedded PostgreSQL (data kept in .data/postgres),
 *   2. brings the Pulumi toolchain (toolchain/build.sh; cached after the first run),
 *   3. keeps the Pulumi state in PostgreSQL: the private `pulumi_state` database on that server,
 *   4. for every shard in tenants/shards.yaml (one stack "local-<shard>" per tenants file):
 *      points the stack at that server and runs `pulumi up` with Pulumi's own progress display,
 *   5. prints the fleet's summary and runs verify-tenant-isolation over every shard, then stops PostgreSQL.
 *
 * Flags: --preview (preview only), --destroy (destroy every shard's stack),
 * --repair (`pulumi up --refresh`: read what tenants changed by hand and put it back),
 * --shard NAME (only that shard); any other argument after `--` goes to pulumi.
 * Exits non-zero when any step fails.
 */
import { parseArgs } from "node:util";
import { printTable } from "../lib/table";
import { mergeOutputs, parseDeployedTenants, parseStackOutputs, type StackOutputs } from "../infra/outputs";
import { checkoutPostgresOptions, startLocalPostgres } from "../local/embedded-postgres";
import { configureLocalStack } from "../local/stack";
import { deployStack } from "../deploy/engine";
import { pulumi, type PulumiContext, releaseStaleLock, spawnPulumi } from "../engine/pulumi";
import { fleetTargets, registerLocalBackend, resolveFleet } from "../engine/fleet-access";
import { errorMessage } from "../lib/errors";
import { LOCAL_ENVIRONMENT, PROJECT_DIR } from "../engine/paths";
import { ensureStateDatabase } from "../local/state-backend";
import { shardStack, type Shard } from "../tenants/shards";
import { tenantsCreatedBetween, tenantsFromOutputs, verifyFleet } from "../verify/probes";
import { renderResults } from "../verify/report";
import { runMain } from "../lib/run-main";

function runVisible(context: PulumiContext, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawnPulumi(context, args, { stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/**
 * One shard's command with Pulumi's own display. An update runs the way CI's
 * and the signup service's do (deploy/engine.ts): it waits for another
 * deployment holding the stack instead of failing, and converges
 * (engine/converge.ts); preview and destroy run as they are.
 */
async function runShard(context: PulumiContext, stack: string, command: string[]): Promise<number> {
  if (command[0] !== "up") {
    // An update's lock wait removes a stale lock itself (engine/stack-lock-wait.ts); preview and destroy need it done here.
    const released = await releaseStaleLock(context, stack);
    if (released) console.log(`Stack ${stack}: ${released}.`);
    return runVisible(context, [...command, "--stack", stack]);
  }
  try {
    await deployStack(
      context,
      stack,
      { log: (line) => console.log(line) },
      command.slice(1).filter((arg) => arg !== "--yes"),
    );
    return 0;
  } catch (error) {
    // Pulumi's display already showed the update's own errors.
    console.error(errorMessage(error).split("\n")[0]);
    return 1;
  }
}

function stackOutputs(context: PulumiContext, stack: string): StackOutputs {
  return parseStackOutputs(JSON.parse(pulumi(context, ["stack", "output", "--json", "--stack", stack, "--show-secrets"])));
}

/** The `tenants` output only: no secrets needed. */
function deployedTenants(context: PulumiContext, stack: string): StackOutputs["tenants"] {
  return parseDeployedTenants(JSON.parse(pulumi(context, ["stack", "output", "--json", "--stack", stack])));
}

function printSummary(outputs: StackOutputs, shardOf: Map<string, string>): void {
  const tenants = Object.values(outputs.tenants);
  console.log("");
  printTable(
    ["tenant ID", "username", "status", "database", "domain", "server", "shard"],
    tenants.map((tenant) => [
      tenant.tenantId,
      tenant.username,
      tenant.status,
      tenant.database,
      tenant.domain,
      tenant.server,
      shardOf.get(tenant.username) ?? "",
    ]),
  );
  console.log(
    `\n${tenants.length} tenant(s) in ${new Set(shardOf.values()).size} shard(s). Secrets: pulumi stack output connections --show-secrets --stack local-<shard>.`,
  );
}

/** verify-tenant-isolation while the embedded server is still up; only tenants this run created must be empty. */
async function verifyLocalFleet(outputs: StackOutputs, created: ReadonlySet<string>): Promise<boolean> {
  console.log("\nverify-tenant-isolation:\n");
  const { results, limits } = await verifyFleet(tenantsFromOutputs(outputs, (username) => created.has(username)));
  console.log(renderResults(results, limits));
  return results.every((result) => result.ok);
}

interface Flags {
  preview: boolean;
  destroy: boolean;
  repair: boolean;
  shard?: string;
  extra: string[];
}

function parseFlags(): Flags {
  const { values, positionals } = parseArgs({
    options: {
      preview: { type: "boolean", default: false },
      destroy: { type: "boolean", default: false },
      repair: { type: "boolean", default: false },
      shard: { type: "string" },
    },
    allowPositionals: true,
    strict: true,
  });
  return { preview: values.preview, destroy: values.destroy, repair: values.repair, shard: values.shard, extra: positionals };
}

/** Runs the command on each shard's stack in turn; stops at the first failure. */
async function eachShard(
  context: PulumiContext,
  shards: readonly Shard[],
  server: Parameters<typeof configureLocalStack>[2],
  command: string[],
): Promise<number> {
  for (const shard of shards) {
    const stack = shardStack(LOCAL_ENVIRONMENT, shard);
    console.log(`\n== shard ${shard.name}: stack ${stack}, ${shard.file} ==`);
    if (configureLocalStack(context, stack, server, { tenantsFile: shard.file }).databaseProvider === "builtin") {
      console.log("The postgresql provider plugin is not installed (offline toolchain): this stack uses the builtin database provider.");
    }
    const status = await runShard(context, stack, command);
    if (status !== 0) {
      console.error(`error: pulumi ${command[0]} of stack ${stack} (shard ${shard.name}) failed with exit status ${status}; see its output above`);
      return status;
    }
  }
  return 0;
}

async function main(): Promise<number> {
  const flags = parseFlags();
  // Which shards (every one, or --shard): engine/fleet-access.ts decides, before anything starts.
  const shards = fleetTargets({ environment: LOCAL_ENVIRONMENT, shards: flags.shard === undefined ? [] : [flags.shard] }).map((target) => target.shard!);

  console.log("Starting the embedded PostgreSQL (.data/postgres) ...");
  const postgres = await startLocalPostgres(checkoutPostgresOptions(PROJECT_DIR));
  try {
    console.log("Bringing the Pulumi toolchain (toolchain/build.sh) ...");
    // The local backend is this run's server (the state database on it); PULUMI_BACKEND_URL is not npm start's to follow.
    const backendUrl = await ensureStateDatabase(postgres);
    registerLocalBackend(async () => ({ backendUrl, release: async () => undefined }));
    const { PULUMI_BACKEND_URL: _ignored, ...env } = process.env;
    const target = await resolveFleet({ environment: LOCAL_ENVIRONMENT, shards: shards.map((shard) => shard.name), mayBuild: true, env });
    const context = target.context;
    console.log("Pulumi state: PostgreSQL database pulumi_state on the embedded server.");
    const stacks = target.stacks;
    const known = new Set((JSON.parse(pulumi(context, ["stack", "ls", "--json"])) as { name: string }[]).map((stack) => stack.name));
    const before = { tenants: Object.assign({}, ...stacks.filter((stack) => known.has(stack)).map((stack) => deployedTenants(context, stack))) };

    const command = flags.destroy ? ["destroy", "--yes"] : flags.preview ? ["preview"] : flags.repair ? ["up", "--refresh", "--yes"] : ["up", "--yes"];
    const status = await eachShard(context, shards, postgres, [...command, ...flags.extra]);
    if (status !== 0 || flags.destroy || flags.preview) return status;

    const shardOf = new Map<string, string>();
    const all = shards.map((shard) => {
      const outputs = stackOutputs(context, shardStack(LOCAL_ENVIRONMENT, shard));
      for (const username of Object.keys(outputs.tenants)) shardOf.set(username, shard.name);
      return outputs;
    });
    const fleet = mergeOutputs(all);
    printSummary(fleet, shardOf);
    // Only the tenants this run created (tenant IDs not in the outputs before) must still have no users.
    const created = tenantsCreatedBetween(before, fleet);
    return (await verifyLocalFleet(fleet, created)) ? 0 : 1;
  } finally {
    await postgres.stop();
  }
}

runMain(main);

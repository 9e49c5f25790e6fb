/**
 * `npm start`: the whole job on one machine, with nothing installed by hand.
 *
 *   1. starts the embedded PostgreSQL (data kept in .data/postgres),
 *   2. brings the Pulumi toolchain (toolchain/build.sh; cached after the first run),
 *   3. selects the `local` stack on a file backend in .state/ and points it at that server,
 *   4. runs `pulumi up` with Pulumi's own progress display,
 *   5. prints the tenants' summary and runs verify-tenant-isolation, then stops PostgreSQL.
 *
 * Flags: --preview (preview only), --destroy (destroy the stack), any other
 * argument after `--` goes to pulumi.
 */
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { printTable } from "../cli/table";
import { checkoutPostgresOptions, startLocalPostgres } from "../local/embedded-postgres";
import { stackOutputsSchema, tenantsCreatedBetween, tenantsFromOutputs, verifyIsolation } from "../verify/probes";
import { renderResults } from "../verify/report";
import { configureLocalStack, ensureToolchain, PROJECT_DIR, pulumi, LOCAL_STACK, LOCAL_STATE_DIR, pulumiContext, releaseStaleLock, type PulumiContext } from "../local/pulumi";

const STACK = LOCAL_STACK;

function runVisible(context: PulumiContext, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("pulumi", args, { cwd: PROJECT_DIR, env: context.env, stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

function printSummary(context: PulumiContext): void {
  const outputs = JSON.parse(pulumi(context, ["stack", "output", "--json"])) as {
    tenants?: Record<string, Record<string, string>>;
  };
  const tenants = Object.values(outputs.tenants ?? {});
  console.log("");
  printTable(
    ["tenant ID", "username", "status", "database", "domain", "server"],
    tenants.map((tenant) => [tenant.tenantId!, tenant.username!, tenant.status!, tenant.database!, tenant.domain!, tenant.server!]),
  );
  console.log(`\n${tenants.length} tenant(s). Secrets: pulumi stack output connections --show-secrets (with the env from local/pulumi.ts).`);
}

/** verify-tenant-isolation while the embedded server is still up (it stops when this script ends). */
async function verifyLocalStack(context: PulumiContext, before: unknown): Promise<boolean> {
  console.log("\nverify-tenant-isolation:\n");
  const outputs = stackOutputsSchema.parse(JSON.parse(pulumi(context, ["stack", "output", "--json", "--show-secrets", "--stack", STACK])));
  // Only the tenants this update created must still have no users.
  const created = tenantsCreatedBetween(before, outputs);
  const results = await verifyIsolation(tenantsFromOutputs(outputs, (username) => created.has(username)));
  console.log(renderResults(results));
  return results.every((result) => result.ok);
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: { preview: { type: "boolean", default: false }, destroy: { type: "boolean", default: false } },
    allowPositionals: true,
    strict: true,
  });
  console.log("Starting the embedded PostgreSQL (.data/postgres) ...");
  const postgres = await startLocalPostgres(checkoutPostgresOptions(PROJECT_DIR));
  try {
    console.log("Bringing the Pulumi toolchain (toolchain/build.sh) ...");
    const context = pulumiContext(ensureToolchain(), LOCAL_STATE_DIR);
    if (configureLocalStack(context, STACK, postgres).databaseProvider === "builtin") {
      console.log("The postgresql provider plugin is not installed (offline toolchain): using the builtin database provider.");
    }
    const released = releaseStaleLock(context, STACK);
    if (released) console.log(`Stack ${STACK}: ${released}.`);
    const command = values.destroy ? ["destroy", "--yes"] : values.preview ? ["preview"] : ["up", "--yes"];
    const before: unknown = JSON.parse(pulumi(context, ["stack", "output", "--json", "--stack", STACK]) || "{}");
    const status = await runVisible(context, [...command, "--stack", STACK, ...positionals]);
    if (status !== 0 || values.destroy || values.preview) return status;
    printSummary(context);
    return (await verifyLocalStack(context, before)) ? 0 : 1;
  } finally {
    await postgres.stop();
  }
}

main().then(
  (status) => (process.exitCode = status),
  (error) => {
    console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);

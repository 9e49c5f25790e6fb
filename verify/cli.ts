/**
 * `npm run verify`: verify-tenant-isolation. Reads the stack's outputs (or a
 * file of them), probes every active tenant (attack probes included, see
 * attack-probes.ts), prints a table of probes and one of each tenant's limits
 * (or --json: { ok, results, limits }), and exits 1 when any probe fails.
 * Every failing line names the tenant ID.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { LOCAL_STATE_DIR } from "../engine/paths";
import { findEngine, pulumi, pulumiContext } from "../engine/pulumi";
import { stackOutputsSchema, tenantsFromOutputs, verifyFleet } from "./probes";
import { renderResults } from "./report";
import { runMain } from "../lib/run-main";
import { errorMessage } from "../lib/errors";

const USAGE = `usage: npm run verify -- [--outputs FILE | --stack NAME] [--new all|none|USER,...] [--all-logins] [--json]

  --outputs FILE  "pulumi stack output --json --show-secrets" saved to a file
  --stack NAME    read the outputs of this stack on the local backend (default: local)
  --new           tenants that must have no users yet, e.g. the ones an update just
                  created (default: none; npm start passes the ones its update created)
  --all-logins    try every tenant's login on every other tenant database (N^2 logins;
                  default: 3 per tenant, plus PostgreSQL's CONNECT check for every pair)
  --json          one JSON document instead of the table`;

function readOutputs(file: string | undefined, stack: string): unknown {
  if (file !== undefined) return JSON.parse(readFileSync(file, "utf8"));
  // Builds the toolchain when no engine is found (as it always has); --outputs needs none.
  const context = pulumiContext(findEngine({ mayBuild: true }), LOCAL_STATE_DIR);
  return JSON.parse(pulumi(context, ["stack", "output", "--json", "--show-secrets", "--stack", stack]));
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        outputs: { type: "string" },
        stack: { type: "string", default: "local" },
        new: { type: "string", default: "none" },
        json: { type: "boolean", default: false },
        "all-logins": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }));
  } catch (error) {
    console.error(`error: ${errorMessage(error).split("\n")[0]}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const parsed = stackOutputsSchema.safeParse(readOutputs(values.outputs, values.stack));
  if (!parsed.success) {
    console.error(`error: the stack outputs lack tenants/connections (${parsed.error.issues[0]?.message}); run "pulumi up" first`);
    return 1;
  }
  const fresh = new Set(values.new === "none" ? [] : values.new.split(","));
  const tenants = tenantsFromOutputs(parsed.data, (username) => values.new === "all" || fresh.has(username));
  const { results, limits } = await verifyFleet(tenants, { loginsPerTenant: values["all-logins"] ? Infinity : undefined });
  const ok = results.every((result) => result.ok);
  console.log(values.json ? JSON.stringify({ ok, results, limits }, null, 2) : renderResults(results, limits));
  return ok ? 0 : 1;
}

runMain(main);

/**
 * `npm run verify`: verify-tenant-isolation. Reads the outputs of every shard
 * stack of the environment (engine/fleet-access.ts: PULUMI_BACKEND_URL, else
 * the checkout's local state, `npm start`'s), or a file of them, probes every
 * active tenant (attack probes included, see attack-probes.ts), prints a
 * table of probes and one of each tenant's limits (or --json: { ok, results,
 * limits }), and exits 1 when any probe fails. Every failing line names the tenant ID.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { readFleetOutputs, withFleet, type Fleet } from "../engine/fleet-access";
import { mergeOutputs, parseStackOutputs, type StackOutputs } from "../infra/outputs";
import { stackOutputsSchema, tenantsFromOutputs, verifyFleet } from "./probes";
import { renderResults } from "./report";
import { runMain } from "../lib/run-main";
import { errorMessage } from "../lib/errors";

const USAGE = `usage: npm run verify -- [--outputs FILE | --env NAME [--shard NAME ...] | --stack NAME] [--new all|none|USER,...] [--all-logins] [--json]

  --outputs FILE  "pulumi stack output --json --show-secrets" saved to a file (its servers must be reachable)
  --env NAME      the environment whose shard stacks are probed, "<env>-<shard>" (default: local)
  --shard NAME    only this shard (repeatable; default: every shard of tenants/shards.yaml)
  --stack NAME    one stack instead
                  (state: PULUMI_BACKEND_URL, else npm start's, its embedded PostgreSQL started when not running)
  --new           tenants that must have no users yet, e.g. the ones an update just
                  created (default: none; npm start passes the ones its update created)
  --all-logins    try every tenant's login on every other tenant database (N^2 logins;
                  default: 3 per tenant, plus PostgreSQL's CONNECT check for every pair)
  --json          one JSON document instead of the table`;

/** Every deployed shard's outputs, merged; throws when a stack cannot be read or none is deployed. */
async function fleetOutputs(fleet: Fleet): Promise<StackOutputs> {
  const { readings } = await readFleetOutputs(fleet, { showSecrets: true });
  const failed = readings.filter((reading) => reading.error !== undefined);
  if (failed.length > 0) throw new Error(failed.map((reading) => `cannot read the outputs of stack ${reading.stack}: ${reading.error}`).join("\n"));
  if (readings.length === 0) {
    throw new Error(`no stack of ${fleet.stacks.join(", ")} is deployed on this backend; run "npm start" (locally) or deploy first`);
  }
  return mergeOutputs(readings.map((reading) => parseStackOutputs(reading.outputs)));
}

/** The probes over `outputs`: a table (or JSON); 1 when any probe fails. */
async function probe(outputs: unknown, values: { new: string; json: boolean; "all-logins": boolean }): Promise<number> {
  const parsed = stackOutputsSchema.safeParse(outputs);
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

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        outputs: { type: "string" },
        env: { type: "string", default: "local" },
        shard: { type: "string", multiple: true, default: [] },
        stack: { type: "string" },
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
  if (values.outputs !== undefined) return probe(JSON.parse(readFileSync(values.outputs, "utf8")), values);
  // The fleet stays open while the probes run: a local server started for them is stopped after.
  // A read builds no engine: without one, the error names the command that builds it; --outputs needs none.
  return withFleet({ environment: values.env, shards: values.shard, stack: values.stack, mayBuild: false }, async (fleet) =>
    probe(await fleetOutputs(fleet), values),
  );
}

runMain(main);

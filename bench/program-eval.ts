/**
 * One measurement: evaluate the Pulumi program under mocks for N tenants and
 * print {tenants, resources, seconds, peakRssMiB} as JSON. Run in its own
 * process by bench/index.ts so peak memory belongs to this size alone.
 */
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { parseFleetSettings } from "../infra/config";
import { declareFleet } from "../infra/fleet";
import { installMocks, settle, valueOf } from "../harness/pulumi-mocks";
import { runMain } from "../lib/run-main";

async function main() {
  const { values } = parseArgs({ options: { tenants: { type: "string" } }, strict: true });
  const count = Number(values.tenants);
  if (!Number.isInteger(count) || count < 1) throw new Error("--tenants N is required (a positive whole number)");
  const declared = installMocks();
  const settings = parseFleetSettings({ servers: [{ name: "local", host: "127.0.0.1", adminPassword: "x", sslmode: "disable" }] }, "drivergigspro");
  const tenants = Array.from({ length: count }, (_, i) => ({ username: `driver_${i}`, status: "active" as const, line: i + 3 }));
  const started = performance.now();
  const fleet = declareFleet(settings, tenants);
  await valueOf(fleet.connections);
  await settle();
  const seconds = (performance.now() - started) / 1000;
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ tenants: count, resources: declared.length, seconds, peakRssMiB }));
}

// The message alone, no prefix; exit at once so open pools and servers cannot hold the process.
runMain(main, { prefix: "", exitNow: true });

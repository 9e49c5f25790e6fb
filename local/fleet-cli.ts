/**
 * Runs a command-line entry point on a checkout (`npm run verify`, `npm run
 * usage`, `npm run tenants`): the local state backend (local/fleet-backend.ts)
 * is registered first, so without PULUMI_BACKEND_URL the command reads the
 * fleet `npm start` deployed, starting the embedded PostgreSQL for itself
 * when it is not running. With PULUMI_BACKEND_URL nothing local is used.
 *
 *   tsx local/fleet-cli.ts verify/cli.ts [its arguments]
 */
import { resolve } from "node:path";
import { useLocalFleetBackend } from "./fleet-backend";

const ENTRY_POINTS = new Set(["verify/cli.ts", "usage/cli.ts", "cli/tenants.ts"]);

const entry = process.argv[2];
if (entry === undefined || !ENTRY_POINTS.has(entry)) {
  console.error(`usage: tsx local/fleet-cli.ts ${[...ENTRY_POINTS].join("|")} [arguments]`);
  process.exit(2);
}
useLocalFleetBackend();
// The command sees its own arguments, as when run directly.
process.argv.splice(2, 1);
void import(resolve(__dirname, "..", entry));

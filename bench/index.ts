/**
 * `npm run bench`: every benchmark of the project, each printed as a table.
 * Figures are for comparing runs on one machine; tests never assert on time.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { printTable } from "../cli/table";

const TSX = join(__dirname, "..", "node_modules", ".bin", "tsx");

function measure(script: string, args: string[]): Record<string, number> {
  const output = execFileSync(TSX, [join(__dirname, script), ...args], { encoding: "utf8" });
  return JSON.parse(output.trim().split("\n").pop()!);
}

function programEvaluation(): void {
  console.log("\nProgram evaluation under Pulumi mocks (one process per size)\n");
  const rows = [10, 100, 1000].map((tenants) => measure("program-eval.ts", ["--tenants", String(tenants)]));
  const base = rows[0]!;
  printTable(
    ["tenants", "resources", "seconds", "ms per tenant", "peak RSS MiB", "time vs 10"],
    rows.map((row) => [
      String(row.tenants),
      String(row.resources),
      row.seconds!.toFixed(2),
      ((row.seconds! * 1000) / row.tenants!).toFixed(2),
      row.peakRssMiB!.toFixed(0),
      `${(row.seconds! / base.seconds!).toFixed(1)}x`,
    ]),
  );
}

const benches: Record<string, () => void | Promise<void>> = { program: programEvaluation };

async function main() {
  const only = process.argv.slice(2);
  for (const [name, bench] of Object.entries(benches)) {
    if (only.length === 0 || only.includes(name)) await bench();
  }
}

void main();

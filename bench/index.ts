/**
 * `npm run bench`: every benchmark of the project, each printed as a table.
 * Figures are for comparing runs on one machine; tests never assert on time.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { printTable } from "../lib/table";
import { runMain } from "../lib/run-main";

const TSX = join(__dirname, "..", "node_modules", ".bin", "tsx");

type Row = Record<string, number> & Record<string, any>;

/** Runs one bench script in its own process; each stdout line is a JSON row. */
function measureAll(script: string, args: string[] = []): Row[] {
  const output = execFileSync(TSX, [join(__dirname, script), ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return output
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Row);
}

function measure(script: string, args: string[]): Row {
  return measureAll(script, args).pop()!;
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

function seedingAndVerification(): void {
  console.log("\nSeeding one tenant (741 companies) on the embedded PostgreSQL, median of 3\n");
  const rows = measureAll("seed-verify.ts");
  printTable(
    ["step", "seconds", "vs psql \\copy"],
    rows.filter((row) => row.bench === "seed").map((row) => [row.step, row.seconds.toFixed(3), `${row.ratio.toFixed(2)}x`]),
  );
  console.log("\nverify-tenant-isolation (3 real cross-tenant logins per tenant + CONNECT check of every pair)\n");
  printTable(
    ["tenants", "probes", "cross-tenant logins", "seconds", "ms per tenant"],
    rows
      .filter((row) => row.bench === "verify")
      .map((row) => [String(row.tenants), String(row.probes), String(row.crossLogins), row.seconds.toFixed(2), (row.perTenant * 1000).toFixed(0)]),
  );
}

function onboarding(): void {
  console.log("\nOne signup into a fleet of N tenants, webhook to ready, real engine (seeding is part of the update)\n");
  const rows = measureAll("onboarding.ts");
  printTable(
    ["existing tenants", "queueing s", "file write s", "engine update s", "  of which seeding s", "webhook to ready s", "e-mail s", "total s"],
    rows.map((row) => [
      String(row.tenants),
      row.queueSeconds.toFixed(2),
      row.fileWriteSeconds.toFixed(2),
      row.engineSeconds.toFixed(2),
      row.seedSeconds.toFixed(2),
      row.webhookToReadySeconds.toFixed(2),
      row.emailSeconds.toFixed(2),
      row.totalSeconds.toFixed(2),
    ]),
  );
}

function usage(): void {
  console.log("\n`npm run usage` over N tenant databases (small, empty; one throw-away server), the whole command\n");
  const rows = measureAll("usage.ts");
  printTable(
    ["tenants", "seconds", "ms per tenant", "queries", "queries per tenant", "connections", "(creating the databases s)"],
    rows.map((row) => [
      String(row.tenants),
      row.seconds.toFixed(2),
      ((row.seconds * 1000) / row.tenants).toFixed(1),
      String(row.queries),
      (row.queries / row.tenants).toFixed(3),
      String(row.connections),
      row.createSeconds.toFixed(1),
    ]),
  );
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

function signupsAtFleetSize(): void {
  console.log("\nOne signup into a sharded fleet (shards of 100; the signup's shard holds 99), webhook to ready, real engine, median of 3\n");
  const rows = measureAll("signup-fleet.ts", ["--levers"]);
  const sizes = [...new Set(rows.filter((row) => row.bench === "signup-fleet").map((row) => row.tenants as number))];
  const byTenants = sizes.map((tenants) => {
    const runs = rows.filter((row) => row.bench === "signup-fleet" && row.tenants === tenants);
    return { tenants, ready: median(runs.map((row) => row.webhookToReadySeconds)), engine: median(runs.map((row) => row.engineSeconds)) };
  });
  printTable(
    ["existing tenants", "shards", "webhook to ready s (median)", "engine update s (median)", "vs smallest fleet"],
    byTenants.map((row) => [
      String(row.tenants),
      String(Math.ceil(row.tenants / 100)),
      row.ready.toFixed(2),
      row.engine.toFixed(2),
      `${(row.ready / byTenants[0]!.ready).toFixed(2)}x`,
    ]),
  );
  console.log("\nLevers: a bare pulumi up adding one tenant to that shard, interleaved, median of 3\n");
  const levers = rows.filter((row) => row.bench === "signup-lever");
  const table = [...new Set(levers.map((row) => `${row.tenants}|${row.lever}`))].map((key) => {
    const [tenants, lever] = key.split("|");
    const seconds = median(levers.filter((row) => `${row.tenants}|${row.lever}` === key).map((row) => row.seconds));
    const base = median(levers.filter((row) => String(row.tenants) === tenants && row.lever === "as shipped").map((row) => row.seconds));
    return [tenants!, lever!, seconds.toFixed(2), `${(seconds / base).toFixed(2)}x`];
  });
  printTable(["existing tenants", "lever", "seconds", "vs as shipped"], table);
}

/** `fleet`'s options: --tenants, --shard-size, --parallel (see bench/fleet.ts). */
function fleetRuns(options: string[]): void {
  const rows = measureAll("fleet.ts", options);
  const first = rows[0]!;
  const shards = new Set(rows.filter((row) => row.shard !== "total").map((row) => row.shard)).size;
  console.log(
    `\nA change that reaches every shard: ${first.tenants} tenants in ${shards} shard(s) of ${first.shardSize}, all deployed, through npm run deploy (one run, interleaved)\n`,
  );
  const benches = [...new Set(rows.map((row) => row.bench as string))];
  const modes = [...new Set(rows.map((row) => row.mode as string))];
  const names = [...new Set(rows.map((row) => row.shard as string))];
  const seconds = (bench: string, mode: string, shard: string) => rows.find((row) => row.bench === bench && row.mode === mode && row.shard === shard)?.seconds;
  printTable(
    ["pass", "shard", ...modes.map((mode) => `${mode} s`), `${modes[1]} vs ${modes[0]}`],
    benches.flatMap((bench) =>
      names.map((shard) => {
        const [sequential, parallel] = modes.map((mode) => seconds(bench, mode, shard));
        return [
          bench,
          shard,
          ...[sequential, parallel].map((value) => value?.toFixed(1) ?? ""),
          sequential && parallel ? `${(parallel / sequential).toFixed(2)}x` : "",
        ];
      }),
    ),
  );
}

/** `checkpoints`' options: --tenants, --rounds (see bench/checkpoints.ts). */
function checkpointRuns(options: string[]): void {
  const rows = measureAll("checkpoints.ts", options);
  console.log(
    `\nOne update of a shard of ${rows[0]!.tenants} tenants (every role's statement timeout changed), pulumi up with and without intermediate checkpoints, interleaved\n`,
  );
  const seconds = (mode: string) => rows.filter((row) => row.mode === mode).map((row) => row.seconds as number);
  const [withCheckpoints, without] = [median(seconds("with checkpoints")), median(seconds("without"))];
  printTable(
    ["rounds", "with checkpoints s (median)", "without s (median)", "with / without"],
    [[String(seconds("without").length), withCheckpoints.toFixed(1), without.toFixed(1), `${(withCheckpoints / without).toFixed(2)}x`]],
  );
}

function neighbours(): void {
  console.log(
    "\nNoisy neighbours: tenant B (pgbench, 50 tx/s, 9 reads : 1 update) alone, then under tenant A at its whole connection limit\n" +
      "(write-heavy tpcb-like, then sorts spilling to temporary files); phases interleaved, 3 rounds of 10 s, one server, fsync on\n",
  );
  const rows = measureAll("neighbours.ts");
  const fixed = (value: number | null) => (value === null ? "-" : value.toFixed(1));
  printTable(
    ["lever", "A load", "B p50 ms", "B p99 ms", "B p99 vs alone", "A tx/s", "A busy on (samples)", "B waits on"],
    rows.map((row) => [
      row.lever,
      row.phase === "alone" ? "none (B alone)" : row.phase === "writes" ? `${row.aConnections} writers` : `${row.aConnections} sorts`,
      row.bP50Ms.toFixed(1),
      row.bP99Ms.toFixed(1),
      `${row.p99VsAlone.toFixed(2)}x`,
      row.phase === "alone" ? "-" : row.phase === "sorts" ? row.aTps.toFixed(2) : fixed(row.aTps),
      row.aBusy || "-",
      row.bBusy || "-",
    ]),
  );
}

function instantSignups(): void {
  console.log(
    "\nSignups (issue 18), one run, interleaved: the original script flow (peer) vs a signup that claims a pooled tenant vs a signup with the pool empty, median of 5\n" +
      "(pooled: webhook to the answer, which is ready; pool-empty: webhook to ready on the status API through the service's batch, commit and push, with the FAKE engine: add the real update, `signups-engine`)\n",
  );
  const rows = measureAll("signups.ts");
  const runs = rows.filter((row) => row.bench === "signups");
  const sizes = [...new Set(runs.map((row) => row.tenants as number))];
  const of = (tenants: number, kind: string, key = "seconds") =>
    runs.filter((row) => row.tenants === tenants && row.kind === kind).map((row) => row[key] as number);
  const med = (tenants: number, kind: string, key = "seconds") => median(of(tenants, kind, key));
  const p95 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.ceil(0.95 * values.length) - 1]!;
  printTable(
    [
      "tenants in the shard",
      "peer s",
      "pooled p50 s",
      "pooled p95 s",
      "pooled vs peer",
      `pooled vs ${sizes[0]}`,
      "pool-empty p50 s (fake engine)",
      `pool-empty vs ${sizes[0]}`,
    ],
    sizes.map((tenants) => [
      String(tenants),
      med(tenants, "peer").toFixed(3),
      med(tenants, "pooled").toFixed(3),
      p95(of(tenants, "pooled")).toFixed(3),
      `${(med(tenants, "pooled") / med(tenants, "peer")).toFixed(2)}x`,
      `${(med(tenants, "pooled") / med(sizes[0]!, "pooled")).toFixed(2)}x`,
      med(tenants, "pool-empty").toFixed(3),
      `${(med(tenants, "pool-empty") / med(sizes[0]!, "pool-empty")).toFixed(2)}x`,
    ]),
  );
  console.log(
    "\nA claim's breakdown (median ms). On the answer's path: control database (registration with the claim, signup ready) | DNS (nsupdate) | answer (HTTP and the rest).\n" +
      "Off it: git, the claims committer's commit + push, and the claim's latency until its binding was pushed.\n",
  );
  printTable(
    [
      "tenants in the shard",
      "control DB ms",
      "DNS ms",
      "answer: HTTP + rest ms",
      "answer total ms",
      "git commit + push ms (off path)",
      "claim to pushed ms (off path)",
    ],
    sizes.map((tenants) => {
      const [control, dns, total] = [med(tenants, "pooled", "controlMs"), med(tenants, "pooled", "dnsMs"), med(tenants, "pooled") * 1000];
      return [
        String(tenants),
        control.toFixed(1),
        dns.toFixed(1),
        (total - control - dns).toFixed(1),
        total.toFixed(1),
        med(tenants, "pooled", "gitMs").toFixed(0),
        med(tenants, "pooled", "commitLatencyMs").toFixed(0),
      ];
    }),
  );
  const burst = rows.find((row) => row.bench === "signups-burst");
  if (burst) {
    console.log(`\nA burst of 20 signups against a pool of 3 (${burst.tenants} tenants in the shard; refill by the fake engine)\n`);
    printTable(
      ["claimed (ready in the answer)", "claimed p50 s", "claimed p95 s", "all answers p50 s", "all answers p95 s", "claim commits", "pool full again s"],
      [
        [
          String(burst.claimed),
          burst.claimedP50.toFixed(3),
          burst.claimedP95.toFixed(3),
          burst.p50.toFixed(3),
          burst.p95.toFixed(3),
          String(burst.claimCommits),
          burst.poolFullAgainSeconds.toFixed(2),
        ],
      ],
    );
  }
}

const benches: Record<string, (options: string[]) => void | Promise<void>> = {
  program: programEvaluation,
  seed: seedingAndVerification,
  onboarding,
  // The peer, pooled and pool-empty signups and a burst, interleaved (a few minutes).
  signups: instantSignups,
  // The old name of `signups`.
  claims: instantSignups,
  // A pool-empty signup through the real engine at fleet sizes (tens of minutes).
  "signups-engine": signupsAtFleetSize,
  usage,
  fleet: fleetRuns,
  checkpoints: checkpointRuns,
  neighbours,
};

/**
 * Not in a bare `npm run bench`: they deploy first (fleet: about 40 minutes at its default 1,000 tenants; checkpoints: a
 * 100-tenant shard); `claims` is `signups`.
 */
const ON_REQUEST = new Set(["fleet", "checkpoints", "claims"]);

async function main() {
  const args = process.argv.slice(2);
  const firstOption = args.findIndex((arg) => arg.startsWith("--"));
  const only = firstOption < 0 ? args : args.slice(0, firstOption);
  const options = firstOption < 0 ? [] : args.slice(firstOption);
  const unknown = only.filter((name) => !(name in benches));
  if (unknown.length > 0) throw new Error(`no bench ${unknown.join(", ")}; benches: ${Object.keys(benches).join(", ")}`);
  for (const [name, bench] of Object.entries(benches)) {
    if (only.length === 0 ? !ON_REQUEST.has(name) : only.includes(name)) await bench(options);
  }
}

runMain(main, { prefix: "" });

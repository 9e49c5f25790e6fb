/**
 * Signups (issue 18), interleaved in one run on one machine, at N existing
 * tenants in the signup's shard (default 100 and 1,000):
 *
 * - peer: the original script flow on a real PostgreSQL: CREATE ROLE,
 *   CREATE DATABASE (+ REVOKE, schema owner), the migrations, `psql \copy` of
 *   the 741-company catalogue;
 * - pooled signup: the real service (HTTP webhook to its answer, which says
 *   `ready`): the claim in the control database, the DNS record on a real
 *   BIND, the answer. The binding's git commit (a real git remote) is off the
 *   answer's path: its latency (claim to pushed) is printed beside it;
 * - pool-empty signup: the same service with no pool (poolSize 0): webhook,
 *   the batch's commit and push, the update, ready (polled on the status API).
 *   The update here is the FAKE engine of the service tests (harness/
 *   onboarding.ts: reads the file, reports every entry as made), so this is
 *   the service's own part of that path; the real engine's update of a
 *   100-tenant shard (15-20 s) is the `signups-engine` bench;
 * - a burst of 20 signups against a pool of 3 (first size only): p50 and p95
 *   of the answers, and how long until the pool is full again (fake engine).
 *
 *   tsx bench/signups.ts [--tenants 100,1000] [--rounds 5]
 *
 * One JSON line per measurement on stdout; progress on stderr.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Client, escapeIdentifier } from "pg";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import type { ClaimTimings, CommitTimings } from "../onboarding/claim";
import { loadCatalogue } from "../seed/catalogue/load";
import { COMPANY_COLUMNS } from "../seed/company-columns";
import { copyTextRow } from "../seed/copy-text";
import { applyMigrations } from "../seed/migrate";
import { createTenantDatabase } from "../harness/tenant-databases";
import { startBind, type LocalBind } from "../harness/bind";
import { createControlDatabase, startMailSink, tenantStatus, waitFor, type MailSink } from "../harness/onboarding";
import { poolManifest, POOL_SHARD, SHARDS_MANIFEST, startPooledService, type PooledService } from "../harness/pool-service";
import { runMain } from "../lib/run-main";

const log = (line: string) => console.error(`[bench] ${line}`);
const emit = (row: Record<string, unknown>) => console.log(JSON.stringify(row));

async function peerSignup(server: LocalPostgres, rowsFile: string, columns: string): Promise<number> {
  const start = performance.now();
  const tenant = await createTenantDatabase(server);
  const client = new Client({ connectionString: tenant.url });
  await client.connect();
  await applyMigrations(client);
  await client.end();
  const result = spawnSync("psql", [tenant.url, "-v", "ON_ERROR_STOP=1", "-qc", `\\copy companies (${columns}) FROM '${rowsFile}'`], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`psql failed: ${result.stderr}`);
  return (performance.now() - start) / 1000;
}

interface Shard {
  svc: PooledService;
  timings: ClaimTimings[];
  commits: CommitTimings[];
  stop(): Promise<void>;
}

/** A shard file of `tenants` entries (poolSize of them pooled once the warm-up's update made them) in a git remote, and the service on it. */
async function shardService(server: LocalPostgres, bind: LocalBind, sink: MailSink, tenants: number, poolSize: number, name: string): Promise<Shard> {
  const root = mkdtempSync(join(tmpdir(), `dgp-bench-signups-${name}-${tenants}-`));
  const hex = (i: number) => (0xb0000000 + i).toString(16).toUpperCase();
  const active = Array.from({ length: tenants - poolSize - 1 }, (_, i) => `  - username: driver_${i}\n    tenantId: ${hex(i)}\n`).join("");
  const files = { [SHARDS_MANIFEST]: poolManifest(poolSize, tenants + 100), [POOL_SHARD.file]: `tenants:\n${active}` };
  const timings: ClaimTimings[] = [];
  const commits: CommitTimings[] = [];
  const databaseUrl = await createControlDatabase(server, `bench_${name}_${tenants}_${Date.now()}`);
  const svc = await startPooledService({
    root,
    databaseUrl,
    bind,
    sink,
    files,
    claims: { onTimings: (t) => timings.push(t), onCommit: (c) => commits.push(c) },
  });
  // The first batch makes the pool (the fake engine reports its entries as made).
  await svc.signUp("warm_up");
  await waitFor("warm_up ready", async () => (await tenantStatus(svc.url, "warm_up")).body.status === "ready", 120_000, 20);
  if (poolSize > 0) await svc.poolFull(poolSize);
  return {
    svc,
    timings,
    commits,
    async stop() {
      await svc.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Webhook to ready through the update's path: the answer, then the status API until ready. */
async function poolEmptySignup(shard: Shard, username: string): Promise<number> {
  const start = performance.now();
  const answer = await shard.svc.signUp(username);
  if (answer.status !== "ready") {
    await waitFor(`${username} ready`, async () => (await tenantStatus(shard.svc.url, username)).body.status === "ready", 120_000, 20);
  }
  return (performance.now() - start) / 1000;
}

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.ceil((p / 100) * values.length) - 1)]!;

async function main() {
  const { values } = parseArgs({ options: { tenants: { type: "string", default: "100,1000" }, rounds: { type: "string", default: "5" } } });
  const sizes = values.tenants.split(",").map(Number);
  const rounds = Number(values.rounds);
  const server = await startLocalPostgres();
  const bind = await startBind("test");
  const sink = await startMailSink();
  const catalogue = loadCatalogue();
  const rowsDir = mkdtempSync(join(tmpdir(), "dgp-bench-"));
  const rowsFile = join(rowsDir, "companies.copy");
  writeFileSync(rowsFile, catalogue.companies.map((company) => copyTextRow(COMPANY_COLUMNS.map(({ value }) => value(company)))).join(""));
  const columns = COMPANY_COLUMNS.map(({ column }) => escapeIdentifier(column)).join(", ");
  try {
    for (const tenants of sizes) {
      log(`${tenants} tenants: building a pooled shard and a pool-empty shard`);
      const pooled = await shardService(server, bind, sink, tenants, 3, "pooled");
      const empty = await shardService(server, bind, sink, tenants, 0, "empty");
      try {
        for (let round = 0; round < rounds; round++) {
          // Interleaved: the peer, a pooled signup, a pool-empty signup, on the same machine and server.
          emit({ bench: "signups", kind: "peer", tenants, seconds: await peerSignup(server, rowsFile, columns) });
          const commitsBefore = pooled.commits.length;
          const claim = await pooled.svc.signUp(`claim_${tenants}_${round}`);
          const timing = pooled.timings.at(-1);
          // The binding's commit, off the answer's path: wait for it (and the pool to be full) before the next measurement.
          await pooled.svc.poolFull(3);
          const commit = pooled.commits.slice(commitsBefore).find((c) => c.latenciesMs.length > 0);
          emit({
            bench: "signups",
            kind: "pooled",
            tenants,
            seconds: claim.seconds,
            status: claim.status,
            controlMs: timing?.control ?? NaN,
            dnsMs: timing?.dns ?? NaN,
            commitLatencyMs: commit?.latenciesMs[0] ?? NaN,
            gitMs: commit?.gitMs ?? NaN,
          });
          emit({ bench: "signups", kind: "pool-empty", tenants, seconds: await poolEmptySignup(empty, `empty_${tenants}_${round}`) });
        }
        if (tenants === sizes[0]) {
          log(`${tenants} tenants: a burst of 20 against a pool of 3`);
          const commitsBefore = pooled.commits.length;
          const start = performance.now();
          const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => pooled.svc.signUp(`burst_${i}`)));
          await pooled.svc.poolFull(3);
          const refilled = (performance.now() - start) / 1000;
          const claimed = burst.filter((answer) => answer.status === "ready").map((answer) => answer.seconds);
          const all = burst.map((answer) => answer.seconds);
          const burstCommits = pooled.commits.slice(commitsBefore).filter((c) => c.latenciesMs.length > 0);
          emit({
            bench: "signups-burst",
            tenants,
            claimed: claimed.length,
            p50: percentile(all, 50),
            p95: percentile(all, 95),
            claimedP50: claimed.length ? percentile(claimed, 50) : 0,
            claimedP95: claimed.length ? percentile(claimed, 95) : 0,
            claimCommits: burstCommits.length,
            poolFullAgainSeconds: refilled,
          });
        }
      } finally {
        await pooled.stop();
        await empty.stop();
      }
    }
  } finally {
    rmSync(rowsDir, { recursive: true, force: true });
    await sink.close();
    await bind.stop();
    await server.stop();
  }
}

runMain(main);

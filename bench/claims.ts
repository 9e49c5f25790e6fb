/**
 * Instant signups (issue 18), interleaved in one run on one machine:
 *
 * - peer: the original script flow on a real PostgreSQL: CREATE ROLE,
 *   CREATE DATABASE (+ REVOKE, schema owner), the migrations, `psql \copy` of
 *   the 741-company catalogue;
 * - pooled signup: the real service (HTTP webhook to its answer, which says
 *   `ready`): the claim in the control database, the binding committed and
 *   pushed to a real git remote, the DNS record on a real BIND, the answer;
 *   with N entries in the shard's tenants file (the claim's git work grows
 *   with the file, the engine is not on its path);
 * - a burst of 20 signups against a pool of 3.
 *
 * The update that records each binding and refills the pool runs off the
 * signup's path; here it is the fake engine of the service tests (reads the
 * file, reports every entry as made), so "pool full again" is the service's
 * own time plus the fake engine, not a real `pulumi up` (for that, see the
 * `signups` bench: a pool-empty signup is exactly that path).
 *
 *   tsx bench/claims.ts [--tenants 100,1000] [--rounds 5]
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
import { claimDnsFor, type ClaimTimings } from "../onboarding/claim";
import { ShardedFleet } from "../onboarding/fleet";
import { InProcessLauncher } from "../onboarding/scheduler";
import { startService } from "../onboarding/service";
import { GitTenantsRepo } from "../onboarding/tenants-repo";
import type { FleetSettings } from "../infra/config";
import { loadCatalogue } from "../seed/catalogue/load";
import { COMPANY_COLUMNS } from "../seed/company-columns";
import { copyTextRow } from "../seed/copy-text";
import { applyMigrations } from "../seed/migrate";
import { SHARDS_MANIFEST } from "../tenants/shards";
import { createTenantDatabase } from "../harness/tenant-databases";
import { rfc2136Settings, startBind, type LocalBind } from "../harness/bind";
import { createTenantsRemote } from "../harness/git-remote";
import { FakeDeployer, signup, startMailSink, testServiceOptions, waitFor, type MailSink } from "../harness/onboarding";
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

interface Pooled {
  signUp(username: string): Promise<{ seconds: number; status: string }>;
  /** Waits until the shard's pool has `count` free, made tenants again. */
  poolFull(count: number): Promise<void>;
  lastTimings(): ClaimTimings | undefined;
  stop(): Promise<void>;
}

/** A shard file of `tenants` entries, 3 of them pooled, in a git remote; the service on it (claims on). */
async function pooledService(server: LocalPostgres, bind: LocalBind, sink: MailSink, tenants: number): Promise<Pooled> {
  const root = mkdtempSync(join(tmpdir(), `dgp-bench-claims-${tenants}-`));
  const hex = (i: number) => (0xb0000000 + i).toString(16).toUpperCase();
  const active = Array.from({ length: tenants - 3 }, (_, i) => `  - username: driver_${i}\n    tenantId: ${hex(i)}\n`).join("");
  const file = `tenants:\n${active}`;
  const manifest = `maxTenants: ${tenants + 100}\npoolSize: 3\nshards:\n  - name: s001\n    file: tenants/s001.yaml\n`;
  const { remote } = createTenantsRemote(root, { [SHARDS_MANIFEST]: manifest, "tenants/s001.yaml": file }, "bench fleet");
  const author = { name: "bench", email: "bench@drivergigspro.test" };
  const open = (name: string) =>
    GitTenantsRepo.open({
      url: remote,
      branch: "main",
      dir: join(root, name),
      path: SHARDS_MANIFEST,
      lockFile: join(root, name, SHARDS_MANIFEST),
      author,
      pushAttempts: 20,
      pushBackoffMs: 10,
    });
  const [deployments, claims] = [await open("clone"), await open("clone-claims")];
  const admin = await server.connect();
  const database = `bench_claims_${tenants}_${Date.now()}`;
  await admin.query(`CREATE DATABASE ${escapeIdentifier(database)}`);
  await admin.end();
  const deployer = new FakeDeployer(join(deployments.dir, "tenants", "s001.yaml"));
  const dns = rfc2136Settings(bind, "127.0.0.1");
  let timings: ClaimTimings | undefined;
  const service = await startService({
    ...testServiceOptions(sink),
    databaseUrl: server.url(database),
    fleet: new ShardedFleet({ environment: "bench", dir: deployments.dir, git: true }),
    debounceMs: 50,
    pollMs: 100,
    mailPollMs: 100,
    launcher: (pool) =>
      new InProcessLauncher(pool, async (stack) => ({ stack, deployer, tenants: deployments.forShard({ name: "s001", file: "tenants/s001.yaml" }) })),
    claims: {
      store: async () => claims.forShard({ name: "s001", file: "tenants/s001.yaml" }),
      dns: async () => claimDnsFor({ appName: "drivergigspro", dns } as unknown as FleetSettings),
      onTimings: (t) => (timings = t),
    },
  });
  const free = async () => Number((await service.pool.query("SELECT count(*) AS n FROM onboarding_pool WHERE claimed_by IS NULL")).rows[0].n);
  const pooled: Pooled = {
    async signUp(username) {
      const start = performance.now();
      const answer = await signup(service.url, { username, email: `${username}@example.com` });
      if (answer.status !== 202) throw new Error(`signup ${username}: ${answer.status} ${JSON.stringify(answer.body)}`);
      return { seconds: (performance.now() - start) / 1000, status: String(answer.body.status) };
    },
    poolFull: (count) => waitFor(`pool of ${count}`, async () => (await free()) >= count, 120_000, 20).then(() => undefined),
    lastTimings: () => timings,
    async stop() {
      await service.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
  // The first batch makes the pool (the fake engine reports its entries as made).
  await pooled.signUp("warm_up");
  await pooled.poolFull(3);
  return pooled;
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
  const rowsFile = join(mkdtempSync(join(tmpdir(), "dgp-bench-")), "companies.copy");
  writeFileSync(rowsFile, catalogue.companies.map((company) => copyTextRow(COMPANY_COLUMNS.map(({ value }) => value(company)))).join(""));
  const columns = COMPANY_COLUMNS.map(({ column }) => escapeIdentifier(column)).join(", ");
  try {
    for (const tenants of sizes) {
      log(`${tenants} tenants: building the pooled shard`);
      const pooled = await pooledService(server, bind, sink, tenants);
      try {
        for (let round = 0; round < rounds; round++) {
          // Interleaved: the peer, then a pooled signup, on the same machine and server.
          emit({ bench: "claims", kind: "peer", tenants, seconds: await peerSignup(server, rowsFile, columns) });
          const claim = await pooled.signUp(`claim_${tenants}_${round}`);
          emit({ bench: "claims", kind: "pooled", tenants, seconds: claim.seconds, status: claim.status, ...pooled.lastTimings() });
          await pooled.poolFull(3);
        }
        if (tenants === sizes[0]) {
          log(`${tenants} tenants: a burst of 20 against a pool of 3`);
          const start = performance.now();
          const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => pooled.signUp(`burst_${i}`)));
          await pooled.poolFull(3);
          const refilled = (performance.now() - start) / 1000;
          const claimed = burst.filter((answer) => answer.status === "ready").map((answer) => answer.seconds);
          const all = burst.map((answer) => answer.seconds);
          emit({
            bench: "claims-burst",
            tenants,
            claimed: claimed.length,
            p50: percentile(all, 50),
            p95: percentile(all, 95),
            claimedP50: claimed.length ? percentile(claimed, 50) : 0,
            claimedP95: claimed.length ? percentile(claimed, 95) : 0,
            poolFullAgainSeconds: refilled,
          });
        }
      } finally {
        await pooled.stop();
      }
    }
  } finally {
    await sink.close();
    await bind.stop();
    await server.stop();
  }
}

runMain(main);

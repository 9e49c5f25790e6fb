/**
 * A signup's claim of a pooled tenant: the claim in the control database (one
 * claim per tenant and one tenant per signup, safe across service instances),
 * the answer (ready, with the connection details, before git), and the
 * binding committed off the answer's path by the claims committer: one commit
 * for every pending claim of a shard, a person's racing commit kept, nothing
 * lost or doubled across a restart, a claim the file refuses falling back to
 * an update. Real PostgreSQL, real git (a bare repository as the remote), real
 * BIND; races are made deterministic by holding the committer's lock.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import { COMMIT_LOCK_CLASS, createPool, migrate } from "../../onboarding/db";
import { claimPooled, recordPooled, releaseClaim } from "../../onboarding/registry";
import { LocalTenantsFile } from "../../onboarding/tenants-repo";
import { validateTenantsText } from "../../tenants/load";
import { SHARDS_MANIFEST } from "../../tenants/shards";
import { createTenantsRemote, git } from "../../harness/git-remote";
import { createControlDatabase, openTestTenantsRepo, signup, startMailSink, tenantStatus, usernames, waitFor, type MailSink } from "../../harness/onboarding";
import { startBind, type LocalBind } from "../../harness/bind";
import { poolManifest, POOL_SHARD, startPooledService, type PooledService } from "../../harness/pool-service";

const MANIFEST = poolManifest(2, 10);
const S001 =
  "# shard one\ntenants:\n  - username: first_driver\n    tenantId: 1111111A\n  - tenantId: 0A0A0A0A\n    status: pooled\n  - tenantId: 0B0B0B0B\n    status: pooled\n";

let postgres: LocalPostgres;
let root: string;

beforeAll(async () => {
  postgres = await startLocalPostgres();
  root = mkdtempSync(join(tmpdir(), "dgp-pool-claim-"));
});

afterAll(async () => {
  await postgres?.stop();
  rmSync(root, { recursive: true, force: true });
});

const entries = (text: string) => {
  const parsed = validateTenantsText(text);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return parsed.tenants.map((tenant) => `${tenant.username}:${tenant.tenantId ?? ""}:${tenant.status}`);
};

describe("claims in the control database", () => {
  it("20 signups on two service instances at once claim the 3 pooled tenants once each; the rest find the pool empty", async () => {
    const url = await createControlDatabase(postgres, "pool_claims");
    const [one, two] = [createPool(url), createPool(url)];
    try {
      await migrate(one);
      // What successful updates of two stacks recorded: pooled tenants only count once made.
      const at = (id: string) => ({
        host: "db.example.test",
        port: 5433,
        database: `drivergigspro_${id.toLowerCase()}`,
        role: `drivergigspro_${id.toLowerCase()}`,
      });
      await recordPooled(one, "test-s001", {
        AAAA0001: { tenantId: "AAAA0001", status: "pooled", connection: at("AAAA0001") },
        john: { tenantId: "99999999", status: "active" },
      });
      await recordPooled(two, "test-s002", {
        AAAA0002: { tenantId: "AAAA0002", status: "pooled", connection: at("AAAA0002") },
        AAAA0003: { tenantId: "AAAA0003", status: "pooled", connection: at("AAAA0003") },
      });
      await recordPooled(one, "other-s001", { BBBB0001: { tenantId: "BBBB0001", status: "pooled" } });
      const names = Array.from({ length: 20 }, (_, i) => `driver_${i}`);
      const claims = await Promise.all(names.map((name, i) => claimPooled(i % 2 === 0 ? one : two, "test-%", name)));
      const won = claims.filter((claim) => claim !== undefined);
      expect(won.map((claim) => claim.tenantId).sort()).toEqual(["AAAA0001", "AAAA0002", "AAAA0003"]);
      // Each claim carries where its tenant's app connects (recorded from the update's outputs).
      for (const claim of won) expect(claim.connection).toEqual(at(claim.tenantId));
      const { rows } = await one.query<{ tenant_id: string; claimed_by: string | null }>(
        "SELECT tenant_id, claimed_by FROM onboarding_pool ORDER BY tenant_id",
      );
      expect(rows.filter((row) => row.claimed_by !== null)).toHaveLength(3);
      expect(new Set(rows.map((row) => row.claimed_by).filter(Boolean)).size).toBe(3);
      // Another environment's pool is never touched; a second claim for one signup gets nothing.
      expect(rows.find((row) => row.tenant_id === "BBBB0001")!.claimed_by).toBeNull();
      const winner = rows.find((row) => row.claimed_by !== null)!;
      expect(await claimPooled(one, "%", winner.claimed_by!)).toBeUndefined();
      // A claim that could not be bound is released: the tenant can be claimed again.
      await releaseClaim(one, winner.tenant_id);
      expect(await claimPooled(two, "test-%", "driver_late")).toMatchObject({ tenantId: winner.tenant_id, stack: expect.stringMatching(/^test-s00[12]$/) });
      // The next update's outputs no longer list an unclaimed pooled tenant (a person removed it): it leaves the pool.
      await recordPooled(one, "other-s001", {});
      expect((await one.query("SELECT 1 FROM onboarding_pool WHERE tenant_id = 'BBBB0001'")).rows).toEqual([]);
    } finally {
      await Promise.all([one.end(), two.end()]);
    }
  }, 60_000);
});

describe("the binding in the tenants file", () => {
  it("git: several claims go into ONE commit; a person's commit racing it is kept; a binding already there counts; a refused claim is returned, not pushed", async () => {
    const dir = mkdir(join(root, "git"));
    const { remote, person } = createTenantsRemote(dir, { [SHARDS_MANIFEST]: MANIFEST, "tenants/s001.yaml": S001 }, "The pooled fleet");
    let raced = false;
    const repo = await openTestTenantsRepo(remote, join(dir, "clone"), {
      beforePush: async (attempt) => {
        if (attempt !== 1 || raced) return;
        raced = true;
        // A person's pull request merges meanwhile: it adds a tenant and a comment.
        const path = join(person, "tenants", "s001.yaml");
        writeFileSync(path, `${readFileSync(path, "utf8")}  # added by hand\n  - username: hand_added\n    tenantId: 2222222B\n`);
        git(person, "commit", "--quiet", "-am", "Add hand_added");
        git(person, "push", "--quiet", "origin", "HEAD:main");
      },
    });
    const shard = repo.forShard(POOL_SHARD);
    const commitsBefore = git(remote, "rev-list", "--count", "main").trim();
    const outcome = await shard.bindClaims([
      { tenantId: "0A0A0A0A", username: "maria_k", email: "maria@example.com" },
      { tenantId: "0B0B0B0B", username: "sam_k", email: "sam@example.com" },
    ]);
    expect(outcome).toMatchObject({ bound: ["0A0A0A0A", "0B0B0B0B"], refused: [] });
    const text = git(remote, "show", "main:tenants/s001.yaml");
    expect(entries(text)).toEqual(["first_driver:1111111A:active", "maria_k:0A0A0A0A:active", "sam_k:0B0B0B0B:active", "hand_added:2222222B:active"]);
    expect(text).toContain("# added by hand");
    // The person's commit and ONE commit of the service with both claims.
    expect(Number(git(remote, "rev-list", "--count", "main").trim())).toBe(Number(commitsBefore) + 2);
    expect(git(remote, "log", "-1", "--format=%an|%s|%b", "main")).toContain(
      "DriverGigsPro signup service|Claim 2 pooled tenants for signups|maria_k (0A0A0A0A), sam_k (0B0B0B0B)",
    );

    // Again after a crash that followed the push: both bindings are found, nothing is pushed. Another
    // signup's claim of a bound entry is refused (gone: the entry is not pooled any more), nothing pushed.
    const head = git(remote, "rev-parse", "main").trim();
    expect(
      await shard.bindClaims([
        { tenantId: "0A0A0A0A", username: "maria_k", email: "maria@example.com" },
        { tenantId: "0B0B0B0B", username: "other_k", email: "o@example.com" },
      ]),
    ).toMatchObject({
      bound: ["0A0A0A0A"],
      refused: [{ tenantId: "0B0B0B0B", username: "other_k", gone: true, reason: expect.stringMatching(/not pooled any more \(username "sam_k"\)/) }],
    });
    expect(git(remote, "rev-parse", "main").trim()).toBe(head);
  }, 60_000);

  it("local: the shard's file gets the bindings under the manifest's lock; refusals are returned", async () => {
    const dir = mkdir(join(root, "local"));
    mkdir(join(dir, "tenants"));
    writeFileSync(join(dir, SHARDS_MANIFEST), MANIFEST);
    writeFileSync(join(dir, "tenants", "s001.yaml"), S001);
    const store = new LocalTenantsFile(join(dir, "tenants", "s001.yaml"), { fleetDir: dir, shard: "s001" });
    const outcome = await store.bindClaims([
      { tenantId: "0B0B0B0B", username: "sam_k", email: "sam@example.com" },
      { tenantId: "FFFFFFFF", username: "x_k", email: "x@example.com" },
      // A name a person added by hand meanwhile: refused, and the entry stays in the pool (not gone).
      { tenantId: "0A0A0A0A", username: "first_driver", email: "f@example.com" },
    ]);
    expect(outcome.bound).toEqual(["0B0B0B0B"]);
    expect(outcome.refused).toEqual([
      { tenantId: "FFFFFFFF", username: "x_k", gone: true, reason: expect.stringMatching(/no entry has it/) },
      { tenantId: "0A0A0A0A", username: "first_driver", gone: false, reason: expect.stringMatching(/listed twice/) },
    ]);
    expect(entries(readFileSync(join(dir, "tenants", "s001.yaml"), "utf8"))).toEqual([
      "first_driver:1111111A:active",
      "0A0A0A0A:0A0A0A0A:pooled",
      "sam_k:0B0B0B0B:active",
    ]);
  });
});

function mkdir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}

/** Holds the claims committer's lock of test-s001 from a session of the test's own: claims stay pending (the outbox) until released. */
async function holdCommits(service: PooledService): Promise<{ release(): Promise<void> }> {
  const client = new Client({ connectionString: service.databaseUrl });
  await client.connect();
  await client.query("SELECT pg_advisory_lock($1, hashtext('test-s001'))", [COMMIT_LOCK_CLASS]);
  return { release: () => client.end() };
}

const claimRows = async (service: PooledService) =>
  (
    await service.service.pool.query<{ tenant_id: string; claimed_by: string | null; bound: boolean }>(
      "SELECT tenant_id, claimed_by, bound FROM onboarding_pool",
    )
  ).rows;
const claimCommits = (remote: string) =>
  git(remote, "log", "--format=%s", "main")
    .split("\n")
    .filter((line) => line.startsWith("Claim "));
const ready = (service: PooledService, username: string) =>
  waitFor(`${username} ready`, async () => (await tenantStatus(service.url, username)).body.status === "ready", 60_000);
const mailsTo = (sink: MailSink, email: string) => sink.mails.filter((mail) => mail.to.includes(email));

describe("instant signups through the service (POST /v1/signups)", () => {
  let bind: LocalBind;
  let sink: MailSink;
  beforeAll(async () => {
    bind = await startBind("test");
    sink = await startMailSink();
  });
  afterAll(async () => {
    await sink?.close();
    await bind?.stop();
  });

  it("a claim is answered ready with ID, domain and connection details before git; one commit later binds it, mails, and the update records it; a retried webhook gets the same signup, another e-mail 409", async () => {
    const dir = mkdir(join(root, "service"));
    const lines: string[] = [];
    const files = { [SHARDS_MANIFEST]: MANIFEST, [POOL_SHARD.file]: "tenants:\n  - username: first_driver\n    tenantId: 1111111A\n" };
    const svc = await startPooledService({
      root: dir,
      databaseUrl: await createControlDatabase(postgres, "pool_service"),
      bind,
      sink,
      files,
      log: (line) => lines.push(line),
    });
    try {
      // Pool empty: today's path; its update tops the pool up (2) and the service learns they are made.
      const first = await svc.signUp("seed_one");
      expect(first.status).toBe("queued");
      await ready(svc, "seed_one");
      // An update-made tenant's status has its connection details too (no password anywhere).
      const seeded = (await tenantStatus(svc.url, "seed_one")).body;
      const seedDb = `drivergigspro_${String(seeded.tenantId).toLowerCase()}`;
      expect(seeded.connection).toEqual({ host: "127.0.0.1", port: 5432, database: seedDb, role: seedDb });
      await svc.poolFull(2);
      const pooledIds = (await claimRows(svc)).map((row) => row.tenant_id);

      // git blocked (the committer's lock held): the claim is still answered ready, with where to connect.
      const held = await holdCommits(svc);
      const fast = await svc.signUp("fast_one", "fast@example.com");
      expect(fast.body).toMatchObject({ username: "fast_one", status: "ready", domain: "fast-one-drivergigspro.test" });
      expect(pooledIds).toContain(fast.body.tenantId);
      const database = `drivergigspro_${String(fast.body.tenantId).toLowerCase()}`;
      expect(fast.body.connection).toEqual({ host: "127.0.0.1", port: 5432, database, role: database });
      expect(JSON.stringify(fast.body)).not.toMatch(/password|secret|postgres(ql)?:\/\//i);
      expect(bind.dig("fast-one-drivergigspro.test")).toEqual(["127.0.0.1"]);
      expect(usernames(git(svc.remote, "show", "main:tenants/s001.yaml"))).not.toContain("fast_one");
      // The binding is pending: no update runs for it and no welcome mail goes out yet.
      const calls = svc.deployer.calls.length;
      // A retried webhook (same username and e-mail, newly signed) gets the same signup; another e-mail is refused.
      const again = await signup(svc.url, { username: "fast_one", email: "FAST@example.com" });
      expect(again.status).toBe(202);
      expect(again.body).toMatchObject({ status: "ready", tenantId: fast.body.tenantId, connection: fast.body.connection });
      expect((await signup(svc.url, { username: "fast_one", email: "thief@example.com" })).status).toBe(409);
      expect(svc.deployer.calls.length).toBe(calls);
      expect(mailsTo(sink, "fast@example.com")).toEqual([]);

      // Released: the committer pushes the binding; the mail goes out; one update records it (same tenant ID).
      await held.release();
      await waitFor("fast_one's binding pushed", async () => usernames(git(svc.remote, "show", "main:tenants/s001.yaml")).includes("fast_one"));
      expect(entries(git(svc.remote, "show", "main:tenants/s001.yaml"))).toContain(`fast_one:${fast.body.tenantId}:active`);
      expect(claimCommits(svc.remote)).toEqual([`Claim pooled tenant ${fast.body.tenantId} for signup fast_one`]);
      await waitFor("welcome mail to fast_one", async () => mailsTo(sink, "fast@example.com").length === 1);
      await waitFor(
        "binding recorded",
        async () => (await svc.service.pool.query("SELECT 1 FROM onboarding_pool WHERE claimed_by = 'fast_one' AND recorded")).rows.length === 1,
      );
      expect(svc.deployer.calls.at(-1)).toContain("fast_one");
      expect((await tenantStatus(svc.url, "fast_one")).body).toMatchObject({ status: "ready", tenantId: fast.body.tenantId, connection: fast.body.connection });
      // Still the same signup after the binding was pushed.
      // A sender's retry is signed anew (`source` keeps it from being byte-identical to the first within the same second: a replay, 401).
      expect((await signup(svc.url, { username: "fast_one", email: "fast@example.com", source: "retry" })).body).toMatchObject({
        tenantId: fast.body.tenantId,
      });

      // Pool empty, binding pushed by the batch, the update still running: a retried webhook answers the same signup, not 409.
      await svc.poolFull(2);
      const hold2 = await holdCommits(svc);
      await svc.signUp("pool_a");
      await svc.signUp("pool_b");
      svc.deployer.delayMs = 1500;
      const slow = await svc.signUp("slow_one", "slow@example.com");
      expect(slow.status).toBe("queued");
      await waitFor("slow_one pushed by its batch", async () => usernames(git(svc.remote, "show", "main:tenants/s001.yaml")).includes("slow_one"), 30_000, 20);
      const retried = await signup(svc.url, { username: "slow_one", email: "slow@example.com", source: "retry" });
      expect(retried.status).toBe(202);
      expect(["queued", "provisioning"]).toContain(retried.body.status);
      expect((await signup(svc.url, { username: "slow_one", email: "other@example.com" })).status).toBe(409);
      // That batch's refill counted the two claimed, uncommitted entries as taken: two new pooled entries.
      const pushed = entries(git(svc.remote, "show", "main:tenants/s001.yaml"));
      expect(pushed.filter((entry) => entry.endsWith(":pooled"))).toHaveLength(4);
      svc.deployer.delayMs = 0;
      await ready(svc, "slow_one");
      expect(svc.deployer.calls.flat()).not.toContain("pool_a");
      await hold2.release();
      // The two claims of that hold: ONE group commit.
      await waitFor("pool_a and pool_b bound", async () => (await claimRows(svc)).filter((row) => row.bound).length === 3);
      expect(claimCommits(svc.remote)[0]).toBe("Claim 2 pooled tenants for signups");
      await svc.poolFull(2);
      const final = entries(git(svc.remote, "show", "main:tenants/s001.yaml"));
      expect(final.filter((entry) => entry.endsWith(":pooled"))).toHaveLength(2);
      for (const username of ["seed_one", "fast_one", "pool_a", "pool_b", "slow_one"]) {
        expect(final.filter((entry) => entry.startsWith(`${username}:`))).toHaveLength(1);
      }
    } finally {
      await svc.close();
    }
  }, 180_000);

  it("a person's commit takes the pooled entry before the binding lands: the claim is resolved, the signup falls back to an update (logged with tenant ID and username); a restart loses and doubles nothing", async () => {
    const dir = mkdir(join(root, "refused"));
    const lines: string[] = [];
    const databaseUrl = await createControlDatabase(postgres, "pool_refused");
    const files = { [SHARDS_MANIFEST]: MANIFEST, [POOL_SHARD.file]: S001 };
    let svc = await startPooledService({ root: dir, databaseUrl, bind, sink, files, log: (line) => lines.push(line) });
    const person = svc.person!;
    const remote = svc.remote;
    try {
      await svc.signUp("warm_up");
      await ready(svc, "warm_up");
      await svc.poolFull(2);
      let held = await holdCommits(svc);
      const [one, two] = [await svc.signUp("keep_one"), await svc.signUp("lose_two")];
      expect([one.status, two.status]).toEqual(["ready", "ready"]);
      // A person binds lose_two's pooled entry to a hand-made tenant before the service's commit.
      const path = join(person, POOL_SHARD.file);
      git(person, "pull", "--quiet", "origin", "main");
      const text = readFileSync(path, "utf8").replace(
        `- tenantId: ${two.body.tenantId}\n    status: pooled\n`,
        `- username: by_hand\n    tenantId: ${two.body.tenantId}\n`,
      );
      writeFileSync(path, text);
      git(person, "commit", "--quiet", "-am", "Use a pooled entry by hand");
      git(person, "push", "--quiet", "origin", "HEAD:main");
      await held.release();
      await waitFor("lose_two falls back and becomes ready through an update", async () => {
        const status = (await tenantStatus(svc.url, "lose_two")).body;
        return status.status === "ready" && status.tenantId !== two.body.tenantId;
      });
      expect(lines.some((line) => line.includes(`claim of pooled tenant ${two.body.tenantId} by signup lose_two refused`))).toBe(true);
      const after = entries(git(remote, "show", "main:tenants/s001.yaml"));
      expect(after).toContain(`keep_one:${one.body.tenantId}:active`);
      expect(after).toContain(`by_hand:${two.body.tenantId}:active`);
      expect(after.filter((entry) => entry.startsWith("lose_two:"))).toHaveLength(1);
      // Its welcome mail names the tenant it got, never the refused one.
      await waitFor("lose_two's mail", async () => mailsTo(sink, "lose_two@example.com").length === 1);
      expect(mailsTo(sink, "lose_two@example.com")[0]!.raw).not.toContain(String(two.body.tenantId));

      // A restart with claims pending, one of them pushed just before the crash: each lands once.
      await svc.poolFull(2);
      held = await holdCommits(svc);
      const [r1, r2] = [await svc.signUp("restart_one"), await svc.signUp("restart_two")];
      await svc.close();
      // The push of restart_one's binding happened, the process died before recording it.
      const crashed = (await openTestTenantsRepo(remote, join(dir, "crashed"))).forShard(POOL_SHARD);
      await crashed.bindClaims([{ tenantId: r1.body.tenantId, username: "restart_one", email: "restart_one@example.com" }]);
      const before = claimCommits(remote).length;
      svc = await startPooledService({ root: dir, databaseUrl, bind, sink, remote, instance: "restarted" });
      await held.release().catch(() => undefined);
      await waitFor(
        "both bound after the restart",
        async () => (await claimRows(svc)).filter((row) => row.claimed_by?.startsWith("restart_") && row.bound).length === 2,
      );
      expect(claimCommits(remote).length).toBe(before + 1);
      const last = entries(git(remote, "show", "main:tenants/s001.yaml"));
      expect(last.filter((entry) => entry.startsWith("restart_one:"))).toEqual([`restart_one:${r1.body.tenantId}:active`]);
      expect(last.filter((entry) => entry.startsWith("restart_two:"))).toEqual([`restart_two:${r2.body.tenantId}:active`]);
    } finally {
      await svc.close();
    }
  }, 180_000);

  it("a burst of 20 on two service instances against a pool of 3: no signup lost or doubled, each pooled tenant claimed at most once", async () => {
    const dir = mkdir(join(root, "burst"));
    const databaseUrl = await createControlDatabase(postgres, "pool_burst");
    const files = { [SHARDS_MANIFEST]: poolManifest(3, 40), [POOL_SHARD.file]: "tenants: []\n" };
    const a = await startPooledService({ root: dir, databaseUrl, bind, sink, files, instance: "a" });
    const b = await startPooledService({ root: dir, databaseUrl, bind, sink, remote: a.remote, instance: "b" });
    try {
      await a.signUp("warm_up");
      await ready(a, "warm_up");
      await a.poolFull(3);
      const pooledIds = (await claimRows(a)).map((row) => row.tenant_id);
      const burst = Array.from({ length: 20 }, (_, i) => `burst_${i}`);
      const answers = await Promise.all(burst.map((username, i) => (i % 2 === 0 ? a : b).signUp(username)));
      const claimed = answers.filter((answer) => answer.status === "ready");
      expect(claimed).toHaveLength(3);
      expect(claimed.map((answer) => answer.body.tenantId).sort()).toEqual([...pooledIds].sort());
      for (const username of burst) await ready(a, username);
      await a.poolFull(3);
      const final = git(a.remote, "show", "main:tenants/s001.yaml");
      const users = usernames(final);
      for (const username of ["warm_up", ...burst]) expect(users.filter((user) => user === username)).toHaveLength(1);
      const ids = entries(final).map((entry) => entry.split(":")[1]);
      expect(new Set(ids).size).toBe(ids.length);
      const rows = await claimRows(a);
      const claimers = rows.filter((row) => row.claimed_by !== null).map((row) => row.claimed_by);
      expect(new Set(claimers).size).toBe(claimers.length);
      for (const answer of claimed) expect(entries(final)).toContain(`${answer.body.username}:${answer.body.tenantId}:active`);
      for (const username of burst) await waitFor(`mail to ${username}`, async () => mailsTo(sink, `${username}@example.com`).length === 1);
    } finally {
      await b.close();
      await a.close();
    }
  }, 240_000);
});

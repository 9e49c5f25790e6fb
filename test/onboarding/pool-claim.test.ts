/**
 * A signup's claim of a pooled tenant, its two durable halves: the claim in
 * the control database (one claim per tenant and one tenant per signup, safe
 * across service instances) and the binding in the tenants file, committed
 * and pushed with a person's commit racing it. Real PostgreSQL, real git (a
 * bare repository as the remote); races are made deterministic with the
 * repository's beforePush hook.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import { createPool, migrate } from "../../onboarding/db";
import { claimPooled, recordPooled, releaseClaim } from "../../onboarding/registry";
import { ClaimRefusedError, GitTenantsRepo, LocalTenantsFile } from "../../onboarding/tenants-repo";
import { validateTenantsText } from "../../tenants/load";
import { SHARDS_MANIFEST } from "../../tenants/shards";
import { createTenantsRemote, git } from "../../harness/git-remote";
import { createControlDatabase, FakeDeployer, signup, startMailSink, tenantStatus, testServiceOptions, usernames, waitFor } from "../../harness/onboarding";
import { rfc2136Settings, startBind } from "../../harness/bind";
import { claimDnsFor } from "../../onboarding/claim";
import { ShardedFleet } from "../../onboarding/fleet";
import { InProcessLauncher } from "../../onboarding/scheduler";
import { startService } from "../../onboarding/service";
import type { FleetSettings } from "../../infra/config";

const MANIFEST = "maxTenants: 10\npoolSize: 2\nshards:\n  - name: s001\n    file: tenants/s001.yaml\n";
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
      await recordPooled(one, "test-s001", { AAAA0001: { tenantId: "AAAA0001", status: "pooled" }, john: { tenantId: "99999999", status: "active" } });
      await recordPooled(two, "test-s002", { AAAA0002: { tenantId: "AAAA0002", status: "pooled" }, AAAA0003: { tenantId: "AAAA0003", status: "pooled" } });
      await recordPooled(one, "other-s001", { BBBB0001: { tenantId: "BBBB0001", status: "pooled" } });
      const names = Array.from({ length: 20 }, (_, i) => `driver_${i}`);
      const claims = await Promise.all(names.map((name, i) => claimPooled(i % 2 === 0 ? one : two, "test-%", name)));
      const won = claims.filter((claim) => claim !== undefined);
      expect(won.map((claim) => claim.tenantId).sort()).toEqual(["AAAA0001", "AAAA0002", "AAAA0003"]);
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
      expect(await claimPooled(two, "test-%", "driver_late")).toEqual({ tenantId: winner.tenant_id, stack: expect.stringMatching(/^test-s00[12]$/) });
      // The next update's outputs no longer list an unclaimed pooled tenant (a person removed it): it leaves the pool.
      await recordPooled(one, "other-s001", {});
      expect((await one.query("SELECT 1 FROM onboarding_pool WHERE tenant_id = 'BBBB0001'")).rows).toEqual([]);
    } finally {
      await Promise.all([one.end(), two.end()]);
    }
  }, 60_000);
});

describe("the binding in the tenants file", () => {
  it("git: the claim is committed and pushed; a person's commit racing it is kept, and the claim applied again on top", async () => {
    const dir = mkdir(join(root, "git"));
    const { remote, person } = createTenantsRemote(dir, { [SHARDS_MANIFEST]: MANIFEST, "tenants/s001.yaml": S001 }, "The pooled fleet");
    const clone = join(dir, "clone");
    let raced = false;
    const repo = await GitTenantsRepo.open({
      url: remote,
      branch: "main",
      dir: clone,
      path: SHARDS_MANIFEST,
      lockFile: join(clone, SHARDS_MANIFEST),
      author: { name: "DriverGigsPro signup service", email: "signup-service@drivergigspro.test" },
      pushAttempts: 5,
      pushBackoffMs: 20,
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
    const shard = repo.forShard({ name: "s001", file: "tenants/s001.yaml" });
    await shard.bindClaim("0A0A0A0A", { username: "maria_k", email: "maria@example.com" });
    const text = git(remote, "show", "main:tenants/s001.yaml");
    expect(entries(text)).toEqual(["first_driver:1111111A:active", "maria_k:0A0A0A0A:active", "0B0B0B0B:0B0B0B0B:pooled", "hand_added:2222222B:active"]);
    expect(text).toContain("# added by hand");
    expect(git(remote, "log", "-1", "--format=%an|%s", "main").trim()).toBe("DriverGigsPro signup service|Claim pooled tenant 0A0A0A0A for signup maria_k");

    // The entry is not pooled any more: a second claim of it is refused and nothing is pushed.
    const head = git(remote, "rev-parse", "main").trim();
    await expect(shard.bindClaim("0A0A0A0A", { username: "sam", email: "sam@example.com" })).rejects.toThrow(ClaimRefusedError);
    await expect(shard.bindClaim("0A0A0A0A", { username: "sam", email: "sam@example.com" })).rejects.toThrow(/not pooled any more \(username "maria_k"\)/);
    expect(git(remote, "rev-parse", "main").trim()).toBe(head);
  }, 60_000);

  it("local: the shard's file gets the binding under the manifest's lock", async () => {
    const dir = mkdir(join(root, "local"));
    mkdir(join(dir, "tenants"));
    writeFileSync(join(dir, SHARDS_MANIFEST), MANIFEST);
    writeFileSync(join(dir, "tenants", "s001.yaml"), S001);
    const store = new LocalTenantsFile(join(dir, "tenants", "s001.yaml"), { fleetDir: dir, shard: "s001" });
    await store.bindClaim("0B0B0B0B", { username: "sam_k", email: "sam@example.com" });
    expect(entries(readFileSync(join(dir, "tenants", "s001.yaml"), "utf8"))).toEqual([
      "first_driver:1111111A:active",
      "0A0A0A0A:0A0A0A0A:pooled",
      "sam_k:0B0B0B0B:active",
    ]);
    await expect(store.bindClaim("FFFFFFFF", { username: "x_k", email: "x@example.com" })).rejects.toMatchObject({
      gone: true,
      message: expect.stringMatching(/no entry has it/),
    });
    // A name a person added by hand meanwhile: refused, and the entry stays in the pool (not gone).
    await expect(store.bindClaim("0A0A0A0A", { username: "first_driver", email: "f@example.com" })).rejects.toMatchObject({
      gone: false,
      message: expect.stringMatching(/listed twice/),
    });
    expect(entries(readFileSync(join(dir, "tenants", "s001.yaml"), "utf8"))).toContain("0A0A0A0A:0A0A0A0A:pooled");
  });
});

function mkdir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}

describe("instant signups through the service (POST /v1/signups)", () => {
  it("git + BIND: a signup claims a pooled tenant and is answered ready with ID and domain; the record resolves; one update records the binding and refills; a burst loses and doubles nothing", async () => {
    const bind = await startBind("test");
    const sink = await startMailSink();
    const dir = mkdir(join(root, "service"));
    const { remote } = createTenantsRemote(
      dir,
      { [SHARDS_MANIFEST]: MANIFEST, "tenants/s001.yaml": "tenants:\n  - username: first_driver\n    tenantId: 1111111A\n" },
      "The fleet",
    );
    const author = { name: "DriverGigsPro signup service", email: "signup-service@drivergigspro.test" };
    const open = (name: string) =>
      GitTenantsRepo.open({
        url: remote,
        branch: "main",
        dir: join(dir, name),
        path: SHARDS_MANIFEST,
        lockFile: join(dir, name, SHARDS_MANIFEST),
        author,
        pushAttempts: 8,
        pushBackoffMs: 20,
      });
    const [deployments, claimsClone] = [await open("clone"), await open("clone-claims")];
    const fleet = new ShardedFleet({ environment: "test", dir: deployments.dir, git: true });
    const deployer = new FakeDeployer(join(deployments.dir, "tenants", "s001.yaml"));
    const databaseUrl = await createControlDatabase(postgres, "pool_service");
    const dns = rfc2136Settings(bind, "127.0.0.1");
    const service = await startService({
      ...testServiceOptions(sink),
      databaseUrl,
      fleet,
      debounceMs: 50,
      pollMs: 100,
      mailPollMs: 100,
      launcher: (pool) =>
        new InProcessLauncher(pool, async (stack) => ({ stack, deployer, tenants: deployments.forShard({ name: "s001", file: "tenants/s001.yaml" }) })),
      claims: {
        store: async () => claimsClone.forShard({ name: "s001", file: "tenants/s001.yaml" }),
        dns: async () => claimDnsFor({ appName: "drivergigspro", dns } as unknown as FleetSettings),
      },
    });
    try {
      const ready = (username: string) => waitFor(`${username} ready`, async () => (await tenantStatus(service.url, username)).body.status === "ready", 60_000);
      // Pool empty: today's path; its update tops the pool up (2) and the service learns they are made.
      const first = await signup(service.url, { username: "seed_one", email: "seed@example.com" });
      expect(first.body.status).toBe("queued");
      await ready("seed_one");
      await waitFor(
        "2 pooled tenants claimable",
        async () => (await service.pool.query("SELECT 1 FROM onboarding_pool WHERE claimed_by IS NULL")).rows.length === 2,
      );
      const pooledIds = (await service.pool.query<{ tenant_id: string }>("SELECT tenant_id FROM onboarding_pool")).rows.map((row) => row.tenant_id);

      // A claim: answered ready at once, with the pooled tenant's ID and the domain, which resolves.
      const fast = await signup(service.url, { username: "fast_one", email: "fast@example.com" });
      expect(fast.status).toBe(202);
      expect(fast.body).toMatchObject({ username: "fast_one", status: "ready", domain: "fast-one-drivergigspro.test" });
      expect(pooledIds).toContain(fast.body.tenantId);
      expect(bind.dig("fast-one-drivergigspro.test")).toEqual(["127.0.0.1"]);
      const bound = entries(git(remote, "show", "main:tenants/s001.yaml"));
      expect(bound).toContain(`fast_one:${fast.body.tenantId}:active`);
      expect(git(remote, "log", "--format=%s", "main")).toContain(`Claim pooled tenant ${fast.body.tenantId} for signup fast_one`);
      await waitFor("welcome mail to fast_one", async () => sink.mails.some((mail) => JSON.stringify(mail).includes("fast@example.com")));
      // Off the signup's path: one update records the binding (same tenant ID) and tops the pool up again.
      await waitFor(
        "binding recorded",
        async () => (await service.pool.query("SELECT 1 FROM onboarding_pool WHERE claimed_by = 'fast_one' AND recorded")).rows.length === 1,
      );
      expect((await tenantStatus(service.url, "fast_one")).body).toMatchObject({ status: "ready", tenantId: fast.body.tenantId });
      expect(deployer.calls.at(-1)).toContain("fast_one");

      // A burst of 6 against a pool of 2: some claim, the rest take the update's path; all end ready, each once, IDs distinct.
      await waitFor("pool full again", async () => (await service.pool.query("SELECT 1 FROM onboarding_pool WHERE claimed_by IS NULL")).rows.length === 2);
      const burst = Array.from({ length: 6 }, (_, i) => `burst_${i}`);
      const answers = await Promise.all(burst.map((username) => signup(service.url, { username, email: `${username}@example.com` })));
      expect(answers.map((answer) => answer.status)).toEqual(burst.map(() => 202));
      expect(answers.filter((answer) => answer.body.status === "ready")).toHaveLength(2);
      for (const username of burst) await ready(username);
      const final = git(remote, "show", "main:tenants/s001.yaml");
      const users = usernames(final);
      for (const username of ["seed_one", "fast_one", ...burst]) expect(users.filter((user) => user === username)).toHaveLength(1);
      const ids = entries(final).map((entry) => entry.split(":")[1]);
      expect(new Set(ids).size).toBe(ids.length);
    } finally {
      await service.close();
      await sink.close();
      await bind.stop();
    }
  }, 180_000);
});

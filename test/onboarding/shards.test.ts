/**
 * The service spreads signups over the shards of tenants/shards.yaml
 * (FLEET_ENV): placed at registration on the first shard with room, a new
 * shard when all are full, each shard's stack deployed with its own file, a
 * signup never moving. Real PostgreSQL, real SMTP, real git (a bare
 * repository as the remote); the engine is the fake of api.test.ts, one per
 * stack, which reads the file it is given.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import { readRunnerConfig } from "../../onboarding/config";
import { ShardedFleet } from "../../onboarding/fleet";
import { InProcessLauncher } from "../../onboarding/scheduler";
import { startService, type RunningService, type ServiceOptions } from "../../onboarding/service";
import { LocalTenantsFile, type TenantsStore } from "../../onboarding/tenants-repo";
import { SHARDS_MANIFEST } from "../../tenants/shards";
import { createTenantsRemote, git } from "../../harness/git-remote";
import {
  createControlDatabase,
  FakeDeployer,
  openTestTenantsRepo,
  signup,
  startMailSink,
  tenantStatus,
  testServiceOptions,
  usernames,
  waitFor,
  type MailSink,
} from "../../harness/onboarding";

// poolSize 0: these tests are about spreading signups; the warm pool has its own test below.
const MANIFEST = `# the test fleet: this comment must survive the service's edits
maxTenants: 2
poolSize: 0
shards:
  - name: s001
    file: tenants/s001.yaml
`;
const S001 = "# shard one\ntenants:\n  - username: first_driver\n    email: first@example.com\n";
const SIGNUPS = ["alpha_one", "bravo_two", "charlie_three", "delta_four", "echo_five"];

let postgres: LocalPostgres;
let sink: MailSink;
let root: string;
let databases = 0;
const running: RunningService[] = [];

beforeAll(async () => {
  postgres = await startLocalPostgres();
  sink = await startMailSink();
  root = mkdtempSync(join(tmpdir(), "dgp-shards-"));
});

afterEach(async () => {
  while (running.length > 0) await running.pop()!.close();
});

afterAll(async () => {
  await sink?.close();
  await postgres?.stop();
  rmSync(root, { recursive: true, force: true });
});

interface Harness {
  url: string;
  fleet: ShardedFleet;
  /** The fake engine of each stack deployed, with the file it was opened on. */
  deployers: Map<string, FakeDeployer>;
  /** Most deployments running at once, over every stack. */
  overlap: () => number;
  sql<T = Record<string, any>>(query: string, values?: unknown[]): Promise<T[]>;
}

/** `root/name`: the manifest and s001's file, as a fleet starts. */
function fleetFolder(name: string): string {
  const dir = join(root, name);
  mkdirSync(join(dir, "tenants"), { recursive: true });
  writeFileSync(join(dir, SHARDS_MANIFEST), MANIFEST);
  writeFileSync(join(dir, "tenants", "s001.yaml"), S001);
  return dir;
}

/** A service on `fleet` (debounce 50 ms, mail to the sink), closed after the test. */
async function startFleetService(options: Pick<ServiceOptions, "databaseUrl" | "fleet" | "launcher" | "pollMs" | "mailPollMs">): Promise<RunningService> {
  const service = await startService({ ...testServiceOptions(sink), debounceMs: 50, ...options });
  running.push(service);
  return service;
}

/** A service for environment "test" on the manifest in `dir`; `store` gives each shard's tenants store. */
async function harness(
  dir: string,
  git: boolean,
  store: (name: string, file: string, path: string) => TenantsStore,
  failFirst: string[] = [],
): Promise<Harness> {
  const databaseUrl = await createControlDatabase(postgres, `shards_${++databases}`);
  const fleet = new ShardedFleet({ environment: "test", dir, git });
  const deployers = new Map<string, FakeDeployer>();
  let now = 0;
  let most = 0;
  const service = await startFleetService({
    databaseUrl,
    fleet,
    launcher: (pool) =>
      new InProcessLauncher(pool, async (stack) => {
        const shard = fleet.shardOf(stack);
        if (!deployers.has(stack)) {
          const deployer = new FakeDeployer(shard.path);
          if (failFirst.includes(stack)) deployer.failuresLeft = 1;
          const deploy = deployer.deploy.bind(deployer);
          deployer.deploy = async () => {
            most = Math.max(most, ++now);
            try {
              return await deploy();
            } finally {
              now -= 1;
            }
          };
          deployers.set(stack, deployer);
        }
        return {
          stack,
          deployer: deployers.get(stack)!,
          tenants: store(shard.name, shard.file, shard.path),
          backoff: { baseMs: 200, capMs: 1000, maxAttempts: 5 },
        };
      }),
    pollMs: 100,
    mailPollMs: 100,
  });
  return { url: service.url, fleet, deployers, overlap: () => most, sql: async (query, values = []) => (await service.pool.query(query, values)).rows };
}

/** One signup alone, then four at once. */
async function signUpAll(h: Harness): Promise<void> {
  const send = async (username: string) => expect((await signup(h.url, { username, email: `${username}@example.com` })).status).toBe(202);
  await send(SIGNUPS[0]!);
  await Promise.all(SIGNUPS.slice(1).map(send));
  for (const username of SIGNUPS) {
    await waitFor(`${username} ready`, async () => (await tenantStatus(h.url, username)).body.status === "ready", 60_000);
  }
}

/**
 * What every fleet test checks: 1 signup in s001 (which had 1 tenant), 2 in
 * each new shard; every signup in exactly one file, the one of its stack;
 * each stack's deployments got that stack's file and its entries only.
 */
async function expectSpread(h: Harness, files: Record<string, string>): Promise<void> {
  const rows = await h.sql<{ username: string; stack: string }>("SELECT username, stack FROM onboarding_signups ORDER BY username");
  const byStack = (stack: string) =>
    rows
      .filter((row) => row.stack === stack)
      .map((row) => row.username)
      .sort();
  expect(byStack("test-s001")).toHaveLength(1);
  expect(byStack("test-s002")).toHaveLength(2);
  expect(byStack("test-s003")).toHaveLength(2);
  expect(rows).toHaveLength(5);
  expect(usernames(files.s001!).sort()).toEqual(["first_driver", ...byStack("test-s001")].sort());
  expect(usernames(files.s002!).sort()).toEqual(byStack("test-s002"));
  expect(usernames(files.s003!).sort()).toEqual(byStack("test-s003"));
  for (const username of SIGNUPS) expect(Object.values(files).filter((text) => usernames(text).includes(username))).toHaveLength(1);
  expect([...h.deployers.keys()].sort()).toEqual(["test-s001", "test-s002", "test-s003"]);
  for (const [stack, deployer] of h.deployers) {
    expect(deployer.tenantsFile).toBe(h.fleet.shardOf(stack).path);
    expect(deployer.tenantsFile.endsWith(join("tenants", `${stack.slice(5)}.yaml`))).toBe(true);
    for (const call of deployer.calls) for (const username of call) expect(username === "first_driver" || byStack(stack).includes(username)).toBe(true);
  }
  // One deployment at a time, over every shard.
  expect(h.overlap()).toBe(1);
  const deployments = await h.sql<{ stack: string; status: string }>("SELECT stack, status FROM onboarding_deployments ORDER BY id");
  expect(new Set(deployments.map((d) => d.stack))).toEqual(new Set(["test-s001", "test-s002", "test-s003"]));
}

/** The failed first deployment of test-s002 was retried on test-s002: its signups never moved. */
async function expectRetriedInPlace(h: Harness): Promise<void> {
  const s002 = await h.sql<{ status: string; usernames: string[] }>(
    "SELECT status, usernames FROM onboarding_deployments WHERE stack = 'test-s002' ORDER BY id",
  );
  expect(s002[0]!.status).toBe("failed");
  expect(s002.at(-1)!.status).toBe("succeeded");
  const retried = s002[0]!.usernames;
  expect(retried.length).toBeGreaterThan(0);
  const rows = await h.sql<{ stack: string; status: string }>("SELECT stack, status FROM onboarding_signups WHERE username = ANY($1)", [retried]);
  expect(rows).toEqual(retried.map(() => ({ stack: "test-s002", status: "ready" })));
  // A later deployment of the same stack (its retry, or the next batch) deployed them.
  const later = h.deployers.get("test-s002")!.calls.slice(1);
  for (const username of retried) expect(later.some((call) => call.includes(username))).toBe(true);
}

describe("a fleet of shards (FLEET_ENV)", () => {
  it("local: maxTenants 2, s001 with 1 tenant; 5 signups land 1 in s001 and 2 in each new shard, listed in the manifest", async () => {
    const dir = fleetFolder("local");
    const h = await harness(dir, false, (_name, _file, path) => new LocalTenantsFile(path), ["test-s002"]);
    await signUpAll(h);

    const manifest = readFileSync(join(dir, SHARDS_MANIFEST), "utf8");
    expect(manifest.startsWith("# the test fleet: this comment must survive")).toBe(true);
    expect(parse(manifest)).toEqual({
      maxTenants: 2,
      poolSize: 0,
      shards: [
        { name: "s001", file: "tenants/s001.yaml" },
        { name: "s002", file: "tenants/s002.yaml" },
        { name: "s003", file: "tenants/s003.yaml" },
      ],
    });
    const read = (name: string) => readFileSync(join(dir, "tenants", `${name}.yaml`), "utf8");
    expect(read("s001").startsWith("# shard one\n")).toBe(true);
    await expectSpread(h, { s001: read("s001"), s002: read("s002"), s003: read("s003") });
    await expectRetriedInPlace(h);

    // A username (or web address) of any shard is refused; a repeat keeps its shard.
    expect((await signup(h.url, { username: "first_driver", email: "x@example.com" })).status).toBe(409);
    const twin = await signup(h.url, { username: "echo-five", email: "x@example.com" });
    expect(twin.status).toBe(409);
    const before = await h.sql("SELECT stack FROM onboarding_signups WHERE username = 'echo_five'");
    // A repeat as a webhook sender retries it: the same content, newly signed (other bytes, so no replay).
    const repeat = { username: "echo_five", email: "echo_five@example.com" };
    expect((await signup(h.url, repeat, { raw: JSON.stringify(repeat, null, 1) })).status).toBe(202);
    expect(await h.sql("SELECT stack FROM onboarding_signups WHERE username = 'echo_five'")).toEqual(before);
  }, 120_000);

  it("git: new shards are listed in tenants/shards.yaml by the commit that adds their first tenants", async () => {
    const { remote } = createTenantsRemote(root, { [SHARDS_MANIFEST]: MANIFEST, "tenants/s001.yaml": S001 }, "The fleet");

    const clone = join(root, "clone");
    const repo = await openTestTenantsRepo(remote, clone);
    const h = await harness(repo.dir, true, (name, file) => repo.forShard({ name, file }), ["test-s002"]);
    await signUpAll(h);

    const show = (path: string) => git(remote, "show", `main:${path}`);
    const manifest = show(SHARDS_MANIFEST);
    expect(manifest.startsWith("# the test fleet: this comment must survive")).toBe(true);
    expect(
      parse(manifest)
        .shards.map((shard: { name: string }) => shard.name)
        .sort(),
    ).toEqual(["s001", "s002", "s003"]);
    await expectSpread(h, { s001: show("tenants/s001.yaml"), s002: show("tenants/s002.yaml"), s003: show("tenants/s003.yaml") });
    await expectRetriedInPlace(h);
    // Each new shard was listed by a commit that also added its first tenants.
    for (const name of ["s002", "s003"]) {
      const first = git(remote, "log", "--reverse", "--format=%H", "main", "--", `tenants/${name}.yaml`).trim().split("\n")[0]!;
      const changed = git(remote, "show", "--name-only", "--format=%s%n%b", first);
      expect(changed).toContain(`New shard ${name} (tenants/${name}.yaml), listed in ${SHARDS_MANIFEST}.`);
      expect(changed).toContain(SHARDS_MANIFEST);
      expect(changed).toMatch(/^Add \d tenant\(s\) from signups: /);
    }
  }, 120_000);

  it("two service instances on one control database place concurrent signups without overfilling a shard", async () => {
    const dir = fleetFolder("two");
    const databaseUrl = await createControlDatabase(postgres, `shards_${++databases}`);
    const start = async () => {
      const fleet = new ShardedFleet({ environment: "test", dir, git: false });
      const deployers = new Map<string, FakeDeployer>();
      return startFleetService({
        databaseUrl,
        fleet,
        launcher: (pool) =>
          new InProcessLauncher(pool, async (stack) => {
            const path = fleet.shardOf(stack).path;
            if (!deployers.has(stack)) deployers.set(stack, new FakeDeployer(path));
            return { stack, deployer: deployers.get(stack)!, tenants: new LocalTenantsFile(path) };
          }),
        pollMs: 100,
      });
    };
    const [a, b] = [await start(), await start()];
    const names = Array.from({ length: 7 }, (_, i) => `racer_${i}`);
    const answers = await Promise.all(names.map((username, i) => signup((i % 2 === 0 ? a : b).url, { username, email: `${username}@example.com` })));
    expect(answers.map((answer) => answer.status)).toEqual(names.map(() => 202));
    for (const username of names) await waitFor(`${username} ready`, async () => (await tenantStatus(a.url, username)).body.status === "ready", 60_000);

    // 1 + 7 = 8 tenants in shards of 2: s001 (1 + 1), s002, s003, s004 (2 each), never more.
    const shards = parse(readFileSync(join(dir, SHARDS_MANIFEST), "utf8")).shards as { name: string; file: string }[];
    expect(shards.map((shard) => shard.name)).toEqual(["s001", "s002", "s003", "s004"]);
    const counts = shards.map((shard) => usernames(readFileSync(join(dir, shard.file), "utf8")).length);
    expect(counts).toEqual([2, 2, 2, 2]);
    const all = shards.flatMap((shard) => usernames(readFileSync(join(dir, shard.file), "utf8")));
    expect(all.sort()).toEqual(["first_driver", ...names].sort());
  }, 120_000);

  it("a shard whose stack cannot be opened does not hold up the others", async () => {
    const dir = join(root, "broken");
    mkdirSync(join(dir, "tenants"), { recursive: true });
    writeFileSync(
      join(dir, SHARDS_MANIFEST),
      "maxTenants: 1\nshards:\n  - name: s001\n    file: tenants/s001.yaml\n  - name: s002\n    file: tenants/s002.yaml\n",
    );
    for (const name of ["s001", "s002"]) writeFileSync(join(dir, "tenants", `${name}.yaml`), "tenants: []\n");
    const databaseUrl = await createControlDatabase(postgres, `shards_${++databases}`);
    const fleet = new ShardedFleet({ environment: "test", dir, git: false });
    const deployer = new FakeDeployer(join(dir, "tenants", "s002.yaml"));
    const service = await startFleetService({
      databaseUrl,
      fleet,
      launcher: (pool) =>
        new InProcessLauncher(pool, async (stack) => {
          if (stack === "test-s001") throw new Error('stack "test-s001" not found');
          return { stack, deployer, tenants: new LocalTenantsFile(deployer.tenantsFile) };
        }),
      pollMs: 50,
    });
    expect((await signup(service.url, { username: "stuck_one", email: "stuck@example.com" })).status).toBe(202);
    expect((await signup(service.url, { username: "moving_one", email: "moving@example.com" })).status).toBe(202);
    await waitFor("moving_one ready", async () => (await tenantStatus(service.url, "moving_one")).body.status === "ready", 30_000);
    const rows = (await service.pool.query("SELECT username, stack, status FROM onboarding_signups ORDER BY username")).rows;
    expect(rows).toEqual([
      { username: "moving_one", stack: "test-s002", status: "ready" },
      { username: "stuck_one", stack: "test-s001", status: "queued" },
    ]);
  }, 60_000);

  it("warm pool: each write of a shard's signups tops its pool up, in the same commit (git) or file (local), which is what is deployed", async () => {
    const pooledManifest = "maxTenants: 10\npoolSize: 2\nshards:\n  - name: s001\n    file: tenants/s001.yaml\n";
    const pooledOf = (text: string) => (parse(text).tenants as { status?: string; tenantId?: string }[]).filter((entry) => entry.status === "pooled");
    // git
    const poolRoot = join(root, "pool-git");
    mkdirSync(poolRoot);
    const { remote } = createTenantsRemote(poolRoot, { [SHARDS_MANIFEST]: pooledManifest, "tenants/s001.yaml": S001 }, "The pooled fleet");
    const clone = join(poolRoot, "clone");
    const repo = await openTestTenantsRepo(remote, clone);
    const h = await harness(repo.dir, true, (name, file) => repo.forShard({ name, file }));
    for (const username of ["pool_one", "pool_two"]) {
      expect((await signup(h.url, { username, email: `${username}@example.com` })).status).toBe(202);
      await waitFor(`${username} ready`, async () => (await tenantStatus(h.url, username)).body.status === "ready", 60_000);
    }
    const remoteText = git(remote, "show", "main:tenants/s001.yaml");
    expect(usernames(remoteText).sort()).toEqual(["first_driver", "pool_one", "pool_two"]);
    const pooled = pooledOf(remoteText);
    expect(pooled).toHaveLength(2);
    expect(new Set(pooled.map((entry) => entry.tenantId)).size).toBe(2);
    const subjects = git(remote, "log", "--format=%s%n%b", "main");
    expect(subjects).toMatch(/Add 1 tenant\(s\) from signups: pool_one\nWarm pool topped up with 2 pooled tenant\(s\): [0-9A-F]{8}, [0-9A-F]{8}\./);
    // The second batch found the pool full: no more pooled entries.
    expect(subjects.match(/Warm pool topped up/g)).toHaveLength(1);
    expect(h.deployers.get("test-s001")!.tenantsFile).toBe(h.fleet.shardOf("test-s001").path);

    // local
    const dir = join(root, "pool-local");
    mkdirSync(join(dir, "tenants"), { recursive: true });
    writeFileSync(join(dir, SHARDS_MANIFEST), pooledManifest);
    writeFileSync(join(dir, "tenants", "s001.yaml"), S001);
    const local = await harness(dir, false, (name, _file, path) => new LocalTenantsFile(path, { fleetDir: dir, shard: name }));
    expect((await signup(local.url, { username: "pool_three", email: "three@example.com" })).status).toBe(202);
    await waitFor("pool_three ready", async () => (await tenantStatus(local.url, "pool_three")).body.status === "ready", 60_000);
    const localText = readFileSync(join(dir, "tenants", "s001.yaml"), "utf8");
    expect(usernames(localText).sort()).toEqual(["first_driver", "pool_three"]);
    expect(pooledOf(localText)).toHaveLength(2);
  }, 120_000);

  it("configuration: FLEET_ENV or PULUMI_STACK, one clear line per conflict", () => {
    const base = { DATABASE_URL: "postgresql://localhost/control" };
    expect(readRunnerConfig({ ...base, FLEET_ENV: "prod" })).toMatchObject({ fleetEnv: "prod", stack: undefined });
    expect(readRunnerConfig({ ...base, FLEET_ENV: "prod", TENANTS_GIT_URL: "/srv/tenants.git" }).git).toMatchObject({
      path: SHARDS_MANIFEST,
      dir: expect.stringMatching(/[\\/]\.state[\\/]tenants-git[\\/]prod$/),
    });
    expect(() => readRunnerConfig(base)).toThrow(/PULUMI_STACK or FLEET_ENV is required/);
    expect(() => readRunnerConfig({ ...base, FLEET_ENV: "prod", PULUMI_STACK: "prod-s001", TENANTS_FILE: "x.yaml" })).toThrow(
      /PULUMI_STACK and FLEET_ENV are both set[\s\S]*TENANTS_FILE cannot be used with FLEET_ENV/,
    );
    expect(() => readRunnerConfig({ ...base, FLEET_ENV: "Prod!" })).toThrow(/FLEET_ENV must be an environment name/);
    expect(() => readRunnerConfig({ ...base, FLEET_ENV: "prod", TENANTS_GIT_URL: "/srv/t.git", TENANTS_GIT_PATH: "a.yaml" })).toThrow(
      /TENANTS_GIT_PATH cannot be used with FLEET_ENV/,
    );
  });
});

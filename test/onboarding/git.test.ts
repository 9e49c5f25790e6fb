/**
 * Git mode: the service commits each batch of signups to a tenants
 * repository and deploys the pushed file. Real git (a local bare repository
 * as the remote), a real PostgreSQL control database, a real SMTP server;
 * the engine is the fake of api.test.ts, which reads the file it is given.
 * Races are made deterministic with the repository's beforePush hook: no
 * timing is asserted.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import { PROJECT_DIR } from "../../engine/paths";
import { readRunnerConfig } from "../../onboarding/config";
import { InProcessLauncher } from "../../onboarding/scheduler";
import { startService, type RunningService } from "../../onboarding/service";
import { redactor, type GitTenantsRepo } from "../../onboarding/tenants-repo";
import { addTenants, setStatus } from "../../tenants/edit";
import { createTenantsRemote, git } from "../../harness/git-remote";
import {
  createControlDatabase,
  FakeDeployer,
  openTestTenantsRepo,
  signup,
  startMailSink,
  tenantStatus,
  testServiceOptions,
  TEST_AUTHOR,
  usernames,
  waitFor,
  type MailSink,
} from "../../harness/onboarding";

const FILE = "tenants/tenants.yaml";
const SERVICE = TEST_AUTHOR.name;
const ORIGINAL = ["john_driver", "maria_k", "sam-courier"];

let postgres: LocalPostgres;
let sink: MailSink;
let root: string;
let remote: string;
let person: string;
let databases = 0;
const running: RunningService[] = [];

const remoteFile = () => git(remote, "show", `main:${FILE}`);
const remoteLog = () => git(remote, "log", "--format=%an|%s", "main").trim().split("\n");

/** A person's edit in their own clone, pushed: what a merged pull request does. */
function personCommits(edit: (text: string) => string, message: string): void {
  git(person, "pull", "--quiet", "--rebase", "origin", "main");
  const path = join(person, FILE);
  writeFileSync(path, edit(readFileSync(path, "utf8")));
  git(person, "commit", "--quiet", "-am", message);
  git(person, "push", "--quiet", "origin", "HEAD:main");
}

function edited(result: ReturnType<typeof addTenants>): string {
  if (!result.ok) throw new Error(result.problems.map((p) => p.message).join("; "));
  return result.text;
}

beforeAll(async () => {
  postgres = await startLocalPostgres();
  sink = await startMailSink();
});

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "dgp-git-"));
  ({ remote, person } = createTenantsRemote(root, { [FILE]: readFileSync(join(PROJECT_DIR, FILE), "utf8") }, "The tenants file"));
});

afterEach(async () => {
  while (running.length > 0) await running.pop()!.close();
  rmSync(root, { recursive: true, force: true });
});

afterAll(async () => {
  await sink?.close();
  await postgres?.stop();
});

interface Harness {
  url: string;
  repo: GitTenantsRepo;
  deployer: FakeDeployer;
  pushes: number[];
}

/** One service instance: its own control database and its own clone of the remote. */
async function harness(name: string, beforePush?: (attempt: number) => Promise<void>): Promise<Harness> {
  const databaseUrl = await createControlDatabase(postgres, `git_control_${++databases}`);
  const pushes: number[] = [];
  const repo = await openTestTenantsRepo(remote, join(root, `clone-${name}`), {
    path: FILE,
    lockFile: undefined,
    beforePush: async (attempt) => {
      pushes.push(attempt);
      await beforePush?.(attempt);
    },
  });
  const deployer = new FakeDeployer(repo.file);
  const service = await startService({
    databaseUrl,
    stack: "test",
    tenantsFile: repo.file,
    ...testServiceOptions(sink),
    launcher: (pool) => new InProcessLauncher(pool, { stack: "test", deployer, tenants: repo, backoff: { baseMs: 200, capMs: 1000, maxAttempts: 10 } }),
    debounceMs: 100,
    pollMs: 100,
    mailPollMs: 100,
  });
  running.push(service);
  return { url: service.url, repo, deployer, pushes };
}

const waitReady = (h: Harness, username: string) =>
  waitFor(
    `${username} ready`,
    async () => {
      const { body } = await tenantStatus(h.url, username);
      return body.status === "ready" ? body : undefined;
    },
    60_000,
  );

async function signUp(h: Harness, username: string) {
  const result = await signup(h.url, { username, email: `${username}@example.com` });
  expect(result.status).toBe(202);
}

describe("git mode", () => {
  it("a signup ends as a commit on the remote branch whose file has it, and that file is what was deployed", async () => {
    const h = await harness("a");
    await signUp(h, "git_driver");
    await waitReady(h, "git_driver");

    const text = remoteFile();
    expect(usernames(text)).toEqual([...ORIGINAL, "git_driver"]);
    expect(text.startsWith(readFileSync(join(PROJECT_DIR, FILE), "utf8"))).toBe(true); // comments and entries kept
    expect(remoteLog()[0]).toBe(`${SERVICE}|Add 1 tenant(s) from signups: git_driver`);
    expect(readFileSync(h.repo.file, "utf8")).toBe(text);
    expect(h.deployer.calls.at(-1)).toEqual([...ORIGINAL, "git_driver"]);
  }, 120_000);

  it("two services pushing at once and a person's commit racing them: every entry and the person's edits survive", async () => {
    // Both services commit on the same remote head, then a person pushes first: both pushes are rejected.
    const arrived = new Set<string>();
    let personPushed = false;
    const race = (name: string) => async (attempt: number) => {
      if (attempt !== 1 || personPushed) return;
      arrived.add(name);
      await waitFor("both services ready to push", async () => arrived.size === 2 || personPushed, 60_000, 20);
      if (!personPushed) {
        personPushed = true;
        personCommits(
          (text) => `# reviewed by a person\n${edited(setStatus(edited(addTenants(text, [{ username: "person_added" }])), "maria_k", "suspended"))}`,
          "Add person_added, suspend maria_k",
        );
      }
    };
    const a = await harness("a", race("a"));
    const b = await harness("b", race("b"));
    const fromA = ["alpha_one", "alpha_two", "alpha_three"];
    const fromB = ["bravo_one", "bravo_two", "bravo_three"];
    await Promise.all([...fromA.map((u) => signUp(a, u)), ...fromB.map((u) => signUp(b, u))]);
    for (const u of fromA) await waitReady(a, u);
    for (const u of fromB) await waitReady(b, u);

    const text = remoteFile();
    expect(usernames(text).sort()).toEqual([...ORIGINAL, "person_added", ...fromA, ...fromB].sort());
    expect(text).toMatch(/^# reviewed by a person\n/);
    expect(text).toMatch(/username: maria_k\n\s+email: maria@example.com\n\s+status: suspended\n/);
    // Each service was rejected at least once and pushed again on the new head.
    expect(a.pushes).toContain(2);
    expect(b.pushes).toContain(2);
    const log = remoteLog();
    expect(log).toContain("A Person|Add person_added, suspend maria_k");
    expect(log.filter((line) => line.startsWith(`${SERVICE}|`)).length).toBeGreaterThanOrEqual(2);
    // What each service deployed last has everyone it knew of, the person's entry included.
    for (const h of [a, b]) expect(h.deployer.calls.at(-1)).toEqual(expect.arrayContaining([...ORIGINAL, "person_added"]));
  }, 180_000);

  it("a stale clone never removes anyone; a signup a person already added is not added twice", async () => {
    const h = await harness("stale");
    // The remote moves on (a person adds two tenants, one of them a pending signup's name) ...
    personCommits(
      (text) => edited(addTenants(text, [{ username: "newer_entry" }, { username: "hand_added", email: "hand_added@example.com" }])),
      "Add newer_entry, hand_added",
    );
    // ... while the service's clone is stale and even has a local commit that drops everyone.
    const clone = join(root, "clone-stale");
    writeFileSync(join(clone, FILE), "tenants: []\n");
    git(clone, "commit", "--quiet", "-am", "stale local copy");

    await signUp(h, "hand_added");
    await signUp(h, "late_signup");
    await waitReady(h, "hand_added");
    await waitReady(h, "late_signup");

    const expected = [...ORIGINAL, "newer_entry", "hand_added", "late_signup"];
    const text = remoteFile();
    expect(usernames(text)).toEqual(expected);
    expect(remoteLog()[0]).toBe(`${SERVICE}|Add 1 tenant(s) from signups: late_signup`);
    expect(readFileSync(h.repo.file, "utf8")).toBe(text);
    // Every deployment saw every tenant of the remote: none was ever deployed without one.
    expect(h.deployer.calls.length).toBeGreaterThan(0);
    for (const call of h.deployer.calls) expect(call).toEqual(expect.arrayContaining([...ORIGINAL, "newer_entry", "hand_added"]));
  }, 120_000);

  it("pushes refused by the remote fail the batch with the reason; the service's retry deploys once the remote accepts", async () => {
    const hook = join(remote, "hooks", "pre-receive");
    writeFileSync(hook, "#!/bin/sh\necho 'branch main is protected' >&2\nexit 1\n", { mode: 0o755 });
    const h = await harness("refused");
    await signUp(h, "blocked_driver");
    const failed = await waitFor(
      "a failed attempt",
      async () => {
        const { body } = await tenantStatus(h.url, "blocked_driver");
        return body.status === "failed" ? body : undefined;
      },
      60_000,
    );
    expect(failed.reason).toMatch(/push .* failed 5 time\(s\).*protected/);
    expect(h.deployer.calls).toEqual([]);
    expect(usernames(remoteFile())).toEqual(ORIGINAL);

    rmSync(hook);
    await waitReady(h, "blocked_driver");
    expect(usernames(remoteFile())).toEqual([...ORIGINAL, "blocked_driver"]);
  }, 120_000);

  it("credentials in the remote URL never appear in messages", () => {
    const redact = redactor("https://deploy-bot:s3cr3t-t0ken@git.example.com/fleet/tenants.git");
    expect(redact("fatal: unable to access 'https://deploy-bot:s3cr3t-t0ken@git.example.com/': 403")).not.toMatch(/s3cr3t-t0ken|deploy-bot/);
  });

  it("configuration: defaults, and one clear line per bad variable", () => {
    const base = { DATABASE_URL: "postgresql://localhost/control", PULUMI_STACK: "shard-1" };
    expect(readRunnerConfig(base).git).toBeUndefined();
    expect(readRunnerConfig({ ...base, TENANTS_GIT_URL: remote }).git).toEqual({
      url: remote,
      branch: "main",
      dir: join(PROJECT_DIR, ".state", "tenants-git", "shard-1"),
      path: "tenants/tenants.yaml",
      author: { name: SERVICE, email: "signup-service@drivergigspro.com" },
      pushAttempts: 5,
    });
    const bad = {
      ...base,
      TENANTS_GIT_URL: remote,
      TENANTS_FILE: "x.yaml",
      TENANTS_GIT_BRANCH: "-x",
      TENANTS_GIT_PATH: "../../etc/passwd",
      TENANTS_GIT_AUTHOR: "bot",
    };
    expect(() => readRunnerConfig(bad)).toThrow(
      /TENANTS_GIT_BRANCH must be a branch name[\s\S]*TENANTS_GIT_PATH must be a path inside the repository[\s\S]*TENANTS_GIT_AUTHOR must look like[\s\S]*TENANTS_FILE and TENANTS_GIT_URL are both set/,
    );
  });
});

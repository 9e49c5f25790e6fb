/**
 * `npm run deploy` (scripts/deploy.ts) with the real engine, in a second
 * checkout as CI's workspace would be, with the state in PostgreSQL (Pulumi's
 * `postgres://` DIY backend) on a real server:
 *
 *  1. a pull request adds a tenant to a new shard: `preview --changed-since`
 *     picks that shard by git, creates its stack from another shard's config
 *     and writes the pull-request comment naming the new tenant;
 *  2. the merge's `up` finds the stack held by another deployment (a lock
 *     row of a live process on this host, as the signup service's update
 *     would hold it): it says who holds it and waits; once that process is
 *     gone, it removes the stale lock and deploys;
 *     A new stack's config file that CI's workspace lost is made again (a
 *     stack never deployed) or restored from its last deployment;
 *  3. the other way round: the signup service's deployment (the onboarding
 *     AutomationDeployer, Automation API) waits for CI's update of that shard;
 *  4. a warm-pool refill's commit deployed by both at once: the service's
 *     deployment waits for CI's update, both succeed, each pooled tenant is made once.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import { findEngine, pulumiContext, type PulumiContext } from "../../engine/pulumi";
import { projectName } from "../../engine/paths";
import { ensureStateDatabase } from "../../local/state-backend";
import { AutomationDeployer, engineEnvVars } from "../../onboarding/deployer";
import { cloneCheckout } from "../../harness/checkout";
import { plantLock } from "../support/state-lock";
import { refillPools } from "../../tenants/pool";

let server: LocalPostgres;
let context: PulumiContext;
let checkout: string;
let scratch: string;
const children: ChildProcess[] = [];

function pulumiIn(args: string[], input?: string): string {
  return execFileSync("pulumi", args, { cwd: checkout, env: context.env, encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

function git(...args: string[]): void {
  execFileSync("git", ["-c", "user.name=ci", "-c", "user.email=ci@example.com", ...args], { cwd: checkout, stdio: "ignore" });
}

/** `npm run deploy -- ARGS` in the checkout; resolves with its exit code and output, `onOutput` sees it as it comes. */
function deploy(
  args: string[],
  onOutput: (all: string) => void = () => undefined,
): { child: ChildProcess; done: Promise<{ code: number | null; output: string }> } {
  const child = spawn("npm", ["run", "--silent", "deploy", "--", ...args], {
    cwd: checkout,
    env: { ...context.env, PATH: `${dirname(process.execPath)}:${context.env.PATH}` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  const add = (chunk: Buffer) => {
    output += chunk.toString("utf8");
    onOutput(output);
  };
  child.stdout!.on("data", add);
  child.stderr!.on("data", add);
  return { child, done: new Promise((resolve) => child.on("close", (code) => resolve({ code, output }))) };
}

/**
 * A live process on this host holding ci-s002's lock, as another deployment
 * by `username` would hold it (lock id `id`); the caller kills it.
 */
async function holdLock(username: string, id: string): Promise<ChildProcess> {
  const holder = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  children.push(holder);
  await plantLock(context.backendUrl, projectName(), "ci-s002", { pid: holder.pid!, username, hostname: hostname(), timestamp: new Date().toISOString() }, id);
  return holder;
}

/** A promise that resolves once `sees` is called with output matching `pattern`. */
function sighting(pattern: RegExp): { waiting: Promise<void>; sees: (output: string) => void } {
  let saw!: () => void;
  const waiting = new Promise<void>((resolve) => (saw = resolve));
  return { waiting, sees: (output) => pattern.test(output) && saw() };
}

/** Kills the lock's holder once the deployment says it waits; a deployment that ends first fails the test at once (with its output). */
async function releaseWhenWaiting(holder: ChildProcess, waiting: Promise<void>, endedEarly: Promise<never>): Promise<void> {
  try {
    await Promise.race([waiting, endedEarly]);
  } finally {
    holder.kill("SIGKILL");
  }
}

beforeAll(async () => {
  const bin = findEngine({ mayBuild: true });
  server = await startLocalPostgres();
  scratch = mkdtempSync(join(tmpdir(), "dgp-deploy-"));
  context = pulumiContext(bin, join(scratch, "state"), await ensureStateDatabase(server));
  checkout = cloneCheckout("deploy");
  // Two shards; s002 is new and empty until the "pull request" below.
  writeFileSync(
    join(checkout, "tenants", "shards.yaml"),
    "maxTenants: 100\nshards:\n  - name: s001\n    file: tenants/tenants.yaml\n  - name: s002\n    file: tenants/s002.yaml\n  - name: s003\n    file: tenants/s003.yaml\n",
  );
  writeFileSync(join(checkout, "tenants", "s002.yaml"), "tenants: []\n");
  writeFileSync(join(checkout, "tenants", "s003.yaml"), "tenants: []\n");
  // The environment's first shard stack, as a team would have committed its Pulumi.ci-s001.yaml.
  pulumiIn(["stack", "init", "ci-s001"]);
  pulumiIn([
    "config",
    "set-all",
    "--path",
    "--stack",
    "ci-s001",
    "--plaintext",
    "servers[0].name=local",
    "--plaintext",
    `servers[0].host=${server.host}`,
    "--plaintext",
    `servers[0].port=${server.port}`,
    "--plaintext",
    "servers[0].sslmode=disable",
    "--plaintext",
    "databaseProvider=builtin",
    "--plaintext",
    "dns.provider=none",
    "--plaintext",
    "dns.zone=localhost",
    "--plaintext",
    "tenantsFile=tenants/tenants.yaml",
  ]);
  pulumiIn(["config", "set", "--path", "--secret", "--stack", "ci-s001", "servers[0].adminPassword"], server.adminPassword);
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-qm", "fleet with an empty shard s002");
}, 900_000);

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL");
  await server?.stop();
  if (checkout) rmSync(dirname(checkout), { recursive: true, force: true });
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("npm run deploy with the real engine", () => {
  it("previews the shards a change touched, creating their stacks, and writes the comment, failures included", async () => {
    writeFileSync(join(checkout, "tenants", "s002.yaml"), "tenants:\n  - username: zoe_k\n    email: zoe@example.com\n");
    writeFileSync(join(checkout, "tenants", "s003.yaml"), "tenants:\n  - username: Max_Power\n");
    const comment = join(scratch, "preview.md");
    const { code, output } = await deploy(["preview", "--env", "ci", "--changed-since", "HEAD", "--comment-file", comment]).done;
    expect(code, output).toBe(1); // s003's file is wrong
    expect(output).toContain("deploy: preview of 2 shard(s) changed since HEAD");
    expect(output).toContain("created stack ci-s002 for the new shard s002, config copied from ci-s001");
    const text = readFileSync(comment, "utf8");
    // The one other change: the new stack's server hardening (harden-<server>), made once per server.
    expect(text).toContain("| s002 | `ci-s002` | 1 | 0 | 0 | 0 | 0 | 1 |");
    expect(text).toContain("- **Created (1):** `zoe_k`");
    expect(text).toContain("| s003 | `ci-s003` | preview failed |");
    expect(text).toMatch(/### s003: `tenants\/s003\.yaml`\n\n\*\*The preview failed\*\*[^]*tenants\/s003\.yaml:2: tenant "Max_Power"[^]*write "max_power"/);
    expect(text).not.toContain("s001:");
    // The pull request is fixed by dropping s003's change before it merges.
    writeFileSync(join(checkout, "tenants", "s003.yaml"), "tenants: []\n");
    // CI's workspace is gone, and with it the stack config file the preview made (see the last test).
    rmSync(join(checkout, "Pulumi.ci-s003.yaml"));
    git("add", "-A");
    git("commit", "-qm", "add zoe_k");
  }, 600_000);

  it("waits while another deployment holds the stack, then deploys", async () => {
    const holder = await holdLock("onboarding", "signup-service");
    const wait = sighting(new RegExp(`stack ci-s002 is locked by another deployment \\(pid ${holder.pid} on [^)]+ \\(onboarding\\)`));
    const run = deploy(["up", "--env", "ci", "--changed-since", "HEAD~1"], wait.sees);
    await releaseWhenWaiting(
      holder,
      wait.waiting,
      run.done.then(({ output }) => Promise.reject(new Error(`deploy ended without waiting:\n${output}`))),
    );
    const { code, output } = await run.done;
    expect(code, output).toBe(0);
    expect(output).toContain("deploy: up of 1 shard(s) changed since HEAD~1"); // s002 only
    expect(output).toMatch(/stack ci-s002: removing the lock left by an interrupted pulumi up \(pid \d+/);
    expect(output).toMatch(/^\[s002\] Resources:\n\[s002\]\s+\+ \d+ created$/m); // each line prefixed with its shard
    const outputs = JSON.parse(pulumiIn(["stack", "output", "--json", "--stack", "ci-s002"])) as { tenants: Record<string, { status: string }> };
    expect(outputs.tenants.zoe_k?.status).toBe("active");

    // The next run's workspace has no Pulumi.ci-s002.yaml either: it comes back from the last deployment.
    rmSync(join(checkout, "Pulumi.ci-s002.yaml"));
    const again = await deploy(["preview", "--env", "ci", "--shard", "s002"]).done;
    expect(again.code, again.output).toBe(0);
    expect(again.output).toContain("restored Pulumi.ci-s002.yaml from the stack's last deployment; commit it");
    const restored = readFileSync(join(checkout, "Pulumi.ci-s002.yaml"), "utf8");
    expect(restored).toContain("drivergigspro:tenantsFile: tenants/s002.yaml");
    expect(restored).toMatch(/adminPassword:\s+secure: v1:/);
  }, 600_000);

  it("makes the signup service's deployment wait for CI's update of the same shard", async () => {
    const holder = await holdLock("ci", "ci-runner");
    const wait = sighting(new RegExp(`stack ci-s002 is locked by another deployment \\(.*pid ${holder.pid} on [^)]+ \\(ci\\)`));
    let log = "";
    const deployer = await AutomationDeployer.open({
      stackName: "ci-s002",
      workDir: checkout,
      envVars: engineEnvVars(context.env),
      onOutput: (text) => {
        log += text;
        wait.sees(log);
      },
    });
    const deploying = deployer.deploy();
    await releaseWhenWaiting(
      holder,
      wait.waiting,
      deploying.then(() => Promise.reject(new Error(`deployed without waiting:\n${log}`))),
    );
    const result = await deploying;
    expect(result.tenants.zoe_k).toMatchObject({ status: "active" });
    expect(log).toMatch(/stack ci-s002: removing the lock left by an interrupted pulumi up \(pid \d+/);
  }, 600_000);

  it("a pool refill's commit: CI's deploy of it and the service's deployment race on the shard; the service waits, both succeed, the pool is made once", async () => {
    const [refill] = await refillPools(checkout, { shards: ["s002"] });
    expect(refill!.added).toHaveLength(3);
    git("add", "-A");
    git("commit", "-qm", "refill the warm pool of s002");
    let log = "";
    const deployer = await AutomationDeployer.open({
      stackName: "ci-s002",
      workDir: checkout,
      envVars: engineEnvVars(context.env),
      onOutput: (text) => (log += text),
    });
    // CI's update of the refill commit holds the stack (it has created its first resource); the service deploys the same shard now.
    const creating = sighting(/^\[s002\] .* created/m);
    const ci = deploy(["up", "--env", "ci", "--shard", "s002"], creating.sees);
    await Promise.race([creating.waiting, ci.done.then(({ output }) => Promise.reject(new Error(`CI's deploy ended before the service started:\n${output}`)))]);
    const made = await deployer.deploy();
    const { code, output } = await ci.done;
    expect(code, output).toBe(0);
    expect(log).toMatch(/stack ci-s002 is locked by another deployment/);
    const pooled = Object.values(made.tenants).filter((tenant) => tenant.status === "pooled");
    expect(pooled.map((tenant) => tenant.tenantId).sort()).toEqual([...refill!.added].sort());
    // Made once: one database per pooled tenant, and nothing left for either to do.
    const names = pooled.map((tenant) => `drivergigspro_${tenant.tenantId.toLowerCase()}`);
    const client = await server.connect();
    const databases = await client.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname = ANY($1)", [names]).finally(() => client.end());
    expect(databases.rows).toHaveLength(3);
    pulumiIn(["preview", "--expect-no-changes", "--stack", "ci-s002", "--non-interactive"]);
  }, 600_000);

  it("makes a never-deployed stack whose config file is lost again from the template", async () => {
    const { code, output } = await deploy(["preview", "--env", "ci", "--shard", "s003"]).done;
    expect(code, output).toBe(0);
    expect(output).toContain("stack ci-s003 was never deployed and its config file is not here: creating it again");
    expect(output).toContain("created stack ci-s003 for the new shard s003, config copied from ci-s001");
  }, 600_000);
});

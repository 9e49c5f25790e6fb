/**
 * The kill test of instant signups (issue 18, item 3): the pooled signup
 * service (harness/pool-service.ts, fake engine, real git remote, real BIND,
 * real PostgreSQL, real SMTP sink) runs as a process of its own
 * (harness/pool-service-process.ts). A pre-receive hook on the remote holds
 * every push until the test lets it go, so the claims are answered ready and
 * still pending in the claims outbox (and the refill their claims started is
 * pushing too) when the service's whole process tree is SIGKILLed in the
 * middle of that push. Restarted on the same clones: every claim keeps its
 * tenant, lands in the tenants file once, and mails once; no pooled tenant is
 * claimed twice and no signup is lost or doubled.
 */
import type { ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import { startBind, type LocalBind } from "../../harness/bind";
import { urlQuery } from "../../harness/admin-query";
import { createTenantsRemote, git } from "../../harness/git-remote";
import { createControlDatabase, signup, startMailSink, tenantStatus, waitFor, type MailSink } from "../../harness/onboarding";
import { poolManifest, POOL_SHARD, SHARDS_MANIFEST, spawnPooledServiceProcess, type PoolServiceProcessConfig } from "../../harness/pool-service";
import { errorMessage } from "../../lib/errors";
import { validateTenantsText } from "../../tenants/load";
import { killTree, stillRunning } from "../support/process-tree";

const POOL = 3;

let postgres: LocalPostgres;
let bind: LocalBind;
let sink: MailSink;
let root: string;
let child: ChildProcess | undefined;

beforeAll(async () => {
  postgres = await startLocalPostgres();
  bind = await startBind("test");
  sink = await startMailSink();
  root = mkdtempSync(join(tmpdir(), "dgp-pool-kill-"));
});

afterAll(async () => {
  if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) killTree(child.pid);
  await sink?.close();
  await bind?.stop();
  await postgres?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** The remote's tenants file as `username:tenantId:status` lines. */
function entries(remote: string): string[] {
  const parsed = validateTenantsText(git(remote, "show", `main:${POOL_SHARD.file}`));
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return parsed.tenants.map((tenant) => `${tenant.username}:${tenant.tenantId ?? ""}:${tenant.status}`);
}

/** A pre-receive hook that records the subject of each pushed commit and holds the push until `release` exists. */
function holdPushes(remote: string, dir: string): { held(): string[]; release(): void } {
  const [log, flag] = [join(dir, "pushes.log"), join(dir, "release")];
  const hook = join(remote, "hooks", "pre-receive");
  writeFileSync(hook, `#!/bin/sh\nwhile read old new ref; do git log -1 --format=%s "$new" >> '${log}'; done\nwhile [ ! -e '${flag}' ]; do sleep 0.05; done\n`);
  chmodSync(hook, 0o755);
  return {
    held: () => (existsSync(log) ? readFileSync(log, "utf8").split("\n").filter(Boolean) : []),
    release: () => writeFileSync(flag, ""),
  };
}

describe("SIGKILL of the pooled signup service while claims are pending", () => {
  it("after a restart every claim keeps its tenant and lands once, no tenant is claimed twice, no signup is lost or doubled, one mail each", async () => {
    const dir = join(root, "fleet");
    mkdirSync(dir, { recursive: true });
    const files = { [SHARDS_MANIFEST]: poolManifest(POOL, 20), [POOL_SHARD.file]: "tenants: []\n" };
    const { remote } = createTenantsRemote(dir, files, "The pooled fleet");
    const databaseUrl = await createControlDatabase(postgres, "pool_kill");
    const config: PoolServiceProcessConfig = {
      root: dir,
      databaseUrl,
      remote,
      instance: "service",
      smtpPort: sink.port,
      bind: { host: bind.host, port: bind.port, zone: bind.zone, keyName: bind.keyName, keyAlgorithm: bind.keyAlgorithm, keySecret: bind.keySecret },
    };
    let output = "";
    const onOutput = (text: string) => (output += text);
    let service = await spawnPooledServiceProcess(config, onOutput);
    child = service.child;
    const statusOf = async (username: string) => (await tenantStatus(service.url, username)).body;
    const free = async () => Number((await urlQuery(databaseUrl, "SELECT count(*) AS n FROM onboarding_pool WHERE claimed_by IS NULL"))[0]!.n);

    // The pool is filled by the first update (the pool-empty path).
    expect((await signup(service.url, { username: "warm_up", email: "warm_up@example.com" })).status).toBe(202);
    await waitFor("warm_up ready", async () => (await statusOf("warm_up")).status === "ready", 60_000);
    await waitFor(`a pool of ${POOL}`, async () => (await free()) === POOL, 60_000);
    const pooled = (await urlQuery<{ tenant_id: string }>(databaseUrl, "SELECT tenant_id FROM onboarding_pool")).map((row) => row.tenant_id).sort();

    // Pushes held: 3 signups claim the pool and are answered ready, 2 more find it empty (queued).
    const held = holdPushes(remote, dir);
    const claimers = Array.from({ length: POOL }, (_, i) => `claim_${i}`);
    const later = ["empty_0", "empty_1"];
    const answers = new Map<string, Record<string, any>>();
    for (const username of [...claimers, ...later]) {
      const answer = await signup(service.url, { username, email: `${username}@example.com` });
      expect(answer.status).toBe(202);
      answers.set(username, answer.body);
    }
    for (const username of claimers) expect(answers.get(username)).toMatchObject({ status: "ready" });
    for (const username of later) expect(answers.get(username)!.status).not.toBe("ready");
    const claimed = new Map(claimers.map((username) => [username, String(answers.get(username)!.tenantId)]));
    expect([...claimed.values()].sort()).toEqual(pooled);

    // Kill while a claims group commit and the update of the queued signup(s), which refills the pool,
    // are both inside their pushes (the hook holds them) and nothing is bound.
    const holding = () => held.held().some((s) => s.startsWith("Claim ")) && held.held().some((s) => s.startsWith("Add ") && s.includes("empty_0"));
    await waitFor("a claims commit and the refilling update held in their pushes", async () => holding(), 60_000, 20).catch((error: unknown) => {
      throw new Error(`${errorMessage(error)}; held: ${JSON.stringify(held.held())}; the service's output:\n${output.slice(-4000)}`);
    });
    const pending = await urlQuery<{ tenant_id: string; claimed_by: string }>(databaseUrl, "SELECT tenant_id, claimed_by FROM onboarding_pool WHERE NOT bound");
    expect(pending.map((row) => `${row.claimed_by}:${row.tenant_id}`).sort()).toEqual(claimers.map((u) => `${u}:${claimed.get(u)}`).sort());
    const killed = killTree(service.child.pid!);
    console.log(`killed ${killed.length} processes while these pushes were held: ${JSON.stringify(held.held())}`);
    await waitFor("the killed service tree gone", async () => stillRunning(killed).length === 0, 30_000, 10);
    expect(service.child.signalCode ?? (await new Promise((resolve) => service.child.once("exit", (_code, signal) => resolve(signal))))).toBe("SIGKILL");
    // Neither push landed; the refill is in the killed update's local commit only.
    for (const username of [...claimers, ...later]) expect(entries(remote).some((entry) => entry.startsWith(`${username}:`))).toBe(false);
    expect(entries(remote).filter((entry) => entry.endsWith(":pooled"))).toHaveLength(POOL);
    const killedUpdate = validateTenantsText(git(join(dir, "service-clone"), "show", `HEAD:${POOL_SHARD.file}`));
    expect(killedUpdate.ok && killedUpdate.tenants.filter((tenant) => tenant.status === "pooled").length).toBeGreaterThan(POOL);
    expect(sink.mails.filter((mail) => mail.to.some((to) => to.startsWith("claim_")))).toEqual([]);

    // Restarted on the same clones, pushes let through.
    held.release();
    service = await spawnPooledServiceProcess(config, onOutput);
    child = service.child;
    const everyone = ["warm_up", ...claimers, ...later];
    await waitFor(
      "every signup ready and every claim bound",
      async () =>
        (await Promise.all(everyone.map(statusOf))).every((status) => status.status === "ready") &&
        (await urlQuery(databaseUrl, "SELECT 1 FROM onboarding_pool WHERE claimed_by IS NOT NULL AND NOT bound")).length === 0,
      120_000,
      100,
    ).catch((error: unknown) => {
      throw new Error(`${errorMessage(error)}; the service's output:\n${output.slice(-4000)}`);
    });
    await waitFor(`the pool full again (${POOL})`, async () => (await free()) === POOL, 120_000);
    await waitFor("every welcome mail sent", async () => {
      const outbox = await urlQuery<{ sent: boolean }>(databaseUrl, "SELECT sent_at IS NOT NULL AS sent FROM onboarding_outbox");
      return outbox.length === everyone.length && outbox.every((row) => row.sent);
    });

    // Each claim kept its tenant and is in the file once; each signup is there once; no tenant ID twice.
    const file = entries(remote);
    for (const username of claimers) {
      expect((await statusOf(username)).tenantId).toBe(claimed.get(username));
      expect(file.filter((entry) => entry.startsWith(`${username}:`))).toEqual([`${username}:${claimed.get(username)}:active`]);
    }
    for (const username of everyone) expect(file.filter((entry) => entry.startsWith(`${username}:`))).toHaveLength(1);
    const ids = file.map((entry) => entry.split(":")[1]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(file.filter((entry) => entry.endsWith(":pooled"))).toHaveLength(POOL);
    const rows = await urlQuery<{ tenant_id: string; claimed_by: string | null }>(databaseUrl, "SELECT tenant_id, claimed_by FROM onboarding_pool");
    const claimedBy = rows.filter((row) => row.claimed_by !== null);
    expect(claimedBy.map((row) => `${row.claimed_by}:${row.tenant_id}`).sort()).toEqual(claimers.map((u) => `${u}:${claimed.get(u)}`).sort());
    const signups = await urlQuery<{ username: string }>(databaseUrl, "SELECT username FROM onboarding_signups ORDER BY username");
    expect(signups.map((row) => row.username)).toEqual([...everyone].sort());
    // One mail per signup, to its own address.
    expect(sink.mails.map((mail) => mail.to.join(",")).sort()).toEqual(everyone.map((u) => `${u}@example.com`).sort());
    expect(new Set(sink.mails.map((mail) => mail.messageId)).size).toBe(everyone.length);
  }, 300_000);
});

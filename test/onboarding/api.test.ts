/**
 * The onboarding service on a real port, with a real PostgreSQL control
 * database and a real SMTP server. The engine is a fake that reads the
 * tenants file the service really writes (the real engine is in the
 * *.e2e.test.ts files).
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import { PROJECT_DIR } from "../../engine/paths";
import { retryDelayMs } from "../../onboarding/backoff";
import { InProcessLauncher } from "../../onboarding/scheduler";
import { startService, type RunningService } from "../../onboarding/service";
import { sign, signedHeaders, verifySignature } from "../../onboarding/signature";
import {
  createControlDatabase,
  FakeDeployer,
  mailText,
  SECRET,
  signup,
  startMailSink,
  tenantStatus,
  testServiceOptions,
  waitFor,
  type MailSink,
} from "../../harness/onboarding";

let postgres: LocalPostgres;
let sink: MailSink;
let workDir: string;
let databases = 0;
const running: RunningService[] = [];

beforeAll(async () => {
  postgres = await startLocalPostgres();
  sink = await startMailSink();
  workDir = mkdtempSync(join(tmpdir(), "dgp-onboarding-"));
});

afterEach(async () => {
  while (running.length > 0) await running.pop()!.close();
  sink.mails.length = 0;
});

afterAll(async () => {
  await sink?.close();
  await postgres?.stop();
  rmSync(workDir, { recursive: true, force: true });
});

interface Harness {
  service: RunningService;
  url: string;
  deployer: FakeDeployer;
  tenantsFile: string;
  sql<T = Record<string, any>>(query: string, values?: unknown[]): Promise<T[]>;
}

/** A service with its own control database and its own copy of tenants/tenants.yaml (comments and all). */
async function harness(setup: (deployer: FakeDeployer) => void = () => undefined): Promise<Harness> {
  const database = `control_${++databases}`;
  const databaseUrl = await createControlDatabase(postgres, database);
  const tenantsFile = join(workDir, `${database}.yaml`);
  copyFileSync(join(PROJECT_DIR, "tenants", "tenants.yaml"), tenantsFile);
  const deployer = new FakeDeployer(tenantsFile);
  setup(deployer);
  const service = await startService({
    databaseUrl,
    stack: "test",
    tenantsFile,
    ...testServiceOptions(sink),
    launcher: (pool) => new InProcessLauncher(pool, { stack: "test", deployer, backoff: { baseMs: 200, capMs: 1000, maxAttempts: 5 } }),
    debounceMs: 100,
    pollMs: 100,
    mailPollMs: 100,
    mailBackoff: { baseMs: 200, capMs: 1000 },
  });
  running.push(service);
  return {
    service,
    url: service.url,
    deployer,
    tenantsFile,
    async sql(query, values = []) {
      return (await service.pool.query(query, values)).rows;
    },
  };
}

async function untouched(h: Harness, fileBefore: Buffer) {
  expect(readFileSync(h.tenantsFile).equals(fileBefore)).toBe(true);
  expect(await h.sql("SELECT username FROM onboarding_signups")).toEqual([]);
  expect(await h.sql("SELECT digest FROM onboarding_seen_signatures")).toEqual([]);
  expect(h.deployer.calls).toEqual([]);
}

const waitReady = (h: Harness, username: string, timeoutMs = 20_000) =>
  waitFor(
    `${username} ready`,
    async () => {
      const { body } = await tenantStatus(h.url, username);
      return body.status === "ready" ? body : undefined;
    },
    timeoutMs,
  );

describe("signatures", () => {
  it("sign/verify: prefix optional, wrong, stale and future timestamps rejected", () => {
    const now = Date.now();
    const ts = Math.floor(now / 1000);
    const signature = sign(SECRET, ts, "{}");
    expect(verifySignature(SECRET, { "x-signature-timestamp": String(ts), "x-signature": signature }, "{}", { now }).ok).toBe(true);
    expect(verifySignature(SECRET, { "x-signature-timestamp": String(ts), "x-signature": `sha256=${signature}` }, "{}", { now }).ok).toBe(true);
    expect(verifySignature(SECRET, { "x-signature-timestamp": String(ts), "x-signature": signature }, "{ }", { now })).toMatchObject({
      ok: false,
      reason: "wrong signature",
    });
    expect(verifySignature(SECRET, { "x-signature-timestamp": String(ts), "x-signature": signature }, "{}", { now: now + 301_000 })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/stale/),
    });
    expect(verifySignature(SECRET, { "x-signature-timestamp": String(ts), "x-signature": signature }, "{}", { now: now - 301_000 })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/stale/),
    });
    expect(verifySignature(SECRET, {}, "{}")).toMatchObject({ ok: false, reason: expect.stringMatching(/missing/) });
  });

  it("missing, wrong, stale and other-secret signatures get 401 and change nothing", async () => {
    const h = await harness();
    const before = readFileSync(h.tenantsFile);
    const body = JSON.stringify({ username: "new_driver", email: "new@example.com" });
    const post = (headers: Record<string, string>) =>
      fetch(`${h.url}/v1/signups`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });

    const missing = await post({});
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as { error: string }).error).toMatch(/missing signature/);

    const ts = String(Math.floor(Date.now() / 1000));
    const wrong = await post({ "x-signature-timestamp": ts, "x-signature": "0".repeat(64) });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: string }).error).toBe("wrong signature");

    const stale = await post(signedHeaders(SECRET, body, Date.now() - 6 * 60_000));
    expect(stale.status).toBe(401);
    expect(((await stale.json()) as { error: string }).error).toMatch(/stale/);

    const otherSecret = await post(signedHeaders("another-secret-0123456789abcdef", body));
    expect(otherSecret.status).toBe(401);

    // A signature for a different body (tampered payload).
    const tampered = await post(signedHeaders(SECRET, JSON.stringify({ username: "new_driver", email: "evil@example.com" })));
    expect(tampered.status).toBe(401);

    await new Promise((resolve) => setTimeout(resolve, 400)); // past the debounce: no deployment may start
    await untouched(h, before);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(metrics).toMatch(/onboarding_signups_total\{result="unauthorized"\} 5/);
  });

  it("a replayed request (same signature) gets 401 and changes nothing; a freshly signed duplicate is idempotent", async () => {
    const h = await harness();
    const first = await signup(h.url, { username: "new_driver", email: "new@example.com", source: "landing-page" });
    expect(first.status).toBe(202);
    await waitReady(h, "new_driver");
    await waitFor("the welcome mail", async () => sink.mails.length === 1);
    const fileAfterFirst = readFileSync(h.tenantsFile);

    const replay = await fetch(`${h.url}/v1/signups`, { method: "POST", headers: first.headers, body: first.raw });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: string }).error).toMatch(/replayed/);

    const again = await signup(h.url, { username: "new_driver", email: "new@example.com" });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ username: "new_driver", statusUrl: first.body.statusUrl, status: "ready" });

    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(readFileSync(h.tenantsFile).equals(fileAfterFirst)).toBe(true);
    expect(await h.sql("SELECT username FROM onboarding_signups")).toEqual([{ username: "new_driver" }]);
    expect(h.deployer.calls).toHaveLength(1);
    expect(sink.mails).toHaveLength(1);
  });
});

describe("bad requests get 400 with a clear message and change nothing", () => {
  const cases: [string, string, RegExp][] = [
    ["malformed JSON", '{"username": "new_driver", "email": ', /malformed JSON body/],
    ["upper-case username", JSON.stringify({ username: "John_Driver", email: "j@example.com" }), /username must be lower case; write "john_driver"/],
    [
      "username with a space",
      JSON.stringify({ username: "john driver", email: "j@example.com" }),
      /username may only contain a-z, 0-9, _ and -; found " " \(U\+0020\)/,
    ],
    ["reserved username", JSON.stringify({ username: "admin", email: "j@example.com" }), /username "admin" is reserved/],
    ["over-long username", JSON.stringify({ username: `a${"b".repeat(44)}`, email: "j@example.com" }), /username must be 3 to 40 characters long; it has 45/],
    ["over-long email", JSON.stringify({ username: "new_driver", email: `${"x".repeat(250)}@example.com` }), /email is too long: at most 254 characters/],
    [
      "over-long source",
      JSON.stringify({ username: "new_driver", email: "j@example.com", source: "s".repeat(101) }),
      /source is too long: at most 100 characters/,
    ],
    ["invalid email", JSON.stringify({ username: "new_driver", email: "not-an-address" }), /email must be a valid e-mail address/],
    ["missing email", JSON.stringify({ username: "new_driver" }), /email is required/],
    ["unknown field", JSON.stringify({ username: "new_driver", email: "j@example.com", password: "x" }), /unknown field\(s\): password/],
    ["not an object", "[1, 2]", /the body must be a JSON object/],
  ];

  it.each(cases)("%s", async (_name, raw, message) => {
    const h = await harness();
    const before = readFileSync(h.tenantsFile);
    const response = await signup(h.url, undefined, { raw });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatch(message);
    expect(JSON.stringify(response.body)).not.toMatch(/stack|at \//); // no stack traces
    await new Promise((resolve) => setTimeout(resolve, 300));
    await untouched(h, before);
  });

  it("a body over 16 KiB gets 413", async () => {
    const h = await harness();
    const response = await signup(h.url, undefined, { raw: JSON.stringify({ username: "new_driver", email: "j@example.com", source: "x".repeat(20_000) }) });
    expect(response.status).toBe(413);
  });
});

describe("idempotency and conflicts", () => {
  it("the same username with another e-mail gets 409; a DNS-label clash or a hand-added name gets 409", async () => {
    const h = await harness();
    expect((await signup(h.url, { username: "new_driver", email: "new@example.com" })).status).toBe(202);
    const other = await signup(h.url, { username: "new_driver", email: "someone-else@example.com" });
    expect(other.status).toBe(409);
    expect(other.body.error).toMatch(/already taken/);
    const label = await signup(h.url, { username: "new-driver", email: "x@example.com" });
    expect(label.status).toBe(409);
    expect(label.body.error).toMatch(/same web address as "new_driver"/);
    // john_driver is in the tenants file already (added by a person).
    const inFile = await signup(h.url, { username: "john_driver", email: "john@example.com" });
    expect(inFile.status).toBe(409);
    const clash = await signup(h.url, { username: "john-driver", email: "john@example.com" });
    expect(clash.status).toBe(409);
    expect(clash.body.error).toMatch(/john-driver/);
    expect((await h.sql("SELECT username FROM onboarding_signups")).map((r) => r.username)).toEqual(["new_driver"]);
  });

  it("duplicate signups, even concurrent ones, make one tenant and one e-mail", async () => {
    const h = await harness((d) => (d.delayMs = 300));
    // Different sources, so each call has its own signature (identical calls within a second are replays).
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => signup(h.url, { username: "dup_driver", email: "dup@example.com", source: `try-${i}` })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(202));
    expect(new Set(answers.map((a) => a.body.statusUrl)).size).toBe(1);
    await waitReady(h, "dup_driver");
    expect((await signup(h.url, { username: "dup_driver", email: "DUP@example.com" })).status).toBe(202);
    await waitFor("the welcome mail", async () => sink.mails.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(sink.mails).toHaveLength(1);
    const text = readFileSync(h.tenantsFile, "utf8");
    expect(text.match(/username: dup_driver/g)).toHaveLength(1);
    expect(text).toMatch(/^# DriverGigsPro tenants/); // comments kept
  });

  it("concurrent signups for one web address: one name wins, every other answer is a clear 409", async () => {
    const h = await harness();
    const names = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? "race_driver" : "race-driver"));
    const answers = await Promise.all(names.map((username, i) => signup(h.url, { username, email: "race@example.com", source: `try-${i}` })));
    const winners = new Set(names.filter((_, i) => answers[i]!.status === 202));
    expect(winners.size).toBe(1);
    const losers = answers.filter((a) => a.status !== 202);
    expect(losers.length).toBe(5);
    for (const answer of losers) {
      expect(answer.status).toBe(409);
      expect(answer.body.error).toMatch(/same web address as "race[-_]driver"/);
    }
    expect((await h.sql("SELECT username FROM onboarding_signups")).map((r) => r.username)).toEqual([...winners]);
  });
});

describe("status API", () => {
  it("Bearer token or signature; 401 otherwise; 404 for unknown; never a secret", async () => {
    const h = await harness();
    await signup(h.url, { username: "new_driver", email: "new@example.com" });
    const ready = await waitReady(h, "new_driver");
    expect(ready).toMatchObject({
      username: "new_driver",
      status: "ready",
      domain: "new-driver-drivergigspro.test",
      appUrl: "https://new-driver-drivergigspro.test",
    });
    expect(ready.tenantId).toMatch(/^[0-9A-F]{8}$/);
    expect(ready.createdAt).toBeTruthy();
    expect(ready.readyAt).toBeTruthy();
    expect(JSON.stringify(ready)).not.toMatch(/password|databaseUrl|sessionSecret|postgres(ql)?:\/\//i);

    expect((await tenantStatus(h.url, "new_driver", "wrong-token")).status).toBe(401);
    expect((await fetch(`${h.url}/v1/tenants/new_driver`)).status).toBe(401);
    const signed = await fetch(`${h.url}/v1/tenants/new_driver`, { headers: signedHeaders(SECRET, "GET /v1/tenants/new_driver") });
    expect(signed.status).toBe(200);
    const otherPath = await fetch(`${h.url}/v1/tenants/new_driver`, { headers: signedHeaders(SECRET, "GET /v1/tenants/john_driver") });
    expect(otherPath.status).toBe(401);
    expect((await tenantStatus(h.url, "nobody_here")).status).toBe(404);
  });

  it("healthz and Prometheus metrics", async () => {
    const h = await harness();
    const health = await (await fetch(`${h.url}/healthz`)).json();
    expect(health).toMatchObject({ ok: true, controlDatabase: "reachable" });
    await signup(h.url, { username: "new_driver", email: "new@example.com" });
    await waitReady(h, "new_driver");
    await waitFor("the welcome mail", async () => sink.mails.length === 1);
    const response = await fetch(`${h.url}/metrics`);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await response.text();
    expect(text).toMatch(/^# TYPE onboarding_signups_total counter$/m);
    expect(text).toMatch(/^onboarding_signups_total\{result="accepted"\} 1$/m);
    expect(text).toMatch(/^onboarding_deployments_total\{status="succeeded"\} 1$/m);
    expect(text).toMatch(/^onboarding_deployment_duration_seconds_count 1$/m);
    expect(text).toMatch(/^onboarding_tenants\{status="ready"\} 1$/m);
    expect(text).toMatch(/^onboarding_emails_total\{result="sent"\} 1$/m);
  });
});

describe("deployments", () => {
  it("signups arriving during a deployment are batched into the next; never two at once", async () => {
    const h = await harness((d) => (d.delayMs = 1500));
    expect((await signup(h.url, { username: "first_one", email: "first@example.com" })).status).toBe(202);
    await waitFor("the first deployment", async () => h.deployer.running > 0);
    for (let i = 0; i < 6; i++) expect((await signup(h.url, { username: `batch_${i}`, email: `b${i}@example.com` })).status).toBe(202);
    for (const username of ["first_one", ...Array.from({ length: 6 }, (_, i) => `batch_${i}`)]) await waitReady(h, username);
    expect(h.deployer.calls).toHaveLength(2);
    expect(h.deployer.maxConcurrent).toBe(1);
    expect(h.deployer.calls[1]).toEqual(expect.arrayContaining(Array.from({ length: 6 }, (_, i) => `batch_${i}`)));
    const deployments = await h.sql("SELECT status, usernames FROM onboarding_deployments ORDER BY id");
    expect(deployments.map((d) => [d.status, d.usernames.length])).toEqual([
      ["succeeded", 1],
      ["succeeded", 6],
    ]);
    await waitFor("7 welcome mails", async () => sink.mails.length === 7);
  });

  it("a failed deployment marks its tenants failed with the reason, then retries with backoff", async () => {
    const h = await harness((d) => (d.failuresLeft = 2));
    await signup(h.url, { username: "unlucky_one", email: "u@example.com" });
    const failed = await waitFor("failed status", async () => {
      const { body } = await tenantStatus(h.url, "unlucky_one");
      return body.status === "failed" ? body : undefined;
    });
    expect(failed.reason).toMatch(/could not connect to server eu-1: connection refused/);
    const ready = await waitReady(h, "unlucky_one");
    expect(ready.attempts).toBe(3);
    expect(ready.reason).toBeUndefined();
    const deployments = await h.sql("SELECT status, started_at FROM onboarding_deployments ORDER BY id");
    expect(deployments.map((d) => d.status)).toEqual(["failed", "failed", "succeeded"]);
    // Backoff: 200 ms after the first failure, 400 ms after the second.
    const gap = (a: number, b: number) => deployments[b]!.started_at.getTime() - deployments[a]!.started_at.getTime();
    expect(gap(0, 1)).toBeGreaterThanOrEqual(200);
    expect(gap(1, 2)).toBeGreaterThanOrEqual(400);
    await waitFor("the welcome mail", async () => sink.mails.length === 1);
  });

  it("retry delays double and are capped", () => {
    const backoff = { baseMs: 1000, capMs: 5000, maxAttempts: 5 };
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(backoff, n))).toEqual([1000, 2000, 4000, 5000, 5000]);
  });
});

describe("welcome e-mail", () => {
  it("has the app URL, the username and the tenant ID; a failed send is retried and does not hold up provisioning", async () => {
    sink.failNext(2);
    const h = await harness();
    await signup(h.url, { username: "mail_driver", email: "mail@example.com" });
    const ready = await waitReady(h, "mail_driver");
    await waitFor("the welcome mail", async () => sink.mails.length === 1, 20_000);
    const [mail] = sink.mails;
    expect(mail!.to).toEqual(["mail@example.com"]);
    const text = mailText(mail!);
    expect(text).toContain(`https://${ready.domain}`);
    expect(text).toContain("mail_driver");
    expect(text).toContain(ready.tenantId);
    expect(mail!.messageId).toBe(`<welcome-${ready.tenantId}@drivergigspro.test>`);
    const [row] = await h.sql("SELECT attempts, sent_at FROM onboarding_outbox");
    expect(row!.attempts).toBe(3);
    expect(row!.sent_at).toBeTruthy();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(sink.mails).toHaveLength(1);
  });
});

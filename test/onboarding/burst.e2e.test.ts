/**
 * A burst of 20 signups through the real Pulumi engine (Automation API,
 * deployments in detached runner processes), against a real PostgreSQL and
 * a real SMTP server: at most a few deployments, 20 ready tenants with
 * databases, 20 welcome mails; and a lock left by a killed runner does not
 * stop them.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectName } from "../../engine/paths";
import type { RunningService } from "../../onboarding/service";
import { plantLock } from "../support/state-lock";
import { setUpEngineStack, startServiceWithRunners, stopServiceStack, type EngineStack } from "../../harness/service-engine-stack";
import { mailText, signup, startMailSink, tenantStatus, waitFor, type MailSink } from "../../harness/onboarding";

let engine: EngineStack;
let sink: MailSink;
let service: RunningService;

beforeAll(
  async () => {
    engine = await setUpEngineStack("onb-burst");
    // What a runner killed outright (OOM) leaves behind: the engine's lock, held by a process that is gone.
    const deadPid = spawnSync(process.execPath, ["-e", ""]).pid!;
    await plantLock(engine.context.backendUrl, projectName(), engine.stack, {
      pid: deadPid,
      username: "root",
      hostname: hostname(),
      timestamp: new Date().toISOString(),
    });
    sink = await startMailSink();
    service = await startServiceWithRunners(engine, sink.url);
  },
  30 * 60 * 1000,
);

afterAll(() => stopServiceStack({ service, sink, engine }), 30 * 60 * 1000);

describe("a burst of 20 signups (real engine)", { timeout: 30 * 60 * 1000 }, () => {
  const usernames = Array.from({ length: 20 }, (_, i) => `burst_driver_${i}`);

  it("becomes at most a few deployments, 20 ready tenants and 20 welcome mails", async () => {
    // Five at once, the rest trickling in while the first deployment runs.
    const first = await Promise.all(usernames.slice(0, 5).map((u) => signup(service.url, { username: u, email: `${u}@example.com` })));
    const rest = [];
    for (const u of usernames.slice(5)) {
      rest.push(await signup(service.url, { username: u, email: `${u}@example.com` }));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    for (const answer of [...first, ...rest]) {
      expect(answer.status).toBe(202);
      expect(JSON.stringify(answer.body)).not.toMatch(/password|databaseUrl|sessionSecret|postgres(ql)?:\/\//i);
    }

    const ready = await waitFor(
      "20 ready tenants",
      async () => {
        const statuses = await Promise.all(usernames.map((u) => tenantStatus(service.url, u)));
        return statuses.every((s) => s.body.status === "ready") ? statuses.map((s) => s.body) : undefined;
      },
      25 * 60 * 1000,
      2000,
    );

    // The first runner removed the dead runner's lock instead of failing on it.
    expect(readFileSync(engine.serviceEnv().RUNNER_LOG!, "utf8")).toMatch(/removing the lock left by an interrupted pulumi up \(pid \d+/);
    const { rows: deployments } = await service.pool.query("SELECT status, usernames FROM onboarding_deployments ORDER BY id");
    expect(deployments.length).toBeGreaterThanOrEqual(1);
    expect(deployments.length).toBeLessThanOrEqual(3);
    expect(deployments.every((d) => d.status === "succeeded")).toBe(true);

    // The engine's view and PostgreSQL's agree with the service.
    const outputs = engine.outputs();
    expect(Object.keys(outputs.tenants).sort()).toEqual([...usernames].sort());
    const admin = await engine.server.connect();
    const { rows } = await admin.query("SELECT datname FROM pg_database WHERE datname = ANY($1)", [Object.values(outputs.tenants).map((t) => t.database)]);
    await admin.end();
    expect(rows).toHaveLength(20);
    for (const tenant of ready) expect(tenant.tenantId).toBe(outputs.tenants[tenant.username]!.tenantId);

    // The tenants file: every name once, the comment kept.
    const text = readFileSync(engine.tenantsFile, "utf8");
    expect(text).toMatch(/^# tenants of the onboarding e2e stack/);
    for (const u of usernames) expect(text.match(new RegExp(`username: ${u}\\n`, "g"))).toHaveLength(1);

    await waitFor("20 welcome mails", async () => sink.mails.length >= 20, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(sink.mails).toHaveLength(20);
    expect(new Set(sink.mails.map((m) => m.messageId)).size).toBe(20);
    for (const tenant of ready) {
      const mail = sink.mails.find((m) => m.to[0] === `${tenant.username}@example.com`)!;
      const body = mailText(mail);
      expect(body).toContain(`https://${tenant.domain}`);
      expect(body).toContain(tenant.tenantId);
    }
  });
});

/**
 * Kill the service (SIGKILL, as a crash or an OOM kill would) in the middle
 * of a real-engine deployment, start it again: nothing lost, nothing
 * duplicated. The service runs as a child process (`onboarding/main.ts`,
 * configured by environment variables, as in production).
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/embedded-postgres";
import { serviceProcessEnv, setUpEngineStack, spawnServiceProcess, type EngineStack } from "../../harness/service-engine-stack";
import { signup, startMailSink, tenantStatus, waitFor, type MailSink } from "../../harness/onboarding";

let engine: EngineStack;
let sink: MailSink;
let port: number;
let baseUrl: string;
let child: ChildProcess | undefined;
let output = "";

function startServiceProcess(): ChildProcess {
  const env = engine.serviceEnv({ ...serviceProcessEnv(sink.url, port), DEBOUNCE_MS: "500", POLL_MS: "1000", RETRY_BASE_MS: "2000" });
  return spawnServiceProcess(env, (text) => (output += text));
}

async function healthy(): Promise<void> {
  await waitFor(
    `the service on ${baseUrl} (output so far:\n${output.slice(-2000)})`,
    async () => {
      try {
        return (await fetch(`${baseUrl}/healthz`)).ok;
      } catch {
        return false;
      }
    },
    120_000,
    250,
  );
}

async function control<T = Record<string, any>>(query: string, values: unknown[] = []): Promise<T[]> {
  const client = new Client({ connectionString: engine.controlUrl });
  await client.connect();
  try {
    return (await client.query(query, values)).rows as T[];
  } finally {
    await client.end();
  }
}

beforeAll(
  async () => {
    engine = await setUpEngineStack("onb-restart");
    sink = await startMailSink();
    port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
  },
  30 * 60 * 1000,
);

afterAll(
  async () => {
    child?.kill("SIGKILL");
    // A runner the killed service left behind finishes on its own; wait for it before destroying the stack.
    if (engine) {
      await waitFor(
        "no running deployment",
        async () => (await control("SELECT 1 FROM onboarding_deployments WHERE status = 'running'")).length === 0,
        20 * 60 * 1000,
        1000,
      ).catch(() => undefined);
    }
    await sink?.close();
    await engine?.cleanup();
  },
  30 * 60 * 1000,
);

describe("killing the service mid-deployment (real engine)", { timeout: 40 * 60 * 1000 }, () => {
  it("loses no signup and sends no duplicate mail after a restart", async () => {
    child = startServiceProcess();
    await healthy();
    const firstWave = Array.from({ length: 4 }, (_, i) => `crash_driver_${i}`);
    for (const u of firstWave) expect((await signup(baseUrl, { username: u, email: `${u}@example.com` })).status).toBe(202);

    // Mid-deployment: the engine has started and created at least one tenant database.
    await waitFor(
      "a running deployment with a database created",
      async () => {
        const running = await control("SELECT id FROM onboarding_deployments WHERE status = 'running' AND engine_started_at IS NOT NULL");
        if (running.length === 0) return false;
        const admin = await engine.server.connect();
        const { rows } = await admin.query("SELECT 1 FROM pg_database WHERE datname LIKE 'drivergigspro\\_%'");
        await admin.end();
        return rows.length > 0;
      },
      20 * 60 * 1000,
      200,
    );
    child.kill("SIGKILL");
    await new Promise((resolve) => child!.once("exit", resolve));

    // Restarted: it serves the old signups' statuses at once, and takes new ones.
    child = startServiceProcess();
    await healthy();
    for (const u of firstWave) expect(["queued", "provisioning", "ready"]).toContain((await tenantStatus(baseUrl, u)).body.status);
    const secondWave = ["after_crash_0", "after_crash_1"];
    for (const u of secondWave) expect((await signup(baseUrl, { username: u, email: `${u}@example.com` })).status).toBe(202);
    // The same signup again (a retrying webhook sender): same answer, nothing new.
    expect((await signup(baseUrl, { username: firstWave[0], email: `${firstWave[0]}@example.com` })).status).toBe(202);

    const all = [...firstWave, ...secondWave];
    await waitFor(
      "every tenant ready",
      async () => {
        const statuses = await Promise.all(all.map((u) => tenantStatus(baseUrl, u)));
        return statuses.every((s) => s.body.status === "ready");
      },
      25 * 60 * 1000,
      2000,
    );
    await waitFor("6 welcome mails", async () => sink.mails.length >= 6, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 3000));

    expect(sink.mails).toHaveLength(6);
    expect(new Set(sink.mails.map((m) => m.messageId)).size).toBe(6);
    expect(sink.mails.map((m) => m.to[0]).sort()).toEqual(all.map((u) => `${u}@example.com`).sort());

    const outputs = engine.outputs();
    expect(Object.keys(outputs.tenants).sort()).toEqual([...all].sort());
    const admin = await engine.server.connect();
    const { rows } = await admin.query("SELECT datname FROM pg_database WHERE datname LIKE 'drivergigspro\\_%'");
    await admin.end();
    expect(rows.map((r) => r.datname).sort()).toEqual(
      Object.values(outputs.tenants)
        .map((t) => t.database)
        .sort(),
    );

    const text = readFileSync(engine.tenantsFile, "utf8");
    expect(text).toMatch(/^# tenants of the onboarding e2e stack/);
    for (const u of all) expect(text.match(new RegExp(`username: ${u}\\n`, "g"))).toHaveLength(1);

    // The engine's own lock was never hit, and no deployment is left running.
    const deployments = await control<{ status: string; error: string | null }>("SELECT status, error FROM onboarding_deployments ORDER BY id");
    expect(deployments.filter((d) => d.status === "running")).toEqual([]);
    expect(deployments.filter((d) => d.status === "failed")).toEqual([]);
    expect(readFileSync(join(engine.workDir, "runner.log"), "utf8")).not.toMatch(/currently locked|locked by/i);
  });
});

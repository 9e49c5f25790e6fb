/**
 * The service as in production (`onboarding/main.ts`, FLEET_ENV, git mode,
 * deployments in runner processes) with the real engine: every shard is full,
 * so a signup makes a new shard. Its stack is created with the first shard's
 * config, the runner deploys the pushed file of the new shard, and the same
 * commit lists the shard in tenants/shards.yaml. One small deployment (one
 * tenant); the first shard's stack is configured, never deployed.
 */
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/embedded-postgres";
import { configureLocalStack } from "../../local/stack";
import { pulumi } from "../../engine/pulumi";
import { removeStack } from "../../harness/engine-stack";
import { createTenantsRemote, git } from "../../harness/git-remote";
import { serviceProcessEnv, setUpEngineStack, spawnServiceProcess, type EngineStack } from "../../harness/service-engine-stack";
import { signup, startMailSink, tenantStatus, waitFor, type MailSink } from "../../harness/onboarding";

const ENV = `fe${process.pid}`;
const FIRST = `${ENV}-s001`;
const NEW = `${ENV}-s002`;
let engine: EngineStack;
let sink: MailSink;
let child: ChildProcess | undefined;
let baseUrl: string;
let remote: string;
let clone: string;
let output = "";

beforeAll(
  async () => {
    engine = await setUpEngineStack("onb-fleet");
    configureLocalStack(engine.context, FIRST, engine.server, { tenantsFile: "tenants/s001.yaml" });
    ({ remote } = createTenantsRemote(
      engine.workDir,
      {
        "tenants/shards.yaml": "# the e2e fleet\nmaxTenants: 1\nshards:\n  - name: s001\n    file: tenants/s001.yaml\n",
        "tenants/s001.yaml": "tenants:\n  - username: held_tenant\n",
      },
      "The fleet: one full shard",
    ));
    clone = join(engine.workDir, "service-clone");

    sink = await startMailSink();
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    const env = engine.serviceEnv({
      FLEET_ENV: ENV,
      TENANTS_GIT_URL: remote,
      TENANTS_GIT_DIR: clone,
      ...serviceProcessEnv(sink.url, port),
      DEBOUNCE_MS: "300",
      POLL_MS: "1000",
    });
    delete env.PULUMI_STACK;
    delete env.TENANTS_FILE;
    child = spawnServiceProcess(env, (text) => (output += text));
    await waitFor(
      `the service (output so far:\n${output.slice(-2000)})`,
      async () => (await fetch(`${baseUrl}/healthz`).catch(() => undefined))?.ok,
      180_000,
      250,
    );
  },
  30 * 60 * 1000,
);

afterAll(
  async () => {
    child?.kill("SIGTERM");
    await sink?.close();
    if (engine) for (const stack of [NEW, FIRST]) removeStack(engine.context, stack, { destroy: true });
    await engine?.cleanup();
  },
  30 * 60 * 1000,
);

describe("a fleet with the real engine", { timeout: 30 * 60 * 1000 }, () => {
  it("a signup into a full fleet makes a new shard: stack created from the first one's config, deployed, listed in the manifest", async () => {
    expect((await signup(baseUrl, { username: "fleet_e2e_one", email: "one@example.com" })).status).toBe(202);
    const ready = await waitFor(
      "fleet_e2e_one ready",
      async () => {
        const { body } = await tenantStatus(baseUrl, "fleet_e2e_one");
        if (body.status === "failed") throw new Error(`failed: ${body.reason}\n${output.slice(-3000)}`);
        return body.status === "ready" ? body : undefined;
      },
      15 * 60 * 1000,
      1000,
    );

    const manifest = git(remote, "show", "main:tenants/shards.yaml");
    expect(manifest.startsWith("# the e2e fleet\n")).toBe(true);
    expect(parse(manifest).shards).toEqual([
      { name: "s001", file: "tenants/s001.yaml" },
      { name: "s002", file: "tenants/s002.yaml" },
    ]);
    expect(git(remote, "show", "main:tenants/s002.yaml")).toMatch(/username: fleet_e2e_one/);
    expect(git(remote, "show", "main:tenants/s001.yaml")).not.toMatch(/fleet_e2e_one/);

    // The new stack: the first shard's config, its own file (the service's clone), the tenant in its outputs.
    const config = (stack: string) =>
      JSON.parse(pulumi(engine.context, ["config", "--json", "--show-secrets", "--stack", stack])) as Record<string, { value?: string }>;
    const [first, created] = [config(FIRST), config(NEW)];
    expect(created["drivergigspro:tenantsFile"]?.value).toBe(join(clone, "tenants", "s002.yaml"));
    for (const key of ["drivergigspro:servers", "drivergigspro:dns", "drivergigspro:databaseProvider"]) expect(created[key]?.value).toBe(first[key]?.value);
    const outputs = JSON.parse(pulumi(engine.context, ["stack", "output", "--json", "--show-secrets", "--stack", NEW])) as {
      tenants: Record<string, { tenantId: string; database: string; role: string }>;
      connections: Record<string, { databaseUrl: string }>;
    };
    expect(Object.keys(outputs.tenants)).toEqual(["fleet_e2e_one"]);
    expect(outputs.tenants.fleet_e2e_one!.tenantId).toBe(ready.tenantId);
    // The status carries where the app connects (the stack's servers config, its tenants output), never the
    // password; the app takes that from the secret `connections` output, whose URL names the same place.
    const url = new URL(outputs.connections.fleet_e2e_one!.databaseUrl);
    expect(ready.connection).toEqual({
      host: url.hostname,
      port: Number(url.port || 5432),
      database: url.pathname.slice(1),
      role: decodeURIComponent(url.username),
    });
    expect(ready.connection).toMatchObject({ database: outputs.tenants.fleet_e2e_one!.database, role: outputs.tenants.fleet_e2e_one!.role });
    expect(JSON.stringify(ready)).not.toContain(decodeURIComponent(url.password));
    const admin = await engine.server.connect();
    try {
      expect((await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [outputs.tenants.fleet_e2e_one!.database])).rows).toHaveLength(1);
    } finally {
      await admin.end();
    }
    await waitFor("the welcome mail", async () => sink.mails.length === 1, 60_000);
  });
});

/**
 * The onboarding service's /metrics with per-tenant usage, checked by
 * `promtool check metrics` and scraped by a real Prometheus server (Debian's
 * `prometheus` package, installed by .ci/run), queried through its HTTP API.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/embedded-postgres";
import { PROJECT_DIR } from "../../engine/paths";
import { createTransport } from "../../onboarding/mailer";
import { InProcessLauncher } from "../../onboarding/scheduler";
import { startService, type RunningService } from "../../onboarding/service";
import { FakeDeployer, SECRET, TOKEN, waitFor } from "../../harness/onboarding";
import { startUsageFleet, tenantClient, type UsageFleet } from "./support";

let fleet: UsageFleet;
let service: RunningService;
let prometheus: ChildProcess | undefined;
let prometheusLog = "";
let workDir: string;

beforeAll(async () => {
  for (const tool of ["prometheus", "promtool"]) {
    if (spawnSync(tool, ["--version"]).error) throw new Error(`${tool} is not installed: apt-get install -y --no-install-recommends prometheus (.ci/run does)`);
  }
  workDir = mkdtempSync(join(tmpdir(), "dgp-prom-"));
  fleet = await startUsageFleet(2);
  const tenantsFile = join(workDir, "tenants.yaml");
  writeFileSync(tenantsFile, "tenants: []\n");
  service = await startService({
    databaseUrl: fleet.controlUrl,
    stack: "test",
    tenantsFile,
    webhookSecret: SECRET,
    apiToken: TOKEN,
    mailFrom: "DriverGigsPro <welcome@drivergigspro.test>",
    transport: createTransport({ jsonTransport: true }),
    launcher: (pool) => new InProcessLauncher(pool, { stack: "test", deployer: new FakeDeployer(tenantsFile) }),
    log: () => undefined,
    usage: { source: async () => ({ tenants: fleet.usageTenants, servers: fleet.servers }), intervalMs: 500 },
  });
  await waitFor("the first usage reading", async () => (service.usage!.readings > 0 ? true : undefined), 60_000);
}, 180_000);

afterAll(async () => {
  if (prometheus?.pid !== undefined && prometheus.exitCode === null) {
    prometheus.kill("SIGTERM");
    await new Promise((resolve) => prometheus!.once("exit", resolve));
  }
  await service?.close();
  await fleet?.stop();
  rmSync(workDir, { recursive: true, force: true });
});

describe("per-tenant metrics on the service's /metrics", () => {
  it("pass promtool check metrics, carry tenant IDs and never usernames", async () => {
    const text = await (await fetch(`${service.url}/metrics`)).text();
    const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(check.error).toBeUndefined();
    expect(`${check.stdout}${check.stderr}`.trim()).toBe("");
    expect(check.status).toBe(0);
    for (const tenant of fleet.usageTenants) {
      expect(text).toMatch(new RegExp(`^drivergigspro_tenant_database_size_bytes\\{tenant_id="${tenant.tenantId}",server="local"\\} \\d+`, "m"));
      expect(text).not.toContain(tenant.username);
    }
    expect(text).toMatch(/^drivergigspro_tenant_slow_statements\{/m);
    expect(text).toMatch(/^onboarding_tenants\{status="ready"\} 0$/m);
    expect(text).toMatch(/^drivergigspro_usage_tenants_truncated 0$/m);
  });

  it("are scraped by a real Prometheus and queried by tenant ID", async () => {
    const port = await freePort();
    const config = join(workDir, "prometheus.yml");
    const target = new URL(service.url).host;
    writeFileSync(
      config,
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: drivergigspro\n    scrape_interval: 1s\n    static_configs:\n      - targets: ["${target}"]\n`,
    );
    prometheus = spawn("prometheus", [`--config.file=${config}`, `--storage.tsdb.path=${join(workDir, "tsdb")}`, `--web.listen-address=127.0.0.1:${port}`], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    prometheus.on("error", (error) => (prometheusLog += `\n${error.message}`));
    prometheus.stdout!.on("data", (chunk) => (prometheusLog += String(chunk)));
    prometheus.stderr!.on("data", (chunk) => (prometheusLog += String(chunk)));

    // Tenant A gets a held connection, so its series differs from B's.
    const [a, b] = fleet.usageTenants;
    const held = await tenantClient(fleet.tenants[0]!);
    try {
      const query = async (promql: string) => {
        const response = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(promql)}`).catch(() => undefined);
        if (!response?.ok) return undefined;
        const body = (await response.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
        return body.data.result.length > 0 ? body.data.result : undefined;
      };
      const size = await waitFor(
        `Prometheus to scrape tenant ${a!.tenantId} (log: ${prometheusLog.slice(-500)})`,
        () => query(`drivergigspro_tenant_database_size_bytes{tenant_id="${a!.tenantId}"}`),
        60_000,
        250,
      );
      expect(size).toHaveLength(1);
      expect(size[0]!.metric).toMatchObject({ tenant_id: a!.tenantId, server: "local", job: "drivergigspro" });
      expect(Object.keys(size[0]!.metric).sort()).toEqual(["__name__", "instance", "job", "server", "tenant_id"]);
      expect(Number(size[0]!.value[1])).toBeGreaterThan(1024 * 1024);
      await waitFor(
        "A's held connection in Prometheus",
        async () => {
          const result = await query(`drivergigspro_tenant_connections{tenant_id="${a!.tenantId}"} == 1`);
          return result?.length === 1 ? result : undefined;
        },
        60_000,
        250,
      );
      const others = await query(`drivergigspro_tenant_connections{tenant_id="${b!.tenantId}"}`);
      expect(others?.map((series) => series.value[1])).toEqual(["0"]);

      // Every query of the Grafana dashboard is valid PromQL for this Prometheus.
      const dashboard = JSON.parse(readFileSync(join(PROJECT_DIR, "usage", "grafana-dashboard.json"), "utf8")) as {
        panels: { targets?: { expr: string }[] }[];
      };
      for (const { expr } of dashboard.panels.flatMap((panel) => panel.targets ?? [])) {
        const response = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expr.replaceAll("$tenant", a!.tenantId))}`);
        expect(response.status, expr).toBe(200);
      }
    } finally {
      await held.end();
    }
  }, 120_000);
});

/** The pure parts of usage tracking: figures → rows, CSV, periods, epochs, inputs, metric cardinality. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parsePeriod, transactionsBetween, type UsageSample } from "../../usage/billing";
import type { TenantFigures } from "../../usage/collect";
import { adminServersFromConfig, parseAdminUrl, tenantsFromStackOutputs, type UsageTenant } from "../../usage/inputs";
import { redactSecrets as redact } from "../../lib/redact";
import { storageDecision } from "../../usage/enforce";
import { UsageMetrics } from "../../usage/metrics";
import { csvField, renderCsv, renderUsageTable, USAGE_CSV_COLUMNS, usageRows } from "../../usage/report";

const MIB = 1024 * 1024;

function figures(tenantId: string, overrides: Partial<TenantFigures> = {}): TenantFigures {
  return {
    tenantId,
    database: `drivergigspro_${tenantId.toLowerCase()}`,
    server: "eu-1",
    sampledAt: new Date("2026-11-05T10:00:00Z"),
    exists: true,
    sizeBytes: 8 * MIB,
    connections: 2,
    serverConnectionLimit: 10,
    xactCommit: 1234,
    xactRollback: 5,
    deadlocks: 0,
    tempBytes: 0,
    statsReset: null,
    lastActivity: new Date("2026-11-05T09:59:00.123Z"),
    users: 1,
    sessions: 3,
    slowStatements: null,
    ownTransactions: 2,
    writesStoppedSince: null,
    ...overrides,
  };
}

const tenants: UsageTenant[] = [
  {
    tenantId: "A1B2C3D4",
    username: "john_driver",
    database: "drivergigspro_a1b2c3d4",
    server: "eu-1",
    status: "active",
    plan: "pro",
    limits: { connectionLimit: 20, storageQuotaMb: 5 },
    seedVersion: "7",
  },
  { tenantId: "0F0F0F0F", username: "maria_k", database: "drivergigspro_0f0f0f0f", server: "eu-1", status: "suspended" },
];

describe("usage rows", () => {
  it("joins figures to plans and limits, flags storage over quota", () => {
    const rows = usageRows(tenants, [figures("0F0F0F0F", { problem: "database drivergigspro_0f0f0f0f does not exist" }), figures("A1B2C3D4")]);
    expect(rows[0]).toMatchObject({
      tenantId: "A1B2C3D4",
      plan: "pro",
      seedVersion: "7",
      overQuota: true,
      storageQuotaMb: 5,
      connectionLimit: 20,
      transactions: 1234,
    });
    expect(rows[1]).toMatchObject({
      tenantId: "0F0F0F0F",
      plan: null,
      overQuota: false,
      connectionLimit: 10,
      problem: expect.stringContaining("does not exist"),
    });
    const table = renderUsageTable(rows);
    expect(table.split("\n")[0]).toMatch(/^TENANT ID\s+USERNAME\s+PLAN\s+SERVER/);
    expect(table).toMatch(/A1B2C3D4\s+john_driver\s+pro\s+eu-1\s+7\s+8\.0\s+5\s+-\s+2\/20\s+1234/);
    expect(table).toContain("OVER QUOTA");
    expect(() => usageRows(tenants, [figures("A1B2C3D4")])).toThrow(/no usage figures for tenant 0F0F0F0F \(maria_k\)/);
  });

  it("writes CSV by RFC 4180", () => {
    expect(csvField('a "b", c')).toBe('"a ""b"", c"');
    expect(csvField(null)).toBe("");
    const csv = renderCsv(usageRows(tenants.slice(0, 1), [figures("A1B2C3D4")]), USAGE_CSV_COLUMNS);
    const [head, line] = csv.trim().split("\n");
    expect(head!.split(",")).toEqual([...USAGE_CSV_COLUMNS]);
    expect(line!.split(",").slice(0, 4)).toEqual(["A1B2C3D4", "john_driver", "pro", "eu-1"]);
  });
});

describe("billing arithmetic", () => {
  const sample = (xactCommit: number, statsReset: string | null, overrides: Partial<UsageSample> = {}): UsageSample => ({
    tenantId: "A1B2C3D4",
    username: "john_driver",
    sampledAt: new Date(),
    status: "active",
    exists: true,
    sizeBytes: 0,
    connections: 0,
    xactCommit,
    statsReset: statsReset ? new Date(statsReset) : null,
    ownTransactions: 2,
    ...overrides,
  });
  it("counts deltas in an epoch, whole values after a reset or a drop, nothing negative", () => {
    expect(transactionsBetween(sample(100, null), sample(150, null))).toBe(48);
    expect(transactionsBetween(sample(100, "2026-11-01T00:00:00Z"), sample(150, "2026-11-02T00:00:00Z"))).toBe(150);
    expect(transactionsBetween(sample(100, null), sample(30, null))).toBe(30);
    expect(transactionsBetween(sample(100, null), sample(101, null))).toBe(0);
    expect(transactionsBetween(sample(100, null, { exists: false }), sample(7, null))).toBe(7);
  });
  it("takes a month as YYYY-MM and refuses anything else", () => {
    expect(parsePeriod("2026-11")).toMatchObject({ start: new Date("2026-11-01T00:00:00Z"), end: new Date("2026-12-01T00:00:00Z") });
    expect(parsePeriod("2026-12").end).toEqual(new Date("2027-01-01T00:00:00Z"));
    for (const bad of ["2026-13", "2026-1", "nov", "2026-11-01"]) expect(() => parsePeriod(bad)).toThrow(/--period must be a month as YYYY-MM/);
  });
});

describe("inputs", () => {
  it("reads tenants from stack outputs, with or without plans, and names a bad entry", () => {
    const outputs = { tenants: { john_driver: { ...tenants[0], role: "r", domain: "d" } }, connections: "[secret]" };
    expect(tenantsFromStackOutputs(outputs)).toEqual([{ ...tenants[0], role: "r" }]);
    expect(() => tenantsFromStackOutputs({ tenants: { x: { tenantId: "nope" } } })).toThrow(/tenants\.x\.tenantId/);
    expect(() => tenantsFromStackOutputs({})).toThrow(/run "pulumi up" first/);
  });
  it("builds admin URLs from the stack config and hides passwords in messages", () => {
    const [server] = adminServersFromConfig([{ name: "eu-1", host: "pg.internal", adminPassword: "p@ss:word/1", sslmode: "verify-full" }]);
    expect(server).toEqual({ name: "eu-1", url: "postgresql://postgres:p%40ss%3Aword%2F1@pg.internal:5432/postgres?sslmode=verify-full" });
    expect(new URL(server!.url).password).toBe("p%40ss%3Aword%2F1");
    expect(parseAdminUrl("eu-2=postgres://a:b@h:1/postgres")).toEqual({ name: "eu-2", url: "postgres://a:b@h:1/postgres" });
    expect(() => parseAdminUrl("postgresql://admin:hunter2@h/db")).toThrow(/NAME=postgresql/);
    expect(() => parseAdminUrl("postgresql://admin:hunter2@h/db")).not.toThrow(/hunter2/);
    expect(redact("failed for postgresql://admin:hunter2@h:5432/x")).toBe("failed for postgresql://admin:***@h:5432/x");
  });
});

describe("per-tenant metrics", () => {
  it("label tenants by ID and server only, and cap the exported tenants with a truncated gauge", async () => {
    const many = Array.from({ length: 5 }, (_, i) => ({ ...tenants[0]!, tenantId: `0000000${i}`, username: `secret_user_${i}` }));
    const metrics = new UsageMetrics({ maxTenants: 3 });
    metrics.update(
      usageRows(
        many,
        many.map((tenant) => figures(tenant.tenantId)),
      ),
    );
    const text = await metrics.registry.metrics();
    expect(text).not.toMatch(/secret_user|john_driver|@/);
    expect(text).toMatch(/^drivergigspro_tenant_database_size_bytes\{tenant_id="00000000",server="eu-1"\} 8388608$/m);
    expect(text).toMatch(/^drivergigspro_tenant_transactions_total\{tenant_id="00000002",server="eu-1"\} 1234$/m);
    expect(text).not.toContain('tenant_id="00000003"');
    expect(text).toMatch(/^drivergigspro_usage_tenants_truncated 2$/m);
    expect(text).toMatch(/^drivergigspro_tenant_over_quota\{tenant_id="00000001",server="eu-1"\} 1$/m);
    // A tenant that leaves the fleet loses its series at the next reading.
    metrics.update(usageRows(many.slice(1, 2), [figures("00000001")]));
    const next = await metrics.registry.metrics();
    expect(next).not.toContain('tenant_id="00000000"');
    expect(next).toMatch(/^drivergigspro_usage_tenants_truncated 0$/m);
  });
});

describe("the Grafana dashboard", () => {
  it("has a tenant picker, one row per concern, and only metrics the exporter has", () => {
    const dashboard = JSON.parse(readFileSync(join(__dirname, "..", "..", "usage", "grafana-dashboard.json"), "utf8"));
    const tenant = dashboard.templating.list.find((variable: { name: string }) => variable.name === "tenant");
    expect(tenant.definition).toBe("label_values(drivergigspro_tenant_database_size_bytes, tenant_id)");
    const panels = dashboard.panels as { type: string; title: string; targets?: { expr: string }[] }[];
    expect(panels.filter((panel) => panel.type === "row").map((panel) => panel.title)).toEqual([
      "Size",
      "Connections",
      "Transactions and rollbacks",
      "Slow statements",
    ]);
    const known = new Set(new UsageMetrics().registry.getMetricsAsArray().map((metric) => metric.name));
    const used = panels.flatMap((panel) => panel.targets ?? []).flatMap((target) => target.expr.match(/drivergigspro_[a-z_]+/g) ?? []);
    expect(used.length).toBeGreaterThan(10);
    for (const name of used) expect(known, name).toContain(name);
    for (const target of panels.flatMap((panel) => panel.targets ?? [])) {
      if (!target.expr.includes("truncated")) expect(target.expr).toContain('tenant_id=~"$tenant"');
    }
  });
});

describe("storage hard limit decisions", () => {
  const tenant = (status: string, storageHardLimitMb?: number): UsageTenant => ({
    tenantId: "A1B2C3D4",
    username: "john_driver",
    database: "drivergigspro_a1b2c3d4",
    server: "eu-1",
    status,
    limits: storageHardLimitMb === undefined ? {} : { storageHardLimitMb },
  });
  const stopped = new Date("2026-11-05T09:00:00Z");

  it("stops past the hard limit, resumes at or under it, never stops a tombstone, and needs the database and a limit", () => {
    const over = figures("A1B2C3D4", { sizeBytes: 10 * MIB + 1 });
    const at = figures("A1B2C3D4", { sizeBytes: 10 * MIB });
    expect(storageDecision(tenant("active", 10), over)).toBe("stop");
    expect(storageDecision(tenant("suspended", 10), over)).toBe("stop");
    expect(storageDecision(tenant("active", 10), at)).toBeUndefined();
    expect(storageDecision(tenant("active", 10), { ...over, writesStoppedSince: stopped })).toBeUndefined();
    expect(storageDecision(tenant("active", 10), { ...at, writesStoppedSince: stopped })).toBe("resume");
    expect(storageDecision(tenant("removed", 10), over)).toBeUndefined();
    expect(storageDecision(tenant("removed", 10), { ...at, writesStoppedSince: stopped })).toBe("resume");
    // No hard limit (an older stack's outputs): never stopped, and a stop from before is lifted.
    expect(storageDecision(tenant("active"), over)).toBeUndefined();
    expect(storageDecision(tenant("active"), { ...over, writesStoppedSince: stopped })).toBe("resume");
    expect(storageDecision(tenant("active", 10), { ...over, exists: false })).toBeUndefined();
  });
});

/**
 * Usage tracking and billing against a real PostgreSQL: what the reader
 * finds, that loading one tenant moves none of another's figures, and the
 * billing of hand-inserted samples.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Pool } from "pg";
import { createPool } from "../../onboarding/db";
import { billPeriod, parsePeriod, type Period } from "../../usage/billing";
import { collectUsage, type TenantFigures } from "../../usage/collect";
import { usageRows } from "../../usage/report";
import { ensureUsageSchema, insertSamples, readSamples, recordUsage } from "../../usage/samples";
import { startUsageFleet, tenantClient, type UsageFleet } from "./support";

let fleet: UsageFleet;
let pool: Pool;
const ALL_TIME: Period = { label: "all", start: new Date(0), end: new Date(Date.UTC(2100, 0, 1)) };

beforeAll(async () => {
  fleet = await startUsageFleet(2, [
    { plan: "pro", limits: { storageQuotaMb: 1 } },
    { plan: "free", limits: { connectionLimit: 5, storageQuotaMb: 500 } },
  ]);
  pool = createPool(fleet.controlUrl, 4);
  await ensureUsageSchema(pool);
}, 120_000);

afterAll(async () => {
  await pool?.end();
  await fleet?.stop();
});

const byId = (figures: TenantFigures[], id: string) => figures.find((figure) => figure.tenantId === id)!;

describe("reading usage", () => {
  it("reads every figure per tenant with 2 statements per server and 1 per tenant", async () => {
    const reading = await collectUsage(fleet.servers, fleet.usageTenants);
    expect(reading.queries).toBe(2 + 2);
    expect(reading.connections).toBe(1 + 2);
    for (const tenant of fleet.usageTenants) {
      const figure = byId(reading.figures, tenant.tenantId);
      expect(figure).toMatchObject({ exists: true, database: tenant.database, server: "local", users: 0, sessions: 0, connections: 0, deadlocks: 0 });
      expect(figure.problem).toBeUndefined();
      expect(figure.sizeBytes).toBeGreaterThan(1024 * 1024);
      expect(figure.slowStatements).toBe(0);
    }
    const rows = usageRows(fleet.usageTenants, reading.figures);
    // A seeded database is over 1 MB (tenant A's quota), far under 500 MB (B's).
    expect(rows.map((row) => [row.plan, row.overQuota, row.connectionLimit])).toEqual([
      ["pro", true, null],
      ["free", false, 5],
    ]);
  });

  it("names a tenant whose database is missing, and an unreachable server without its password", async () => {
    const ghost = { ...fleet.usageTenants[0]!, tenantId: "0000DEAD", username: "ghost", database: "drivergigspro_0000dead" };
    const reading = await collectUsage(fleet.servers, [ghost]);
    expect(reading.figures[0]).toMatchObject({ exists: false, problem: expect.stringContaining("drivergigspro_0000dead does not exist") });

    const down = [{ name: "local", url: `postgresql://postgres:s3cret-pw@127.0.0.1:1/postgres?sslmode=disable` }];
    const failure = await collectUsage(down, fleet.usageTenants).catch((error: Error) => error);
    expect(String(failure)).toMatch(/cannot reach server "local" \(127\.0\.0\.1:1\)/);
    expect(String(failure)).not.toContain("s3cret-pw");
    await expect(collectUsage([], fleet.usageTenants)).rejects.toThrow(
      /tenant [0-9A-F]{8} \(driver_0\) lives on server "local", which has no admin connection/,
    );
  });
});

describe("billing isolation", () => {
  it("loading tenant A moves A's figures and none of B's", async () => {
    const [a, b] = fleet.tenants;
    const idA = a!.tenantId;
    const idB = b!.tenantId;
    const sample = () => recordUsage(pool, fleet.usageTenants, () => collectUsage(fleet.servers, fleet.usageTenants));
    const before = await sample();

    // Tenant A: 3 connections held open, 200 committed writes, 5 rollbacks, a temp file.
    const held = await Promise.all([0, 1, 2].map(() => tenantClient(a!)));
    const writer = held[0]!;
    for (let i = 0; i < 200; i++) await writer.query("INSERT INTO users (username, email) VALUES ($1, $2)", [`u${i}`, `u${i}@example.com`]);
    for (let i = 0; i < 30; i++) await writer.query("INSERT INTO sessions (sid, sess, expire) VALUES ($1, '{}', now())", [`s${i}`]);
    for (let i = 0; i < 5; i++) {
      await writer.query("BEGIN");
      await writer.query("INSERT INTO users (username) VALUES ('rolled_back')");
      await writer.query("ROLLBACK");
    }
    await writer.query("SET work_mem = '64kB'");
    await writer.query("SELECT count(*) FROM (SELECT g FROM generate_series(1, 100000) g ORDER BY g DESC) s");
    await writer.query("SELECT pg_sleep(0.6)"); // a slow statement (pg_stat_statements)
    const during = await sample();
    await Promise.all(held.map((client) => client.end()));
    const after = await sample();

    expect(byId(during.figures, idA).connections).toBe(3);
    const a0 = byId(before.figures, idA);
    const a2 = byId(after.figures, idA);
    expect(a2.xactCommit - a0.xactCommit).toBeGreaterThanOrEqual(230);
    expect(a2.xactRollback - a0.xactRollback).toBe(5);
    expect(a2.tempBytes).toBeGreaterThan(a0.tempBytes);
    expect(a2.sizeBytes).toBeGreaterThan(a0.sizeBytes);
    expect([a2.users, a2.sessions]).toEqual([200, 30]);
    expect(a0.slowStatements).toBe(0);
    expect(a2.slowStatements).toBeGreaterThanOrEqual(1); // pg_sleep(0.6), and the sort if the machine is slow

    const b0 = byId(before.figures, idB);
    for (const reading of [during, after]) {
      const b1 = byId(reading.figures, idB);
      expect({ ...b1, sampledAt: 0, xactCommit: 0 }).toEqual({ ...b0, sampledAt: 0, xactCommit: 0 });
    }
    // B's raw counter moves only by the reader's own two transactions per sample, which billing takes out.
    expect(byId(after.figures, idB).xactCommit - b0.xactCommit).toBe(2 * 2);

    const lines = billPeriod(await readSamples(pool, ALL_TIME.start, ALL_TIME.end), ALL_TIME);
    const lineA = lines.find((line) => line.tenantId === idA)!;
    const lineB = lines.find((line) => line.tenantId === idB)!;
    expect(lineB).toMatchObject({ transactions: 0, peakConnections: 0, peakStorageBytes: b0.sizeBytes, averageStorageBytes: b0.sizeBytes, samples: 3 });
    expect(lineA.transactions).toBeGreaterThanOrEqual(230);
    expect(lineA.peakConnections).toBe(3);
  }, 120_000);
});

describe("billing a period from stored samples", () => {
  it("gives exact figures with a baseline, a statistics reset, a counter drop and a suspended day", async () => {
    await pool.query("TRUNCATE usage_samples");
    const reset1 = "2026-10-01T00:00:00Z";
    const reset2 = "2026-11-10T12:00:00Z";
    const row = (tenant: string, at: string, size: number, connections: number, commits: number, statsReset: string, extra: object = {}) => ({
      tenant_id: tenant,
      username: tenant === "AAAA0001" ? "alice" : "bob",
      server: "local",
      database: `drivergigspro_${tenant.toLowerCase()}`,
      status: "active",
      plan: null,
      sampled_at: at,
      db_exists: true,
      size_bytes: size,
      connections,
      xact_commit: commits,
      xact_rollback: 0,
      deadlocks: 0,
      temp_bytes: 0,
      stats_reset: statsReset,
      users: 0,
      sessions: 0,
      slow_statements: null,
      own_transactions: 2,
      ...extra,
    });
    await insertSamples(pool, [
      // Baseline in October: only its counter is used.
      row("AAAA0001", "2026-10-31T23:00:00Z", 999_000, 9, 1_000, reset1),
      row("AAAA0001", "2026-11-01T00:00:00Z", 100, 1, 1_102, reset1), // +102 - 2 own = 100
      row("AAAA0001", "2026-11-01T12:00:00Z", 200, 4, 1_304, reset1), // +202 - 2 = 200
      row("AAAA0001", "2026-11-10T13:00:00Z", 300, 2, 50, reset2), //     stats reset: new epoch, 50
      row("AAAA0001", "2026-11-20T00:00:00Z", 400, 0, 20, reset2), //     counter dropped (crash): new epoch, 20
      row("AAAA0001", "2026-11-21T00:00:00Z", 500, 1, 20, reset2, { status: "suspended" }), // +0 (floored), day not billed
      row("AAAA0001", "2026-12-01T00:00:00Z", 9_999, 99, 9_999, reset2), // December: not in the period
      row("BBBB0002", "2026-11-15T00:00:00Z", 1_000, 2, 10, reset1), //    first sample ever: no baseline, no delta
      row("BBBB0002", "2026-11-16T00:00:00Z", 3_000, 1, 15, reset1), //    +5 - 2 = 3
    ]);
    const period = parsePeriod("2026-11");
    const lines = billPeriod(await readSamples(pool, period.start, period.end), period);
    expect(lines).toEqual([
      {
        tenantId: "AAAA0001",
        username: "alice",
        daysActive: 3,
        averageStorageBytes: 300,
        peakStorageBytes: 500,
        peakConnections: 4,
        transactions: 370,
        samples: 5,
      },
      {
        tenantId: "BBBB0002",
        username: "bob",
        daysActive: 2,
        averageStorageBytes: 2000,
        peakStorageBytes: 3000,
        peakConnections: 2,
        transactions: 3,
        samples: 2,
      },
    ]);
    // October and November add up: October's last sample is November's baseline.
    const october = billPeriod(await readSamples(pool, parsePeriod("2026-10").start, parsePeriod("2026-10").end), parsePeriod("2026-10"));
    expect(october).toEqual([expect.objectContaining({ tenantId: "AAAA0001", transactions: 0, samples: 1 })]);
  });

  it("a pooled tenant (warm pool) stored as status pooled is never billed; once claimed it is billed from its claim, the seed's transactions excluded", async () => {
    await pool.query("TRUNCATE usage_samples");
    const row = (at: string, status: string, username: string, size: number, commits: number) => ({
      tenant_id: "0F0F0F0F",
      username,
      server: "local",
      database: "drivergigspro_0f0f0f0f",
      status,
      plan: null,
      sampled_at: at,
      db_exists: true,
      size_bytes: size,
      connections: 0,
      xact_commit: commits,
      xact_rollback: 0,
      deadlocks: 0,
      temp_bytes: 0,
      stats_reset: "2026-10-01T00:00:00Z",
      users: 0,
      sessions: 0,
      slow_statements: null,
      own_transactions: 0,
    });
    await insertSamples(pool, [
      // Made and seeded in November, unclaimed all month: its key is its tenant ID.
      row("2026-11-02T00:00:00Z", "pooled", "0F0F0F0F", 9_000_000, 800),
      row("2026-11-20T00:00:00Z", "pooled", "0F0F0F0F", 9_000_000, 900),
      // Claimed by maria_k in December.
      row("2026-12-03T00:00:00Z", "active", "maria_k", 9_000_100, 950),
      row("2026-12-04T00:00:00Z", "active", "maria_k", 9_000_300, 1_000),
    ]);
    const november = parsePeriod("2026-11");
    expect(billPeriod(await readSamples(pool, november.start, november.end), november)).toEqual([]);
    const december = parsePeriod("2026-12");
    expect(billPeriod(await readSamples(pool, december.start, december.end), december)).toEqual([
      expect.objectContaining({ tenantId: "0F0F0F0F", username: "maria_k", daysActive: 2, samples: 2, transactions: 100 }),
    ]);
  });
});

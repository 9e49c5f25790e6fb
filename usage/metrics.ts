/**
 * Per-tenant metrics for Prometheus (prom-client), set from the last usage
 * reading. Every series carries `tenant_id` and `server` only: never a
 * username or an e-mail address, and never a per-query label.
 *
 * Cardinality is bounded by construction: a fixed set of 14 per-tenant
 * metrics × the exported tenants, and the exported tenants are capped
 * (`maxTenants`, default 2,000 per process: about 28,000 series). Past the
 * cap, tenants are left out in tenant-ID order and
 * `drivergigspro_usage_tenants_truncated` says how many; a bigger fleet runs
 * one exporter per shard (stack). Series of tenants that left the fleet
 * disappear at the next reading (every metric is rebuilt from the reading).
 */
import { Counter, Gauge, Registry } from "prom-client";
import type { UsageRow } from "./report";

export const DEFAULT_MAX_EXPORTED_TENANTS = 2000;
const LABELS = ["tenant_id", "server"] as const;
type Labels = Record<(typeof LABELS)[number], string>;

export interface UsageMetricsOptions {
  registry?: Registry;
  /** Tenants exported at most (default 2,000). */
  maxTenants?: number;
}

export class UsageMetrics {
  readonly registry: Registry;
  readonly maxTenants: number;
  private readonly gauges: Record<string, Gauge<string>>;
  private readonly counters: Record<string, Counter<string>>;
  private readonly exported: Gauge;
  private readonly truncated: Gauge;
  private readonly lastReading: Gauge;

  constructor(options: UsageMetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    this.maxTenants = options.maxTenants ?? DEFAULT_MAX_EXPORTED_TENANTS;
    const registers = [this.registry];
    const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames: LABELS, registers });
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: LABELS, registers });
    this.gauges = {
      size: gauge("drivergigspro_tenant_database_size_bytes", "Size of the tenant's database (pg_database_size)."),
      quota: gauge("drivergigspro_tenant_storage_quota_bytes", "Storage quota of the tenant's plan (absent when the plan sets none)."),
      overQuota: gauge("drivergigspro_tenant_over_quota", "1 when the tenant's database is larger than its plan's storage quota."),
      hardLimit: gauge(
        "drivergigspro_tenant_storage_hard_limit_bytes",
        "Storage hard limit of the tenant's plan: past it its writes are stopped (absent when the plan sets none).",
      ),
      writesStopped: gauge("drivergigspro_tenant_writes_stopped", "1 while the tenant's writes are stopped (past its plan's storage hard limit)."),
      connections: gauge("drivergigspro_tenant_connections", "Client connections to the tenant's database now (the usage reader's own excluded)."),
      connectionLimit: gauge(
        "drivergigspro_tenant_connection_limit",
        "Connection limit of the tenant (plan, else database or role limit; absent when unlimited).",
      ),
      users: gauge("drivergigspro_tenant_users", "Rows in the tenant's users table (statistics live-tuple count)."),
      sessions: gauge("drivergigspro_tenant_sessions", "Rows in the tenant's sessions table (statistics live-tuple count)."),
      slow: gauge(
        "drivergigspro_tenant_slow_statements",
        "Statements of the tenant in pg_stat_statements with a mean time over the slow threshold (absent without pg_stat_statements).",
      ),
    };
    this.counters = {
      transactions: counter("drivergigspro_tenant_transactions_total", "Committed transactions in the tenant's database (pg_stat_database.xact_commit)."),
      rollbacks: counter("drivergigspro_tenant_rollbacks_total", "Rolled back transactions in the tenant's database (pg_stat_database.xact_rollback)."),
      deadlocks: counter("drivergigspro_tenant_deadlocks_total", "Deadlocks detected in the tenant's database."),
      tempBytes: counter("drivergigspro_tenant_temp_bytes_total", "Bytes written to temporary files by the tenant's queries."),
    };
    this.exported = new Gauge({ name: "drivergigspro_usage_tenants_exported", help: "Tenants with per-tenant series in this exporter.", registers });
    this.truncated = new Gauge({
      name: "drivergigspro_usage_tenants_truncated",
      help: "Tenants left out because of the per-process cap (maxTenants).",
      registers,
    });
    this.lastReading = new Gauge({ name: "drivergigspro_usage_last_reading_timestamp_seconds", help: "When the exported usage was read.", registers });
  }

  /** Replaces every per-tenant series with this reading's. */
  update(rows: readonly UsageRow[], at = new Date()): void {
    const sorted = [...rows].sort((a, b) => a.tenantId.localeCompare(b.tenantId));
    const kept = sorted.slice(0, this.maxTenants);
    for (const metric of [...Object.values(this.gauges), ...Object.values(this.counters)]) metric.reset();
    for (const row of kept) this.set(row);
    this.exported.set(kept.length);
    this.truncated.set(sorted.length - kept.length);
    this.lastReading.set(at.getTime() / 1000);
  }

  private set(row: UsageRow): void {
    const labels: Labels = { tenant_id: row.tenantId, server: row.server };
    const { gauges, counters } = this;
    gauges.size!.set(labels, row.sizeBytes);
    if (row.storageQuotaMb !== null) gauges.quota!.set(labels, row.storageQuotaMb * 1024 * 1024);
    gauges.overQuota!.set(labels, row.overQuota ? 1 : 0);
    if (row.storageHardLimitMb !== null) gauges.hardLimit!.set(labels, row.storageHardLimitMb * 1024 * 1024);
    gauges.writesStopped!.set(labels, row.writesStoppedSince === null ? 0 : 1);
    gauges.connections!.set(labels, row.connections);
    if (row.connectionLimit !== null) gauges.connectionLimit!.set(labels, row.connectionLimit);
    if (row.users !== null) gauges.users!.set(labels, row.users);
    if (row.sessions !== null) gauges.sessions!.set(labels, row.sessions);
    if (row.slowStatements !== null) gauges.slow!.set(labels, row.slowStatements);
    // PostgreSQL's counters, as they are: a statistics reset shows as a counter reset, which rate() handles.
    counters.transactions!.inc(labels, row.transactions);
    counters.rollbacks!.inc(labels, row.rollbacks);
    counters.deadlocks!.inc(labels, row.deadlocks);
    counters.tempBytes!.inc(labels, row.tempBytes);
  }
}

/**
 * Pure: what the servers said (figures) plus what the stack says (plan,
 * limits) → one row per tenant, rendered as a table, JSON or CSV.
 */
import { renderTable } from "../lib/table";
import type { TenantFigures } from "./collect";
import type { UsageTenant } from "./inputs";

const MIB = 1024 * 1024;

export interface UsageRow {
  tenantId: string;
  username: string;
  plan: string | null;
  server: string;
  status: string;
  seedVersion: string | null;
  sizeBytes: number;
  storageQuotaMb: number | null;
  overQuota: boolean;
  /** Past it the sampler stops the tenant's writes (infra/storage-lock.ts); null when the plan sets none. */
  storageHardLimitMb: number | null;
  /** Since when the tenant's writes are stopped (ISO time); null when they are not. */
  writesStoppedSince: string | null;
  connections: number;
  connectionLimit: number | null;
  transactions: number;
  rollbacks: number;
  deadlocks: number;
  tempBytes: number;
  users: number | null;
  sessions: number | null;
  slowStatements: number | null;
  lastActivity: string | null;
  statsReset: string | null;
  problem: string | null;
}

function isOverQuota(sizeBytes: number, storageQuotaMb: number | undefined | null): boolean {
  return storageQuotaMb !== undefined && storageQuotaMb !== null && sizeBytes > storageQuotaMb * MIB;
}

/** Joins figures to the stack's tenants by tenant ID; a tenant without figures is an error (a bug, not a state). */
export function usageRows(tenants: readonly UsageTenant[], figures: readonly TenantFigures[]): UsageRow[] {
  const byId = new Map(figures.map((figure) => [figure.tenantId, figure]));
  return tenants.map((tenant) => {
    const figure = byId.get(tenant.tenantId);
    if (figure === undefined) throw new Error(`no usage figures for tenant ${tenant.tenantId} (${tenant.username})`);
    const quota = tenant.limits?.storageQuotaMb ?? null;
    const hardLimit = tenant.limits?.storageHardLimitMb ?? null;
    return {
      tenantId: tenant.tenantId,
      username: tenant.username,
      plan: tenant.plan ?? null,
      server: tenant.server,
      status: tenant.status,
      seedVersion: tenant.seedVersion === undefined ? null : String(tenant.seedVersion),
      sizeBytes: figure.sizeBytes,
      storageQuotaMb: quota,
      overQuota: isOverQuota(figure.sizeBytes, quota),
      storageHardLimitMb: hardLimit,
      writesStoppedSince: figure.writesStoppedSince?.toISOString() ?? null,
      connections: figure.connections,
      connectionLimit: tenant.limits?.connectionLimit ?? figure.serverConnectionLimit,
      transactions: figure.xactCommit,
      rollbacks: figure.xactRollback,
      deadlocks: figure.deadlocks,
      tempBytes: figure.tempBytes,
      users: figure.users,
      sessions: figure.sessions,
      slowStatements: figure.slowStatements,
      lastActivity: figure.lastActivity?.toISOString() ?? null,
      statsReset: figure.statsReset?.toISOString() ?? null,
      problem: figure.problem ?? null,
    };
  });
}

const mb = (bytes: number) => (bytes / MIB).toFixed(1);
const orDash = (value: number | string | null) => (value === null ? "-" : String(value));

const HEAD = [
  "tenant ID",
  "username",
  "plan",
  "server",
  "seed",
  "size MB",
  "quota MB",
  "hard MB",
  "connections",
  "transactions",
  "rollbacks",
  "deadlocks",
  "temp MB",
  "users",
  "sessions",
  "slow stmts",
  "last activity",
  "note",
];

export function renderUsageTable(rows: readonly UsageRow[]): string {
  return renderTable(
    HEAD,
    rows.map((row) => [
      row.tenantId,
      row.username,
      orDash(row.plan),
      row.server,
      orDash(row.seedVersion),
      mb(row.sizeBytes),
      row.storageQuotaMb === null ? "-" : String(row.storageQuotaMb),
      orDash(row.storageHardLimitMb),
      row.connectionLimit === null ? String(row.connections) : `${row.connections}/${row.connectionLimit}`,
      String(row.transactions),
      String(row.rollbacks),
      String(row.deadlocks),
      mb(row.tempBytes),
      orDash(row.users),
      orDash(row.sessions),
      orDash(row.slowStatements),
      row.lastActivity === null ? "-" : row.lastActivity.replace(/\.\d+Z$/, "Z"),
      [
        row.writesStoppedSince !== null
          ? `WRITES STOPPED since ${row.writesStoppedSince.replace(/\.\d+Z$/, "Z")} (over ${orDash(row.storageHardLimitMb)} MB hard limit)`
          : row.overQuota
            ? "OVER QUOTA"
            : "",
        row.problem ?? "",
      ]
        .filter(Boolean)
        .join("; "),
    ]),
  );
}

/** RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. */
export function csvField(value: unknown): string {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function renderCsv<T extends object>(rows: readonly T[], columns: readonly (keyof T & string)[]): string {
  const lines = [columns.join(","), ...rows.map((row) => columns.map((column) => csvField(row[column])).join(","))];
  return `${lines.join("\n")}\n`;
}

export const USAGE_CSV_COLUMNS: readonly (keyof UsageRow & string)[] = [
  "tenantId",
  "username",
  "plan",
  "server",
  "status",
  "seedVersion",
  "sizeBytes",
  "storageQuotaMb",
  "overQuota",
  "storageHardLimitMb",
  "writesStoppedSince",
  "connections",
  "connectionLimit",
  "transactions",
  "rollbacks",
  "deadlocks",
  "tempBytes",
  "users",
  "sessions",
  "slowStatements",
  "lastActivity",
  "statsReset",
  "problem",
];

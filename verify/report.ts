/** verify-tenant-isolation's tables for people: one row per probe, tenant ID first; then each tenant's limits. */
import { renderTable } from "../lib/table";
import type { ProbeResult, TenantLimits } from "./probes";

export function renderResults(results: readonly ProbeResult[], limits?: readonly TenantLimits[]): string {
  const failed = results.filter((result) => !result.ok);
  const table = renderTable(
    ["tenant ID", "username", "probe", "result", "detail"],
    results.map((result) => [result.tenantId, result.username, result.probe, result.ok ? "ok" : "FAIL", result.detail]),
  );
  const tenants = new Set(results.map((result) => result.tenantId)).size;
  const limitsTable = limits === undefined ? "" : `${renderLimits(limits)}\n\n`;
  return `${table}\n\n${limitsTable}${tenants} tenant(s), ${results.length} probe(s), ${failed.length} failed`;
}

/** "0" from SHOW means the timeout is off. */
const timeout = (value: string) => (value === "0" ? "none" : value);

function renderLimits(limits: readonly TenantLimits[]): string {
  return renderTable(
    ["tenant ID", "username", "connection limit", "statement_timeout", "idle_in_transaction_session_timeout", "temp_file_limit"],
    limits.map((limit) => [
      limit.tenantId,
      limit.username,
      limit.connectionLimit === null ? "none" : String(limit.connectionLimit),
      timeout(limit.statementTimeout),
      timeout(limit.idleInTransactionSessionTimeout),
      limit.tempFileLimit === "-1" ? "none" : limit.tempFileLimit,
    ]),
  );
}

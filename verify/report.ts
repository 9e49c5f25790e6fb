/** verify-tenant-isolation's table for people: one row per probe, tenant ID first. */
import { renderTable } from "../cli/table";
import type { ProbeResult } from "./probes";

export function renderResults(results: readonly ProbeResult[]): string {
  const failed = results.filter((result) => !result.ok);
  const table = renderTable(
    ["tenant ID", "username", "probe", "result", "detail"],
    results.map((result) => [result.tenantId, result.username, result.probe, result.ok ? "ok" : "FAIL", result.detail]),
  );
  const tenants = new Set(results.map((result) => result.tenantId)).size;
  return `${table}\n\n${tenants} tenant(s), ${results.length} probe(s), ${failed.length} failed`;
}

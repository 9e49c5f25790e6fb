/**
 * Reads the tenants file and validates all of it at once. Nothing here
 * declares resources: the Pulumi program calls `loadTenantsFile` and stops
 * with every problem listed before it declares anything.
 */
import { readFileSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { tenantEntrySchema, usernameToLabel, type LocatedTenant } from "./schema";

export interface TenantsProblem {
  /** 1-based line in the tenants file (0 when the file itself is the problem). */
  readonly line: number;
  /** The entry's username when it has one, so the message names the tenant. */
  readonly username?: string;
  readonly message: string;
}

export type TenantsFileResult =
  | { readonly ok: true; readonly tenants: LocatedTenant[] }
  | { readonly ok: false; readonly problems: TenantsProblem[] };

/** Thrown by `requireValidTenants`; its message lists every problem, one per line. */
export class TenantsFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly TenantsProblem[],
  ) {
    super(
      `${file} has ${problems.length} problem${problems.length === 1 ? "" : "s"}; fix ${problems.length === 1 ? "it" : "them"} and run again (nothing was changed):\n` +
        problems.map((problem) => formatProblem(file, problem)).join("\n"),
    );
    this.name = "TenantsFileError";
  }
}

export function formatProblem(file: string, problem: TenantsProblem): string {
  const where = problem.line > 0 ? `${file}:${problem.line}` : file;
  const who = problem.username !== undefined ? ` tenant "${problem.username}":` : "";
  return `${where}:${who} ${problem.message}`;
}

/** The parsed YAML document with a way to turn node offsets into line numbers. */
export interface ParsedTenantsDocument {
  readonly doc: Document.Parsed;
  readonly lineOf: (node: Node | null | undefined) => number;
}

export function parseTenantsDocument(text: string): ParsedTenantsDocument {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  const lineOf = (node: Node | null | undefined) =>
    node?.range ? lineCounter.linePos(node.range[0]).line : 0;
  return { doc, lineOf };
}

const MISSING_LIST = 'the file must have a "tenants:" list (it can be empty: "tenants: []")';

/** Validates the text of a tenants file. Pure: no I/O, so tests and the CLI share it. */
export function validateTenantsText(text: string): TenantsFileResult {
  const { doc, lineOf } = parseTenantsDocument(text);
  const problems: TenantsProblem[] = [];

  for (const error of [...doc.errors, ...doc.warnings]) {
    problems.push({ line: error.linePos?.[0].line ?? 0, message: `not valid YAML: ${firstLine(error.message)}` });
  }
  if (problems.length > 0) return { ok: false, problems };

  const root = doc.contents;
  if (root === null || (isMap(root) && root.items.length === 0)) {
    return { ok: false, problems: [{ line: 1, message: MISSING_LIST }] };
  }
  if (!isMap(root)) {
    return { ok: false, problems: [{ line: lineOf(root), message: 'the top level must be a mapping with a "tenants:" list' }] };
  }
  for (const pair of root.items) {
    const key = String((pair.key as Node | null)?.toJSON?.() ?? pair.key);
    if (key !== "tenants") {
      problems.push({ line: lineOf(pair.key as Node), message: `unknown top-level key "${key}"; only "tenants" is allowed` });
    }
  }
  if (!root.has("tenants")) {
    problems.push({ line: 1, message: MISSING_LIST });
  }
  const list = root.get("tenants", true);
  // "tenants:" with nothing after it parses as a null scalar: an empty list.
  const empty = list === undefined || list === null || (isScalar(list) && list.value === null);
  if (!empty && !isSeq(list)) {
    problems.push({ line: lineOf(list as Node), message: '"tenants" must be a list of entries ("- username: ...")' });
  }

  const tenants: LocatedTenant[] = [];
  const items = isSeq(list) ? list.items : [];
  for (const item of items) {
    const line = lineOf(item as Node);
    const raw = (item as Node | null)?.toJSON?.() ?? item;
    const rawUsername = isMap(item) ? item.get("username") : undefined;
    const username = typeof rawUsername === "string" ? rawUsername : undefined;
    const parsed = tenantEntrySchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const field = issue.path[0];
        const fieldNode = isMap(item) && typeof field === "string" ? item.get(field, true) : undefined;
        const fieldLine = fieldNode && typeof fieldNode === "object" ? lineOf(fieldNode as Node) : line;
        const shown = field !== undefined && issue.code !== "custom" ? `${String(field)}: ` : "";
        const keys = issue.code === "unrecognized_keys" ? issue.keys : [];
        const message =
          keys.length > 0
            ? `unknown key${keys.length > 1 ? "s" : ""} ${keys.map((k) => `"${k}"`).join(", ")}; allowed: username, email, tenantId, server, status`
            : `${shown}${issue.message}${issue.code === "custom" ? "" : ` (got ${JSON.stringify(valueAt(raw, field))})`}`;
        problems.push({ line: fieldLine || line, username, message });
      }
      continue;
    }
    tenants.push({ ...parsed.data, line });
  }

  problems.push(...crossEntryProblems(tenants));
  problems.sort((a, b) => a.line - b.line);
  return problems.length > 0 ? { ok: false, problems } : { ok: true, tenants };
}

/** Rules that involve more than one entry: duplicates and DNS-label collisions. */
function crossEntryProblems(tenants: readonly LocatedTenant[]): TenantsProblem[] {
  const problems: TenantsProblem[] = [];
  const byLabel = new Map<string, LocatedTenant>();
  const byId = new Map<string, LocatedTenant>();
  for (const tenant of tenants) {
    const label = usernameToLabel(tenant.username);
    const first = byLabel.get(label);
    if (first !== undefined) {
      const what =
        first.username === tenant.username
          ? `is listed twice (lines ${first.line} and ${tenant.line}); remove one entry`
          : `collides with "${first.username}" on line ${first.line}: both become the DNS label "${label}"; rename one of them`;
      problems.push({ line: tenant.line, username: tenant.username, message: what });
    } else {
      byLabel.set(label, tenant);
    }
    if (tenant.tenantId !== undefined) {
      const owner = byId.get(tenant.tenantId);
      if (owner !== undefined) {
        problems.push({
          line: tenant.line,
          username: tenant.username,
          message: `tenantId ${tenant.tenantId} is already pinned by "${owner.username}" on line ${owner.line}; tenant IDs are unique`,
        });
      } else {
        byId.set(tenant.tenantId, tenant);
      }
    }
  }
  return problems;
}

function valueAt(raw: unknown, field: PropertyKey | undefined): unknown {
  if (field === undefined || typeof raw !== "object" || raw === null) return raw;
  return (raw as Record<PropertyKey, unknown>)[field];
}

/** yaml's message without its own " at line N, column M:" suffix (we print the line ourselves). */
function firstLine(message: string): string {
  return (message.split("\n")[0] ?? message).replace(/ at line \d+, column \d+:?$/, "");
}

/** Reads and validates a tenants file; a missing or unreadable file is a problem too. */
export function loadTenantsFile(path: string): TenantsFileResult {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : String(error);
    return { ok: false, problems: [{ line: 0, message: `cannot read the tenants file (${reason}); create it with "tenants: []"` }] };
  }
  return validateTenantsText(text);
}

export function requireValidTenants(path: string): LocatedTenant[] {
  const result = loadTenantsFile(path);
  if (!result.ok) throw new TenantsFileError(path, result.problems);
  return result.tenants;
}

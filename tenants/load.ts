/**
 * Reads the tenants file and validates all of it at once. Nothing here
 * declares resources: the Pulumi program calls `loadTenantsFile` and stops
 * with every problem listed before it declares anything.
 */
import { readFileSync, statSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { usernameToLabel } from "../infra/naming";
import { clipForMessage, isUnnamed, tenantEntrySchema, type LocatedTenant } from "./schema";

export interface TenantsProblem {
  /** 1-based line in the tenants file (0 when the file itself is the problem). */
  readonly line: number;
  /** The entry's username when it has one, so the message names the tenant. */
  readonly username?: string;
  readonly message: string;
}

export type TenantsFileResult = { readonly ok: true; readonly tenants: LocatedTenant[] } | { readonly ok: false; readonly problems: TenantsProblem[] };

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
  const who = problem.username !== undefined ? ` tenant "${clipForMessage(problem.username)}":` : "";
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
  const lineOf = (node: Node | null | undefined) => (node?.range ? lineCounter.linePos(node.range[0]).line : 0);
  return { doc, lineOf };
}

/**
 * Limits on what the loader reads, so a hostile or broken file is refused in
 * one line instead of costing the parser seconds and gigabytes (a 5 MB file
 * took 42 s and 1.4 GB; 4 MiB of "- a" lines take the YAML parser 10 s and
 * 650 MB). 10,000 entries per file: one stack of that many tenants already
 * holds about 90,000 resources (nine per tenant), past which previews and the
 * state file get slow; larger fleets are split into shards, one tenants file
 * per stack. 2 MiB is 200 bytes per entry at 10,000 entries, several times a
 * real entry with comments. 100,000 lines and flow items (newlines, commas,
 * brackets: a cheap bound on the parser's work, counted before it runs) is
 * ten per entry.
 */
const TENANTS_FILE_LIMITS = { bytes: 2 * 1024 * 1024, lines: 100_000, entries: 10_000 } as const;

const SPLIT = "split the fleet into shards, one tenants file per stack (stack config tenantsFile)";
const MiB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

function sizeProblem(bytes: number): TenantsProblem | undefined {
  if (bytes <= TENANTS_FILE_LIMITS.bytes) return undefined;
  return { line: 0, message: `the file is ${MiB(bytes)} (${bytes} bytes); a tenants file may be at most 2 MiB (10,000 entries): ${SPLIT}` };
}

/** Size and structure checks that run before the YAML parser. */
function limitProblem(text: string): TenantsProblem | undefined {
  const tooBig = sizeProblem(Buffer.byteLength(text, "utf8"));
  if (tooBig !== undefined) return tooBig;
  let structure = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    // "\n" "," "[" "{"
    if (code === 10 || code === 44 || code === 91 || code === 123) structure++;
  }
  if (structure <= TENANTS_FILE_LIMITS.lines) return undefined;
  return {
    line: 0,
    message: `the file has ${structure} lines and flow items; a tenants file may have at most ${TENANTS_FILE_LIMITS.lines} (10,000 entries): ${SPLIT}`,
  };
}

const MISSING_LIST = 'the file must have a "tenants:" list (it can be empty: "tenants: []")';

/** Validates the text of a tenants file. Pure: no I/O, so tests and the CLI share it. */
export function validateTenantsText(text: string): TenantsFileResult {
  const tooMuch = limitProblem(text);
  if (tooMuch !== undefined) return { ok: false, problems: [tooMuch] };
  const { doc, lineOf } = parseTenantsDocument(text);
  const problems: TenantsProblem[] = [];

  for (const error of [...doc.errors, ...doc.warnings]) {
    problems.push({ line: error.linePos?.[0].line ?? 0, message: `not valid YAML: ${clipForMessage(firstLine(error.message), 200)}` });
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
      problems.push({ line: lineOf(pair.key as Node), message: `unknown top-level key "${clipForMessage(key)}"; only "tenants" is allowed` });
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

  const items = isSeq(list) ? list.items : [];
  if (items.length > TENANTS_FILE_LIMITS.entries) {
    return { ok: false, problems: [{ line: 0, message: `the file has ${items.length} entries; a tenants file may have at most 10,000: ${SPLIT}` }] };
  }
  const tenants: LocatedTenant[] = [];
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
            ? `unknown key${keys.length > 1 ? "s" : ""} ${listKeys(keys)}; allowed: username, email, tenantId, server, status`
            : `${shown}${issue.message}${issue.code === "custom" ? "" : ` (got ${clipForMessage(JSON.stringify(valueAt(raw, field)) ?? "undefined")})`}`;
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
    // A pooled entry, or its tombstone, has no username (its key is its tenant ID, checked below).
    const label = isUnnamed(tenant) ? undefined : usernameToLabel(tenant.username);
    const first = label === undefined ? undefined : byLabel.get(label);
    if (first !== undefined) {
      const what =
        first.username === tenant.username
          ? `is listed twice (lines ${first.line} and ${tenant.line}); remove one entry`
          : `collides with "${first.username}" on line ${first.line}: both become the DNS label "${label}"; rename one of them`;
      problems.push({ line: tenant.line, username: tenant.username, message: what });
    } else if (label !== undefined) {
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

/** At most five unknown keys, each cut to a readable length. */
function listKeys(keys: readonly string[]): string {
  const shown = keys
    .slice(0, 5)
    .map((key) => `"${clipForMessage(key)}"`)
    .join(", ");
  return keys.length > 5 ? `${shown} and ${keys.length - 5} more` : shown;
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
    // Refused before it is read: a huge file costs nothing.
    const tooBig = sizeProblem(statSync(path).size);
    if (tooBig !== undefined) return { ok: false, problems: [tooBig] };
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

/**
 * Edits to the tenants file that keep its comments and formatting, and are
 * all-or-nothing: the new text is validated as a whole before it is written,
 * and it is written atomically (temporary file, then rename).
 */
import { randomBytes } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { isMap, isSeq, YAMLSeq, type YAMLMap } from "yaml";
import { parseTenantsDocument, validateTenantsText, type TenantsProblem } from "./load";
import type { LocatedTenant, TenantEntry, TenantStatus } from "./schema";

export { withTenantsFileLock } from "./lock";

export type EditResult =
  { readonly ok: true; readonly text: string; readonly tenants: LocatedTenant[] } | { readonly ok: false; readonly problems: TenantsProblem[] };

/** Fields a person may set when adding a tenant. */
export type NewTenant = Pick<TenantEntry, "username"> & Partial<Pick<TenantEntry, "email" | "server" | "tenantId">>;

function tenantsList(text: string) {
  const parsed = parseTenantsDocument(text);
  const root = parsed.doc.contents as unknown;
  // Only called on text that validated, so the root is a mapping with "tenants".
  if (!isMap(root)) throw new Error("the tenants file has no top-level mapping");
  const list: unknown = root.get("tenants", true);
  let seq: YAMLSeq;
  if (isSeq(list)) {
    seq = list;
  } else {
    // "tenants:" with no entries yet: start a block-style list.
    seq = new YAMLSeq();
    root.set("tenants", seq);
  }
  // An empty flow list ("tenants: []") would stay on one line; people read block lists.
  if (seq.items.length === 0) seq.flow = false;
  return { ...parsed, seq };
}

/** The entry keyed `key`: its username, or for an entry without one (pooled, or a pooled entry's tombstone) its tenant ID. */
function entryIndex(seq: YAMLSeq, key: string): number {
  return seq.items.findIndex((item) => isMap(item) && (item.get("username") === key || (!item.has("username") && item.get("tenantId") === key)));
}

/** Re-validates the edited document; an edit never produces an invalid file. */
function finish(doc: { toString(): string }): EditResult {
  const text = doc.toString();
  const result = validateTenantsText(text);
  return result.ok ? { ok: true, text, tenants: result.tenants } : { ok: false, problems: result.problems };
}

/** Returns the problems of the current file, or undefined when it is valid. */
function currentProblems(text: string): TenantsProblem[] | undefined {
  const result = validateTenantsText(text);
  return result.ok ? undefined : result.problems;
}

export function addTenants(text: string, additions: readonly NewTenant[]): EditResult {
  const problems = currentProblems(text);
  if (problems) return { ok: false, problems };
  const { doc, seq } = tenantsList(text);
  for (const addition of additions) {
    // Keys in a fixed order, and no undefined values, so entries look hand-written.
    const entry = Object.fromEntries(
      (["username", "email", "tenantId", "server"] as const).filter((key) => addition[key] !== undefined).map((key) => [key, addition[key]]),
    );
    seq.add(doc.createNode(entry));
  }
  return finish(doc);
}

/** Appends one pooled entry per ID (`- tenantId: ...` / `status: pooled`): the warm pool's refill (tenants/pool.ts). */
export function addPooledTenants(text: string, tenantIds: readonly string[]): EditResult {
  const problems = currentProblems(text);
  if (problems) return { ok: false, problems };
  const { doc, seq } = tenantsList(text);
  for (const tenantId of tenantIds) seq.add(doc.createNode({ tenantId, status: "pooled" }));
  return finish(doc);
}

/**
 * A signup's claim of a pooled entry: the entry with this tenantId gets the
 * username and e-mail, and loses `status: pooled` (it is active). Refused
 * when no entry has the ID or it is not pooled any more (claimed by someone else).
 */
export function claimPooledTenant(text: string, tenantId: string, claim: { username: string; email?: string }): EditResult {
  const batch = claimPooledTenants(text, [{ tenantId, ...claim }]);
  if (!batch.ok) return batch;
  const [refused] = batch.refused;
  if (refused) return { ok: false, problems: [{ line: 0, username: claim.username, message: refused.message }] };
  return { ok: true, text: batch.text, tenants: batch.tenants };
}

export type ClaimsEditResult =
  | {
      readonly ok: true;
      readonly text: string;
      readonly tenants: LocatedTenant[];
      /** Tenant IDs whose entry is bound to the claim's username now (by this edit, or already before it). */
      readonly bound: string[];
      /** Claims whose entry is missing or not pooled any more: nothing of them was written. */
      readonly refused: { tenantId: string; message: string }[];
    }
  | { readonly ok: false; readonly problems: TenantsProblem[] };

/**
 * Several claims of pooled entries in one edit: one parse and one validation
 * of the result, whatever their number (a 1,000-entry file is not read once
 * per claim). An entry already bound to the claim's username counts as bound;
 * one missing or not pooled is refused; the rest are bound. When the result
 * does not validate (a claim's name clashes with another entry), the problems
 * are returned and nothing is written: the caller tries the claims one at a time.
 */
export function claimPooledTenants(text: string, claims: readonly { tenantId: string; username: string; email?: string }[]): ClaimsEditResult {
  const problems = currentProblems(text);
  if (problems) return { ok: false, problems };
  const { doc, seq } = tenantsList(text);
  const bound: string[] = [];
  const refused: { tenantId: string; message: string }[] = [];
  for (const claim of claims) {
    const index = seq.items.findIndex((item) => isMap(item) && item.get("tenantId") === claim.tenantId);
    const entry = index < 0 ? undefined : (seq.items[index] as YAMLMap);
    if (entry !== undefined && entry.get("username") === claim.username) {
      bound.push(claim.tenantId);
      continue;
    }
    if (entry === undefined || entry.get("status") !== "pooled") {
      const what = entry === undefined ? "no entry has it" : `its entry is not pooled any more (username "${String(entry.get("username"))}")`;
      refused.push({ tenantId: claim.tenantId, message: `cannot claim pooled tenant ${claim.tenantId}: ${what}; take another pooled entry` });
      continue;
    }
    // Keys in the order a person writes them: username first.
    const claimed = doc.createNode(
      Object.fromEntries(
        Object.entries({ username: claim.username, email: claim.email, ...entry.toJSON() }).filter(([key, value]) => key !== "status" && value !== undefined),
      ),
    );
    claimed.commentBefore = entry.commentBefore;
    seq.items[index] = claimed;
    bound.push(claim.tenantId);
  }
  const result = finish(doc);
  return result.ok ? { ...result, bound, refused } : result;
}

function withEntry(text: string, username: string, change: (entry: YAMLMap, seq: YAMLSeq) => void): EditResult {
  const problems = currentProblems(text);
  if (problems) return { ok: false, problems };
  const { doc, seq } = tenantsList(text);
  const index = entryIndex(seq, username);
  if (index < 0) {
    return { ok: false, problems: [{ line: 0, username, message: `no tenant "${username}" in the file; see "npm run tenants -- list"` }] };
  }
  change(seq.items[index] as YAMLMap, seq);
  return finish(doc);
}

/** `pinTenantId`: written when the entry has none (a tombstone brought back keeps its tenant). */
export function setStatus(text: string, username: string, status: TenantStatus, pinTenantId?: string): EditResult {
  return withEntry(text, username, (entry) => {
    if (pinTenantId !== undefined && !entry.has("tenantId")) entry.set("tenantId", pinTenantId);
    // "active" is the default: resuming removes the key rather than spelling it out.
    if (status === "active") entry.delete("status");
    else entry.set("status", status);
  });
}

/**
 * Offboards a tenant by turning its entry into a tombstone (`status: removed`),
 * never by deleting the entry: the program refuses a file that lacks a
 * deployed tenant. The deployed tenant ID, when known, is pinned so the
 * tenant can be brought back onto its kept database by setting it active again.
 */
export function removeTenant(text: string, username: string, tenantId?: string): EditResult {
  return withEntry(text, username, (entry) => {
    if (tenantId !== undefined && !entry.has("tenantId")) entry.set("tenantId", tenantId);
    entry.set("status", "removed");
  });
}

/**
 * Writes `tenantId:` into entries that have none (usernames to IDs), right
 * after `username:`/`email:` like `add` writes it; an entry that has one keeps it.
 */
export function pinTenantIds(text: string, ids: ReadonlyMap<string, string>): EditResult {
  const problems = currentProblems(text);
  if (problems) return { ok: false, problems };
  const { doc, seq } = tenantsList(text);
  for (const item of seq.items) {
    if (!isMap(item)) continue;
    const id = ids.get(String(item.get("username")));
    if (id === undefined || item.has("tenantId")) continue;
    const at = item.items.findIndex((pair) => !["username", "email"].includes(String((pair.key as { value?: unknown } | null)?.value ?? pair.key)));
    const pair = doc.createPair("tenantId", id);
    if (at < 0) item.items.push(pair);
    else item.items.splice(at, 0, pair);
  }
  return finish(doc);
}

/** Writes via a temporary file in the same folder, so readers see the old or the new file, never half. */
export function writeFileAtomic(path: string, text: string): void {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  writeFileSync(temporary, text, { encoding: "utf8", flag: "wx" });
  renameSync(temporary, path);
}

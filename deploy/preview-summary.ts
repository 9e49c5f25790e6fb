/**
 * The pull request's preview comment: `pulumi preview --json` of each shard's
 * stack, said in tenants rather than resources. Per shard: who is created,
 * resumed, changed, suspended and removed, whether a removed tenant's data is
 * kept (`delete [retain]`) or purged, and how many other resources change.
 *
 * Pure: JSON in, Markdown out (scripts/deploy.ts runs the previews).
 */
import { z } from "zod";
import { TENANT_TYPE } from "../infra/tenant";
import { renderMarkdownTable } from "../lib/table";
import { existsSync } from "node:fs";
import { tenantResourceName } from "../infra/naming";
import { loadTenantsFile } from "../tenants/load";

/** Hidden first line of the comment: the workflow finds (and edits) its own comment by it. */
export const PREVIEW_COMMENT_MARKER = "<!-- drivergigspro:tenants-preview -->";

/** At most this many usernames per list in a comment (GitHub caps a comment at 65,536 characters). */
const MAX_LISTED = 60;

const stateSchema = z
  .object({
    type: z.string().optional(),
    parent: z.string().optional(),
    retainOnDelete: z.boolean().optional(),
    inputs: z.record(z.string(), z.unknown()).optional(),
    outputs: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();

const stepSchema = z.object({ op: z.string(), urn: z.string(), oldState: stateSchema.nullish(), newState: stateSchema.nullish() }).loose();

export const previewJsonSchema = z
  .object({
    steps: z.array(stepSchema).default([]),
    diagnostics: z.array(z.object({ message: z.string(), severity: z.string() }).loose()).default([]),
  })
  .loose();

export type PreviewJson = z.output<typeof previewJsonSchema>;
type Step = z.output<typeof stepSchema>;

export interface RemovedTenant {
  username: string;
  tenantId?: string;
  databaseKept: boolean;
  roleKept: boolean;
}

export interface ChangedTenant {
  username: string;
  tenantId?: string;
  /** What changes, e.g. "catalogue seed created", "database replaced". */
  changes: string[];
  /** A database or role replaced or deleted while the tenant stays: its data would go. */
  dataAtRisk: boolean;
}

export interface TenantChanges {
  created: string[];
  resumed: ChangedTenant[];
  suspended: ChangedTenant[];
  changed: ChangedTenant[];
  removed: RemovedTenant[];
  /** Tenants the last update deployed that this preview leaves as they are. */
  unchanged: number;
  /** Changes of resources that belong to no tenant (providers, ...), the stack itself left out. */
  otherChanges: number;
}

const NO_CHANGE = new Set(["same", "read", "refresh", "discard", "read-discard"]);

/** A URN's name and its own type (the last one of its type chain). */
function urnParts(urn: string): { type: string; name: string } {
  const parts = urn.split("::");
  const chain = parts[parts.length - 2] ?? "";
  return { type: chain.split("$").pop() ?? "", name: parts[parts.length - 1] ?? "" };
}

/**
 * The username of the tenant a step's resource belongs to, if any. A tenant's
 * component is named by its tenant ID (infra/naming.ts tenantResourceName;
 * by username in stacks from before allocated IDs): `usernames` maps the ID back.
 */
function tenantOf(step: Step, parents: Map<string, string | undefined>, usernames: ReadonlyMap<string, string>): string | undefined {
  let urn: string | undefined = step.urn;
  for (let depth = 0; urn !== undefined && depth < 10; depth++) {
    const { type, name } = urnParts(urn);
    if (type === TENANT_TYPE) return usernames.get(name) ?? name;
    urn = parents.get(urn);
  }
  return undefined;
}

function describe(step: Step): { what: string; kind: string } {
  const { type, name } = urnParts(step.urn);
  const kind = /:Role$/.test(type)
    ? "role"
    : /:Database$/.test(type)
      ? "database"
      : /:PublicRevoke$|:Grant$/.test(type)
        ? "PUBLIC revoke"
        : /:CatalogueSeed$/.test(type)
          ? "catalogue seed"
          : /DnsRecord$|Rfc2136Record$|:Record$/.test(type)
            ? "DNS record"
            : /:RandomId$/.test(type)
              ? "tenant ID"
              : /session-secret$/.test(name)
                ? "session secret"
                : /:RandomPassword$/.test(type)
                  ? "role password"
                  : type;
  const verb: Record<string, string> = {
    create: "created",
    update: "updated",
    delete: "deleted",
    replace: "replaced",
    "create-replacement": "replaced",
    "delete-replaced": "replaced",
    import: "imported",
  };
  return { kind, what: `${kind} ${verb[step.op] ?? step.op}` };
}

function deployedTenants(steps: readonly Step[]): Map<string, { tenantId?: string; status?: string }> {
  const stack = steps.find((step) => urnParts(step.urn).type === "pulumi:pulumi:Stack");
  const tenants = z
    .record(z.string(), z.object({ tenantId: z.string().optional(), status: z.string().optional() }).loose())
    .safeParse(stack?.oldState?.outputs?.tenants ?? {});
  return new Map(tenants.success ? Object.entries(tenants.data) : []);
}

/**
 * The tenants view of one stack's `pulumi preview --json`. `entries`: the
 * shard file's tenants (username, pinned tenant ID), so a new tenant's
 * component (named by its ID) shows under its username; deployed ones are
 * found in the stack's own outputs.
 */
export function summarizePreview(preview: PreviewJson, entries: readonly { username: string; tenantId?: string }[] = []): TenantChanges {
  const parents = new Map(preview.steps.map((step) => [step.urn, (step.newState ?? step.oldState)?.parent]));
  const byTenant = new Map<string, Step[]>();
  let otherChanges = 0;
  const usernames = new Map<string, string>([
    ...[...deployedTenants(preview.steps)].flatMap(([username, tenant]): [string, string][] =>
      tenant.tenantId ? [[tenantResourceName(tenant.tenantId), username]] : [],
    ),
    ...entries.flatMap((entry): [string, string][] => (entry.tenantId ? [[tenantResourceName(entry.tenantId), entry.username]] : [])),
  ]);
  for (const step of preview.steps) {
    const username = tenantOf(step, parents, usernames);
    if (username === undefined) {
      // The stack itself is created with a new shard's stack: not a change anyone needs to review.
      if (!NO_CHANGE.has(step.op) && urnParts(step.urn).type !== "pulumi:pulumi:Stack") otherChanges++;
      continue;
    }
    byTenant.set(username, [...(byTenant.get(username) ?? []), step]);
  }
  const deployed = deployedTenants(preview.steps);
  const result: TenantChanges = { created: [], resumed: [], suspended: [], changed: [], removed: [], unchanged: 0, otherChanges };
  for (const [username, steps] of [...byTenant].sort(([a], [b]) => a.localeCompare(b))) {
    classifyTenant(result, username, steps, deployed.get(username)?.tenantId);
  }
  const touched = new Set(byTenant.keys());
  result.unchanged = [...deployed].filter(([username, tenant]) => tenant.status !== "removed" && !touched.has(username)).length;
  return result;
}

function classifyTenant(result: TenantChanges, username: string, steps: readonly Step[], tenantId: string | undefined): void {
  const component = steps.find((step) => urnParts(step.urn).type === TENANT_TYPE);
  if (component?.op === "create") {
    result.created.push(username);
    return;
  }
  if (component?.op === "delete") {
    const kept = (kind: string) =>
      steps.filter((step) => step.op === "delete" && describe(step).kind === kind).every((step) => step.oldState?.retainOnDelete === true);
    result.removed.push({ username, tenantId: tenantId ?? stringOutput(component, "tenantId"), databaseKept: kept("database"), roleKept: kept("role") });
    return;
  }
  const changing = steps.filter((step) => !NO_CHANGE.has(step.op));
  if (changing.length === 0) return;
  const changes = [...new Set(changing.map((step) => describe(step).what))];
  const dataAtRisk = changing.some((step) => ["database", "role"].includes(describe(step).kind) && step.op !== "update" && step.op !== "create");
  const entry: ChangedTenant = { username, tenantId, changes, dataAtRisk };
  const role = changing.find((step) => describe(step).kind === "role" && step.op === "update");
  const [before, after] = [role?.oldState?.inputs?.login, role?.newState?.inputs?.login];
  if (before === true && after === false) result.suspended.push(entry);
  else if (before === false && after === true) result.resumed.push(entry);
  else result.changed.push(entry);
}

function stringOutput(step: Step, key: string): string | undefined {
  const value = step.oldState?.outputs?.[key];
  return typeof value === "string" ? value : undefined;
}

export interface ShardPreview {
  shard: string;
  stack: string;
  file: string;
  /** The parsed `pulumi preview --json`, when the preview produced one. */
  preview?: PreviewJson;
  /** Why the preview failed (the engine's error lines), when it did. */
  error?: string;
}

/** The pull request comment for every previewed shard of one environment. */
export function renderPreviewComment(environment: string, shards: readonly ShardPreview[]): string {
  const lines = [PREVIEW_COMMENT_MARKER, `## Tenants preview (\`${environment}\`)`, ""];
  if (shards.length === 0) {
    lines.push("No shard's tenants file changed: nothing to deploy.");
    return `${lines.join("\n")}\n`;
  }
  const summaries = shards.map((shard) => ({
    shard,
    changes: shard.preview && !shard.error ? summarizePreview(shard.preview, entriesOf(shard.file)) : undefined,
  }));
  const counts = (changes: TenantChanges | undefined): string[] =>
    changes
      ? [changes.created, changes.resumed, changes.changed, changes.suspended, changes.removed]
          .map((list) => String(list.length))
          .concat(String(changes.otherChanges))
      : ["preview failed", "", "", "", "", ""];
  lines.push(
    ...renderMarkdownTable(
      ["shard", "stack", "created", "resumed", "changed", "suspended", "removed", "other changes"],
      summaries.map(({ shard, changes }) => [shard.shard, `\`${shard.stack}\``, ...counts(changes)]),
      ["left", "left", "right", "right", "right", "right", "right", "right"],
    ),
  );
  for (const { shard, changes } of summaries) lines.push("", ...renderShard(shard, changes));
  return `${lines.join("\n")}\n`;
}

function tenantLabel(tenant: { username: string; tenantId?: string }): string {
  return tenant.tenantId ? `\`${tenant.username}\` (${tenant.tenantId})` : `\`${tenant.username}\``;
}

function listed<T>(items: readonly T[], show: (item: T) => string, separator = ", "): string {
  const shown = items.slice(0, MAX_LISTED).map(show).join(separator);
  return items.length > MAX_LISTED ? `${shown}${separator}and ${items.length - MAX_LISTED} more` : shown;
}

function renderShard(shard: ShardPreview, changes: TenantChanges | undefined): string[] {
  const lines = [`### ${shard.shard}: \`${shard.file}\``, ""];
  if (changes === undefined) {
    const text = (shard.error ?? "the preview produced no result").replaceAll("```", "'''");
    return [...lines, "**The preview failed**; nothing can be deployed from this shard until it passes:", "", "```text", text, "```"];
  }
  const bullet = (title: string, count: number, body: string) => (count > 0 ? [`- **${title} (${count}):** ${body}`] : []);
  const withChanges = (tenant: ChangedTenant) => `${tenantLabel(tenant)}${tenant.dataAtRisk ? " **⚠ data at risk**" : ""}: ${tenant.changes.join(", ")}`;
  lines.push(
    ...bullet(
      "Created",
      changes.created.length,
      listed(changes.created, (username) => `\`${username}\``),
    ),
    ...bullet("Resumed", changes.resumed.length, `${listed(changes.resumed, tenantLabel)}: can log in again, DNS record back, catalogue checked`),
    ...bullet("Changed", changes.changed.length, listed(changes.changed, withChanges, "; ")),
    ...bullet("Suspended", changes.suspended.length, `${listed(changes.suspended, tenantLabel)}: cannot log in, DNS record removed, data kept`),
    ...bullet("Removed", changes.removed.length, listed(changes.removed, removedLabel, "; ")),
  );
  if (lines.length === 2) lines.push("- No tenant changes.");
  lines.push(`- Unchanged: ${changes.unchanged} tenant(s). Other changes: ${changes.otherChanges}.`);
  return lines;
}

function removedLabel(tenant: RemovedTenant): string {
  if (tenant.databaseKept && tenant.roleKept) return `${tenantLabel(tenant)}: data kept (database and role \`delete [retain]\`)`;
  if (!tenant.databaseKept && !tenant.roleKept) return `${tenantLabel(tenant)}: **data purged** (database and role dropped)`;
  return `${tenantLabel(tenant)}: database ${tenant.databaseKept ? "kept" : "**dropped**"}, role ${tenant.roleKept ? "kept" : "dropped"}`;
}

/** A shard file's entries, for summarizePreview's names; none when it cannot be read (the preview's own error says why). */
function entriesOf(file: string): { username: string; tenantId?: string }[] {
  const result = existsSync(file) ? loadTenantsFile(file) : undefined;
  return result?.ok ? result.tenants : [];
}

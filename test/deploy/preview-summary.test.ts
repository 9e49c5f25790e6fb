/**
 * The pull request's preview comment (deploy/preview-summary.ts) on a real
 * `pulumi preview --json`: test/fixtures/preview/prod-s001.json was recorded
 * from a real preview of a 4-tenant stack (alice unchanged, bob removed,
 * carol suspended, dave resumed, erin new; builtin database provider),
 * trimmed to the fields a preview step has that the summary reads (the
 * dynamic providers' serialized code left out).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PREVIEW_COMMENT_MARKER, previewJsonSchema, renderPreviewComment, summarizePreview, type PreviewJson } from "../../deploy/preview-summary";

function recorded(): PreviewJson {
  return previewJsonSchema.parse(JSON.parse(readFileSync(join(__dirname, "..", "fixtures", "preview", "prod-s001.json"), "utf8")));
}

/** The recorded preview as it reads on a stack with `allowPurge: true` (retainOnDelete false in the state). */
function purging(): PreviewJson {
  const preview = recorded();
  for (const step of preview.steps) if (step.oldState) step.oldState.retainOnDelete = false;
  return preview;
}

describe("summarizePreview on a recorded preview", () => {
  it("says who is created, resumed, suspended and removed, and that the removed tenant's data is kept", () => {
    const changes = summarizePreview(recorded());
    expect(changes.created).toEqual(["erin"]);
    expect(changes.resumed).toEqual([{ username: "dave", tenantId: "854F547B", changes: ["role updated", "catalogue seed created"], dataAtRisk: false }]);
    expect(changes.suspended).toEqual([{ username: "carol", tenantId: "4E4E643D", changes: ["role updated", "catalogue seed deleted"], dataAtRisk: false }]);
    expect(changes.removed).toEqual([{ username: "bob", tenantId: "AF5FDBCC", databaseKept: true, roleKept: true }]);
    expect(changes.changed).toEqual([]);
    expect(changes.unchanged).toBe(1);
    expect(changes.otherChanges).toBe(0);
  });

  it("shows a tenant whose resources are named by its tenant ID under its username (from the file's entries)", () => {
    const preview = recorded();
    for (const step of preview.steps) {
      step.urn = step.urn.replace(/::erin(-|$)/, "::0E0E0E0E$1");
      for (const state of [step.newState, step.oldState]) if (state?.parent) state.parent = state.parent.replace(/::erin$/, "::0E0E0E0E");
    }
    expect(summarizePreview(preview).created).toEqual(["0E0E0E0E"]);
    expect(summarizePreview(preview, [{ username: "erin", tenantId: "0E0E0E0E" }]).created).toEqual(["erin"]);
  });

  it("tells a purge from a kept removal", () => {
    expect(summarizePreview(purging()).removed).toEqual([{ username: "bob", tenantId: "AF5FDBCC", databaseKept: false, roleKept: false }]);
    expect(renderPreviewComment("prod", [{ shard: "s001", stack: "prod-s001", file: "tenants/tenants.yaml", preview: purging() }])).toContain(
      "`bob` (AF5FDBCC): **data purged** (database and role dropped)",
    );
  });

  it("flags a replaced database as data at risk and counts changes outside tenants", () => {
    const preview = recorded();
    const database = preview.steps.find((step) => step.urn.endsWith("::bob-database"))!;
    preview.steps = preview.steps.filter((step) => !step.urn.includes("::bob"));
    preview.steps.push(
      {
        ...database,
        op: "replace",
        urn: database.urn.replace("bob-database", "alice-database"),
        oldState: { ...database.oldState, parent: database.oldState!.parent!.replace("::bob", "::alice") },
      },
      { op: "create", urn: "urn:pulumi:prod-s001::drivergigspro::pulumi:providers:random::default_4_22_0", newState: { type: "pulumi:providers:random" } },
    );
    const changes = summarizePreview(preview);
    expect(changes.changed).toEqual([{ username: "alice", tenantId: "19448B07", changes: ["database replaced"], dataAtRisk: true }]);
    expect(changes.otherChanges).toBe(1);
    expect(changes.unchanged).toBe(1); // bob, whose steps were taken out: unchanged as far as this preview says
  });
});

describe("renderPreviewComment", () => {
  it("renders one comment with the marker, a table and a section per shard", () => {
    const comment = renderPreviewComment("prod", [
      { shard: "s001", stack: "prod-s001", file: "tenants/tenants.yaml", preview: recorded() },
      { shard: "s002", stack: "prod-s002", file: "tenants/s002.yaml", error: 'tenants/s002.yaml line 4 (maria_k): write "maria_k"\n```oops```' },
    ]);
    expect(comment.startsWith(`${PREVIEW_COMMENT_MARKER}\n## Tenants preview (\`prod\`)`)).toBe(true);
    expect(comment).toContain("| s001 | `prod-s001` | 1 | 1 | 0 | 1 | 1 | 0 |");
    expect(comment).toContain("| s002 | `prod-s002` | preview failed |");
    expect(comment).toContain("- **Created (1):** `erin`");
    expect(comment).toContain("- **Resumed (1):** `dave` (854F547B): can log in again");
    expect(comment).toContain("- **Suspended (1):** `carol` (4E4E643D): cannot log in, DNS record removed, data kept");
    expect(comment).toContain("- **Removed (1):** `bob` (AF5FDBCC): data kept (database and role `delete [retain]`)");
    expect(comment).toContain("- Unchanged: 1 tenant(s). Other changes: 0.");
    // The error is shown in a code block it cannot close.
    expect(comment).toContain("```text\ntenants/s002.yaml line 4 (maria_k): write \"maria_k\"\n'''oops'''\n```");
    expect(comment.split(PREVIEW_COMMENT_MARKER)).toHaveLength(2);
  });

  it("says when no shard changed, and caps long lists", () => {
    expect(renderPreviewComment("prod", [])).toContain("No shard's tenants file changed");
    const preview = recorded();
    const erin = preview.steps.find((step) => step.op === "create" && step.urn.endsWith("Tenant::erin"))!;
    preview.steps = Array.from({ length: 100 }, (_, i) => ({ ...erin, urn: erin.urn.replace("::erin", `::user${String(i).padStart(3, "0")}`) }));
    const comment = renderPreviewComment("prod", [{ shard: "s001", stack: "prod-s001", file: "tenants/tenants.yaml", preview }]);
    expect(comment).toContain("- **Created (100):** `user000`, `user001`");
    expect(comment).toContain("`user059`, and 40 more");
    expect(comment).not.toContain("`user060`");
  });
});

/**
 * deploy/parallel.ts without the engine: whole prefixed lines however the
 * output is cut, the changes read from Pulumi's own summaries, and the pool's
 * promises (at most N at once, a failure stops no other shard, rows in the
 * shards' order). test/deploy/parallel.e2e.test.ts runs it with the real engine.
 */
import { describe, expect, it } from "vitest";
import { countChanges, failedLine, formatChanges, LinePrefixer, runShards, type ParallelTarget } from "../../deploy/parallel";

const UP_DISPLAY = `Previewing update (ci-s001):
 +  pulumi:pulumi:Stack drivergigspro-ci-s001 create

Resources:
    + 10 to create

Updating (ci-s001):
 +  pulumi:pulumi:Stack drivergigspro-ci-s001 created (3s)

Resources:
    + 9 created
    ~ 2 updated
    +-1 replaced
    12 changes. 4 unchanged

Duration: 5s
`;

describe("LinePrefixer", () => {
  it("writes whole lines only, each prefixed, however the text is cut", () => {
    const writes: string[] = [];
    const prefixer = new LinePrefixer("[s002] ", (text) => writes.push(text));
    for (const chunk of ["Upda", "ting (ci-s002):\n +  pulumi", ":pulumi:Stack create\r\n\nResources:\n", "    + 1 created"]) prefixer.push(chunk);
    expect(writes).toEqual(["[s002] Updating (ci-s002):\n", "[s002]  +  pulumi:pulumi:Stack create\n[s002] \n[s002] Resources:\n"]);
    prefixer.flush();
    expect(writes.at(-1)).toBe("[s002]     + 1 created\n");
    for (const text of writes) expect(text.endsWith("\n")).toBe(true);
  });
});

describe("countChanges", () => {
  it("counts what an update did, not the preview it printed first", () => {
    expect(countChanges(UP_DISPLAY, "up")).toEqual({ create: 9, update: 2, replace: 1 });
    expect(formatChanges(countChanges(UP_DISPLAY, "up"))).toBe("+9 ~2 +-1");
  });

  it("counts what a preview plans; none when nothing changes; unknown without a summary", () => {
    expect(countChanges("Resources:\n    + 1 to create\n    - 2 to delete\n    7 unchanged\n", "preview")).toEqual({ create: 1, delete: 2 });
    expect(formatChanges(countChanges("Resources:\n    14 unchanged\n\nDuration: 2s\n", "preview"))).toBe("none");
    expect(countChanges("error: the stack is currently locked\n", "up")).toBeUndefined();
    expect(formatChanges(undefined)).toBe("");
  });
});

describe("runShards", () => {
  const targets: ParallelTarget[] = ["s001", "s002", "s003", "s004", "s005"].map((shard) => ({ shard, stack: `ci-${shard}`, file: `tenants/${shard}.yaml` }));

  it("runs at most N at once, goes on past a failure, and gives the rows in the shards' order", async () => {
    const gates = new Map<string, () => void>();
    let running = 0;
    let most = 0;
    const out: string[] = [];
    const err: string[] = [];
    const done = runShards("up", targets, 2, { out: (text) => out.push(text), err: (text) => err.push(text) }, async (target, output) => {
      running++;
      most = Math.max(most, running);
      output.stdout(`Updating (${target.stack})\nResources:\n    + 1 created\n`);
      await new Promise<void>((resolve) => gates.set(target.shard, resolve));
      running--;
      if (target.shard === "s002") throw new Error('tenants/s002.yaml:2: tenant "Max_Power": username must be lower case');
    });
    // Let them end in another order than they started: each gate opens once its shard is waiting.
    for (const shard of ["s002", "s001", "s004", "s003", "s005"]) {
      while (!gates.has(shard)) await new Promise((resolve) => setImmediate(resolve));
      gates.get(shard)!();
    }
    const runs = await done;
    expect(most).toBe(2);
    expect(runs.map((run) => [run.shard, run.result, formatChanges(run.changes)])).toEqual([
      ["s001", "ok", "+1"],
      ["s002", "failed", "+1"],
      ["s003", "ok", "+1"],
      ["s004", "ok", "+1"],
      ["s005", "ok", "+1"],
    ]);
    expect(runs[1]!.error).toContain('tenant "Max_Power"');
    expect(err.join("")).toMatch(/^\[s002\] error: tenants\/s002\.yaml:2: tenant "Max_Power"/m);
    for (const text of [...out, ...err]) expect(text).toMatch(/^(\[s00\d\] [^\n]*\n)+$/);
    expect(failedLine("up", runs)).toBe(
      "up failed on 1 of 5 shard(s): s002 (stack ci-s002); the others ran to their end. Fix the failure above, then run again (--shard NAME for one).",
    );
    expect(failedLine("up", [runs[0]!])).toBeUndefined();
  });
});

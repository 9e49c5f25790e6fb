/**
 * Many shards at once for `npm run deploy`: each chosen shard is still one
 * engine run of its own stack (scripts/deploy.ts says which; each waits on its
 * own stack lock), but up to `parallel` of them run at the same time
 * (lib/in-pool.ts). Each shard's output is streamed line by line with its
 * name in front (`[s002] ...`): a line is written only once it is whole, so
 * two shards' lines never mix mid-line. A failing shard does not stop the
 * others; every shard ends as one row of the closing table (shard, result,
 * changes, seconds), or one entry of `--json`.
 */
import { inPool } from "../lib/in-pool";
import { errorMessage } from "../lib/errors";
import { renderMarkdownTable, renderTable } from "../lib/table";

/**
 * One shard at a time unless `--parallel N` says otherwise. Measured with
 * `npm run bench -- fleet` (1,000 tenants, 10 shards of 100) on this project's
 * 2-core machine, shared (README "Verification and benchmarks"): two at once
 * made each shard's run 1.0-2.4x as long and the whole pass 0.78x (preview) and
 * 0.72x (update) of the sequential time, far from 2x, so one engine run already
 * keeps such cores mostly busy. Where cores are free, N of them pay; CI gets
 * its parallelism from runners instead (one shard per job).
 */
export const DEFAULT_PARALLEL = 1;

/** Where one shard's engine output goes. */
export interface ShardOutput {
  /** Pulumi's display (its stdout), as it comes. */
  stdout(text: string): void;
  /** Pulumi's error output, and the deploy command's own error lines. */
  stderr(text: string): void;
  /** One progress line of the deploy command itself (lock waits, stack creation). */
  log(line: string): void;
}

export type ShardResult = "ok" | "failed";

export interface ShardRun {
  shard: string;
  stack: string;
  file: string;
  result: ShardResult;
  /** Resources changed (up) or to change (preview), by operation, from the engine's own summary; absent when it printed none. */
  changes?: Record<string, number>;
  seconds: number;
  /** The first lines of the failure, when it failed. */
  error?: string;
}

/**
 * Buffers text and hands on whole lines only, each with `prefix` in front.
 * `flush` hands on what is left (a last line without its newline).
 */
export class LinePrefixer {
  private pending = "";
  constructor(
    private readonly prefix: string,
    private readonly write: (text: string) => void,
  ) {}

  push(text: string): void {
    const lines = (this.pending + text).split(/\r?\n/);
    this.pending = lines.pop() ?? "";
    if (lines.length > 0) this.write(lines.map((line) => `${this.prefix}${line}\n`).join(""));
  }

  flush(): void {
    if (this.pending !== "") this.write(`${this.prefix}${this.pending}\n`);
    this.pending = "";
  }
}

/** The engine's words for each operation: in a preview's summary ("to create") and in an update's ("created"). */
const OPERATION: Record<string, string> = { create: "create", update: "update", delete: "delete", replace: "replace", import: "import" };
const DONE: Record<string, string> = { created: "create", updated: "update", deleted: "delete", replaced: "replace", imported: "import" };

/**
 * The changes of the engine's closing summaries ("Resources:" then lines such
 * as `+ 3 created`, `~ 20 to update`, `10 unchanged`) in `display`, by
 * operation. An update counts what it did (`created`), not the preview it
 * printed first (`to create`); a preview counts what it plans. Summed over
 * every summary (an update converge runs twice prints two); undefined when the
 * display has none (the run failed before its end).
 */
export function countChanges(display: string, command: "preview" | "up"): Record<string, number> | undefined {
  let found = false;
  const counts: Record<string, number> = {};
  let inSummary = false;
  for (const line of display.split(/\r?\n/)) {
    if (/^Resources:\s*$/.test(line)) {
      found = inSummary = true;
      continue;
    }
    if (!inSummary) continue;
    const match = /^\s+(?:[-+~<>]+\s*)?(\d+) (to )?([a-z-]+)\s*$/.exec(line);
    if (match === null) {
      if (!/^\s+\d+ changes?\. \d+ unchanged/.test(line)) inSummary = false;
      continue;
    }
    const operation = command === "preview" ? (match[2] ? OPERATION[match[3]!] : undefined) : match[2] ? undefined : DONE[match[3]!];
    if (operation !== undefined) counts[operation] = (counts[operation] ?? 0) + Number(match[1]);
  }
  return found ? counts : undefined;
}

/** The changes of a `pulumi preview --json`, by operation (its steps' `op`; unchanged ones left out). */
export function countSteps(steps: readonly { op: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const step of steps) {
    const operation = OPERATION[step.op];
    if (operation !== undefined) counts[operation] = (counts[operation] ?? 0) + 1;
  }
  return counts;
}

/** `+3 ~20 -1 +-2` for people; "none" for no change; "" when not known. */
export function formatChanges(changes: Record<string, number> | undefined): string {
  if (changes === undefined) return "";
  const signs: [string, string][] = [
    ["create", "+"],
    ["update", "~"],
    ["delete", "-"],
    ["replace", "+-"],
    ["import", "="],
  ];
  const parts = signs.filter(([operation]) => (changes[operation] ?? 0) > 0).map(([operation, sign]) => `${sign}${changes[operation]}`);
  return parts.length > 0 ? parts.join(" ") : "none";
}

export interface ParallelTarget {
  readonly shard: string;
  readonly stack: string;
  readonly file: string;
}

/**
 * Runs `run` for every target, at most `parallel` at a time, in the targets'
 * order. Each run gets its own ShardOutput, prefixed with the shard's name,
 * writing whole lines to `sinks` (display and log lines to `out`, errors to
 * `err`). A run that throws is one failed row; the others go on. The rows come
 * back in the targets' order, whatever order the runs ended in.
 */
export async function runShards<T extends ParallelTarget>(
  command: "preview" | "up",
  targets: readonly T[],
  parallel: number,
  sinks: { out: (text: string) => void; err: (text: string) => void },
  run: (target: T, output: ShardOutput) => Promise<void>,
): Promise<ShardRun[]> {
  const runs = new Map<string, ShardRun>();
  await inPool(targets, parallel, async (target) => {
    const prefix = `[${target.shard}] `;
    const out = new LinePrefixer(prefix, sinks.out);
    const err = new LinePrefixer(prefix, sinks.err);
    let display = "";
    const output: ShardOutput = {
      stdout: (text) => {
        display += text;
        out.push(text);
      },
      stderr: (text) => err.push(text),
      log: (line) => out.push(`${line}\n`),
    };
    const started = performance.now();
    output.log(`${target.stack}: started (${target.file})`);
    let error: string | undefined;
    try {
      await run(target, output);
    } catch (thrown) {
      const lines = errorMessage(thrown).trim().split("\n");
      error = lines.slice(0, 20).join("\n") + (lines.length > 20 ? "\n..." : "");
      output.stderr(`error: ${error}\n`);
    }
    const seconds = (performance.now() - started) / 1000;
    const changes = countChanges(display, command);
    out.flush();
    err.flush();
    const result: ShardResult = error === undefined ? "ok" : "failed";
    output.log(`${target.stack}: ${result} in ${seconds.toFixed(1)} s`);
    out.flush();
    runs.set(target.shard, {
      shard: target.shard,
      stack: target.stack,
      file: target.file,
      result,
      seconds,
      ...(changes && { changes }),
      ...(error !== undefined && { error }),
    });
  });
  return targets.map((target) => runs.get(target.shard)!);
}

const HEAD = ["shard", "result", "changes", "seconds"];
const cells = (run: ShardRun) => [run.shard, run.result, formatChanges(run.changes), run.seconds.toFixed(1)];

/** The closing table for people (lib/table.ts), with the total wall time. */
export function renderRunsTable(runs: readonly ShardRun[], wallSeconds?: number): string {
  const ok = `${runs.filter((run) => run.result === "ok").length}/${runs.length} ok`;
  return renderTable(HEAD, [...runs.map(cells), ["total", ok, "", wallSeconds === undefined ? "" : wallSeconds.toFixed(1)]]);
}

/** The same table in Markdown, for a CI job's summary. */
export function renderRunsMarkdown(runs: readonly ShardRun[]): string[] {
  return renderMarkdownTable(HEAD, runs.map(cells), ["left", "left", "left", "right"]);
}

/** The line a run with failed shards ends with, naming them; undefined when none failed. */
export function failedLine(command: string, runs: readonly ShardRun[]): string | undefined {
  const failed = runs.filter((run) => run.result === "failed");
  if (failed.length === 0) return undefined;
  return `${command} failed on ${failed.length} of ${runs.length} shard(s): ${failed.map((run) => `${run.shard} (stack ${run.stack})`).join(", ")}; the others ran to their end. Fix the failure above, then run again (--shard NAME for one).`;
}

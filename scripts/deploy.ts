/**
 * `npm run deploy`: the one deployment command CI's workflow and people share.
 *
 *   npm run deploy -- preview --env prod --changed-since origin/main --comment-file preview.md
 *   npm run deploy -- up --env prod --changed-since <sha before the push>
 *   npm run deploy -- up --env prod --shard s002
 *   npm run deploy -- up --env prod --parallel 4
 *   npm run deploy -- list --env prod --changed-since origin/main --json     (the shards only: CI's matrix)
 *   npm run deploy -- report --env prod --comment-file preview.md results/*.json
 *
 * Each chosen shard of tenants/shards.yaml is one engine run: its stack
 * `<env>-<shard>` (created from another shard's config when the shard is
 * new) gets `pulumi preview` or `pulumi up --yes` with Pulumi's own display,
 * up to --parallel shards at a time (deploy/parallel.ts; default 1), each
 * line prefixed with its shard's name. A stack held by another deployment (the
 * signup service, another CI run) is waited for, up to --lock-timeout seconds
 * (default 1800), by that shard alone. `--comment-file` previews with `--json`
 * and writes the pull request comment (deploy/preview-summary.ts) there, also
 * when a preview fails. The run ends with one table (shard, result, changes,
 * seconds), or with `--json` one document on stdout (deploy/report.ts).
 *
 * Needs PULUMI_BACKEND_URL (the state server, `postgres://...`) and
 * PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE). A failing shard
 * does not stop the others; the command exits non-zero naming every shard
 * that failed.
 */
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { deployStack, prepareStack, previewStack, previewStackJson, templateStack, type LockWait } from "../deploy/engine";
import {
  countSteps,
  DEFAULT_PARALLEL,
  failedLine,
  formatChanges,
  renderRunsMarkdown,
  renderRunsTable,
  runShards,
  type ParallelTarget,
  type ShardOutput,
  type ShardRun,
} from "../deploy/parallel";
import { renderPreviewComment, summarizePreview, type ShardPreview } from "../deploy/preview-summary";
import { gatherReports, type DeployReport } from "../deploy/report";
import { namedShards, shardsChangedSince, type Selection } from "../deploy/select";
import { LOCAL_STATE_DIR, PROJECT_DIR } from "../engine/paths";
import type { PulumiContext } from "../engine/pulumi";
import { resolveEngine } from "../engine/fleet-access";
import { readShards, shardStack, type Shard, type ShardsManifest } from "../tenants/shards";
import { runMain } from "../lib/run-main";

const USAGE = [
  "usage: npm run deploy -- preview|up --env NAME [--shard NAME ... | --changed-since REF] [--parallel N] [--json] [--comment-file PATH] [--lock-timeout SECONDS]",
  "       npm run deploy -- list --env NAME [--shard NAME ... | --changed-since REF] [--json]",
  "       npm run deploy -- report --env NAME [--expect NAME,NAME] [--comment-file PATH] [--summary-file PATH] RESULT.json ...",
].join("\n");

type Command = "preview" | "up" | "list" | "report";

interface Options {
  command: Command;
  environment: string;
  shards: string[];
  changedSince?: string;
  commentFile?: string;
  summaryFile?: string;
  lockTimeoutMs: number;
  parallel: number;
  json: boolean;
  /** report: the result files, and the shards that must have one. */
  files: string[];
  expect: string[];
}

function wholeNumber(flag: string, text: string, min: number, example: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min)
    throw new Error(`${flag} takes a whole number${min > 0 ? ` from ${min}` : ""} (e.g. ${example}), not "${text.slice(0, 20)}"\n${USAGE}`);
  return value;
}

function parseOptions(argv: string[]): Options {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      env: { type: "string" },
      shard: { type: "string", multiple: true, default: [] },
      "changed-since": { type: "string" },
      "comment-file": { type: "string" },
      "summary-file": { type: "string" },
      "lock-timeout": { type: "string", default: "1800" },
      parallel: { type: "string", default: String(DEFAULT_PARALLEL) },
      json: { type: "boolean", default: false },
      expect: { type: "string", default: "" },
    },
    allowPositionals: true,
    strict: true,
  });
  const command = positionals[0] as Command;
  if (!["preview", "up", "list", "report"].includes(command)) throw new Error(`say preview, up, list or report first\n${USAGE}`);
  if (command !== "report" && positionals.length !== 1) throw new Error(`say ${command} once, with no other words\n${USAGE}`);
  if (values.env === undefined || !/^[a-z][a-z0-9-]{0,30}$/.test(values.env))
    throw new Error(`--env NAME is required: 1-31 of a-z 0-9 -, starting with a letter (e.g. prod)\n${USAGE}`);
  if (values.shard.length > 0 && values["changed-since"] !== undefined) throw new Error(`give --shard or --changed-since, not both\n${USAGE}`);
  if (values["comment-file"] !== undefined && command !== "preview" && command !== "report")
    throw new Error(`--comment-file goes with preview or report\n${USAGE}`);
  if (values["summary-file"] !== undefined && command !== "report") throw new Error(`--summary-file goes with report\n${USAGE}`);
  return {
    command,
    environment: values.env,
    shards: values.shard,
    changedSince: values["changed-since"],
    commentFile: values["comment-file"],
    summaryFile: values["summary-file"],
    lockTimeoutMs: wholeNumber("--lock-timeout", values["lock-timeout"], 0, "1800") * 1000,
    parallel: wholeNumber("--parallel", values.parallel, 1, "2"),
    json: values.json,
    files: positionals.slice(1),
    expect: values.expect.split(",").filter(Boolean),
  };
}

/**
 * The engine's environment (engine/fleet-access.ts): the state server
 * (PULUMI_BACKEND_URL; this production command registers no local fallback)
 * and the passphrase must come from the caller (CI's secrets), never be made up here.
 */
async function engineContext(): Promise<PulumiContext> {
  if (process.env.PULUMI_CONFIG_PASSPHRASE === undefined) {
    const file = process.env.PULUMI_CONFIG_PASSPHRASE_FILE;
    if (!file) throw new Error("set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE): the passphrase the stacks' secrets are encrypted with");
    process.env.PULUMI_CONFIG_PASSPHRASE = readFileSync(file, "utf8").trim();
  }
  return (await resolveEngine({ mayBuild: true, stateDir: join(LOCAL_STATE_DIR, "deploy") })).context;
}

function selectShards(manifest: ShardsManifest, options: Options): Selection {
  return options.changedSince !== undefined
    ? shardsChangedSince(PROJECT_DIR, manifest, options.environment, options.changedSince)
    : namedShards(manifest, options.shards);
}

interface Target extends ParallelTarget {
  entry: Shard;
}

/** One shard's engine run: its stack made ready, then preview or up, every line of it to `output`. */
async function runShard(
  context: PulumiContext,
  manifest: ShardsManifest,
  options: Options,
  target: Target,
  output: ShardOutput,
  previews: Map<string, ShardPreview>,
) {
  const wait: LockWait = { timeoutMs: options.lockTimeoutMs, log: output.log, output };
  await prepareStack(context, target.stack, target.entry, templateStack(options.environment, manifest.shards, target.entry), wait);
  if (options.command === "up") return deployStack(context, target.stack, wait);
  // The comment and --json say the preview in tenants: that needs `pulumi preview --json` (no display, its summary is logged).
  if (options.commentFile === undefined && !options.json) return previewStack(context, target.stack, wait);
  const result = await previewStackJson(context, target.stack, wait);
  previews.set(target.shard, { shard: target.shard, stack: target.stack, file: target.file, ...result });
  if (result.error !== undefined) throw new Error(result.error);
  output.log(`preview: ${formatChanges(countSteps(result.preview!.steps))} (resources to change)`);
}

/** The previews for the comment, in the targets' order; a shard that failed before its preview shows its error. */
function shardPreviews(targets: readonly Target[], runs: readonly ShardRun[], previews: Map<string, ShardPreview>): ShardPreview[] {
  return targets.map(
    (target, index) => previews.get(target.shard) ?? { shard: target.shard, stack: target.stack, file: target.file, error: runs[index]!.error },
  );
}

function writeComment(options: Options, previews: readonly ShardPreview[], say: (line: string) => void): void {
  if (options.commentFile === undefined) return;
  writeFileSync(options.commentFile, renderPreviewComment(options.environment, previews));
  say(`deploy: wrote the pull request comment to ${options.commentFile}`);
}

/** `list`: the chosen shards, without starting the engine (CI's matrix). */
function list(options: Options, selection: Selection, targets: readonly Target[]): number {
  if (options.json) {
    const shards = targets.map(({ shard, stack, file }) => ({ shard, stack, file }));
    console.log(JSON.stringify({ environment: options.environment, reason: selection.reason, shards }));
  } else console.log(`deploy: ${selection.reason}: ${targets.map((target) => target.shard).join(", ") || "none"}`);
  return 0;
}

async function deploy(options: Options, manifest: ShardsManifest, selection: Selection, targets: Target[]): Promise<number> {
  // With --json, stdout is the one JSON document; everything for people goes to stderr.
  const out = options.json ? (text: string) => process.stderr.write(text) : (text: string) => process.stdout.write(text);
  const say = (line: string) => out(`${line}\n`);
  say(`deploy: ${options.command} of ${selection.reason}: ${targets.map((target) => target.shard).join(", ") || "none"} (${options.parallel} at a time)`);
  const previews = new Map<string, ShardPreview>();
  const started = performance.now();
  const context = targets.length === 0 ? undefined : await engineContext();
  const runs = await runShards(
    options.command as "preview" | "up",
    targets,
    options.parallel,
    { out, err: (text) => process.stderr.write(text) },
    (target, output) => runShard(context!, manifest, options, target, output, previews),
  );
  const seconds = (performance.now() - started) / 1000;
  for (const run of runs) {
    const preview = previews.get(run.shard)?.preview;
    if (preview !== undefined) run.changes = countSteps(preview.steps);
  }
  const all = shardPreviews(targets, runs, previews);
  writeComment(options, all, say);
  const failed = failedLine(options.command, runs);
  if (options.json) {
    const shards = runs.map((run, index) => ({ ...run, ...(all[index]!.preview && !run.error && { tenants: summarizePreview(all[index]!.preview!) }) }));
    const report: DeployReport = {
      command: options.command as "preview" | "up",
      environment: options.environment,
      reason: selection.reason,
      parallel: options.parallel,
      seconds,
      shards,
    };
    console.log(JSON.stringify(report));
  } else {
    if (options.commentFile !== undefined) say(`\n${renderPreviewComment(options.environment, all)}`);
    if (runs.length > 0) say(`\n${renderRunsTable(runs, seconds)}`);
  }
  if (failed !== undefined) console.error(`error: ${failed}`);
  return failed === undefined ? 0 : 1;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (options.command === "report") return report(options);
  const manifest = readShards(PROJECT_DIR);
  const selection = selectShards(manifest, options);
  const targets = selection.shards.map((shard) => ({ shard: shard.name, stack: shardStack(options.environment, shard), file: shard.file, entry: shard }));
  if (options.command === "list") return list(options, selection, targets);
  return deploy(options, manifest, selection, targets);
}

/** `report`: the result files of runs elsewhere (CI's matrix jobs, one shard each) as one table, comment and job summary. */
function report(options: Options): number {
  const gathered = gatherReports(options.environment, options.files, options.expect);
  const runs = gathered.map((entry) => entry.run);
  console.log(renderRunsTable(runs));
  const previews = gathered.map(({ run, tenants }) => ({ shard: run.shard, stack: run.stack, file: run.file, tenants, error: run.error }));
  writeComment(options, previews, (line) => console.log(line));
  const failed = failedLine(gathered[0]?.command ?? "deploy", runs);
  if (options.summaryFile !== undefined) {
    const lines = [
      `## Tenants ${gathered[0]?.command ?? "deploy"} (\`${options.environment}\`)`,
      "",
      ...(runs.length > 0 ? renderRunsMarkdown(runs) : ["No shard changed: nothing ran."]),
      "",
      failed ?? "Every shard ran to its end.",
    ];
    appendFileSync(options.summaryFile, `${lines.join("\n")}\n`);
  }
  if (failed !== undefined) console.error(`error: ${failed}`);
  return failed === undefined ? 0 : 1;
}

runMain(main);

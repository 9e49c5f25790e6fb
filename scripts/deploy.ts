/**
 * `npm run deploy`: the one deployment command CI's workflow and people share.
 *
 *   npm run deploy -- preview --env prod --changed-since origin/main --comment-file preview.md
 *   npm run deploy -- up --env prod --changed-since <sha before the push>
 *   npm run deploy -- up --env prod --shard s002
 *
 * For each chosen shard of tenants/shards.yaml, one at a time, the stack
 * `<env>-<shard>` (created from another shard's config when the shard is
 * new) gets `pulumi preview` or `pulumi up --yes` with Pulumi's own display.
 * A stack held by another deployment (the signup service, another CI run) is
 * waited for, up to --lock-timeout seconds (default 1800). `--comment-file`
 * previews with `--json` and writes the pull request comment
 * (deploy/preview-summary.ts) there, also when a preview fails.
 *
 * Needs PULUMI_BACKEND_URL (the state server, `postgres://...`) and
 * PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE). Exits non-zero
 * when any shard fails; `up` stops at the first failing shard.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { deployStack, prepareStack, previewStack, previewStackJson, templateStack, type LockWait } from "../deploy/engine";
import { renderPreviewComment, type ShardPreview } from "../deploy/preview-summary";
import { namedShards, shardsChangedSince, type Selection } from "../deploy/select";
import { LOCAL_STATE_DIR, PROJECT_DIR } from "../engine/paths";
import type { PulumiContext } from "../engine/pulumi";
import { resolveEngine } from "../engine/fleet-access";
import { readShards, shardStack, type ShardsManifest } from "../tenants/shards";
import { errorMessage } from "../lib/errors";
import { runMain } from "../lib/run-main";

const USAGE = "usage: npm run deploy -- preview|up --env NAME [--shard NAME ... | --changed-since REF] [--comment-file PATH] [--lock-timeout SECONDS]";

interface Options {
  command: "preview" | "up";
  environment: string;
  shards: string[];
  changedSince?: string;
  commentFile?: string;
  lockTimeoutMs: number;
}

function parseOptions(argv: string[]): Options {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      env: { type: "string" },
      shard: { type: "string", multiple: true, default: [] },
      "changed-since": { type: "string" },
      "comment-file": { type: "string" },
      "lock-timeout": { type: "string", default: "1800" },
    },
    allowPositionals: true,
    strict: true,
  });
  const command = positionals[0];
  if ((command !== "preview" && command !== "up") || positionals.length !== 1) throw new Error(`say preview or up, once\n${USAGE}`);
  if (values.env === undefined || !/^[a-z][a-z0-9-]{0,30}$/.test(values.env))
    throw new Error(`--env NAME is required: 1-31 of a-z 0-9 -, starting with a letter (e.g. prod)\n${USAGE}`);
  if (values.shard.length > 0 && values["changed-since"] !== undefined) throw new Error(`give --shard or --changed-since, not both\n${USAGE}`);
  if (values["comment-file"] !== undefined && command !== "preview") throw new Error(`--comment-file goes with preview\n${USAGE}`);
  const seconds = Number(values["lock-timeout"]);
  if (!Number.isInteger(seconds) || seconds < 0)
    throw new Error(`--lock-timeout takes whole seconds (e.g. 1800), not "${values["lock-timeout"].slice(0, 20)}"`);
  return {
    command,
    environment: values.env,
    shards: values.shard,
    changedSince: values["changed-since"],
    commentFile: values["comment-file"],
    lockTimeoutMs: seconds * 1000,
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

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const manifest = readShards(PROJECT_DIR);
  const selection = selectShards(manifest, options);
  console.log(`deploy: ${options.command} of ${selection.reason}: ${selection.shards.map((shard) => shard.name).join(", ") || "none"}`);
  const previews: ShardPreview[] = [];
  const writeComment = () => {
    if (options.commentFile === undefined) return;
    writeFileSync(options.commentFile, renderPreviewComment(options.environment, previews));
    console.log(`deploy: wrote the pull request comment to ${options.commentFile}`);
  };
  if (selection.shards.length === 0) {
    writeComment();
    return 0;
  }
  const context = await engineContext();
  const wait: LockWait = { timeoutMs: options.lockTimeoutMs, log: (line) => console.log(`deploy: ${line}`) };
  let failed = 0;
  for (const shard of selection.shards) {
    const stack = shardStack(options.environment, shard);
    console.log(`\n== shard ${shard.name}: stack ${stack}, ${shard.file} ==`);
    try {
      await prepareStack(context, stack, shard, templateStack(options.environment, manifest.shards, shard), wait);
      if (options.command === "up") await deployStack(context, stack, wait);
      else if (options.commentFile === undefined) await previewStack(context, stack, wait);
      else {
        const result = await previewStackJson(context, stack, wait);
        previews.push({ shard: shard.name, stack, file: shard.file, ...result });
        if (result.error !== undefined) throw new Error(result.error);
      }
    } catch (error) {
      failed++;
      if (options.commentFile !== undefined && !previews.some((preview) => preview.stack === stack)) {
        previews.push({ shard: shard.name, stack, file: shard.file, error: errorMessage(error) });
      }
      const lines = errorMessage(error).trim().split("\n");
      console.error(
        `error: ${options.command} of stack ${stack} (shard ${shard.name}) failed: ${lines.slice(0, 20).join("\n")}${lines.length > 20 ? "\n..." : ""}`,
      );
      if (options.command === "up") {
        const rest = selection.shards.slice(selection.shards.indexOf(shard) + 1).map((next) => next.name);
        if (rest.length > 0) console.error(`error: not deployed: ${rest.join(", ")} (fix the failure above, then run again)`);
        break;
      }
    }
  }
  writeComment();
  if (options.commentFile !== undefined) console.log(`\n${renderPreviewComment(options.environment, previews)}`);
  return failed === 0 ? 0 : 1;
}

runMain(main);

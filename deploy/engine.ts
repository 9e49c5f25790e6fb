/**
 * The engine runs of `npm run deploy`: a shard's stack made ready (created
 * when the shard is new), then `pulumi preview` / `pulumi up` with Pulumi's
 * own display, waiting while another deployment (the signup service, a
 * second CI run) holds the stack (engine/stack-lock-wait.ts).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { convergeUp } from "../engine/converge";
import { createShardStack, listStacks, tenantsFileKey } from "../engine/fleet-access";
import { PROJECT_DIR, projectName } from "../engine/paths";
import { pulumi, type PulumiContext } from "../engine/pulumi";
import { isStackLockedError, withStackLockWait } from "../engine/stack-lock-wait";
import { DEFAULT_TENANTS_FILE, type Shard } from "../tenants/shards";
import { previewJsonSchema, type PreviewJson } from "./preview-summary";
import { errorMessage } from "../lib/errors";

/**
 * Makes `stack` ready to deploy `shard`. A stack that does not exist yet (a
 * new shard) is created with the config of `template` (another shard's stack
 * of the same environment: servers, DNS, database provider, secrets
 * re-encrypted), and its `tenantsFile` set to the shard's file. An existing
 * stack must already reconcile that file: a stack that reads another file
 * would move tenants between shards, so that is refused.
 */
export async function prepareStack(context: PulumiContext, stack: string, shard: Shard, template: string | undefined, wait: LockWait): Promise<void> {
  // Removing a stack that was never deployed needs its lock: wait for it like a deployment.
  await withStackLockWait(async () => prepareStackNow(context, stack, shard, template, wait.log), lockWaitOptions(context, stack, wait));
}

async function prepareStackNow(context: PulumiContext, stack: string, shard: Shard, template: string | undefined, log: (line: string) => void): Promise<void> {
  let known = (await listStacks(context)).includes(stack);
  if (known && !existsSync(join(PROJECT_DIR, `Pulumi.${stack}.yaml`))) known = restoreConfigFile(context, stack, log);
  // A new shard's stack: made the one way every deployment path makes it (engine/fleet-access.ts).
  if (!known && (await createShardStack(context, stack, shard, template, { log }))) return;
  const config = JSON.parse(pulumi(context, ["config", "--json", "--stack", stack])) as Record<string, { value?: unknown }>;
  const configured = config[tenantsFileKey()]?.value;
  const reads = typeof configured === "string" ? configured : DEFAULT_TENANTS_FILE;
  if (resolve(PROJECT_DIR, reads) !== resolve(PROJECT_DIR, shard.file)) {
    throw new Error(
      `stack ${stack} reconciles ${reads}, but tenants/shards.yaml says shard ${shard.name} is ${shard.file}; ` +
        `a tenant never moves between shards by accident: fix the manifest, or (when the stack is right to change) pulumi config set --stack ${stack} tenantsFile ${shard.file}`,
    );
  }
}

/**
 * A stack whose `Pulumi.<stack>.yaml` is not in this checkout (made by a CI
 * run whose workspace is gone, never committed): its config comes back from
 * its last deployment (`pulumi config refresh`). A stack never deployed has
 * none to come back from, and nothing in it: it is removed, to be created
 * again from the template. Returns whether the stack still exists.
 */
function restoreConfigFile(context: PulumiContext, stack: string, log: (line: string) => void): boolean {
  try {
    pulumi(context, ["config", "refresh", "--stack", stack]);
    log(`restored Pulumi.${stack}.yaml from the stack's last deployment; commit it`);
    return true;
  } catch (error) {
    const exported = JSON.parse(pulumi(context, ["stack", "export", "--stack", stack])) as { deployment?: { resources?: unknown[] } };
    if ((exported.deployment?.resources ?? []).length > 0) {
      throw new Error(
        `stack ${stack} has no Pulumi.${stack}.yaml in this checkout and its config could not be restored ` +
          `(${
            errorMessage(error)
              .split("\n")
              .find((line) => /error/i.test(line)) ?? "pulumi config refresh failed"
          }); commit that file from where the stack was set up`,
      );
    }
    pulumi(context, ["stack", "rm", "--yes", "--stack", stack]); // refuses a stack that holds resources
    log(`stack ${stack} was never deployed and its config file is not here: creating it again`);
    return false;
  }
}

/** The stack whose config a new shard's stack starts from: the first other shard's stack of that environment with a config file. */
export function templateStack(environment: string, shards: readonly Shard[], exclude: Shard): string | undefined {
  return shards
    .filter((shard) => shard.name !== exclude.name)
    .map((shard) => `${environment}-${shard.name}`)
    .find((stack) => existsSync(join(PROJECT_DIR, `Pulumi.${stack}.yaml`)));
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs pulumi; stdout (Pulumi's display) is shown or kept. stderr is kept and
 * shown when the run ends, unless it only says the stack is locked: the wait
 * prints its own line for that.
 */
function runPulumi(context: PulumiContext, args: string[], keepStdout: boolean, output?: EngineOutput): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const piped = keepStdout || output !== undefined;
    const child = spawn("pulumi", args, { cwd: PROJECT_DIR, env: context.env, stdio: [piped ? "ignore" : "inherit", piped ? "pipe" : "inherit", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => (keepStdout ? out.push(Buffer.from(chunk)) : output!.stdout(chunk)));
    child.stderr!.on("data", (chunk: Buffer) => err.push(chunk));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const result = { code: code ?? (signal ? 1 : 0), stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
      if (!(result.code !== 0 && isStackLockedError(result.stderr))) (output?.stderr ?? ((text: string) => process.stderr.write(text)))(result.stderr);
      resolvePromise(result);
    });
  });
}

/** Where an engine run's display (stdout) and error output go. */
export interface EngineOutput {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface LockWait {
  timeoutMs?: number;
  log: (line: string) => void;
  /**
   * Where the engine's display and error output go; default: this process's
   * stdout (the terminal's own display) and stderr. `npm run deploy` gives
   * each shard its own, prefixed with its name (deploy/parallel.ts).
   */
  output?: EngineOutput;
}

function lockWaitOptions(context: PulumiContext, stack: string, wait: LockWait) {
  return {
    backendUrl: context.backendUrl,
    project: projectName(),
    stack,
    timeoutMs: wait.timeoutMs,
    log: wait.log,
    cancel: async () => void pulumi(context, ["cancel", "--yes", "--stack", stack]),
  };
}

/**
 * `pulumi up --yes` of one stack with Pulumi's display, as engine/converge.ts
 * runs an update (a killed run's pending creates imported first, an adoption
 * completed by a second update); throws (after waiting out other
 * deployments) when it fails. `extraArgs` go to `pulumi up` (e.g. `--refresh`).
 */
export async function deployStack(context: PulumiContext, stack: string, wait: LockWait, extraArgs: readonly string[] = []): Promise<void> {
  const up = async (env: Readonly<Record<string, string>>) => {
    const result = await runPulumi({ ...context, env: { ...context.env, ...env } }, ["up", "--yes", "--stack", stack, ...extraArgs], false, wait.output);
    if (result.code !== 0) throw new Error(`pulumi up of stack ${stack} exited ${result.code}:\n${result.stderr}`);
  };
  await withStackLockWait(() => convergeUp(context, stack, { projectDir: PROJECT_DIR, up, log: wait.log }), lockWaitOptions(context, stack, wait));
}

/** `pulumi preview` of one stack with Pulumi's display. */
export async function previewStack(context: PulumiContext, stack: string, wait: LockWait): Promise<void> {
  await withStackLockWait(
    async () => {
      const result = await runPulumi(context, ["preview", "--stack", stack], false, wait.output);
      if (result.code !== 0) throw new Error(`pulumi preview of stack ${stack} exited ${result.code}:\n${result.stderr}`);
    },
    lockWaitOptions(context, stack, wait),
  );
}

/**
 * `pulumi preview --json` of one stack, for the pull request comment. A
 * failed preview comes back as its error lines (the engine's error
 * diagnostics, else its stderr), so the comment can show them.
 */
export async function previewStackJson(context: PulumiContext, stack: string, wait: LockWait): Promise<{ preview?: PreviewJson; error?: string }> {
  try {
    return await withStackLockWait(
      async () => {
        const result = await runPulumi(context, ["preview", "--json", "--stack", stack], true, wait.output);
        const parsed = parseJson(result.stdout);
        if (result.code === 0 && parsed !== undefined) return { preview: parsed };
        const errors = parsed?.diagnostics.filter((d) => d.severity === "error").map((d) => d.message.trim()) ?? [];
        throw new Error(errors.length > 0 ? errors.join("\n") : `pulumi preview of stack ${stack} exited ${result.code}:\n${result.stderr.trim()}`);
      },
      lockWaitOptions(context, stack, wait),
    );
  } catch (error) {
    return { error: errorMessage(error) };
  }
}

function parseJson(text: string): PreviewJson | undefined {
  try {
    const parsed = previewJsonSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Decides when to deploy, and which stack. One deployment at a time per
 * process: the stacks of a fleet (its shards) that have due signups are
 * deployed one after another, the one whose oldest due signup waits longest
 * first. Different shards never deploy concurrently from one service: in git
 * mode they share one clone (each batch resets it), and one engine at a time
 * keeps a small host's CPU for the deployment that runs. Per stack:
 *
 * - in this process, a simple "is one running" flag (the in-process mutex);
 * - across processes, the stack's advisory lock (see deployment.ts), checked
 *   here before launching so we do not start a runner that would only find
 *   the lock taken.
 *
 * A signup nudges the scheduler; after a short debounce (so a burst lands in
 * one batch) a deployment starts if none is running. Signups that arrive
 * while one runs are picked up by the next, which starts as soon as the
 * current one ends. A timer also polls, for retries that become due and for
 * work left by a process that died.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import type { Pool } from "pg";
import { errorMessage } from "../lib/errors";
import { PollingLoop } from "../lib/polling-loop";
import { runDeployment, type DeploymentOptions } from "./deployment";
import { stacksWithDueSignups, tryStackLock, unlockStack } from "./registry";

/** Runs one deployment of `stack` to its end (successful or not). */
export interface Launcher {
  launch(stack: string): Promise<void>;
}

/**
 * Runs the deployment in this process: for tests with a fake deployer, and for small setups.
 * `options`: one stack's, or per stack (a fleet: each shard has its own deployer and tenants file).
 */
export class InProcessLauncher implements Launcher {
  constructor(
    private readonly pool: Pool,
    private readonly options: DeploymentOptions | ((stack: string) => Promise<DeploymentOptions>),
  ) {}
  async launch(stack: string): Promise<void> {
    const options = typeof this.options === "function" ? await this.options(stack) : this.options;
    if (options.stack !== stack) throw new Error(`this launcher deploys stack "${options.stack}", not "${stack}"`);
    await runDeployment(this.pool, options);
  }
}

/**
 * Runs each deployment in a detached child process (onboarding/runner.ts), in
 * its own session with its output in a log file. If the service dies the
 * engine is not killed with it (a killed `pulumi up` would leave pending
 * operations in the state): the runner finishes and records the outcome in
 * the control database, and the restarted service carries on from there.
 */
export class ChildProcessLauncher implements Launcher {
  constructor(
    /** `env`: the runner's environment, or per stack (a fleet's runner gets DEPLOY_STACK). */
    private readonly options: { env: NodeJS.ProcessEnv | ((stack: string) => NodeJS.ProcessEnv); logFile: string; cwd: string },
  ) {}
  launch(stack: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const out = openSync(this.options.logFile, "a");
      const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "runner.ts")], {
        cwd: this.options.cwd,
        env: typeof this.options.env === "function" ? this.options.env(stack) : this.options.env,
        detached: true,
        stdio: ["ignore", out, out],
      });
      closeSync(out);
      child.on("error", reject);
      child.on("exit", (code, signal) =>
        code === 0 ? resolve() : reject(new Error(`deployment runner exited with ${signal ?? `code ${code}`}; see ${this.options.logFile}`)),
      );
    });
  }
}

export interface SchedulerOptions {
  /** SQL LIKE pattern (escape \) of the stacks this scheduler deploys: one stack's name, or a fleet's "<env>-%". */
  stacks: string;
  launcher: Launcher;
  /** Wait this long after a signup before deploying, so a burst becomes one batch. */
  debounceMs?: number;
  /** Poll for due retries and abandoned work this often. */
  pollMs?: number;
  /** After a launch that could not run at all, that stack waits this long (default 10 s) while others deploy. */
  relaunchMs?: number;
  log?: (line: string) => void;
}

export class DeploymentScheduler {
  private readonly loop: PollingLoop;
  private debounce: NodeJS.Timeout | undefined;
  private launching = false;
  /** Stacks whose last launch could not run, and until when they wait. */
  private readonly heldUntil = new Map<string, number>();
  deploymentsLaunched = 0;

  constructor(
    private readonly pool: Pool,
    private readonly options: SchedulerOptions,
  ) {
    this.loop = new PollingLoop({
      everyMs: options.pollMs ?? 2000,
      tick: (signal) => this.deployDue(signal),
      onError: (error) => options.log?.(`scheduler: ${errorMessage(error)}`),
    });
  }

  start(): void {
    this.loop.start();
    this.nudge();
  }

  /** Stops launching; waits for an in-process deployment to end. */
  async stop(): Promise<void> {
    clearTimeout(this.debounce);
    this.debounce = undefined;
    await this.loop.stop();
  }

  /** Something new is queued: deploy soon. */
  nudge(): void {
    if (!this.loop.started || this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.loop.runNow();
    }, this.options.debounceMs ?? 500);
  }

  get busy(): boolean {
    return this.launching;
  }

  /** One tick: deploys the due stacks one after another (what arrived meanwhile is the next batch) until none is left. */
  private async deployDue(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const stack = await this.nextStack();
      if (stack === undefined || signal.aborted) return;
      await this.launch(stack);
    }
  }

  private async launch(stack: string): Promise<void> {
    this.deploymentsLaunched += 1;
    this.launching = true;
    try {
      await this.options.launcher.launch(stack);
      this.heldUntil.delete(stack);
    } catch (error) {
      // Could not run at all (its stack cannot be opened, the runner did not start): the other
      // stacks go first for a while, and this one is not relaunched in a tight loop.
      this.heldUntil.set(stack, Date.now() + (this.options.relaunchMs ?? 10_000));
      this.options.log?.(`deployment of ${stack}: ${errorMessage(error)}`);
    } finally {
      this.launching = false;
    }
  }

  /** The stack with due signups that waited longest and that no other process deploys now. */
  private async nextStack(): Promise<string | undefined> {
    const ready = (await stacksWithDueSignups(this.pool, this.options.stacks)).filter((stack) => (this.heldUntil.get(stack) ?? 0) <= Date.now());
    for (const stack of ready) if (!(await this.lockedElsewhere(stack))) return stack;
    return undefined;
  }

  /** True while another process (another instance, or a runner this process lost) deploys the stack. */
  private async lockedElsewhere(stack: string): Promise<boolean> {
    const client = await this.pool.connect();
    try {
      if (!(await tryStackLock(client, stack))) return true;
      await unlockStack(client, stack);
      return false;
    } finally {
      client.release();
    }
  }
}

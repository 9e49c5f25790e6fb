/**
 * Decides when to deploy. One deployment at a time per stack:
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
import { DUE_SIGNUPS, runDeployment, tryStackLock, unlockStack, type DeploymentOptions } from "./deployment";

/** Runs one deployment to its end (successful or not). */
export interface Launcher {
  launch(): Promise<void>;
}

/** Runs the deployment in this process: for tests with a fake deployer, and for small setups. */
export class InProcessLauncher implements Launcher {
  constructor(
    private readonly pool: Pool,
    private readonly options: DeploymentOptions,
  ) {}
  async launch(): Promise<void> {
    await runDeployment(this.pool, this.options);
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
    private readonly options: { env: NodeJS.ProcessEnv; logFile: string; cwd: string },
  ) {}
  launch(): Promise<void> {
    return new Promise((resolve, reject) => {
      const out = openSync(this.options.logFile, "a");
      const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "runner.ts")], {
        cwd: this.options.cwd,
        env: this.options.env,
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
  stack: string;
  launcher: Launcher;
  /** Wait this long after a signup before deploying, so a burst becomes one batch. */
  debounceMs?: number;
  /** Poll for due retries and abandoned work this often. */
  pollMs?: number;
  log?: (line: string) => void;
}

export class DeploymentScheduler {
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private stopped = true;
  private ticking = false;
  deploymentsLaunched = 0;

  constructor(
    private readonly pool: Pool,
    private readonly options: SchedulerOptions,
  ) {}

  start(): void {
    this.stopped = false;
    this.poller = setInterval(() => void this.tick(), this.options.pollMs ?? 2000);
    this.nudge();
  }

  /** Stops launching; waits for an in-process deployment to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poller);
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Something new is queued: deploy soon. */
  nudge(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, this.options.debounceMs ?? 500);
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.running || this.ticking) return;
    this.ticking = true;
    try {
      if (!(await this.hasDueWork()) || (await this.lockedElsewhere())) return;
      this.deploymentsLaunched += 1;
      this.running = this.options.launcher
        .launch()
        .catch((error) => this.options.log?.(`deployment: ${error instanceof Error ? error.message : String(error)}`))
        .finally(() => {
          this.running = undefined;
          // What arrived meanwhile is the next batch.
          void this.tick();
        });
    } catch (error) {
      this.options.log?.(`scheduler: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.ticking = false;
    }
  }

  private async hasDueWork(): Promise<boolean> {
    const { rows } = await this.pool.query(`SELECT 1 FROM onboarding_signups WHERE ${DUE_SIGNUPS} LIMIT 1`, [this.options.stack]);
    return rows.length > 0;
  }

  /** True while another process (another instance, or a runner this process lost) deploys the stack. */
  private async lockedElsewhere(): Promise<boolean> {
    const client = await this.pool.connect();
    try {
      if (!(await tryStackLock(client, this.options.stack))) return true;
      await unlockStack(client, this.options.stack);
      return false;
    } finally {
      client.release();
    }
  }
}

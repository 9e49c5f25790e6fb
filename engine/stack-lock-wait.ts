/**
 * Two deployments of the same stack (CI's `pulumi up` of a shard after a
 * merge, the signup service's update of that shard) must wait for each other
 * rather than fail. Pulumi's DIY backends refuse a second update at once with
 * "the stack is currently locked"; this module turns that refusal into a
 * bounded wait: it polls with backoff, says who holds the lock
 * (stale-lock.ts), and runs the deployment again once the lock is gone.
 *
 * A lock left by a process that no longer exists on this machine (a run
 * killed outright) is removed, as `releaseStaleLock` does; a live or foreign
 * lock is only ever waited for.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { exponentialDelayMs } from "../lib/backoff";
import { errorMessage } from "../lib/errors";
import { findStackLocks, removableStaleLocks } from "./stale-lock";

export interface LockWaitOptions {
  /** The DIY backend the stack lives in (`postgres://...` or `file://...`). */
  readonly backendUrl: string;
  readonly project: string;
  readonly stack: string;
  /** Removes a stale lock: `pulumi cancel --yes --stack STACK` or the Automation API's `stack.cancel()`. */
  readonly cancel: () => Promise<void>;
  /** One line per event (waiting, released, gave up). */
  readonly log: (line: string) => void;
  /** How long to wait for a held lock in all; default 30 minutes. */
  readonly timeoutMs?: number;
  /** First pause between attempts (doubles up to maxDelayMs); defaults 2 s and 30 s. */
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
}

export const DEFAULT_LOCK_WAIT_MS = 30 * 60_000;

/**
 * Whether an error (or a failed run's output) says the stack was held by
 * another update: the DIY backends' "the stack is currently locked", the
 * Automation API's ConcurrentUpdateError, Pulumi Cloud's "Another update is
 * currently in progress".
 */
export function isStackLockedError(error: unknown): boolean {
  const text = error instanceof Error ? `${error.name} ${error.message}` : String(error);
  return /currently locked|ConcurrentUpdateError|another update is currently in progress/i.test(text);
}

/**
 * Runs `run` (a `pulumi preview`/`up` of one stack); while it fails because
 * the stack is locked, waits and runs it again. Any other failure is thrown
 * as is; a lock still held after `timeoutMs` fails naming its holder.
 */
export async function withStackLockWait<T>(run: () => Promise<T>, options: LockWaitOptions): Promise<T> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_LOCK_WAIT_MS;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const initialDelayMs = options.initialDelayMs ?? 2_000;
  let waitedMs = 0;
  for (let attempt = 1; ; attempt++) {
    await releaseIfStale(options);
    try {
      return await run();
    } catch (error) {
      if (!isStackLockedError(error)) throw error;
    }
    const holders = await describeHolders(options);
    if (waitedMs >= timeoutMs) {
      throw new Error(
        `stack ${options.stack} is still locked after ${Math.round(waitedMs / 1000)} s by ${holders}; ` +
          `if that deployment is gone, run: pulumi cancel --stack ${options.stack}`,
      );
    }
    const delayMs = exponentialDelayMs(initialDelayMs, maxDelayMs, attempt);
    options.log(`stack ${options.stack} is locked by another deployment (${holders}); waiting ${Math.round(delayMs / 1000)} s before trying again`);
    await sleep(delayMs);
    waitedMs += delayMs;
  }
}

async function releaseIfStale(options: LockWaitOptions): Promise<void> {
  const stale = await removableStaleLocks(options.backendUrl, options.project, options.stack);
  if (stale === undefined) return;
  options.log(`stack ${options.stack}: removing the lock left by an interrupted pulumi up (${stale})`);
  await options.cancel();
}

async function describeHolders(options: LockWaitOptions): Promise<string> {
  try {
    const locks = await findStackLocks(options.backendUrl, options.project, options.stack);
    const all = [...locks.held, ...locks.stale.map((lock) => `pid ${lock.pid} on ${lock.hostname} (gone)`)];
    return all.length > 0 ? all.join("; ") : "a lock that was released meanwhile";
  } catch (error) {
    return `a holder that could not be read: ${errorMessage(error)}`;
  }
}

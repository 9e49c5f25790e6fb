/**
 * The one retry backoff of the service: a failed deployment's signups and a
 * failed welcome mail wait `retryDelayMs` before their next attempt. The
 * delay is computed here and handed to the control database as a parameter
 * (registry.ts: `next_attempt_at = now() + delay`), so the formula exists once.
 */
import { exponentialDelayMs } from "../lib/backoff";

export interface Backoff {
  /** Delay before the first retry. */
  baseMs: number;
  /** Longest delay between retries. */
  capMs: number;
  /** After this many failed attempts a signup stays `failed` until a person retries it. */
  maxAttempts: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 10_000, capMs: 10 * 60_000, maxAttempts: 8 };

/** Exponential: base, 2 base, 4 base, ... capped. `attempts` counts the failed attempts so far (>= 1). */
export function retryDelayMs(backoff: Pick<Backoff, "baseMs" | "capMs">, attempts: number): number {
  return exponentialDelayMs(backoff.baseMs, backoff.capMs, attempts);
}

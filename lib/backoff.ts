/**
 * The one exponential backoff formula: base, 2 base, 4 base, ... capped.
 * `attempt` counts the failed attempts so far (>= 1). Used by the service's
 * retries (onboarding/backoff.ts), the wait for a locked stack
 * (engine/stack-lock-wait.ts) and the tenants repository's push retries.
 */
export function exponentialDelayMs(baseMs: number, capMs: number, attempt: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

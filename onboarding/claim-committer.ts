/**
 * The claims committer: takes the git commit of a claim's binding off the
 * signup's answer (claim.ts). Every pending claim of a shard (rows of
 * `onboarding_pool` claimed and not yet `bound`: the outbox) goes into ONE
 * commit and push of its tenants file (group commit); claims that arrive
 * while a push runs are the next commit. Per shard:
 *
 * - across instances, a PostgreSQL advisory lock (COMMIT_LOCK_CLASS) on one
 *   session: one committer per shard at a time (a second would only find
 *   the bindings there already: writing one is idempotent);
 * - a rejected push (a person's commit, another instance's batch) is
 *   re-applied on the new remote head, with the repository's backoff
 *   (tenants-repo.ts); a commit that fails outright (git down, the file
 *   invalid) holds the shard for the service's backoff (lib/backoff.ts) and
 *   is tried again, the claims staying pending;
 * - bound: the signups' welcome mails are queued and their shard's update
 *   becomes due (`onBound` wakes the scheduler); refused by the file: the
 *   claim is released and the signup falls back to an update, logged with
 *   the tenant ID and username.
 *
 * Nothing lives only in memory: after a restart the first tick finds the
 * pending rows; a binding pushed just before a crash is found in the file
 * (bound to the same username) and recorded without a second commit.
 */
import type { Pool } from "pg";
import { exponentialDelayMs } from "../lib/backoff";
import { errorMessage } from "../lib/errors";
import { PollingLoop } from "../lib/polling-loop";
import type { ClaimDeps } from "./claim";
import { pendingClaims, recordClaimRefused, recordClaimsBound, stacksWithPendingClaims, tryCommitLock, unlockCommit } from "./registry";

export interface CommitterOptions {
  /** SQL LIKE pattern (escape \) of the stacks whose claims this committer writes. */
  stacks: string;
  /** Poll for pending claims (a restart's, another instance's, a retry's) this often; a claim nudges it at once. */
  pollMs?: number;
  /** First wait after a failed commit of a shard; doubles up to `retryCapMs`. */
  retryBaseMs?: number;
  retryCapMs?: number;
  /** Claims were bound: their shard's update is due. */
  onBound?: () => void;
  /** Called on every tick, off the answer's path (the fleet's warmNameCheck). */
  warm?: () => void;
  log?: (line: string) => void;
}

export class ClaimCommitter {
  private readonly loop: PollingLoop;
  private dirty = false;
  /** Shards whose last commit failed: how often, and until when they wait. */
  private readonly failures = new Map<string, { count: number; until: number }>();

  constructor(
    private readonly pool: Pool,
    private readonly deps: ClaimDeps,
    private readonly options: CommitterOptions,
  ) {
    this.loop = new PollingLoop({
      everyMs: options.pollMs ?? 2000,
      tick: (signal) => this.commitPending(signal),
      onError: (error) => this.log(`claims committer: ${errorMessage(error)}`),
    });
  }

  start(): void {
    this.loop.start();
    this.loop.runNow();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** A claim was made: commit it (with whatever else is pending) now, or right after the commit that runs. */
  nudge(): void {
    this.dirty = true;
    this.loop.runNow();
  }

  private log(line: string): void {
    (this.options.log ?? this.deps.log)?.(line);
  }

  /** One tick: every shard with pending claims, one group commit each, again while new claims arrived meanwhile. */
  private async commitPending(signal: AbortSignal): Promise<void> {
    do {
      this.dirty = false;
      const stacks = await stacksWithPendingClaims(this.pool, this.options.stacks);
      try {
        this.options.warm?.();
      } catch (error) {
        this.log(`claims committer: cannot read the tenants files ahead of claims: ${errorMessage(error)}`);
      }
      for (const stack of stacks) {
        if (signal.aborted) return;
        if ((this.failures.get(stack)?.until ?? 0) > Date.now()) continue;
        try {
          await this.commitStack(stack);
          this.failures.delete(stack);
        } catch (error) {
          const count = (this.failures.get(stack)?.count ?? 0) + 1;
          const delay = exponentialDelayMs(this.options.retryBaseMs ?? 1000, this.options.retryCapMs ?? 60_000, count);
          this.failures.set(stack, { count, until: Date.now() + delay });
          this.log(
            `claims committer: the claims of ${stack} were not committed (attempt ${count}, next in ${Math.round(delay / 1000)} s): ${errorMessage(error)}`,
          );
        }
      }
    } while (this.dirty && !signal.aborted);
  }

  /** The shard's pending claims in one commit, under its commit lock; nothing when another instance holds it. */
  private async commitStack(stack: string): Promise<void> {
    const client = await this.pool.connect();
    let locked = false;
    try {
      locked = await tryCommitLock(client, stack);
      if (!locked) return;
      const claims = await pendingClaims(client, stack);
      if (claims.length === 0) return;
      const started = performance.now();
      const store = await this.deps.store(stack);
      let outcome;
      try {
        outcome = await store.bindClaims(claims);
      } catch (error) {
        throw new Error(`pending: ${claims.map((claim) => `${claim.tenantId} (${claim.username})`).join(", ")}: ${errorMessage(error)}`);
      }
      const gitMs = performance.now() - started;
      await recordClaimsBound(this.pool, outcome.bound);
      for (const refused of outcome.refused) {
        await recordClaimRefused(this.pool, refused);
        this.log(
          `claim of pooled tenant ${refused.tenantId} by signup ${refused.username} refused by the tenants file (${refused.reason}); ` +
            `the signup falls back to an update, which makes its tenant`,
        );
      }
      const now = Date.now();
      this.deps.onCommit?.({
        stack,
        claims: claims.length,
        gitMs,
        latenciesMs: claims.filter((claim) => outcome.bound.includes(claim.tenantId)).map((claim) => now - claim.claimedAt.getTime()),
      });
      if (outcome.bound.length > 0 || outcome.refused.length > 0) this.options.onBound?.();
    } finally {
      if (locked) await unlockCommit(client, stack).catch(() => undefined);
      client.release();
    }
  }
}

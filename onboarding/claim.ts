/**
 * Instant signups: a signup claims a pooled tenant (tenants/pool.ts) instead
 * of waiting for an engine run. The claim is recorded in the control database
 * first (an outbox), the signup is answered ready, and the git commit of the
 * binding is taken off the answer's path:
 *
 * 1. Registration (registry.ts registerSignup, one transaction) takes a free
 *    row of `onboarding_pool` (claimPooled: FOR UPDATE SKIP LOCKED, unique
 *    constraints), so the claim, and with it the username's binding to the
 *    tenant, is durable before anything else happens, and two service
 *    instances never take one tenant. The row is the claims outbox: `bound`
 *    stays false until the binding is in git.
 * 2. `completeClaim` (still on the answer's path): the DNS record for the
 *    domain is written the way the stack's DNS resource writes it (an
 *    idempotent upsert, so the next update's create adopts it); the signup is
 *    `ready` with tenant ID, domain and connection details. The pooled role
 *    can already log in (its password is only in the stack's secret outputs),
 *    so nothing else changes on the server. Then the answer.
 * 3. Off the answer's path, the committer (claim-committer.ts) writes every
 *    pending claim of a shard into its tenants file in ONE commit and push
 *    (group commit), re-applied on top of a racing person's commit, retried
 *    with the backoff; after a restart it picks the pending rows up again.
 *    Once bound, the welcome mail is queued and the shard's update (which
 *    records the binding from the file) becomes due; it never runs for a
 *    claim before that (registry DUE).
 *
 * A claim the tenants file refuses when the committer writes it (a person's
 * commit removed or bound the pooled entry, or added the name by hand) is
 * resolved by the committer: released, and the signup falls back to an
 * update (`queued`), with the error logged naming the tenant ID and username.
 * The DNS record made here has the signup's own name, so the update adopts
 * it. A failed DNS write leaves the signup `queued`: the binding is still
 * committed, and the update makes the record and the signup ready.
 */
import type { Pool } from "pg";
import type { FleetSettings } from "../infra/config";
import { upsertRecord } from "../infra/dns/rfc2136-operations";
import { rfc2136RecordSpec } from "../infra/dns/rfc2136-record";
import { domainName } from "../infra/naming";
import { errorMessage } from "../lib/errors";
import type { SignupRow } from "./db";
import { recordClaimReady, type PoolClaim } from "./registry";
import type { TenantsStore } from "./tenants-repo";

export interface ClaimDeps {
  /** The tenants store of a stack that claims are committed to (git: the service's claims clone, never the deployments'). */
  store(stack: string): Promise<TenantsStore>;
  /** The domain of `username` on `stack`, and how its DNS record is made (undefined: the stack has no DNS records to make). */
  dns(stack: string): Promise<{ domain(username: string): string; makeRecord?(domain: string, tenantId: string): Promise<void> }>;
  log?: (line: string) => void;
  /** Each answered claim's step durations (the bench's breakdown). */
  onTimings?: (timings: ClaimTimings) => void;
  /** Each group commit of the committer (the bench's "git, off the answer's path"). */
  onCommit?: (commit: CommitTimings) => void;
}

/** How long each step of a claim on the answer's path took (milliseconds). */
export interface ClaimTimings {
  /** Control database: the registration transaction with the claim, and marking the signup ready. */
  control: number;
  dns: number;
}

/** One group commit of a shard's pending claims (milliseconds). */
export interface CommitTimings {
  stack: string;
  claims: number;
  /** The commit and push themselves (fetch, edit, commit, push, with retries). */
  gitMs: number;
  /** For each claim: from the claim's row (registration) until its binding was pushed and recorded. */
  latenciesMs: number[];
}

/** The claim is made; makes the tenant reachable and the signup ready (the answer follows). `registrationMs`: the registration's time, for the timings. */
export async function completeClaim(pool: Pool, deps: ClaimDeps, row: SignupRow, claimed: PoolClaim, registrationMs = 0): Promise<SignupRow> {
  const log = deps.log ?? (() => undefined);
  const started = performance.now();
  const dns = await deps.dns(claimed.stack);
  const domain = dns.domain(row.username);
  try {
    await dns.makeRecord?.(domain, claimed.tenantId);
  } catch (error) {
    log(
      `claim of ${claimed.tenantId} by ${row.username}: DNS record ${domain} not made (${errorMessage(error)}); the update after the claim's commit makes it`,
    );
    return row;
  }
  const recorded = performance.now();
  const ready = await recordClaimReady(pool, {
    username: row.username,
    tenantId: claimed.tenantId,
    domain,
    ...(claimed.connection ? { connection: claimed.connection } : {}),
  });
  deps.onTimings?.({ control: registrationMs + (performance.now() - recorded), dns: recorded - started });
  log(`signup ${row.username} claimed pooled tenant ${claimed.tenantId} (${domain}): ready; its binding is committed next`);
  return ready;
}

/**
 * A stack's domains and DNS records as its program makes them (infra/tenant.ts):
 * rfc2136 records are written with the provider's own upsert; `none` needs no
 * record. Cloudflare records are left to the update (the signup waits for it).
 */
export function claimDnsFor(settings: FleetSettings): Awaited<ReturnType<ClaimDeps["dns"]>> {
  const { dns, appName } = settings;
  const domain = (username: string) => domainName(dns.recordTemplate, appName, dns.zone, username);
  if (dns.provider === "none") return { domain };
  return {
    domain,
    makeRecord: async (name, tenantId) => {
      if (dns.provider !== "rfc2136") throw new Error("claims write DNS records on rfc2136 servers only; the update makes the Cloudflare record");
      await upsertRecord(rfc2136RecordSpec(dns, name, tenantId));
    },
  };
}

/**
 * Instant signups: a signup claims a pooled tenant (tenants/pool.ts) instead
 * of waiting for an engine run.
 *
 * 1. Registration (registry.ts registerSignup, one transaction) takes a free
 *    row of `onboarding_pool` (claimPooled: FOR UPDATE SKIP LOCKED, unique
 *    constraints), so the claim is durable before anything else happens and
 *    two service instances never take one tenant. The signup is stored on
 *    the pooled tenant's stack; while its claim is unbound no deployment
 *    picks it up.
 * 2. `completeClaim`: the tenants file binds the username and e-mail to the
 *    pooled entry (git mode: committed and pushed, a racing commit re-applied
 *    on top); the DNS record for the domain is written the way the stack's
 *    DNS resource writes it (an idempotent upsert, so the next update's
 *    create adopts it); the signup is `ready` with tenant ID and domain and its
 *    welcome mail is queued. The pooled role can already log in (its
 *    password is only in the stack's secret outputs), so nothing else changes on the server.
 * 3. The scheduler then deploys the stack once (the claimed signup is due
 *    until an update records its binding, staying `ready`); that update only
 *    creates the DNS record over the one made here, and the same write tops
 *    the pool up again.
 *
 * When the binding fails (the entry is gone or taken by a person's commit,
 * or git fails) the claim is released and the signup takes the path of an
 * update, as with an empty pool. A failed DNS write leaves the signup
 * `queued`: the binding is in the file, so the update makes the record and
 * the signup ready.
 */
import type { Pool } from "pg";
import type { FleetSettings } from "../infra/config";
import { upsertRecord } from "../infra/dns/rfc2136-operations";
import { rfc2136RecordSpec } from "../infra/dns/rfc2136-record";
import { domainName } from "../infra/naming";
import { errorMessage } from "../lib/errors";
import type { SignupRow } from "./db";
import { markClaimBound, recordClaimBound, releaseClaim } from "./registry";
import { ClaimRefusedError, type TenantsStore } from "./tenants-repo";

export interface ClaimDeps {
  /** The tenants store of a stack (the one its deployments write). */
  store(stack: string): Promise<TenantsStore>;
  /** The domain of `username` on `stack`, and how its DNS record is made (undefined: the stack has no DNS records to make). */
  dns(stack: string): Promise<{ domain(username: string): string; makeRecord?(domain: string, tenantId: string): Promise<void> }>;
  log?: (line: string) => void;
  /** Each bound claim's step durations (the bench's breakdown). */
  onTimings?: (timings: ClaimTimings) => void;
}

/** How long each step of the last claims took, for the bench (milliseconds). */
export interface ClaimTimings {
  git: number;
  dns: number;
  control: number;
}

export async function completeClaim(pool: Pool, deps: ClaimDeps, row: SignupRow, claimed: { tenantId: string; stack: string }): Promise<SignupRow> {
  const log = deps.log ?? (() => undefined);
  const signup = { username: row.username, email: row.email };
  const started = performance.now();
  try {
    await (await deps.store(claimed.stack)).bindClaim(claimed.tenantId, signup);
  } catch (error) {
    await releaseClaim(pool, claimed.tenantId, error instanceof ClaimRefusedError && error.gone);
    log(`claim of pooled tenant ${claimed.tenantId} by ${row.username} not bound (${errorMessage(error)}); the signup waits for an update instead`);
    return row;
  }
  // In the file now: due for the update that records it, whatever happens next.
  await markClaimBound(pool, claimed.tenantId);
  const bound = performance.now();
  const dns = await deps.dns(claimed.stack);
  const domain = dns.domain(row.username);
  try {
    await dns.makeRecord?.(domain, claimed.tenantId);
  } catch (error) {
    log(`claim of ${claimed.tenantId} by ${row.username}: DNS record ${domain} not made (${errorMessage(error)}); the next update makes it`);
    return row;
  }
  const recorded = performance.now();
  const ready = await recordClaimBound(pool, { username: row.username, tenantId: claimed.tenantId, domain });
  deps.onTimings?.({ git: bound - started, dns: recorded - bound, control: performance.now() - recorded });
  log(`signup ${row.username} claimed pooled tenant ${claimed.tenantId} (${domain}): ready`);
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

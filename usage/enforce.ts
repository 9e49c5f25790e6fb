/**
 * The storage hard limit, applied by the usage sampler: a tenant whose
 * database is larger than its plan's `storageHardLimitMb` gets its writes
 * stopped (infra/storage-lock.ts), and back once it is under again (it
 * deleted or truncated, or its plan grew: the limits come from the stack
 * outputs, read at every tick). One reading, one decision per tenant, so a
 * tenant is stopped within one sampling interval of crossing its limit.
 * Removed tenants (tombstones) are never stopped, only resumed.
 */
import { errorMessage } from "../lib/errors";
import { resumeWrites, stopWrites } from "../infra/storage-lock";
import { tenantRole, type TenantFigures } from "./collect";
import type { AdminServer, UsageTenant } from "./inputs";

const MIB = 1024 * 1024;

export interface StorageEvent {
  tenantId: string;
  username: string;
  action: "writes stopped" | "writes resumed";
  sizeBytes: number;
  storageHardLimitMb: number | null;
}

/** What the tenant's figures call for: stop, resume, or nothing. */
export function storageDecision(tenant: UsageTenant, figure: TenantFigures): "stop" | "resume" | undefined {
  if (!figure.exists) return undefined;
  const hardLimit = tenant.limits?.storageHardLimitMb;
  const over = hardLimit !== undefined && figure.sizeBytes > hardLimit * MIB;
  const stopped = figure.writesStoppedSince !== null;
  if (over && !stopped && tenant.status !== "removed") return "stop";
  if (!over && stopped) return "resume";
  return undefined;
}

/**
 * Stops or resumes each tenant as its figures call for, updates the figures to
 * match, and returns what it did. A tenant that cannot be changed gets a
 * problem in its figures (named in `npm run usage` and the sampler's log);
 * the others go on.
 */
export async function enforceStorageLimits(
  servers: readonly AdminServer[],
  tenants: readonly UsageTenant[],
  figures: readonly TenantFigures[],
): Promise<StorageEvent[]> {
  const events: StorageEvent[] = [];
  const byId = new Map(tenants.map((tenant) => [tenant.tenantId, tenant]));
  for (const figure of figures) {
    const tenant = byId.get(figure.tenantId);
    const server = servers.find((candidate) => candidate.name === figure.server);
    if (tenant === undefined || server === undefined) continue;
    const decision = storageDecision(tenant, figure);
    if (decision === undefined) continue;
    const target = { database: figure.database, role: tenantRole(tenant) };
    const hardLimit = tenant.limits?.storageHardLimitMb ?? null;
    const size = `${(figure.sizeBytes / MIB).toFixed(1)} MB`;
    try {
      if (decision === "stop") {
        await stopWrites(server.url, target, `${size} over the ${hardLimit} MB storage hard limit of plan ${tenant.plan ?? "(default)"}`);
        figure.writesStoppedSince = new Date();
      } else {
        await resumeWrites(server.url, target);
        figure.writesStoppedSince = null;
      }
      events.push({
        tenantId: tenant.tenantId,
        username: tenant.username,
        action: decision === "stop" ? "writes stopped" : "writes resumed",
        sizeBytes: figure.sizeBytes,
        storageHardLimitMb: hardLimit,
      });
    } catch (error) {
      const what = decision === "stop" ? "stop the writes of" : "resume the writes of";
      figure.problem = `could not ${what} ${figure.database} (${size}, hard limit ${hardLimit ?? "none"} MB): ${errorMessage(error)}`;
    }
  }
  return events;
}

/** One log line per event, tenant ID first. */
export function describeStorageEvent(event: StorageEvent): string {
  const size = `${(event.sizeBytes / MIB).toFixed(1)} MB`;
  return event.action === "writes stopped"
    ? `tenant ${event.tenantId} (${event.username}): writes stopped: ${size} is over its ${event.storageHardLimitMb} MB storage hard limit; reads, DELETE and TRUNCATE still work, writes come back once it is under or its plan grows`
    : `tenant ${event.tenantId} (${event.username}): writes resumed: ${size} is within its ${event.storageHardLimitMb ?? "(no)"} MB storage hard limit`;
}

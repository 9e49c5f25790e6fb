/**
 * Usage on a schedule: every interval, read the fleet's usage, store it as
 * samples (when given the control database) and refresh the per-tenant
 * metrics. Used by the onboarding service and by `npm run usage -- --serve`.
 * Each reading also applies the storage hard limit (usage/enforce.ts): a
 * tenant past its plan's storageHardLimitMb gets its writes stopped, and back
 * when it is under again, within one interval; each change is logged.
 * One reading at a time; a failed reading is logged and retried at the next
 * tick, the metrics keep the last good one.
 */
import type { Pool } from "pg";
import { errorMessage } from "../lib/errors";
import { PollingLoop } from "../lib/polling-loop";
import { collectUsage, type CollectOptions, type UsageReading } from "./collect";
import { describeStorageEvent, enforceStorageLimits, type StorageEvent } from "./enforce";
import type { AdminServer, UsageTenant } from "./inputs";
import type { UsageMetrics } from "./metrics";
import { usageRows } from "./report";
import { ensureUsageSchema, recordUsage } from "./samples";

/** Where the fleet is: read again at every tick, so new tenants are picked up. */
export type UsageSource = () => Promise<{ tenants: UsageTenant[]; servers: AdminServer[] }>;

export interface SamplerOptions {
  source: UsageSource;
  intervalMs: number;
  /** The control database: store each reading as samples. */
  pool?: Pool;
  metrics?: UsageMetrics;
  collect?: CollectOptions;
  log?: (line: string) => void;
  /** Apply the storage hard limit at every reading (default true). */
  enforceStorage?: boolean;
}

export class UsageSampler {
  private readonly loop: PollingLoop;
  private schemaReady = false;
  readings = 0;
  lastError: string | undefined;
  /** Every storage stop and resume this sampler made, oldest first. */
  readonly storageEvents: StorageEvent[] = [];

  constructor(private readonly options: SamplerOptions) {
    this.loop = new PollingLoop({
      everyMs: options.intervalMs,
      tick: async () => {
        await this.sampleOnce();
        this.lastError = undefined;
      },
      onError: (error) => {
        this.lastError = errorMessage(error);
        this.options.log?.(`usage sampling: ${this.lastError}`);
      },
    });
  }

  /** Samples now and every interval (once started, starting again does nothing). */
  start(): void {
    if (this.loop.started) return;
    this.loop.start();
    this.loop.runNow();
  }

  /** Stops sampling; waits for the reading that runs. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** One reading: stored and exported. */
  async sampleOnce(): Promise<UsageReading> {
    const { tenants, servers } = await this.options.source();
    const read = () => collectUsage(servers, tenants, this.options.collect);
    let reading: UsageReading;
    if (this.options.pool) {
      if (!this.schemaReady) await ensureUsageSchema(this.options.pool);
      this.schemaReady = true;
      reading = await recordUsage(this.options.pool, tenants, read);
    } else {
      reading = await read();
    }
    if (this.options.enforceStorage !== false) {
      for (const event of await enforceStorageLimits(servers, tenants, reading.figures)) {
        this.storageEvents.push(event);
        this.options.log?.(describeStorageEvent(event));
      }
      for (const figure of reading.figures.filter((figure) => figure.problem?.startsWith("could not"))) {
        this.options.log?.(`usage sampling: tenant ${figure.tenantId}: ${figure.problem}`);
      }
    }
    this.options.metrics?.update(usageRows(tenants, reading.figures));
    this.readings += 1;
    return reading;
  }
}

/**
 * Usage on a schedule: every interval, read the fleet's usage, store it as
 * samples (when given the control database) and refresh the per-tenant
 * metrics. Used by the onboarding service and by `npm run usage -- --serve`.
 * One reading at a time; a failed reading is logged and retried at the next
 * tick, the metrics keep the last good one.
 */
import type { Pool } from "pg";
import { collectUsage, type CollectOptions, type UsageReading } from "./collect";
import type { AdminServer, UsageTenant } from "./inputs";
import type { UsageMetrics } from "./metrics";
import { usageRows } from "./report";
import { ensureUsageSchema, recordUsage } from "./samples";
import { errorMessage } from "../lib/errors";

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
}

export class UsageSampler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private schemaReady = false;
  readings = 0;
  lastError: string | undefined;

  constructor(private readonly options: SamplerOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    void this.tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = this.sampleOnce()
      .then(() => (this.lastError = undefined))
      .catch((error) => {
        this.lastError = errorMessage(error);
        this.options.log?.(`usage sampling: ${this.lastError}`);
      })
      .finally(() => (this.running = undefined))
      .then(() => undefined);
    await this.running;
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
    this.options.metrics?.update(usageRows(tenants, reading.figures));
    this.readings += 1;
    return reading;
  }
}

/**
 * The whole service in one process: control database (migrated at start),
 * HTTP API, deployment scheduler and mailer. main.ts builds one from
 * environment variables; tests build one with their own parts.
 */
import type { FastifyInstance } from "fastify";
import type { Transporter } from "nodemailer";
import type { Pool } from "pg";
import { buildApp, type AppDeps } from "./app";
import { ClaimCommitter } from "./claim-committer";
import { createPool, migrate } from "./db";
import { Mailer, type MailerOptions } from "./mailer";
import { ServiceMetrics } from "./metrics";
import { DeploymentScheduler, type Launcher, type SchedulerOptions } from "./scheduler";
import { SingleStackFleet, type Fleet } from "./fleet";
import { UsageMetrics, type UsageMetricsOptions } from "../usage/metrics";
import { UsageSampler, type SamplerOptions } from "../usage/sampler";

/** The service's settings: the routes', the scheduler's, the mailer's and the sampler's fields, as they declare them. */
export interface ServiceOptions
  extends Pick<AppDeps, "webhookSecret" | "apiToken" | "publicUrl" | "claims">, Pick<SchedulerOptions, "debounceMs" | "pollMs" | "log"> {
  databaseUrl: string;
  /** One stack and its tenants file (a fleet of one shard without a size limit) ... */
  stack?: string;
  tenantsFile?: string;
  /** ... or a fleet of shards (fleet.ts); the launcher then deploys each shard's stack. */
  fleet?: AppDeps["fleet"];
  mailFrom: MailerOptions["from"];
  transport: Transporter;
  /** How deployments run; given the service's pool (InProcessLauncher needs it). */
  launcher: (pool: Pool) => Launcher;
  host?: string;
  port?: number;
  mailPollMs?: MailerOptions["pollMs"];
  mailBackoff?: MailerOptions["backoff"];
  /** Sample every tenant's usage into the control database on this interval, and export it on /metrics. */
  usage?: Pick<SamplerOptions, "source" | "intervalMs"> & Pick<UsageMetricsOptions, "maxTenants">;
}

export interface RunningService {
  url: string;
  app: FastifyInstance;
  pool: Pool;
  scheduler: DeploymentScheduler;
  mailer: Mailer;
  metrics: ServiceMetrics;
  usage?: UsageSampler;
  /** With claims: commits the bindings of claimed pooled tenants, off the answer's path. */
  committer?: ClaimCommitter;
  close(): Promise<void>;
}

function fleetOf(options: ServiceOptions): Fleet {
  if (options.fleet) return options.fleet;
  if (options.stack === undefined || options.tenantsFile === undefined) throw new Error("startService: give a fleet, or a stack and its tenants file");
  return new SingleStackFleet(options.stack, options.tenantsFile);
}

export async function startService(options: ServiceOptions): Promise<RunningService> {
  const fleet = fleetOf(options);
  const pool = createPool(options.databaseUrl);
  await migrate(pool);
  const metrics = new ServiceMetrics();
  const log = options.log ?? ((line: string) => console.log(`${new Date().toISOString()} ${line}`));
  const mailer = new Mailer(pool, options.transport, { from: options.mailFrom, pollMs: options.mailPollMs, backoff: options.mailBackoff, metrics, log });
  const scheduler = new DeploymentScheduler(pool, {
    stacks: fleet.stackPattern,
    launcher: options.launcher(pool),
    debounceMs: options.debounceMs,
    pollMs: options.pollMs,
    log,
  });
  const committer = options.claims
    ? new ClaimCommitter(pool, options.claims, {
        stacks: fleet.stackPattern,
        pollMs: options.pollMs,
        onBound: () => scheduler.nudge(),
        warm: () => fleet.warmNameCheck(),
        log,
      })
    : undefined;
  const usageMetrics = options.usage ? new UsageMetrics({ maxTenants: options.usage.maxTenants }) : undefined;
  const usage = options.usage
    ? new UsageSampler({ source: options.usage.source, intervalMs: options.usage.intervalMs, pool, metrics: usageMetrics, log })
    : undefined;
  const { webhookSecret, apiToken, publicUrl } = options;
  const app = await buildApp({
    pool,
    fleet,
    webhookSecret,
    apiToken,
    publicUrl,
    metrics,
    extraRegistries: usageMetrics ? [usageMetrics.registry] : [],
    onSignup: () => scheduler.nudge(),
    ...(options.claims ? { claims: options.claims, onClaim: () => committer?.nudge() } : {}),
    health: () => ({
      stack: fleet.describe(),
      deploying: scheduler.busy,
      // The reason stays in the log: /healthz answers anyone, and it names servers.
      ...(usage ? { usage: { readings: usage.readings, failing: usage.lastError !== undefined } } : {}),
    }),
  });
  const address = await app.listen({ host: options.host ?? "127.0.0.1", port: options.port ?? 0 });
  // Work left by an earlier run (queued signups, unsent mail) starts right away.
  scheduler.start();
  committer?.start();
  mailer.start();
  usage?.start();
  return {
    url: address,
    app,
    pool,
    scheduler,
    mailer,
    metrics,
    usage,
    committer,
    async close() {
      await app.close();
      await usage?.stop();
      await committer?.stop();
      await scheduler.stop();
      await mailer.stop();
      options.transport.close();
      await pool.end();
    },
  };
}

/**
 * The whole service in one process: control database (migrated at start),
 * HTTP API, deployment scheduler and mailer. main.ts builds one from
 * environment variables; tests build one with their own parts.
 */
import type { FastifyInstance } from "fastify";
import type { Transporter } from "nodemailer";
import type { Pool } from "pg";
import { buildApp } from "./app";
import { createPool, migrate } from "./db";
import { Mailer } from "./mailer";
import { ServiceMetrics } from "./metrics";
import { DeploymentScheduler, type Launcher } from "./scheduler";

export interface ServiceOptions {
  databaseUrl: string;
  stack: string;
  tenantsFile: string;
  webhookSecret: string;
  apiToken: string;
  mailFrom: string;
  transport: Transporter;
  /** How deployments run; given the service's pool (InProcessLauncher needs it). */
  launcher: (pool: Pool) => Launcher;
  host?: string;
  port?: number;
  publicUrl?: string;
  debounceMs?: number;
  pollMs?: number;
  mailPollMs?: number;
  mailBackoff?: { baseMs: number; capMs: number };
  log?: (line: string) => void;
}

export interface RunningService {
  url: string;
  app: FastifyInstance;
  pool: Pool;
  scheduler: DeploymentScheduler;
  mailer: Mailer;
  metrics: ServiceMetrics;
  close(): Promise<void>;
}

export async function startService(options: ServiceOptions): Promise<RunningService> {
  const pool = createPool(options.databaseUrl);
  await migrate(pool);
  const metrics = new ServiceMetrics();
  const log = options.log ?? ((line: string) => console.log(`${new Date().toISOString()} ${line}`));
  const mailer = new Mailer(pool, options.transport, { from: options.mailFrom, pollMs: options.mailPollMs, backoff: options.mailBackoff, metrics, log });
  const scheduler = new DeploymentScheduler(pool, {
    stack: options.stack,
    launcher: options.launcher(pool),
    debounceMs: options.debounceMs,
    pollMs: options.pollMs,
    log,
  });
  const app = await buildApp({
    pool,
    stack: options.stack,
    tenantsFile: options.tenantsFile,
    webhookSecret: options.webhookSecret,
    apiToken: options.apiToken,
    publicUrl: options.publicUrl,
    metrics,
    onSignup: () => scheduler.nudge(),
    health: () => ({ stack: options.stack, deploying: scheduler.busy }),
  });
  const address = await app.listen({ host: options.host ?? "127.0.0.1", port: options.port ?? 0 });
  // Work left by an earlier run (queued signups, unsent mail) starts right away.
  scheduler.start();
  mailer.start();
  return {
    url: address,
    app,
    pool,
    scheduler,
    mailer,
    metrics,
    async close() {
      await app.close();
      await scheduler.stop();
      await mailer.stop();
      options.transport.close();
      await pool.end();
    },
  };
}

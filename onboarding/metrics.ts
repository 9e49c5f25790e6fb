/**
 * The service's Prometheus metrics, exposed with prom-client (the kept
 * library for the text format) under the names they have always had.
 * In-process figures (HTTP, e-mail) count since this process started;
 * deployment and signup figures come from the control database at each
 * scrape (setFromControlDatabase), so they survive restarts and include
 * deployments run by other instances.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200] as const;
export const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

export const SIGNUP_STATUSES = ["queued", "provisioning", "ready", "failed", "suspended"] as const;
export const DEPLOYMENT_STATUSES = ["succeeded", "failed", "interrupted", "running"] as const;

/** What the control database says at scrape time. */
export interface ControlFigures {
  signups: Partial<Record<string, number>>;
  deployments: Partial<Record<string, number>>;
  deploymentSeconds: readonly number[];
  emailsPending: number;
  emailsSent: number;
}

/** The metrics of one service instance, in their own registry. */
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly registers = [this.registry];
  readonly signups = new Counter({
    name: "onboarding_signups_total",
    help: "Webhook calls by result (accepted, duplicate, conflict, invalid, unauthorized, replay).",
    labelNames: ["result"],
    registers: this.registers,
  });
  readonly emails = new Counter({
    name: "onboarding_emails_total",
    help: "Welcome e-mail send attempts by result (sent, failed).",
    labelNames: ["result"],
    registers: this.registers,
  });
  readonly http = new Histogram({
    name: "onboarding_http_request_duration_seconds",
    help: "HTTP request duration by route and status.",
    labelNames: ["route", "code"],
    buckets: [...HTTP_BUCKETS],
    registers: this.registers,
  });
  private readonly tenants = new Gauge({
    name: "onboarding_tenants",
    help: "Signups by status (control database).",
    labelNames: ["status"],
    registers: this.registers,
  });
  private readonly deployments = new Counter({
    name: "onboarding_deployments_total",
    help: "Deployments by outcome (control database, all instances).",
    labelNames: ["status"],
    registers: this.registers,
  });
  private readonly deploymentDuration = new Histogram({
    name: "onboarding_deployment_duration_seconds",
    help: "Duration of finished deployments (control database).",
    buckets: [...DURATION_BUCKETS],
    registers: this.registers,
  });
  private readonly emailsPending = new Gauge({ name: "onboarding_emails_pending", help: "Welcome e-mails not sent yet.", registers: this.registers });
  private readonly emailsSent = new Gauge({ name: "onboarding_emails_sent", help: "Welcome e-mails sent (control database).", registers: this.registers });

  /** Replaces the control-database figures (they are totals, not increments). */
  setFromControlDatabase(figures: ControlFigures): void {
    for (const status of SIGNUP_STATUSES) this.tenants.set({ status }, figures.signups[status] ?? 0);
    this.deployments.reset();
    for (const status of DEPLOYMENT_STATUSES) this.deployments.inc({ status }, figures.deployments[status] ?? 0);
    this.deploymentDuration.reset();
    for (const seconds of figures.deploymentSeconds) this.deploymentDuration.observe(seconds);
    this.emailsPending.set(figures.emailsPending);
    this.emailsSent.set(figures.emailsSent);
  }
}

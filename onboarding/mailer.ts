/**
 * The welcome e-mail, from the outbox table. Exactly once per tenant, as far
 * as SMTP allows:
 *
 * - the runner enqueues at most one row per tenant (idempotency key
 *   `welcome:<tenantId>`, unique), however often deployments or retries run;
 * - a row is claimed with SELECT ... FOR UPDATE SKIP LOCKED, so two loops or
 *   two instances never send the same row at the same time; it is marked
 *   sent in the same transaction, right after the SMTP server accepted it;
 * - the Message-ID is derived from the tenant ID, so in the one window left
 *   (crash after the server accepted, before the commit) the resent copy has
 *   the same Message-ID and mail systems can drop it as a duplicate.
 *
 * A failed send is retried with backoff; it never blocks provisioning, which
 * runs elsewhere.
 */
import nodemailer, { type Transporter } from "nodemailer";
import type { Pool } from "pg";
import { transaction } from "./db";
import type { ServiceMetrics } from "./metrics";
import { retryDelayMs, type Backoff } from "./deployment";

export interface WelcomeMail {
  username: string;
  tenantId: string;
  domain: string;
  recipient: string;
}

export function welcomeMessage(mail: WelcomeMail, from: string, messageIdLocal: string) {
  const appUrl = `https://${mail.domain}`;
  const fromDomain = /@([^>\s]+)/.exec(from)?.[1] ?? "drivergigspro.invalid";
  return {
    from,
    to: mail.recipient,
    subject: "Your DriverGigsPro app is ready",
    messageId: `<${messageIdLocal}@${fromDomain}>`,
    headers: { "X-Tenant-Id": mail.tenantId },
    text: [
      `Hello ${mail.username},`,
      "",
      "your DriverGigsPro app is ready:",
      "",
      `  ${appUrl}`,
      "",
      `Username:       ${mail.username}`,
      `Support handle: ${mail.tenantId} (your tenant ID; please quote it when you contact support)`,
      "",
      "Happy driving!",
      "The DriverGigsPro team",
    ].join("\n"),
  };
}

export function createTransport(smtp: string | object): Transporter {
  return nodemailer.createTransport(smtp as Parameters<typeof nodemailer.createTransport>[0]);
}

export interface MailerOptions {
  from: string;
  pollMs?: number;
  backoff?: Pick<Backoff, "baseMs" | "capMs">;
  metrics?: ServiceMetrics;
  log?: (line: string) => void;
}

export class Mailer {
  private poller: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  private stopped = true;

  constructor(
    private readonly pool: Pool,
    private readonly transport: Transporter,
    private readonly options: MailerOptions,
  ) {}

  start(): void {
    this.stopped = false;
    this.poller = setInterval(() => this.nudge(), this.options.pollMs ?? 1000);
    this.nudge();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poller);
    await this.draining;
  }

  nudge(): void {
    if (this.stopped || this.draining) return;
    this.draining = this.drain()
      .then(() => undefined)
      .catch((error) => this.options.log?.(`mailer: ${error instanceof Error ? error.message : String(error)}`))
      .finally(() => (this.draining = undefined));
  }

  /** Sends every due mail; returns how many were sent. */
  async drain(): Promise<number> {
    let sent = 0;
    while (!this.stopped) {
      const outcome = await this.sendOne();
      if (outcome === "none") break;
      if (outcome === "sent") sent += 1;
    }
    return sent;
  }

  private sendOne(): Promise<"sent" | "failed" | "none"> {
    return transaction(this.pool, async (client) => {
      const { rows } = await client.query<{
        id: string;
        username: string;
        tenant_id: string;
        recipient: string;
        message_id: string;
        attempts: number;
        domain: string;
      }>(
        `SELECT o.id, o.username, o.tenant_id, o.recipient, o.message_id, o.attempts, s.domain
         FROM onboarding_outbox o JOIN onboarding_signups s USING (username)
         WHERE o.sent_at IS NULL AND o.next_attempt_at <= now()
         ORDER BY o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED`,
      );
      const row = rows[0];
      if (!row) return "none";
      const message = welcomeMessage(
        { username: row.username, tenantId: row.tenant_id, domain: row.domain, recipient: row.recipient },
        this.options.from,
        row.message_id,
      );
      try {
        await this.transport.sendMail(message);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        const delay = retryDelayMs({ baseMs: 5000, capMs: 15 * 60_000, ...this.options.backoff, maxAttempts: 0 }, row.attempts + 1);
        await client.query(
          "UPDATE onboarding_outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + make_interval(secs => $3::float8 / 1000) WHERE id = $1",
          [row.id, reason.slice(0, 1000), delay],
        );
        this.options.metrics?.emails.inc({ result: "failed" });
        this.options.log?.(`welcome mail for ${row.tenant_id} failed (attempt ${row.attempts + 1}), retry in ${Math.round(delay / 1000)} s: ${reason}`);
        return "failed";
      }
      await client.query("UPDATE onboarding_outbox SET attempts = attempts + 1, sent_at = now(), last_error = NULL WHERE id = $1", [row.id]);
      this.options.metrics?.emails.inc({ result: "sent" });
      this.options.log?.(`welcome mail for ${row.tenant_id} (${row.username}) sent`);
      return "sent";
    });
  }
}

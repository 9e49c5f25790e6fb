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
import { errorMessage } from "../lib/errors";
import { PollingLoop } from "../lib/polling-loop";
import { withTransaction } from "../lib/transaction";
import { retryDelayMs, type Backoff } from "./backoff";
import type { ServiceMetrics } from "./metrics";
import { claimDueMail, recordMailFailure, recordMailSent } from "./registry";

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

/** Delays between attempts of one mail, unless MailerOptions.backoff says otherwise. */
export const MAIL_BACKOFF: Pick<Backoff, "baseMs" | "capMs"> = { baseMs: 5000, capMs: 15 * 60_000 };

export class Mailer {
  private readonly loop: PollingLoop;

  constructor(
    private readonly pool: Pool,
    private readonly transport: Transporter,
    private readonly options: MailerOptions,
  ) {
    this.loop = new PollingLoop({
      everyMs: options.pollMs ?? 1000,
      tick: (signal) => this.drain(signal),
      onError: (error) => options.log?.(`mailer: ${errorMessage(error)}`),
    });
  }

  start(): void {
    this.loop.start();
    this.loop.runNow();
  }

  /** Stops polling; waits for the mail being sent. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Sends every due mail (until stopped); returns how many were sent. */
  private async drain(signal: AbortSignal): Promise<number> {
    let sent = 0;
    while (!signal.aborted) {
      const outcome = await this.sendOne();
      if (outcome === "none") break;
      if (outcome === "sent") sent += 1;
    }
    return sent;
  }

  /** One due mail, claimed, sent and marked in one transaction: two loops or instances never send the same row at once. */
  private sendOne(): Promise<"sent" | "failed" | "none"> {
    return withTransaction(this.pool, async (client) => {
      const mail = await claimDueMail(client);
      if (!mail) return "none";
      const message = welcomeMessage(
        { username: mail.username, tenantId: mail.tenant_id, domain: mail.domain, recipient: mail.recipient },
        this.options.from,
        mail.message_id,
      );
      try {
        await this.transport.sendMail(message);
      } catch (error) {
        const reason = errorMessage(error);
        const delay = retryDelayMs({ ...MAIL_BACKOFF, ...this.options.backoff }, mail.attempts + 1);
        await recordMailFailure(client, mail.id, reason, delay);
        this.options.metrics?.emails.inc({ result: "failed" });
        this.options.log?.(`welcome mail for ${mail.tenant_id} failed (attempt ${mail.attempts + 1}), retry in ${Math.round(delay / 1000)} s: ${reason}`);
        return "failed";
      }
      await recordMailSent(client, mail.id);
      this.options.metrics?.emails.inc({ result: "sent" });
      this.options.log?.(`welcome mail for ${mail.tenant_id} (${mail.username}) sent`);
      return "sent";
    });
  }
}

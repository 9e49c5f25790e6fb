/** Real parts for the onboarding tests: an SMTP server that keeps what it receives, signed HTTP calls, polling. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";
import { validateTenantsText } from "../tenants/load";
import { databaseName, usernameToLabel } from "../infra/naming";
import type { LocalPostgres } from "../local/embedded-postgres";
import type { Deployer, DeployResult } from "../onboarding/deployer";
import { createTransport } from "../onboarding/mailer";
import type { ServiceOptions } from "../onboarding/service";
import { GitTenantsRepo, type GitTenantsRepoOptions } from "../onboarding/tenants-repo";
import { SHARDS_MANIFEST } from "../tenants/shards";
import { signedHeaders } from "../onboarding/signature";

export const SECRET = "test-webhook-secret-0123456789abcdef";
export const TOKEN = "test-api-token-0123456789abcdef";
export const MAIL_FROM = "DriverGigsPro <welcome@drivergigspro.test>";

export interface ReceivedMail {
  to: string[];
  raw: string;
  messageId: string;
}

export interface MailSink {
  port: number;
  mails: ReceivedMail[];
  /** Reject the next N messages with a temporary SMTP error. */
  failNext(count: number): void;
  url: string;
  close(): Promise<void>;
}

export async function startMailSink(): Promise<MailSink> {
  const mails: ReceivedMail[] = [];
  let failures = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onData(stream, session, callback) {
      let raw = "";
      stream.on("data", (chunk: Buffer) => (raw += chunk.toString("utf8")));
      stream.on("end", () => {
        if (failures > 0) {
          failures -= 1;
          const error = new Error("try again later") as Error & { responseCode: number };
          error.responseCode = 451;
          return callback(error);
        }
        const messageId = /^Message-ID:\s*(\S+)/im.exec(raw)?.[1] ?? "";
        mails.push({ to: session.envelope.rcptTo.map((rcpt) => rcpt.address), raw, messageId });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.server.address() as { port: number }).port;
  return {
    port,
    mails,
    url: `smtp://127.0.0.1:${port}`,
    failNext: (count) => (failures = count),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The author of the test services' commits. */
export const TEST_AUTHOR = { name: "DriverGigsPro signup service", email: "signup-service@drivergigspro.test" };

/**
 * The service's clone of a test tenants repository (`remote`, branch main) at
 * `dir`, as a fleet's clone by default (the manifest is its path and its lock);
 * 5 pushes with a 20 ms backoff. `extra` overrides any option.
 */
export function openTestTenantsRepo(remote: string, dir: string, extra: Partial<GitTenantsRepoOptions> = {}): Promise<GitTenantsRepo> {
  return GitTenantsRepo.open({
    url: remote,
    branch: "main",
    dir,
    path: SHARDS_MANIFEST,
    lockFile: join(dir, SHARDS_MANIFEST),
    author: TEST_AUTHOR,
    pushAttempts: 5,
    pushBackoffMs: 20,
    ...extra,
  });
}

/** The usernames of a tenants file's text, in order; throws when the file is not valid. */
export function usernames(text: string): string[] {
  const parsed = validateTenantsText(text);
  if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join("; "));
  // Pooled entries (warm pool) have no username: their key is their tenant ID.
  return parsed.tenants.filter((tenant) => tenant.status !== "pooled").map((tenant) => tenant.username);
}

/** A control database of its own on `postgres`, for one service instance; returns its URL. */
export async function createControlDatabase(postgres: LocalPostgres, database: string): Promise<string> {
  const admin = await postgres.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  return postgres.url(database);
}

/** What every in-process test service shares: the test secret, token and sender, mail to `sink`, no log. */
export function testServiceOptions(sink: MailSink): Pick<ServiceOptions, "webhookSecret" | "apiToken" | "mailFrom" | "transport" | "log"> {
  return {
    webhookSecret: SECRET,
    apiToken: TOKEN,
    mailFrom: MAIL_FROM,
    transport: createTransport({ host: "127.0.0.1", port: sink.port, secure: false, ignoreTLS: true }),
    log: () => undefined,
  };
}

/** Decoded text of a mail (quoted-printable soft breaks joined). */
export function mailText(mail: ReceivedMail): string {
  return mail.raw.replace(/=\r?\n/g, "").replace(/=3D/g, "=");
}

export async function signup(baseUrl: string, body: unknown, options: { headers?: Record<string, string>; raw?: string; secret?: string } = {}) {
  const raw = options.raw ?? JSON.stringify(body);
  const headers = { "content-type": "application/json", ...signedHeaders(options.secret ?? SECRET, raw), ...options.headers };
  const response = await fetch(`${baseUrl}/v1/signups`, { method: "POST", headers, body: raw });
  return { status: response.status, body: (await response.json()) as Record<string, any>, headers, raw };
}

export async function tenantStatus(baseUrl: string, username: string, token = TOKEN) {
  const response = await fetch(`${baseUrl}/v1/tenants/${username}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * Stands in for the engine in tests of batching and backoff: reads the tenants
 * file the service really wrote and answers like the stack outputs would.
 */
export class FakeDeployer implements Deployer {
  calls: string[][] = [];
  failuresLeft = 0;
  delayMs = 0;
  running = 0;
  maxConcurrent = 0;
  private readonly ids = new Map<string, string>();

  /** `server`: the host and port it reports every tenant on (a real engine reads them from the stack's servers config). */
  constructor(
    readonly tenantsFile: string,
    readonly server = { host: "127.0.0.1", port: 5432 },
  ) {}

  async deploy(): Promise<DeployResult> {
    this.running += 1;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.running);
    try {
      const parsed = validateTenantsText(readFileSync(this.tenantsFile, "utf8"));
      if (!parsed.ok) throw new Error(`fake engine: invalid tenants file: ${parsed.problems[0]?.message}`);
      this.calls.push(parsed.tenants.map((tenant) => tenant.username));
      await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      if (this.failuresLeft > 0) {
        this.failuresLeft -= 1;
        throw new Error("error: update failed\n  error: could not connect to server eu-1: connection refused");
      }
      const tenants: DeployResult["tenants"] = {};
      for (const tenant of parsed.tenants) {
        if (!this.ids.has(tenant.username)) this.ids.set(tenant.username, (0xa0000000 + this.ids.size).toString(16).toUpperCase());
        const tenantId = tenant.tenantId ?? this.ids.get(tenant.username)!;
        const name = databaseName("drivergigspro", tenantId);
        tenants[tenant.username] = {
          tenantId,
          domain: tenant.status === "pooled" ? "" : `${usernameToLabel(tenant.username)}-drivergigspro.test`,
          status: tenant.status,
          connection: { ...this.server, database: name, role: name },
        };
      }
      return { tenants, engineSeconds: this.delayMs / 1000 };
    } finally {
      this.running -= 1;
    }
  }
}

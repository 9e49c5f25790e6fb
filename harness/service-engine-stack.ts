/**
 * The engine stack of the end-to-end files (test/support/engine-stack.ts),
 * set up for the real-engine onboarding tests: a tenants file with a comment
 * the service must keep, the service's control database on the same server,
 * the environment for the service and its runners, and a cleanup that
 * destroys the stack first.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createPrivateDatabase } from "../onboarding/db";
import { PROJECT_DIR } from "../engine/paths";
import { createTransport } from "../onboarding/mailer";
import { ChildProcessLauncher } from "../onboarding/scheduler";
import { startService, type RunningService, type ServiceOptions } from "../onboarding/service";
import { setUpEngineStack as setUpBaseEngineStack, type EngineStack as BaseEngineStack } from "./engine-stack";
import { MAIL_FROM, SECRET, TOKEN } from "./onboarding";

export interface EngineStack extends BaseEngineStack {
  controlUrl: string;
  /** Environment for the service and its deployment runners. */
  serviceEnv(extra?: Record<string, string>): NodeJS.ProcessEnv;
  /** Destroys the stack, then removes it and everything else. */
  cleanup(): Promise<void>;
}

/** The onboarding service on an engine stack, mailing to `smtpUrl`; the caller picks the launcher and timings (and may give another tenants file). */
export function startServiceOnEngine(
  engine: EngineStack,
  smtpUrl: string,
  options: Pick<ServiceOptions, "launcher" | "debounceMs" | "pollMs" | "mailPollMs" | "tenantsFile">,
): Promise<RunningService> {
  return startService({
    databaseUrl: engine.controlUrl,
    stack: engine.stack,
    webhookSecret: SECRET,
    apiToken: TOKEN,
    mailFrom: MAIL_FROM,
    transport: createTransport(smtpUrl),
    log: () => undefined,
    ...options,
    tenantsFile: options.tenantsFile ?? engine.tenantsFile,
  });
}

/**
 * The service as in production: each deployment in a detached runner
 * process (ChildProcessLauncher) with `env` (default: serviceEnv()), on
 * `tenantsFile` (default: the stack's).
 */
export function startServiceWithRunners(
  engine: EngineStack,
  smtpUrl: string,
  { env = engine.serviceEnv(), tenantsFile }: { env?: NodeJS.ProcessEnv; tenantsFile?: string } = {},
): Promise<RunningService> {
  return startServiceOnEngine(engine, smtpUrl, {
    tenantsFile,
    launcher: () => new ChildProcessLauncher({ env, logFile: env.RUNNER_LOG!, cwd: PROJECT_DIR }),
    debounceMs: 500,
    pollMs: 1000,
    mailPollMs: 500,
  });
}

/** Stops what a test started, the service first (it may still be deploying), then the mail sink, then the stack; each may be missing after a failed set-up. */
export async function stopServiceStack(parts: { service?: RunningService; sink?: { close(): Promise<void> }; engine?: EngineStack }): Promise<void> {
  await parts.service?.close();
  await parts.sink?.close();
  await parts.engine?.cleanup();
}

/** What onboarding/main.ts needs besides the stack's environment: the test secret, token and sender, mail to `smtpUrl`, its port. */
export function serviceProcessEnv(smtpUrl: string, port: number): Record<string, string> {
  return { WEBHOOK_SECRET: SECRET, API_TOKEN: TOKEN, SMTP_URL: smtpUrl, MAIL_FROM, PORT: String(port) };
}

/** The service as production runs it: `onboarding/main.ts` in a child process with `env`; its stdout and stderr go to `onOutput`. */
export function spawnServiceProcess(env: NodeJS.ProcessEnv, onOutput: (text: string) => void): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", join(PROJECT_DIR, "onboarding", "main.ts")], {
    cwd: PROJECT_DIR,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (chunk: Buffer) => onOutput(chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => onOutput(chunk.toString()));
  return child;
}

export const TENANTS_HEADER = "# tenants of the onboarding e2e stack; this comment must survive every edit\ntenants: []\n";

export async function setUpEngineStack(name: string): Promise<EngineStack> {
  const engine = await setUpBaseEngineStack({ name, tenantsText: TENANTS_HEADER });
  const cleanup = () => engine.cleanup({ destroy: true });
  try {
    // As npm run serve:local makes it: closed to PUBLIC, or the service refuses to start.
    await createPrivateDatabase(engine.server.url(), "onboarding");
  } catch (error) {
    await cleanup();
    throw error;
  }
  const controlUrl = engine.server.url("onboarding");
  return {
    ...engine,
    controlUrl,
    serviceEnv: (extra = {}) => ({
      ...engine.context.env,
      DATABASE_URL: controlUrl,
      PULUMI_STACK: engine.stack,
      TENANTS_FILE: engine.tenantsFile,
      RUNNER_LOG: join(engine.workDir, "runner.log"),
      ...extra,
    }),
    cleanup,
  };
}

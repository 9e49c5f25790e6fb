/**
 * A stack of its own for the real-engine onboarding tests, set up like
 * test/e2e/engine.test.ts: the real pulumi CLI (toolchain/build.sh) on a
 * local file backend, against a real PostgreSQL that also holds the
 * service's control database.
 */
import { ensureStateDatabase } from "../../local/state-backend";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import { createPrivateDatabase } from "../../onboarding/db";
import { createTransport } from "../../onboarding/mailer";
import { startService, type RunningService, type ServiceOptions } from "../../onboarding/service";
import { SECRET, TOKEN } from "./support";
import { configureLocalStack } from "../../local/stack";
import { findEngine, pulumi, type PulumiContext, pulumiContext } from "../../engine/pulumi";
import { PROJECT_DIR } from "../../engine/paths";

export interface EngineStack {
  server: LocalPostgres;
  context: PulumiContext;
  stack: string;
  workDir: string;
  tenantsFile: string;
  controlUrl: string;
  /** Environment for the service and its deployment runners. */
  serviceEnv(extra?: Record<string, string>): NodeJS.ProcessEnv;
  outputs(): { tenants: Record<string, { tenantId: string; database: string; domain: string }> };
  cleanup(): Promise<void>;
}

/** The onboarding service on an engine stack, mailing to `smtpUrl`; the caller picks the launcher and timings. */
export function startServiceOnEngine(
  engine: EngineStack,
  smtpUrl: string,
  options: Pick<ServiceOptions, "launcher" | "debounceMs" | "pollMs" | "mailPollMs">,
): Promise<RunningService> {
  return startService({
    databaseUrl: engine.controlUrl,
    stack: engine.stack,
    tenantsFile: engine.tenantsFile,
    webhookSecret: SECRET,
    apiToken: TOKEN,
    mailFrom: "DriverGigsPro <welcome@drivergigspro.test>",
    transport: createTransport(smtpUrl),
    log: () => undefined,
    ...options,
  });
}

export const TENANTS_HEADER = "# tenants of the onboarding e2e stack; this comment must survive every edit\ntenants: []\n";

export async function setUpEngineStack(name: string): Promise<EngineStack> {
  const bin = findEngine({ mayBuild: true });
  const workDir = mkdtempSync(join(tmpdir(), `dgp-${name}-`));
  const server = await startLocalPostgres();
  const context = pulumiContext(bin, join(workDir, "state"), await ensureStateDatabase(server));
  const stack = `${name}-${process.pid}`;
  const tenantsFile = join(workDir, "tenants.yaml");
  writeFileSync(tenantsFile, TENANTS_HEADER);
  configureLocalStack(context, stack, server, { tenantsFile });
  // As npm run serve:local makes it: closed to PUBLIC, or the service refuses to start.
  await createPrivateDatabase(server.url(), "onboarding");
  const controlUrl = server.url("onboarding");
  return {
    server,
    context,
    stack,
    workDir,
    tenantsFile,
    controlUrl,
    serviceEnv: (extra = {}) => ({
      ...context.env,
      DATABASE_URL: controlUrl,
      PULUMI_STACK: stack,
      TENANTS_FILE: tenantsFile,
      RUNNER_LOG: join(workDir, "runner.log"),
      ...extra,
    }),
    outputs: () => JSON.parse(pulumi(context, ["stack", "output", "--json", "--stack", stack])),
    async cleanup() {
      try {
        pulumi(context, ["destroy", "--yes", "--skip-preview", "--stack", stack]);
        pulumi(context, ["stack", "rm", "--yes", "--force", stack]);
      } catch {
        // Leave nothing behind, even when a step failed half-way.
      }
      rmSync(join(PROJECT_DIR, `Pulumi.${stack}.yaml`), { force: true });
      await server.stop();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

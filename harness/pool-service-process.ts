/**
 * The pooled signup service of harness/pool-service.ts in a process of its
 * own, so a test can SIGKILL it (test/onboarding/pool-kill.test.ts). Run as
 * `node --import tsx harness/pool-service-process.ts '<JSON PoolServiceProcessConfig>'`
 * (harness/pool-service.ts spawnPooledServiceProcess); it prints
 * `POOL_SERVICE_URL <url>` once it serves, then every log line.
 */
import type { MailSink } from "./onboarding";
import type { LocalBind } from "./bind";
import { runMain } from "../lib/run-main";
import { POOL_SERVICE_URL_LINE, startPooledService, type PoolServiceProcessConfig } from "./pool-service";

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? "") as PoolServiceProcessConfig;
  const log = (line: string) => process.stdout.write(`${line}\n`);
  // Only what startPooledService reads of them: the BIND server's address and key, the mail sink's port.
  const bind: LocalBind = { ...config.bind, dig: () => [], stop: async () => undefined };
  const sink = { port: config.smtpPort } as MailSink;
  const service = await startPooledService({ ...config, bind, sink, log });
  log(`${POOL_SERVICE_URL_LINE}${service.url}`);
}

runMain(main, { expected: [] });

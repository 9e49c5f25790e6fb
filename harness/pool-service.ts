/**
 * A signup service with instant signups on a git fleet of one shard, for the
 * claim tests and the signups bench: a real git remote (harness/git-remote.ts),
 * the service's deployments clone and claims clone, the fake engine on the
 * deployments clone (harness/onboarding.ts FakeDeployer), DNS records on a
 * real BIND, and the claim-and-wait steps both use: sign up, wait until the
 * pool is full again.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { PROJECT_DIR } from "../engine/paths";
import { claimDnsFor, type ClaimDeps } from "../onboarding/claim";
import { ShardedFleet } from "../onboarding/fleet";
import { InProcessLauncher } from "../onboarding/scheduler";
import { startService, type RunningService } from "../onboarding/service";
import type { GitTenantsRepo } from "../onboarding/tenants-repo";
import type { FleetSettings } from "../infra/config";
import { SHARDS_MANIFEST } from "../tenants/shards";
import { rfc2136Settings, type LocalBind } from "./bind";
import { createTenantsRemote } from "./git-remote";
import { FakeDeployer, openTestTenantsRepo, signup, testServiceOptions, waitFor, type MailSink } from "./onboarding";

export const POOL_SHARD = { name: "s001", file: "tenants/s001.yaml" };

export interface PooledServiceOptions {
  /** Folder for the remote (when `files` is given) and this instance's clones. */
  root: string;
  /** The control database (instances of one fleet share it). */
  databaseUrl: string;
  bind: LocalBind;
  sink: MailSink;
  /** A new remote with these files (path: text), or the `remote` of another instance. */
  files?: Record<string, string>;
  remote?: string;
  /** Names this instance's clones (several instances on one remote). */
  instance?: string;
  pushAttempts?: number;
  /** More claim hooks (the bench's timings). */
  claims?: Pick<ClaimDeps, "onTimings" | "onCommit" | "log">;
  log?: (line: string) => void;
}

export interface PooledService {
  service: RunningService;
  url: string;
  databaseUrl: string;
  remote: string;
  /** The person's clone of a new remote (undefined for an instance on another's remote). */
  person?: string;
  deployer: FakeDeployer;
  deployments: GitTenantsRepo;
  claims: GitTenantsRepo;
  /** Free, made pooled tenants in the control database. */
  free(): Promise<number>;
  /** Waits until the pool has `count` free, made tenants again. */
  poolFull(count: number, timeoutMs?: number): Promise<void>;
  /** POST /v1/signups; throws unless 202. */
  signUp(username: string, email?: string): Promise<{ seconds: number; status: string; body: Record<string, any> }>;
  close(): Promise<void>;
}

export async function startPooledService(options: PooledServiceOptions): Promise<PooledService> {
  const { root, bind, sink } = options;
  const created = options.files ? createTenantsRemote(root, options.files, "The fleet") : undefined;
  const remote = created?.remote ?? options.remote;
  if (remote === undefined) throw new Error("startPooledService: give files (a new remote) or remote");
  const instance = options.instance ?? "service";
  const open = (name: string) =>
    openTestTenantsRepo(remote, join(root, `${instance}-${name}`), { pushAttempts: options.pushAttempts ?? 20, pushBackoffMs: 10 });
  const [deployments, claims] = [await open("clone"), await open("clone-claims")];
  const deployer = new FakeDeployer(join(deployments.dir, POOL_SHARD.file));
  const dns = rfc2136Settings(bind, "127.0.0.1");
  const service = await startService({
    ...testServiceOptions(sink),
    ...(options.log ? { log: options.log } : {}),
    databaseUrl: options.databaseUrl,
    fleet: new ShardedFleet({ environment: "test", dir: deployments.dir, git: true }),
    debounceMs: 50,
    pollMs: 100,
    mailPollMs: 100,
    launcher: (pool) => new InProcessLauncher(pool, async (stack) => ({ stack, deployer, tenants: deployments.forShard(POOL_SHARD) })),
    claims: {
      ...options.claims,
      store: async () => claims.forShard(POOL_SHARD),
      dns: async () => claimDnsFor({ appName: "drivergigspro", dns } as unknown as FleetSettings),
    },
  });
  const free = async () => Number((await service.pool.query("SELECT count(*) AS n FROM onboarding_pool WHERE claimed_by IS NULL")).rows[0].n);
  return {
    service,
    url: service.url,
    databaseUrl: options.databaseUrl,
    remote,
    ...(created ? { person: created.person } : {}),
    deployer,
    deployments,
    claims,
    free,
    poolFull: (count, timeoutMs = 120_000) => waitFor(`a pool of ${count}`, async () => (await free()) >= count, timeoutMs, 20).then(() => undefined),
    async signUp(username, email = `${username}@example.com`) {
      const start = performance.now();
      const answer = await signup(service.url, { username, email });
      if (answer.status !== 202) throw new Error(`signup ${username}: ${answer.status} ${JSON.stringify(answer.body)}`);
      return { seconds: (performance.now() - start) / 1000, status: String(answer.body.status), body: answer.body };
    },
    close: () => service.close(),
  };
}

/** What the service in a process of its own (harness/pool-service-process.ts) is started with, as JSON. */
export interface PoolServiceProcessConfig {
  root: string;
  databaseUrl: string;
  remote: string;
  instance: string;
  smtpPort: number;
  bind: Pick<LocalBind, "host" | "port" | "zone" | "keyName" | "keyAlgorithm" | "keySecret">;
}

/** The line the service process prints, followed by its URL, once it serves. */
export const POOL_SERVICE_URL_LINE = "POOL_SERVICE_URL ";

/** The pooled service in a child process (so a test can SIGKILL it); its stdout and stderr go to `onOutput`; resolves with its URL once it serves. */
export async function spawnPooledServiceProcess(
  config: PoolServiceProcessConfig,
  onOutput: (text: string) => void,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", join(PROJECT_DIR, "harness", "pool-service-process.ts"), JSON.stringify(config)], {
    cwd: PROJECT_DIR,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    onOutput(chunk.toString());
  };
  child.stdout!.on("data", collect);
  child.stderr!.on("data", collect);
  const url = await waitFor(
    "the pooled service process to serve",
    async () => {
      if (child.exitCode !== null) throw new Error(`the pooled service process exited with ${child.exitCode}:\n${output.slice(-2000)}`);
      return output
        .split("\n")
        .find((line) => line.startsWith(POOL_SERVICE_URL_LINE))
        ?.slice(POOL_SERVICE_URL_LINE.length);
    },
    120_000,
    50,
  ).catch((error: unknown) => {
    child.kill("SIGKILL");
    throw error;
  });
  return { child, url };
}

/** A fleet manifest of one shard (s001) with this pool size and room for `maxTenants`. */
export function poolManifest(poolSize: number, maxTenants: number): string {
  return `maxTenants: ${maxTenants}\npoolSize: ${poolSize}\nshards:\n  - name: ${POOL_SHARD.name}\n    file: ${POOL_SHARD.file}\n`;
}

export { SHARDS_MANIFEST };

/**
 * The fleet of the configuration, with what deploys each of its stacks: the
 * service (main.ts) and each deployment runner (runner.ts) open it the same
 * way, so both write and deploy the same files.
 *
 * - PULUMI_STACK: one stack; its tenants file is TENANTS_FILE, the file in
 *   the git clone (TENANTS_GIT_PATH), or the stack's configured one.
 * - FLEET_ENV: the shards of tenants/shards.yaml in the project folder
 *   (PULUMI_WORKDIR) or in the service's clone of the tenants repository.
 *   Each shard's deployer is opened when its stack first has signups to
 *   deploy; a stack that does not exist yet is created with the first
 *   shard's stack's config (deployer.ts, `createFrom`).
 */
import { join } from "node:path";
import { SHARDS_MANIFEST } from "../tenants/shards";
import type { RunnerConfig } from "./config";
import { AutomationDeployer, type AutomationDeployerOptions, type Deployer } from "./deployer";
import { ShardedFleet, SingleStackFleet, type Fleet } from "./fleet";
import { GitTenantsRepo, LocalTenantsFile, type TenantsStore } from "./tenants-repo";
import type { FleetSettings } from "../infra/config";
import { claimDnsFor, type ClaimDeps } from "./claim";

/** Runs `open` once, on first use; a failed open is tried again next time. */
function memo<T>(open: () => Promise<T>): () => Promise<T> {
  let opening: Promise<T> | undefined;
  return () => {
    opening ??= open();
    opening.catch(() => (opening = undefined));
    return opening;
  };
}

export interface ShardDeployment {
  deployer: Deployer;
  /** Where its signups are written; undefined: the deployer's file on this host. */
  tenants?: TenantsStore;
}

export interface OpenedFleet {
  fleet: Fleet;
  git?: GitTenantsRepo;
  /** What deploys `stack` (opened once per stack and kept; a failed open is tried again next time). */
  deployment(stack: string): Promise<ShardDeployment>;
  /** What a deployment runner of `stack` needs on top of the service's environment. */
  runnerEnv(stack: string): Record<string, string>;
  /** For the start-up line: the tenants file(s). */
  describeFiles(): string;
  /** What a signup's claim of a pooled tenant needs (claim.ts); fleets of shards only (a single stack has no pool). */
  claims?: ClaimDeps;
}

export interface EngineOptions extends Pick<AutomationDeployerOptions, "envVars" | "onOutput"> {
  log: (line: string) => void;
}

export async function openFleet(config: RunnerConfig, engine: EngineOptions): Promise<OpenedFleet> {
  if (config.stack !== undefined) return openSingleStack(config, config.stack, engine);
  if (config.fleetEnv === undefined) throw new Error("PULUMI_STACK or FLEET_ENV is required");
  const environment = config.fleetEnv;
  const git = config.git ? await GitTenantsRepo.open({ ...config.git, lockFile: join(config.git.dir, SHARDS_MANIFEST), log: engine.log }) : undefined;
  const fleet = new ShardedFleet({ environment, dir: git?.dir ?? config.workDir, git: git !== undefined });
  const open = async (stack: string): Promise<ShardDeployment> => {
    const shard = fleet.shardOf(stack);
    const deployer = await AutomationDeployer.open({
      stackName: stack,
      workDir: config.workDir,
      envVars: engine.envVars,
      tenantsFile: shard.path,
      createFrom: fleet.templateStack(),
      shardFile: shard.file,
      onOutput: engine.onOutput,
    });
    // Each write of a shard's signups also tops its warm pool up (tenants/pool.ts).
    return {
      deployer,
      tenants: git ? git.forShard({ name: shard.name, file: shard.file }) : new LocalTenantsFile(shard.path, { fleetDir: config.workDir, shard: shard.name }),
    };
  };
  const opened = new Map<string, Promise<ShardDeployment>>();
  const deployment = (stack: string): Promise<ShardDeployment> => {
    let opening = opened.get(stack);
    if (opening === undefined) {
      opening = open(stack);
      opened.set(stack, opening);
      opening.catch(() => opened.delete(stack));
    }
    return opening;
  };
  // Claims commit from a clone of their own: the deployments' clone is reset by every batch and read by the engine meanwhile.
  const claimGit = config.git
    ? memo(() =>
        GitTenantsRepo.open({
          ...config.git!,
          dir: `${config.git!.dir}-claims`,
          lockFile: join(`${config.git!.dir}-claims`, SHARDS_MANIFEST),
          log: engine.log,
        }),
      )
    : undefined;
  const settings = new Map<string, Promise<FleetSettings>>();
  const claims: ClaimDeps = {
    log: engine.log,
    store: async (stack) => {
      const shard = fleet.shardOf(stack);
      return claimGit
        ? (await claimGit()).forShard({ name: shard.name, file: shard.file })
        : new LocalTenantsFile(shard.path, { fleetDir: config.workDir, shard: shard.name });
    },
    dns: async (stack) => {
      let read = settings.get(stack);
      if (read === undefined) {
        const { deployer } = await deployment(stack);
        read = deployer.fleetSettings?.() ?? Promise.reject(new Error(`the deployer of ${stack} cannot read its stack config`));
        settings.set(stack, read);
        read.catch(() => settings.delete(stack));
      }
      return claimDnsFor(await read);
    },
  };
  return {
    fleet,
    git,
    deployment,
    claims,
    runnerEnv: (stack) => ({ FLEET_ENV: environment, DEPLOY_STACK: stack, ...(git ? { TENANTS_GIT_DIR: git.dir } : {}) }),
    describeFiles: () => `shards of ${join(git?.dir ?? config.workDir, SHARDS_MANIFEST)}`,
  };
}

async function openSingleStack(config: RunnerConfig, stack: string, engine: EngineOptions): Promise<OpenedFleet> {
  // Git mode: the file in the service's clone of the tenants repository (cloned now if missing).
  const git = config.git ? await GitTenantsRepo.open({ ...config.git, log: engine.log }) : undefined;
  const deployer = await AutomationDeployer.open({
    stackName: stack,
    workDir: config.workDir,
    envVars: engine.envVars,
    tenantsFile: git?.file ?? config.tenantsFile,
    onOutput: engine.onOutput,
  });
  const fleet = new SingleStackFleet(stack, deployer.tenantsFile);
  return {
    fleet,
    git,
    deployment: async (wanted) => {
      fleet.shardOf(wanted);
      return { deployer, tenants: git };
    },
    // The runner finds the same file: TENANTS_FILE, or the same clone.
    runnerEnv: () => ({ PULUMI_STACK: stack, ...(git ? { TENANTS_GIT_DIR: git.dir } : { TENANTS_FILE: deployer.tenantsFile }) }),
    describeFiles: () => deployer.tenantsFile,
  };
}

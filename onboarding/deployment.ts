/**
 * One deployment of one stack: take the stack's advisory lock, pick every
 * signup that is due (the batch), add them to the tenants file (a local file,
 * or a commit pushed to the tenants repository: see tenants-repo.ts), run the
 * engine once on exactly that file, and record the outcome. Signups that arrive meanwhile stay `queued` for the next batch.
 * The SQL is the registry's (registry.ts); this module only orchestrates.
 *
 * The advisory lock is held on one control-database session for the whole
 * deployment: two processes never run the engine on the same stack, and if
 * the process dies PostgreSQL releases the lock by itself. The next
 * deployment then marks the dead one `interrupted` and retries its signups.
 */
import { resolve } from "node:path";
import type { Pool, PoolClient } from "pg";
import { errorMessage } from "../lib/errors";
import { DEFAULT_BACKOFF, type Backoff } from "./backoff";
import { failureReason, type Deployer, type DeployResult } from "./deployer";
import {
  claimBatch,
  pendingClaimIds,
  recordEngineStarted,
  recordFailure,
  recordRejected,
  recordSuccess,
  signupsBoundFor,
  tryStackLock,
  unlockStack,
  type ClaimedBatch,
} from "./registry";
import { LocalTenantsFile, TenantsFileInvalidError, type TenantsStore } from "./tenants-repo";

export type DeploymentOutcome =
  { ran: false; reason: "locked" | "nothing to do" } | { ran: true; deploymentId: string; ok: boolean; usernames: string[]; error?: string };

export interface DeploymentOptions {
  stack: string;
  deployer: Deployer;
  /** Where signups are written; default: the deployer's tenants file on this host. Its file must be the deployer's. */
  tenants?: TenantsStore;
  backoff?: Backoff;
  log?: (line: string) => void;
}

/** One claimed batch on its way through the deployment: the options with their defaults, the session holding the stack's lock. */
interface BatchRun extends Required<DeploymentOptions> {
  client: PoolClient;
  deploymentId: string;
  usernames: string[];
}

type Ran = Extract<DeploymentOutcome, { ran: true }>;

export async function runDeployment(pool: Pool, options: DeploymentOptions): Promise<DeploymentOutcome> {
  const { stack, deployer } = options;
  const tenants = options.tenants ?? new LocalTenantsFile(deployer.tenantsFile);
  if (resolve(tenants.file) !== resolve(deployer.tenantsFile)) {
    throw new Error(`the service writes ${tenants.file} but the stack deploys ${deployer.tenantsFile}; they must be the same file`);
  }
  const client = await pool.connect();
  let locked = false;
  try {
    locked = await tryStackLock(client, stack);
    if (!locked) return { ran: false, reason: "locked" };
    const batch = await claimBatch(client, stack);
    if (!batch) return { ran: false, reason: "nothing to do" };
    const usernames = batch.signups.map((signup) => signup.username);
    const run = { stack, deployer, tenants, backoff: options.backoff ?? DEFAULT_BACKOFF, log: options.log ?? (() => undefined) };
    return await deployBatch({ ...run, client, deploymentId: batch.deploymentId, usernames }, batch.signups);
  } finally {
    if (locked) await unlockStack(client, stack).catch(() => undefined);
    client.release();
  }
}

/** The batch, claimed: written to the tenants file, deployed, its outcome recorded. */
async function deployBatch(run: BatchRun, signups: ClaimedBatch["signups"]): Promise<Ran> {
  run.log(`deployment ${run.deploymentId}: ${run.usernames.length} signup(s): ${run.usernames.join(", ")}`);
  const notWritten = await writeTenants(run, signups);
  if (notWritten) return notWritten;
  const result = await deploy(run);
  if ("ran" in result) return result;
  await recordSuccess(run.client, { stack: run.stack, deploymentId: run.deploymentId, result, maxAttempts: run.backoff.maxAttempts });
  run.log(`deployment ${run.deploymentId} succeeded in ${result.engineSeconds.toFixed(1)} s`);
  return { ran: true, deploymentId: run.deploymentId, ok: true, usernames: run.usernames };
}

/**
 * 1. The tenants file (a local file, or a commit pushed to the tenants repository): every
 *    signup of the batch that is not in it yet is added; a signup the file rejects fails alone, for good.
 *    Returns the batch's failure when the file could not be written.
 */
async function writeTenants(run: BatchRun, signups: ClaimedBatch["signups"]): Promise<Ran | undefined> {
  let added;
  try {
    // Pooled entries claimed but not committed yet are taken: the pool's top-up replaces them. Signups placed on this
    // stack besides the batch's (e.g. failed ones waiting out their backoff) keep their room in the shard: the write's
    // pool top-up never fills it (tenants/pool.ts). Read under the store's lock, which placement takes too.
    added = await run.tenants.addSignups(signups, {
      claimed: await pendingClaimIds(run.client, run.stack),
      placed: async () => (await signupsBoundFor(run.client, [run.stack])).map((row) => row.username),
    });
  } catch (error) {
    const message = errorMessage(error);
    return fail(run, error instanceof TenantsFileInvalidError ? message : `the tenants file could not be updated, nothing was deployed: ${message}`);
  }
  await recordRejected(run.client, added.rejected);
  if (added.pooled && added.pooled.length > 0) run.log(`deployment ${run.deploymentId}: warm pool topped up with ${added.pooled.join(", ")}`);
  if (added.commit) run.log(`deployment ${run.deploymentId}: deploying tenants commit ${added.commit}`);
  return undefined;
}

/** 2. The engine, once, on exactly that file; its failure fails the batch. */
async function deploy(run: BatchRun): Promise<DeployResult | Ran> {
  await recordEngineStarted(run.client, run.deploymentId);
  try {
    return await run.deployer.deploy();
  } catch (error) {
    return fail(run, failureReason(error));
  }
}

/** The batch failed: its signups are retried after the backoff (registry.ts). */
async function fail(run: BatchRun, reason: string): Promise<Ran> {
  await recordFailure(run.client, run.deploymentId, { reason, retryable: true, backoff: run.backoff });
  run.log(`deployment ${run.deploymentId} failed: ${reason}`);
  return { ran: true, deploymentId: run.deploymentId, ok: false, usernames: run.usernames, error: reason };
}

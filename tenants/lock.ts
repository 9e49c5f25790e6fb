/**
 * Serialized edits of a tenants file across processes (the CLI, the
 * onboarding service, its deployment runners): every read-modify-write runs
 * under a lock on a sibling path, `<file>.lock`, so no edit is lost.
 *
 * The lock is proper-lockfile's (an atomic `mkdir`, its mtime refreshed while
 * held, taken over once older than STALE_MS). On top of that the holder
 * writes its host and PID into the lock, so a lock left by a process of this
 * machine that is gone (SIGKILL, OOM) is taken over at once instead of after
 * STALE_MS. Waiting uses exponential backoff with jitter, for at most
 * WAIT_MS; then the edit fails naming the lock and its holder.
 */
import * as fs from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { lock } from "proper-lockfile";
import { errorMessage } from "../lib/errors";
import { processIsAlive } from "../lib/process-alive";

/** A lock not refreshed for this long is stale (its holder is hung, or on another machine and gone). */
const STALE_MS = 60_000;
/** How long an edit waits for the lock before it gives up (more than STALE_MS, so a stale lock is always taken over). */
const WAIT_MS = 90_000;

interface Owner {
  host: string;
  pid: number;
}

/** The lock is a directory that holds the owner file, so removing it must be recursive. */
const lockFs = {
  ...fs,
  rmdir: (path: string, callback: (error: NodeJS.ErrnoException | null) => void) => fs.rm(path, { recursive: true, force: true }, callback),
  rmdirSync: (path: string) => fs.rmSync(path, { recursive: true, force: true }),
};

export function tenantsLockPath(file: string): string {
  return `${resolve(file)}.lock`;
}

function readOwner(lockPath: string): Owner | undefined {
  try {
    const owner = JSON.parse(fs.readFileSync(join(lockPath, "owner"), "utf8")) as Partial<Owner>;
    return typeof owner.host === "string" && typeof owner.pid === "number" ? { host: owner.host, pid: owner.pid } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Records this process as the holder. Runs synchronously right after the
 * lock is taken (no refresh can interleave) and puts the directory's mtime
 * back, since proper-lockfile checks that the mtime is still the one it set.
 */
function writeOwner(lockPath: string): void {
  const { atime, mtime } = fs.statSync(lockPath);
  fs.writeFileSync(join(lockPath, "owner"), JSON.stringify({ host: hostname(), pid: process.pid } satisfies Owner));
  fs.utimesSync(lockPath, atime, mtime);
}

/**
 * A lock whose holder is a process of this machine that no longer runs is
 * marked stale (mtime in the past): proper-lockfile's next attempt removes
 * and takes it, exactly as it does with a lock that is too old.
 */
function expireIfHolderDead(lockPath: string): Owner | undefined {
  const owner = readOwner(lockPath);
  if (owner && owner.host === hostname() && owner.pid !== process.pid && !processIsAlive(owner.pid)) {
    try {
      fs.utimesSync(lockPath, new Date(0), new Date(0));
    } catch {
      // Removed meanwhile: the next attempt takes it.
    }
  }
  return owner;
}

export class TenantsLockError extends Error {
  constructor(file: string, lockPath: string, owner: Owner | undefined, cause: string) {
    const holder = owner ? `held by process ${owner.pid} on ${owner.host}` : "held by another process";
    super(
      `${file}: another edit of this tenants file did not finish (${cause}); the lock ${lockPath} is ${holder}. ` +
        `Try again; if no such process runs, remove ${lockPath}`,
    );
    this.name = "TenantsLockError";
  }
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * Runs `edit` while holding the tenants file's lock: read the file inside
 * `edit`, not before, so it sees every earlier edit. Released when `edit`
 * settles, also when it throws; a lock lost while held (taken over as stale)
 * fails the edit rather than letting two writers overlap silently.
 */
export async function withTenantsFileLock<T>(file: string, edit: () => T | Promise<T>): Promise<T> {
  const lockPath = tenantsLockPath(file);
  let compromised: Error | undefined;
  const options = {
    lockfilePath: lockPath,
    realpath: false,
    stale: STALE_MS,
    update: 2_000,
    retries: 0,
    fs: lockFs,
    onCompromised: (error: Error) => (compromised = error),
  };
  const deadline = Date.now() + WAIT_MS;
  let release: (() => Promise<void>) | undefined;
  for (let attempt = 0; release === undefined; attempt += 1) {
    try {
      release = await lock(file, options);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "ELOCKED") throw new Error(`${file}: cannot lock the tenants file at ${lockPath}: ${errorMessage(error)}`);
      const owner = expireIfHolderDead(lockPath);
      if (Date.now() > deadline) throw new TenantsLockError(file, lockPath, owner, `waited ${WAIT_MS / 1000} s`);
      const delay = Math.min(1_000, 20 * 1.5 ** attempt);
      await sleep(delay / 2 + Math.random() * (delay / 2));
    }
  }
  writeOwner(lockPath);
  try {
    const result = await edit();
    if (compromised) throw new TenantsLockError(file, lockPath, undefined, `the lock was lost: ${compromised.message}`);
    return result;
  } finally {
    if (!compromised) await release().catch(() => undefined);
  }
}

/**
 * A `pulumi up` that is killed outright (SIGKILL, OOM, a lost CI runner)
 * leaves its lock file in a file backend, and every later update stops with
 * "the stack is currently locked" until someone runs `pulumi cancel`.
 *
 * This module tells a stale lock from a live one without guessing: a lock
 * is stale only when it was taken on this machine by a process that no
 * longer exists. A lock from another host, or from a live process, is never
 * touched; the caller reports it instead.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";

/** What Pulumi writes into a lock file (pkg/backend/diy/lock.go). */
const lockContentSchema = z.object({
  pid: z.number().int(),
  username: z.string(),
  hostname: z.string(),
  timestamp: z.string(),
});

export type LockContent = z.infer<typeof lockContentSchema>;

export interface StackLocks {
  /** Taken here by processes that are gone: safe to remove with `pulumi cancel`. */
  stale: LockContent[];
  /** Held by a live process, from another host, or unreadable: leave alone. */
  held: string[];
}

/**
 * The lock files of `project/stack` in a `file://` backend. Other backends
 * (Pulumi Cloud, S3) manage their own leases, so nothing is reported for them.
 */
export function findStackLocks(backendUrl: string, project: string, stack: string): StackLocks {
  const locks: StackLocks = { stale: [], held: [] };
  if (!backendUrl.startsWith("file://")) return locks;
  const stateDir = fileURLToPath(backendUrl.split("?")[0]!);
  const dir = join(stateDir, ".pulumi", "locks", "organization", project, stack);
  if (!existsSync(dir)) return locks;
  for (const file of readdirSync(dir).filter((name) => name.endsWith(".json"))) {
    const parsed = lockContentSchema.safeParse(safeJson(join(dir, file)));
    if (!parsed.success) {
      locks.held.push(`${file}: unreadable lock file`);
    } else if (parsed.data.hostname === hostname() && !processIsAlive(parsed.data.pid)) {
      locks.stale.push(parsed.data);
    } else {
      const lock = parsed.data;
      locks.held.push(`pid ${lock.pid} on ${lock.hostname} (${lock.username}) since ${lock.timestamp}`);
    }
  }
  return locks;
}

/**
 * When every lock on the stack is stale, so `pulumi cancel` is safe: one line
 * for people naming them. Otherwise (no lock, or any live or foreign one): undefined.
 */
export function removableStaleLocks(backendUrl: string, project: string, stack: string): string | undefined {
  const locks = findStackLocks(backendUrl, project, stack);
  if (locks.stale.length === 0 || locks.held.length > 0) return undefined;
  return locks.stale.map((lock) => `pid ${lock.pid}, started ${lock.timestamp}`).join("; ");
}

function safeJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

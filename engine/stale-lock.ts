/**
 * A `pulumi up` that is killed outright (SIGKILL, OOM, a lost CI runner)
 * leaves its lock in a DIY backend (a file under `file://`, a row of the state
 * table under `postgres://`), and every later update stops with "the stack is
 * currently locked" until someone runs `pulumi cancel`.
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
import { Client } from "pg";
import { z } from "zod";
import { processIsAlive } from "../lib/process-alive";

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
 * The locks of `project/stack` in a DIY backend: the lock files of a
 * `file://` backend, or the lock rows of a `postgres://` one. Other backends
 * (Pulumi Cloud, S3) manage their own leases, so nothing is reported for them.
 */
export async function findStackLocks(backendUrl: string, project: string, stack: string): Promise<StackLocks> {
  const prefix = `.pulumi/locks/organization/${project}/${stack}/`;
  if (backendUrl.startsWith("file://")) return classify(lockFiles(backendUrl, prefix), "file");
  if (backendUrl.startsWith("postgres://")) return classify(await lockRows(backendUrl, prefix), "row");
  return { stale: [], held: [] };
}

function classify(contents: { name: string; json: unknown }[], kind: "file" | "row"): StackLocks {
  const locks: StackLocks = { stale: [], held: [] };
  for (const { name, json } of contents) {
    const parsed = lockContentSchema.safeParse(json);
    if (!parsed.success) {
      locks.held.push(`${name}: unreadable lock ${kind}`);
    } else if (parsed.data.hostname === hostname() && !processIsAlive(parsed.data.pid)) {
      locks.stale.push(parsed.data);
    } else {
      const lock = parsed.data;
      locks.held.push(`pid ${lock.pid} on ${lock.hostname} (${lock.username}) since ${lock.timestamp}`);
    }
  }
  return locks;
}

function lockFiles(backendUrl: string, prefix: string): { name: string; json: unknown }[] {
  const dir = join(fileURLToPath(backendUrl.split("?")[0]!), prefix);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .map((name) => ({ name, json: safeJson(() => readFileSync(join(dir, name), "utf8")) }));
}

/**
 * Pulumi's postgres bucket keeps each blob as `{"data": base64}` in a
 * `key`/`data` table (default `pulumi_state`), its keys prefixed with the
 * URL's path (the database name): `pulumi_state/.pulumi/locks/...`.
 */
async function lockRows(backendUrl: string, lockDir: string): Promise<{ name: string; json: unknown }[]> {
  const url = new URL(backendUrl);
  const prefix = `${decodeURIComponent(url.pathname.replace(/^\//, ""))}/${lockDir}`;
  const table = url.searchParams.get("table") ?? "pulumi_state";
  url.searchParams.delete("table");
  const client = new Client({ connectionString: url.toString().replace(/^postgres:/, "postgresql:"), connectionTimeoutMillis: 15_000 });
  await client.connect();
  try {
    const exists = await client.query("SELECT to_regclass($1) IS NOT NULL AS present", [table]);
    if (!exists.rows[0]?.present) return [];
    const { rows } = await client.query<{ key: string; data: string }>(
      `SELECT key, data->>'data' AS data FROM ${client.escapeIdentifier(table)} WHERE key LIKE $1 || '%' AND key LIKE '%.json'`,
      [prefix],
    );
    return rows.map((row) => ({ name: row.key.slice(prefix.length), json: safeJson(() => Buffer.from(row.data, "base64").toString("utf8")) }));
  } finally {
    await client.end();
  }
}

/**
 * When every lock on the stack is stale, so `pulumi cancel` is safe: one line
 * for people naming them. Otherwise (no lock, or any live or foreign one): undefined.
 */
export async function removableStaleLocks(backendUrl: string, project: string, stack: string): Promise<string | undefined> {
  const locks = await findStackLocks(backendUrl, project, stack);
  if (locks.stale.length === 0 || locks.held.length > 0) return undefined;
  return locks.stale.map((lock) => `pid ${lock.pid}, started ${lock.timestamp}`).join("; ");
}

function safeJson(read: () => string): unknown {
  try {
    return JSON.parse(read());
  } catch {
    return undefined;
  }
}

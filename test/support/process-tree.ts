/**
 * A process and everything it started, read from /proc. The Pulumi CLI puts
 * each plugin (language host, providers) in a process group of its own, so
 * killing the CLI's group alone would leave them running.
 */
import { readdirSync, readFileSync } from "node:fs";

export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
  }
  const tree: number[] = [];
  for (const queue = [root]; queue.length > 0;) {
    const pid = queue.shift()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

/**
 * SIGKILL to a process and all its descendants at once, as a lost machine
 * would. The tree is frozen first (SIGSTOP, repeated until no new process
 * appears), so nothing can start a child or be orphaned between the look and
 * the kill. Returns every pid that was killed.
 */
export function killTree(root: number): number[] {
  const frozen = new Set<number>();
  for (let grew = true; grew;) {
    grew = false;
    for (const pid of processTree(root)) {
      if (frozen.has(pid)) continue;
      signal(pid, "SIGSTOP");
      frozen.add(pid);
      grew = true;
    }
  }
  for (const pid of frozen) signal(pid, "SIGKILL");
  return [...frozen];
}

/** The pids that still run (a zombie waiting for its parent does not). */
export function stillRunning(pids: readonly number[]): number[] {
  return pids.filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
    } catch {
      return false;
    }
  });
}

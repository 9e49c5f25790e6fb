/**
 * Who listens on a TCP port on this machine, from /proc (Linux): the socket's
 * inode and owner in /proc/net/tcp{,6}, the process whose fd points at that
 * inode in /proc/<pid>/fd, and its command line. Used to say who holds the
 * embedded PostgreSQL's port instead of failing with an unhelpful message.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { createServer } from "node:net";

export interface PortHolder {
  readonly uid: number;
  /** Known when this user may read the process's fds (its own processes, or root). */
  readonly pid?: number;
  readonly command?: string;
  /** `-D <folder>` of a PostgreSQL server: another checkout's data folder. */
  readonly postgresDataDir?: string;
}

/** Whether 127.0.0.1:port can be bound right now. */
export function portIsFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

const LISTEN = "0A";

function listeningSockets(port: number): { inode: string; uid: number }[] {
  const found: { inode: string; uid: number }[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (local === undefined || fields[3] !== LISTEN) continue;
      if (parseInt(local.split(":")[1] ?? "", 16) === port) found.push({ inode: fields[9]!, uid: Number(fields[7]) });
    }
  }
  return found;
}

function pidOwning(inode: string): number | undefined {
  const target = `socket:[${inode}]`;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // gone, or another user's process
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${entry}/fd/${fd}`) === target) return Number(entry);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

function commandOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8")
      .split("\0")
      .filter((part) => part !== "");
  } catch {
    return [];
  }
}

/** The listeners on `port`, as far as /proc shows them; empty when none is visible. */
export function portHolders(port: number): PortHolder[] {
  return listeningSockets(port).map(({ inode, uid }) => {
    const pid = pidOwning(inode);
    if (pid === undefined) return { uid };
    const argv = commandOf(pid);
    const dataFlag = argv.indexOf("-D");
    const isPostgres = /(^|\/)postgres$/.test(argv[0] ?? "");
    return {
      uid,
      pid,
      command: argv.join(" ").slice(0, 200),
      ...(isPostgres && dataFlag >= 0 && argv[dataFlag + 1] !== undefined ? { postgresDataDir: argv[dataFlag + 1] } : {}),
    };
  });
}

function userName(uid: number): string {
  try {
    const line = readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .find((entry) => entry.split(":")[2] === String(uid));
    return line?.split(":")[0] ?? `uid ${uid}`;
  } catch {
    return `uid ${uid}`;
  }
}

/** One sentence naming who holds the port. */
export function describePortHolders(port: number, holders: readonly PortHolder[] = portHolders(port)): string {
  if (holders.length === 0) return `port ${port} is in use (no listener visible in /proc/net/tcp: maybe a process of another network namespace)`;
  const described = holders.map((holder) => {
    if (holder.pid === undefined) return `a process of user ${userName(holder.uid)} (its pid is not visible to this user)`;
    if (holder.postgresDataDir !== undefined)
      return `the PostgreSQL server of data folder ${holder.postgresDataDir} (pid ${holder.pid}, user ${userName(holder.uid)})`;
    return `pid ${holder.pid} (user ${userName(holder.uid)}): ${holder.command}`;
  });
  return `port ${port} is held by ${[...new Set(described)].join("; ")}`;
}

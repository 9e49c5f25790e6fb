/**
 * A BIND (`named` from Debian's `bind9`) for development: one authoritative
 * zone on a loopback port that accepts RFC 2136 updates signed with one TSIG
 * key, run as an unprivileged user (`bind` when started as root, else the
 * caller) from a folder of its own; nothing under /etc/bind is read or changed.
 *
 * Two ways to run it, one set of files:
 * - the checkout's DNS server (`npm run dns:local -- start|stop`,
 *   local/bind-cli.ts): `.data/bind/`, port 55353 (DGP_LOCAL_DNS_PORT), zone
 *   `fleet.localhost`, a TSIG key generated on the first start and kept
 *   there; named runs in the background until `stop`;
 * - the tests' throw-away servers (harness/bind.ts): a temporary folder, a
 *   free port, named in the foreground as a child of the test.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { onPath } from "../engine/pulumi";
import { localDataDir, PROJECT_DIR } from "../engine/paths";
import { describePortHolders, portIsFree } from "./port-holder";

export const DEFAULT_LOCAL_DNS_PORT = 55353;
export const LOCAL_DNS_PORT_ENV = "DGP_LOCAL_DNS_PORT";
/** The zone of the checkout's DNS server: under `.localhost`, which no public resolver serves. */
export const LOCAL_BIND_ZONE = "fleet.localhost";
export const LOCAL_BIND_KEY_NAME = "drivergigspro-local";

export interface NamedSettings {
  /** Where named.conf, the zone file and its journal live (named's working folder). */
  readonly dir: string;
  readonly port: number;
  readonly zone: string;
  readonly keyName: string;
  /** Base64, as tsig-keygen prints it (hmac-sha256). */
  readonly keySecret: string;
}

/** Debian puts named in /usr/sbin, which a non-root PATH may lack. */
export function namedBinary(): string {
  if (onPath("named")) return "named";
  if (existsSync("/usr/sbin/named")) return "/usr/sbin/named";
  throw new Error("named is not installed: apt-get install bind9 bind9-dnsutils (.ci/run does this)");
}

/** A new TSIG secret: 32 random bytes, base64, as `tsig-keygen -a hmac-sha256` makes. */
export const newKeySecret = (): string => randomBytes(32).toString("base64");

/** `dig +short NAME TYPE` against 127.0.0.1:PORT: the answers, [] when there is none. */
export function digAt(port: number, name: string, type: string): string[] {
  const out = execFileSync("dig", [`@127.0.0.1`, "-p", String(port), name, type, "+short", "+time=2", "+tries=2"], { encoding: "utf8" });
  return out.split("\n").filter((line) => line.trim() !== "");
}

function namedConf(settings: NamedSettings, background: boolean): string {
  const { dir, port, zone, keyName, keySecret } = settings;
  // In the background named logs to syslog by default: to a file of its own folder instead.
  const logging = background
    ? `logging { channel own { file "${join(dir, "named.log")}" versions 2 size 1m; severity info; print-time yes; }; category default { own; }; };\n`
    : "";
  return `options {
  directory "${dir}";
  pid-file ${background ? `"${join(dir, "named.pid")}"` : "none"};
  session-keyfile none;
  managed-keys-directory "${dir}";
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify no;
};
controls { };
${logging}key "${keyName}" { algorithm hmac-sha256; secret "${keySecret}"; };
zone "${zone}" {
  type primary;
  file "${join(dir, "zone.db")}";
  allow-update { key "${keyName}"; };
};
`;
}

function zoneFile(zone: string): string {
  return `$TTL 300
@ IN SOA ns.${zone}. hostmaster.${zone}. 1 3600 600 86400 300
@ IN NS ns.${zone}.
ns IN A 127.0.0.1
`;
}

/**
 * Writes named.conf (mode 0600: it holds the key) and, unless one is there
 * already (a restart keeps the records), the zone file. Returns named's
 * arguments: as root it drops to `bind`, which then owns the folder.
 */
export function prepareNamed(settings: NamedSettings, options: { background: boolean }): string[] {
  const { dir } = settings;
  mkdirSync(dirname(dir), { recursive: true }); // its parents stay reachable for `bind`
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, "named.conf"), namedConf(settings, options.background), { mode: 0o600 });
  if (!existsSync(join(dir, "zone.db"))) writeFileSync(join(dir, "zone.db"), zoneFile(settings.zone));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const user = Number(execFileSync("id", ["-u", "bind"], { encoding: "utf8" }).trim());
    const group = Number(execFileSync("id", ["-g", "bind"], { encoding: "utf8" }).trim());
    chownSync(dir, user, group);
    for (const file of ["named.conf", "zone.db", "zone.db.jnl", "named.log"]) {
      if (existsSync(join(dir, file))) chownSync(join(dir, file), user, group);
    }
    chmodSync(dir, 0o700);
  }
  return [...(options.background ? [] : ["-g"]), "-n", "1", "-c", join(dir, "named.conf"), ...(asRoot ? ["-u", "bind"] : [])];
}

/** Waits (up to 30 s) until named answers for its zone; `gone` says why it never will (it exited), and stops the wait. */
export async function waitForNamed(port: number, zone: string, gone: () => string | undefined): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const reason = gone();
    if (reason !== undefined) throw new Error(reason);
    try {
      if (digAt(port, zone, "SOA").length > 0) return;
    } catch {
      // not listening yet; every attempt is bounded by dig's own timeout
    }
    if (Date.now() > deadline) throw new Error(`named did not answer for ${zone} on 127.0.0.1:${port} within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * A stack's `dns.*` config for records on such a server (A records to
 * `target`, TTL 60), all but the key's secret, which goes in as a secret
 * (setStackConfig's `secret`).
 */
export function namedStackConfig(settings: Pick<NamedSettings, "zone" | "port" | "keyName">, target: string): Record<string, string> {
  return {
    "dns.provider": "rfc2136",
    "dns.zone": settings.zone,
    "dns.server": "127.0.0.1",
    "dns.port": String(settings.port),
    "dns.keyName": settings.keyName,
    "dns.recordType": "A",
    "dns.target": target,
    "dns.ttl": "60",
  };
}

// ---------------------------------------------------------------------------
// The checkout's DNS server (npm run dns:local)

export function localDnsPort(env: NodeJS.ProcessEnv = process.env): number {
  const text = env[LOCAL_DNS_PORT_ENV];
  if (text === undefined || text === "") return DEFAULT_LOCAL_DNS_PORT;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1024 || port > 65535) {
    throw new Error(`${LOCAL_DNS_PORT_ENV}=${text} is not a port number from 1024 to 65535`);
  }
  return port;
}

export const localBindDir = (projectDir: string = PROJECT_DIR): string => join(localDataDir(projectDir), "bind");

/** The key of the checkout's DNS server: the one its named.conf holds, else a new one. */
function localKeySecret(dir: string): string {
  const conf = join(dir, "named.conf");
  if (existsSync(conf)) {
    const secret = /secret "([^"]+)";/.exec(readFileSync(conf, "utf8"))?.[1];
    if (secret !== undefined) return secret;
  }
  return newKeySecret();
}

/** The pid of the checkout's named when it is running, else undefined. */
export function runningLocalBind(projectDir: string = PROJECT_DIR): number | undefined {
  const pidFile = join(localBindDir(projectDir), "named.pid");
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

function logTail(dir: string): string {
  const log = join(dir, "named.log");
  return existsSync(log) ? readFileSync(log, "utf8").split("\n").slice(-15).join("\n") : "(no named.log)";
}

/**
 * Starts the checkout's named in the background (when it is not running
 * already) and returns its settings. It keeps running until
 * stopLocalBind; a second start with it running only reports it.
 */
export async function startLocalBind(projectDir: string = PROJECT_DIR): Promise<NamedSettings & { started: boolean }> {
  const dir = localBindDir(projectDir);
  const settings: NamedSettings = { dir, port: localDnsPort(), zone: LOCAL_BIND_ZONE, keyName: LOCAL_BIND_KEY_NAME, keySecret: localKeySecret(dir) };
  if (runningLocalBind(projectDir) !== undefined) {
    await waitForNamed(settings.port, settings.zone, () => undefined);
    return { ...settings, started: false };
  }
  if (!(await portIsFree(settings.port))) {
    throw new Error(`cannot start named: ${describePortHolders(settings.port)}; stop it or pick another port (${LOCAL_DNS_PORT_ENV}=${settings.port + 1})`);
  }
  const args = prepareNamed(settings, { background: true });
  // named forks; its first process exits once the server is set up (non-zero when it could not start).
  await new Promise<void>((resolve, reject) => {
    const child = spawn(namedBinary(), args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
    child.on("error", reject);
    child.on("exit", (code) =>
      code === 0
        ? resolve()
        : reject(
            new Error(
              `named exited ${code} (it runs as ${process.getuid?.() === 0 ? "bind" : "you"} and must reach ${dir}): ${stderr.trim()}\n${logTail(dir)}`,
            ),
          ),
    );
  });
  try {
    await waitForNamed(settings.port, settings.zone, () =>
      runningLocalBind(projectDir) === undefined ? `named stopped right after starting:\n${logTail(dir)}` : undefined,
    );
  } catch (error) {
    await stopLocalBind(projectDir); // never left running when it does not serve
    throw new Error(`${(error as Error).message}\n${logTail(dir)}`);
  }
  return { ...settings, started: true };
}

/** Stops the checkout's named (SIGTERM, then waits for it to exit); false when it was not running. Its files are kept. */
export async function stopLocalBind(projectDir: string = PROJECT_DIR): Promise<boolean> {
  const pid = runningLocalBind(projectDir);
  if (pid === undefined) return false;
  process.kill(pid, "SIGTERM");
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      process.kill(pid, 0);
    } catch {
      rmSync(join(localBindDir(projectDir), "named.pid"), { force: true });
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`named (pid ${pid}) did not stop within 20 s of SIGTERM`);
}

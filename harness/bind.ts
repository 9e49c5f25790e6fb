/**
 * A real BIND (`named` from Debian's `bind9`) for tests: one authoritative
 * zone on a free loopback port that accepts RFC 2136 updates signed with one
 * TSIG key. It runs in the foreground from a temporary folder (as the `bind`
 * user when the tests run as root) and is queried with `dig`.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { userInfo, tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../local/embedded-postgres";
import { onPath } from "../engine/pulumi";
import type { Rfc2136Settings } from "../infra/dns/rfc2136-record";

/** Debian puts named in /usr/sbin, which a non-root PATH may lack. */
function namedBinary(): string {
  if (onPath("named")) return "named";
  if (existsSync("/usr/sbin/named")) return "/usr/sbin/named";
  throw new Error("named is not installed: apt-get install bind9 bind9-dnsutils (.ci/run does this)");
}

export interface LocalBind {
  readonly host: string;
  readonly port: number;
  readonly zone: string;
  readonly keyName: string;
  readonly keyAlgorithm: "hmac-sha256";
  /** Base64, as tsig-keygen prints it. */
  readonly keySecret: string;
  /** `dig +short` for NAME TYPE against this server: the answers, [] when there is none. */
  dig(name: string, type?: "A" | "CNAME"): string[];
  stop(): Promise<void>;
}

function namedConf(dir: string, port: number, zone: string, keyName: string, secret: string): string {
  return `options {
  directory "${dir}";
  pid-file none;
  session-keyfile none;
  managed-keys-directory "${dir}";
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify no;
};
controls { };
key "${keyName}" { algorithm hmac-sha256; secret "${secret}"; };
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

function dig(port: number, name: string, type: string): string[] {
  const out = execFileSync("dig", [`@127.0.0.1`, "-p", String(port), name, type, "+short", "+time=2", "+tries=2"], { encoding: "utf8" });
  return out.split("\n").filter((line) => line.trim() !== "");
}

export async function startBind(zone = "fleet.test", keyName = "dgp-test-key"): Promise<LocalBind> {
  const binary = namedBinary();
  const dir = mkdtempSync(join(tmpdir(), "dgp-bind-"));
  const port = await freePort();
  const keySecret = randomBytes(32).toString("base64");
  writeFileSync(join(dir, "named.conf"), namedConf(dir, port, zone, keyName, keySecret), { mode: 0o600 });
  writeFileSync(join(dir, "zone.db"), zoneFile(zone));
  // named drops root for `bind`, which must write the zone's journal here.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const bind = execFileSync("id", ["-u", "bind"], { encoding: "utf8" }).trim();
    const group = execFileSync("id", ["-g", "bind"], { encoding: "utf8" }).trim();
    for (const file of ["", "named.conf", "zone.db"]) chownSync(join(dir, file), Number(bind), Number(group));
    chmodSync(dir, 0o700);
  }
  const args = ["-g", "-n", "1", "-c", join(dir, "named.conf"), ...(asRoot ? ["-u", "bind"] : [])];
  const named: ChildProcess = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  named.stderr!.on("data", (chunk: Buffer) => (log += chunk.toString("utf8")));
  const exited = new Promise<void>((resolve) => named.once("exit", () => resolve()));

  // Ready once it answers for its zone; every attempt is bounded by dig's own timeout.
  for (let attempt = 0; ; attempt++) {
    if (named.exitCode !== null) throw new Error(`named exited ${named.exitCode} (user ${userInfo().username}):\n${log}`);
    try {
      if (dig(port, zone, "SOA").length > 0) break;
    } catch {
      // not listening yet
    }
    if (attempt > 120) throw new Error(`named did not answer on 127.0.0.1:${port}:\n${log}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }

  return {
    host: "127.0.0.1",
    port,
    zone,
    keyName,
    keyAlgorithm: "hmac-sha256",
    keySecret,
    dig: (name, type = "A") => dig(port, name, type),
    async stop() {
      if (named.exitCode === null) {
        named.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The stack's DNS settings for records on this server (A records to `target`, TTL 60, the default naming template). */
export function rfc2136Settings(bind: LocalBind, target: string): Rfc2136Settings {
  return {
    provider: "rfc2136",
    zone: bind.zone,
    server: bind.host,
    port: bind.port,
    keyName: bind.keyName,
    keyAlgorithm: "hmac-sha256",
    keySecret: bind.keySecret,
    recordType: "A",
    target,
    ttl: 60,
    recordTemplate: "{user}-{app}",
  };
}

/** The same as stack config (`dns.*`), all but the key's secret, which goes in as a secret (setStackConfig's `secret`). */
export function rfc2136StackConfig(bind: LocalBind, target: string): Record<string, string> {
  return {
    "dns.provider": "rfc2136",
    "dns.zone": bind.zone,
    "dns.server": bind.host,
    "dns.port": String(bind.port),
    "dns.keyName": bind.keyName,
    "dns.recordType": "A",
    "dns.target": target,
    "dns.ttl": "60",
  };
}

/**
 * A tenant's DNS record on any server that accepts RFC 2136 dynamic updates
 * signed with TSIG (BIND, Knot, PowerDNS, ...), written with `nsupdate` from
 * Debian's `bind9-dnsutils` rather than hand-made DNS packets.
 *
 * Loaded inside the dynamic provider's process (see rfc2136-record.ts), so it
 * imports nothing but Node.js. The update script, TSIG key included, goes to
 * nsupdate on stdin: the secret is never on a command line, in a file or in a
 * message. Every value is checked here again before it reaches the script
 * (the script is line-based: a newline in a value could add commands).
 */
import { spawn } from "node:child_process";
import { isIPv4, isIPv6 } from "node:net";
import { TENANT_ID_PATTERN } from "../naming";

export const TSIG_ALGORITHMS = ["hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5"] as const;
export type TsigAlgorithm = (typeof TSIG_ALGORITHMS)[number];
export const RECORD_TYPES = ["A", "CNAME"] as const;
export type RecordType = (typeof RECORD_TYPES)[number];

const LABEL = "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?";
const HOST_NAME = new RegExp(`^(?=.{1,253}$)${LABEL}(\\.${LABEL})*$`);
/** TSIG key names are domain names; BIND's and Knot's examples use `_` too. */
const KEY_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
const BASE64 = /^(?=.{16,1024}$)[A-Za-z0-9+/]+={0,2}$/;

/** A lower-case host name without the trailing dot, e.g. `ns1.example.com`. */
export function isHostName(value: string): boolean {
  return HOST_NAME.test(value);
}

export function isTsigKeyName(value: string): boolean {
  return KEY_NAME.test(value);
}

/** A TSIG secret as BIND's `tsig-keygen` writes it: base64. */
export function isTsigSecret(value: string): boolean {
  return BASE64.test(value);
}

/** Dotted-quad IPv4, as an A record holds it. */
export function isIPv4Address(value: string): boolean {
  return isIPv4(value);
}

/** Where updates go: an IPv4/IPv6 address or a host name. */
export function isDnsServer(value: string): boolean {
  return isIPv4(value) || isIPv6(value) || isHostName(value);
}

export interface DnsRecordSpec {
  /** For messages only: the support handle of the tenant the record belongs to. */
  tenantId: string;
  /** Fully-qualified, without the trailing dot: `john-driver-drivergigspro.fleet.example`. */
  name: string;
  zone: string;
  server: string;
  port: number;
  keyName: string;
  keyAlgorithm: TsigAlgorithm;
  keySecret: string;
  type: RecordType;
  /** An IPv4 address (A) or a host name (CNAME). */
  target: string;
  ttl: number;
}

/** Everything wrong with a record's values; none of them is ever echoed if it could be the secret. */
function recordProblems(spec: DnsRecordSpec): string[] {
  const problems: string[] = [];
  const check = (ok: boolean, problem: string) => {
    if (!ok) problems.push(problem);
  };
  check(typeof spec.tenantId === "string" && TENANT_ID_PATTERN.test(spec.tenantId), "the tenant ID is not 8 upper-case hex digits");
  check(isHostName(spec.zone), "the zone is not a lower-case host name");
  check(isHostName(spec.name) && spec.name.endsWith(`.${spec.zone}`), "the record name is not a host name inside the zone");
  check(isDnsServer(spec.server), "the server is not an IP address or host name");
  check(Number.isInteger(spec.port) && spec.port >= 1 && spec.port <= 65535, "the port is not 1-65535");
  check(isTsigKeyName(spec.keyName), "the key name is not a domain name");
  check(TSIG_ALGORITHMS.includes(spec.keyAlgorithm), `the key algorithm is not one of ${TSIG_ALGORITHMS.join(", ")}`);
  check(typeof spec.keySecret === "string" && isTsigSecret(spec.keySecret), "the key secret is not base64");
  check(RECORD_TYPES.includes(spec.type), "the record type is not A or CNAME");
  check(spec.type === "A" ? isIPv4Address(spec.target) : isHostName(spec.target), "the target does not fit the record type");
  check(Number.isInteger(spec.ttl) && spec.ttl >= 1 && spec.ttl <= 604800, "the ttl is not 1-604800 seconds");
  return problems;
}

/** The nsupdate script: select server, zone and key, then the update lines, then send. */
function script(spec: DnsRecordSpec, updates: string[]): string {
  return [
    `server ${spec.server} ${spec.port}`,
    `zone ${spec.zone}.`,
    `key ${spec.keyAlgorithm}:${spec.keyName} ${spec.keySecret}`,
    ...updates,
    "send",
    "",
  ].join("\n");
}

/** Both types we manage: a name holds either an A or a CNAME, never both. */
function clearLines(spec: DnsRecordSpec): string[] {
  return RECORD_TYPES.map((type) => `update delete ${spec.name}. ${type}`);
}

/**
 * Creates or replaces the record: one atomic update that removes whatever
 * A/CNAME the name had (a record left by an interrupted run, or the old type)
 * and adds the new one. Running it twice changes nothing.
 */
export async function upsertRecord(spec: DnsRecordSpec): Promise<void> {
  const data = spec.type === "CNAME" ? `${spec.target}.` : spec.target;
  await runUpdate(spec, "create or update", [...clearLines(spec), `update add ${spec.name}. ${spec.ttl} IN ${spec.type} ${data}`]);
}

/** Removes the record (both managed types); removing a record that is not there succeeds. */
export async function deleteRecord(spec: DnsRecordSpec): Promise<void> {
  await runUpdate(spec, "delete", clearLines(spec));
}

/** How long one nsupdate may take before we give up on the server (seconds). */
const NSUPDATE_TIMEOUT = 15;

async function runUpdate(spec: DnsRecordSpec, action: string, updates: string[]): Promise<void> {
  const problems = recordProblems(spec);
  const what = `tenant ${isSafeForMessage(spec.tenantId) ? spec.tenantId : "(invalid ID)"}: could not ${action} the DNS record`;
  if (problems.length > 0) {
    throw new Error(`${what}: ${problems.join("; ")}; fix drivergigspro:dns in the stack config`);
  }
  const failure = await nsupdate(script(spec, updates), spec.keySecret);
  if (failure === undefined) return;
  throw new Error(
    `${what} ${spec.name} (${spec.type}) on DNS server ${spec.server} port ${spec.port}: ${failure}. ` +
      `Check that the server is running and reachable there, that it is authoritative for zone ${spec.zone} ` +
      `and allows updates signed with TSIG key "${spec.keyName}" (${spec.keyAlgorithm}), and that ` +
      `drivergigspro:dns.keySecret is that key's secret; the next pulumi up retries.`,
  );
}

function isSafeForMessage(value: unknown): boolean {
  return typeof value === "string" && /^[0-9A-Za-z]{1,16}$/.test(value);
}

/** Runs nsupdate with the script on stdin; resolves to undefined on success, else what went wrong. */
function nsupdate(input: string, secret: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn("nsupdate", ["-t", String(NSUPDATE_TIMEOUT), "-u", "3", "-r", "2"], { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    // nsupdate bounds itself with -t; this only guards against a wedged process.
    const guard = setTimeout(() => child.kill("SIGKILL"), (NSUPDATE_TIMEOUT + 15) * 1000);
    child.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(guard);
      resolve(
        error.code === "ENOENT"
          ? "nsupdate is not installed (Debian/Ubuntu: apt-get install bind9-dnsutils)"
          : `nsupdate could not be started (${error.code ?? error.message})`,
      );
    });
    child.on("close", (code, signal) => {
      clearTimeout(guard);
      if (code === 0) return resolve(undefined);
      const said = output
        .replaceAll(secret, "[secret]")
        .split("\n")
        .map((line) => line.replace(/^;\s*/, "").trim())
        .filter((line) => line !== "")
        .join("; ");
      resolve(`nsupdate ${signal ? `was killed (${signal})` : `exited ${code}`}${said ? `: ${said}` : ""}`);
    });
    child.stdin.on("error", () => {
      // nsupdate exited before reading everything; its exit code says why.
    });
    child.stdin.end(input);
  });
}

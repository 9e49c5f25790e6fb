/**
 * A real BIND (`named` from Debian's `bind9`) for tests: one authoritative
 * zone on a free loopback port that accepts RFC 2136 updates signed with one
 * TSIG key. It runs in the foreground from a temporary folder (as the `bind`
 * user when the tests run as root) and is queried with `dig`. The server's
 * files and start-up are local/bind.ts's, which also runs the checkout's own
 * DNS server for `npm run dns:local`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { userInfo, tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../local/embedded-postgres";
import { digAt, namedBinary, namedStackConfig, newKeySecret, prepareNamed, waitForNamed } from "../local/bind";
import type { Rfc2136Settings } from "../infra/dns/rfc2136-record";

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

export async function startBind(zone = "fleet.test", keyName = "dgp-test-key"): Promise<LocalBind> {
  const binary = namedBinary();
  const dir = mkdtempSync(join(tmpdir(), "dgp-bind-"));
  const port = await freePort();
  const keySecret = newKeySecret();
  const args = prepareNamed({ dir, port, zone, keyName, keySecret }, { background: false });
  const named: ChildProcess = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  named.stderr!.on("data", (chunk: Buffer) => (log += chunk.toString("utf8")));
  const exited = new Promise<void>((resolve) => named.once("exit", () => resolve()));
  await waitForNamed(port, zone, () => (named.exitCode !== null ? `named exited ${named.exitCode} (user ${userInfo().username}):\n${log}` : undefined)).catch(
    (error: unknown) => {
      named.kill("SIGTERM");
      throw error;
    },
  );

  return {
    host: "127.0.0.1",
    port,
    zone,
    keyName,
    keyAlgorithm: "hmac-sha256",
    keySecret,
    dig: (name, type = "A") => digAt(port, name, type),
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
  return namedStackConfig({ zone: bind.zone, port: bind.port, keyName: bind.keyName }, target);
}

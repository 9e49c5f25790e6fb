/**
 * The checkout's own BIND (`npm run dns:local`, local/bind.ts) on a real
 * `named`, in a throw-away project folder: it starts in the background as an
 * unprivileged user, answers for its zone, accepts an update signed with its
 * generated key (nsupdate, as the rfc2136 provider sends it) and no other,
 * keeps key and records across stop and start, and stops for good.
 * The walk-through itself (stacks pointed at it, `npm start`, `dig`) is run
 * by test/e2e/readme.test.ts.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digAt, localBindDir, localDnsPort, newKeySecret, runningLocalBind, startLocalBind, stopLocalBind } from "../local/bind";
import { freePort } from "../local/embedded-postgres";
import { PROJECT_DIR } from "../engine/paths";

let project: string;

beforeAll(async () => {
  project = mkdtempSync(join(tmpdir(), "dgp-dns-local-"));
  chmodSync(project, 0o755); // named runs as `bind` when the tests run as root
  process.env.DGP_LOCAL_DNS_PORT = String(await freePort());
});

afterAll(async () => {
  await stopLocalBind(project);
  delete process.env.DGP_LOCAL_DNS_PORT;
  rmSync(project, { recursive: true, force: true });
});

/** nsupdate with KEY: adds NAME A 127.0.0.1; its exit status. */
function addRecord(port: number, name: string, key: string): number {
  const script = `server 127.0.0.1 ${port}\nkey hmac-sha256:drivergigspro-local ${key}\nupdate add ${name} 60 A 127.0.0.1\nsend\n`;
  return spawnSync("nsupdate", [], { input: script, encoding: "utf8" }).status ?? 1;
}

describe("npm run dns:local's BIND (local/bind.ts)", () => {
  it("starts in the background with a generated key, takes updates signed with that key only, keeps them across a restart, and stops", async () => {
    const first = await startLocalBind(project);
    expect(first).toMatchObject({ started: true, zone: "fleet.localhost", port: localDnsPort(), dir: localBindDir(project) });
    expect(Buffer.from(first.keySecret, "base64")).toHaveLength(32);
    expect(statSync(join(localBindDir(project), "named.conf")).mode & 0o077).toBe(0); // holds the key
    const pid = runningLocalBind(project);
    expect(pid).toBeDefined();
    const owner = execFileSync("ps", ["-o", "user=", "-p", String(pid)], { encoding: "utf8" }).trim();
    expect(owner).toBe(process.getuid?.() === 0 ? "bind" : execFileSync("id", ["-un"], { encoding: "utf8" }).trim());

    const name = "john-driver-drivergigspro.fleet.localhost";
    expect(addRecord(first.port, name, newKeySecret())).not.toBe(0);
    expect(digAt(first.port, name, "A")).toEqual([]);
    expect(addRecord(first.port, name, first.keySecret)).toBe(0);
    expect(digAt(first.port, name, "A")).toEqual(["127.0.0.1"]);

    // A second start finds it running and changes nothing.
    expect(await startLocalBind(project)).toMatchObject({ started: false, keySecret: first.keySecret });
    expect(runningLocalBind(project)).toBe(pid);

    expect(await stopLocalBind(project)).toBe(true);
    expect(runningLocalBind(project)).toBeUndefined();
    expect(spawnSync("dig", ["@127.0.0.1", "-p", String(first.port), "+short", "+time=1", "+tries=1", "fleet.localhost", "SOA"]).status).not.toBe(0);
    expect(await stopLocalBind(project)).toBe(false);

    const again = await startLocalBind(project);
    expect(again).toMatchObject({ started: true, keySecret: first.keySecret });
    expect(digAt(again.port, name, "A")).toEqual(["127.0.0.1"]);
    expect(readFileSync(join(localBindDir(project), "named.conf"), "utf8")).toContain(first.keySecret);
  });

  it("a port another process holds: start fails naming the holder and leaves no named running", async () => {
    const other = mkdtempSync(join(tmpdir(), "dgp-dns-held-"));
    chmodSync(other, 0o755);
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const saved = process.env.DGP_LOCAL_DNS_PORT;
    process.env.DGP_LOCAL_DNS_PORT = String((holder.address() as AddressInfo).port);
    try {
      await expect(startLocalBind(other)).rejects.toThrow(
        new RegExp(`cannot start named: port ${process.env.DGP_LOCAL_DNS_PORT} is held by pid ${process.pid} .*DGP_LOCAL_DNS_PORT=`),
      );
      expect(runningLocalBind(other)).toBeUndefined();
    } finally {
      process.env.DGP_LOCAL_DNS_PORT = saved;
      holder.close();
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("refuses a DGP_LOCAL_DNS_PORT that is not a port, naming it", () => {
    expect(() => localDnsPort({ DGP_LOCAL_DNS_PORT: "53x" })).toThrow(/DGP_LOCAL_DNS_PORT=53x is not a port number/);
    expect(() => localDnsPort({ DGP_LOCAL_DNS_PORT: "53" })).toThrow(/from 1024 to 65535/);
    expect(localDnsPort({})).toBe(55353);
  });

  it("npm run dns:local with no or an unknown command exits 2 with its usage", () => {
    for (const args of [[], ["restart"]]) {
      const run = spawnSync("npx", ["tsx", "local/bind-cli.ts", ...args], { cwd: PROJECT_DIR, encoding: "utf8" });
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toMatch(/dns:local: .*usage: npm run dns:local -- start \| stop/);
    }
  });
});

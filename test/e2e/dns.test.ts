/**
 * `dns.provider: rfc2136` end to end: the real Pulumi engine (built by
 * toolchain/build.sh) on a local file backend, a real PostgreSQL, and a real
 * BIND that accepts RFC 2136 updates signed with a TSIG key. Every check of
 * the DNS is `dig` against that BIND, not the program's own code.
 *
 * The steps share one stack and run in order.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { setStackConfig } from "../../engine/pulumi";
import { rfc2136StackConfig, startBind, type LocalBind } from "../../harness/bind";
import { setUpEngineStack, type EngineStack } from "../../harness/engine-stack";

// Every step is one or more real `pulumi up`s; a slow machine may need minutes.
vi.setConfig({ testTimeout: 5 * 60 * 1000 });

const ZONE = "fleet.test";
/** Where the records point: an A record to this machine, as `npm start` with a local BIND would use. */
const TARGET = "127.0.0.1";

let bind: LocalBind;
let engine: EngineStack;

const writeTenants = (...entries: string[]) => engine.writeTenants(...entries);
const run = (...args: string[]) => engine.run(...args);
const up = () => engine.up();

function setKeySecret(secret: string): void {
  setStackConfig(engine.context, engine.stack, { "dns.keySecret": secret }, { secret: true });
}

/** What BIND answers for NAME's A record: [TARGET] while the record exists, [] once it is gone. */
const resolve = (name: string) => bind.dig(`${name}.${ZONE}`, "A");

beforeAll(
  async () => {
    bind = await startBind(ZONE);
    engine = await setUpEngineStack({
      name: "e2e-dns",
      state: "file",
      config: rfc2136StackConfig(bind, TARGET),
    });
  },
  60 * 60 * 1000,
);

afterAll(async () => {
  await engine?.cleanup();
  await bind?.stop();
});

describe("a DNS record per tenant on a real BIND (RFC 2136 + TSIG)", () => {
  it("a server that refuses the key fails pulumi up naming the tenant and record; the next up with the right key creates every record", () => {
    const wrongKey = Buffer.alloc(32, 7).toString("base64");
    setKeySecret(wrongKey);
    writeTenants("username: john_driver\n    tenantId: A1B2C3D4", "username: maria_k", "username: sam-courier");
    let failure = "";
    try {
      up();
    } catch (error) {
      failure = (error as Error).message;
    }
    expect(failure).toMatch(
      /tenant A1B2C3D4: could not create or update the DNS record john-driver-drivergigspro\.fleet\.test \(A\) on DNS server 127\.0\.0\.1 port \d+: .*BADSIG.*the next pulumi up retries/,
    );
    expect(failure).not.toContain(wrongKey);
    expect(failure).not.toContain(bind.keySecret);
    expect(resolve("john-driver-drivergigspro")).toEqual([]);

    setKeySecret(bind.keySecret);
    up();
    for (const name of ["john-driver-drivergigspro", "maria-k-drivergigspro", "sam-courier-drivergigspro"]) {
      expect(resolve(name)).toEqual([TARGET]);
    }
    const outputs = JSON.parse(run("stack", "output", "tenants", "--json")) as Record<string, { domain: string }>;
    expect(outputs.john_driver!.domain).toBe("john-driver-drivergigspro.fleet.test");
    // The state holds the key only encrypted, and nothing is left to change.
    expect(run("stack", "export")).not.toContain(bind.keySecret);
    run("preview", "--expect-no-changes");
  });

  it("suspending removes a tenant's record and removing a tenant deletes it; resuming brings the record back", () => {
    // Removal is a `status: removed` tombstone (leaving the entry out fails the update).
    writeTenants("username: john_driver\n    tenantId: A1B2C3D4", "username: maria_k\n    status: suspended", "username: sam-courier\n    status: removed");
    up();
    expect(resolve("john-driver-drivergigspro")).toEqual([TARGET]);
    expect(resolve("maria-k-drivergigspro")).toEqual([]);
    expect(resolve("sam-courier-drivergigspro")).toEqual([]);

    writeTenants("username: john_driver\n    tenantId: A1B2C3D4", "username: maria_k", "username: sam-courier\n    status: removed");
    up();
    expect(resolve("maria-k-drivergigspro")).toEqual([TARGET]);
    expect(resolve("sam-courier-drivergigspro")).toEqual([]);
  });

  it("a changed recordTemplate moves every record: the old names are gone, the new ones resolve", () => {
    setStackConfig(engine.context, engine.stack, { "dns.recordTemplate": "{app}-{user}" });
    up();
    expect(resolve("john-driver-drivergigspro")).toEqual([]);
    expect(resolve("maria-k-drivergigspro")).toEqual([]);
    expect(resolve("drivergigspro-john-driver")).toEqual([TARGET]);
    expect(resolve("drivergigspro-maria-k")).toEqual([TARGET]);
  });
});

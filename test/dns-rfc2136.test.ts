/**
 * The rfc2136 record's operations (infra/dns/rfc2136-operations.ts) against a
 * real BIND with a TSIG key, checked with `dig`. The engine end to end is in
 * test/e2e/dns.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deleteRecord, upsertRecord, type DnsRecordSpec } from "../infra/dns/rfc2136-operations";
import { freePort } from "../local/embedded-postgres";
import { startBind, type LocalBind } from "../harness/bind";

let bind: LocalBind;
beforeAll(async () => {
  bind = await startBind("fleet.test");
});
afterAll(async () => {
  await bind?.stop();
});

function spec(overrides: Partial<DnsRecordSpec> = {}): DnsRecordSpec {
  return {
    tenantId: "A1B2C3D4",
    name: "john-driver-drivergigspro.fleet.test",
    zone: bind.zone,
    server: bind.host,
    port: bind.port,
    keyName: bind.keyName,
    keyAlgorithm: bind.keyAlgorithm,
    keySecret: bind.keySecret,
    type: "A",
    target: "127.0.0.10",
    ttl: 300,
    ...overrides,
  };
}

describe("rfc2136 record operations on a real BIND", () => {
  it("creates an A record, turns it into a CNAME in place, and deletes it (twice without error)", async () => {
    await upsertRecord(spec());
    expect(bind.dig("john-driver-drivergigspro.fleet.test")).toEqual(["127.0.0.10"]);
    await upsertRecord(spec()); // idempotent: still exactly one record
    expect(bind.dig("john-driver-drivergigspro.fleet.test")).toEqual(["127.0.0.10"]);

    await upsertRecord(spec({ type: "CNAME", target: "ingress.example.net" }));
    expect(bind.dig("john-driver-drivergigspro.fleet.test", "CNAME")).toEqual(["ingress.example.net."]);
    expect(bind.dig("john-driver-drivergigspro.fleet.test", "A")).toEqual(["ingress.example.net."]);

    await deleteRecord(spec({ type: "CNAME", target: "ingress.example.net" }));
    expect(bind.dig("john-driver-drivergigspro.fleet.test", "CNAME")).toEqual([]);
    await deleteRecord(spec());
  });

  it("fails naming the tenant, the record and what to check when the server refuses the key; the secret is never in the message", async () => {
    const wrong = Buffer.alloc(32, 7).toString("base64");
    const attempt = upsertRecord(spec({ name: "maria-k-drivergigspro.fleet.test", keySecret: wrong }));
    await expect(attempt).rejects.toThrow(
      /^tenant A1B2C3D4: could not create or update the DNS record maria-k-drivergigspro\.fleet\.test \(A\) on DNS server 127\.0\.0\.1 port \d+: nsupdate exited 2: .*(BADSIG|NOTAUTH).*Check that .*TSIG key "dgp-test-key" \(hmac-sha256\).*dns\.keySecret.*the next pulumi up retries/s,
    );
    const message = await attempt.catch((error: Error) => error.message);
    expect(message).not.toContain(wrong);
    expect(message).not.toContain(bind.keySecret);
    expect(bind.dig("maria-k-drivergigspro.fleet.test")).toEqual([]);
  });

  it("fails naming the tenant and the record when no DNS server listens", async () => {
    const port = await freePort();
    await expect(upsertRecord(spec({ port }))).rejects.toThrow(
      new RegExp(
        `^tenant A1B2C3D4: could not create or update the DNS record john-driver-drivergigspro\\.fleet\\.test \\(A\\) on DNS server 127\\.0\\.0\\.1 port ${port}: nsupdate exited \\d+: .*(connection refused|timed out)`,
        "s",
      ),
    );
    await expect(deleteRecord(spec({ port }))).rejects.toThrow(/^tenant A1B2C3D4: could not delete the DNS record/);
  });

  it("refuses values that could smuggle commands into the update script, before running nsupdate", async () => {
    const smuggled = "x.fleet.test. A\nupdate add evil.fleet.test 300 A 10.6.6.6\nsend\nupdate delete y.fleet.test";
    await expect(upsertRecord(spec({ name: smuggled }))).rejects.toThrow(
      /^tenant A1B2C3D4: could not create or update the DNS record: the record name is not a host name inside the zone; fix drivergigspro:dns/,
    );
    await expect(upsertRecord(spec({ target: "10.0.0.1\nupdate add evil.fleet.test 300 A 10.6.6.6" }))).rejects.toThrow(
      /the target does not fit the record type/,
    );
    await expect(upsertRecord(spec({ keySecret: `${bind.keySecret}\nupdate add evil.fleet.test 300 A 10.6.6.6` }))).rejects.toThrow(
      /the key secret is not base64/,
    );
    await expect(upsertRecord(spec({ name: "john.other.test" }))).rejects.toThrow(/not a host name inside the zone/);
    expect(bind.dig("evil.fleet.test")).toEqual([]);
  });
});

/**
 * `dns.provider: rfc2136`: a tenant's DNS record as a Pulumi dynamic resource
 * whose create, update and delete are RFC 2136 dynamic updates signed with
 * TSIG (rfc2136-operations.ts). The engine, state, previews and secrets work
 * as with any provider:
 * - a server that is down or refuses the key fails the operation, naming the
 *   tenant ID and the record; a failed create leaves no state, so the next
 *   `pulumi up` retries it;
 * - a changed name (recordTemplate, zone) replaces the record: the new name is
 *   added, then the old one removed;
 * - a changed target, type, ttl, server or key updates it in place;
 * - the key secret is a Pulumi secret in the inputs and in the state.
 */
import * as pulumi from "@pulumi/pulumi";
import type { DnsSettings } from "../config";
import { forwardingProvider } from "../dynamic-module";
import type { DnsRecordSpec } from "./rfc2136-operations";

type RecordInputs = DnsRecordSpec;

/** A path from the project root: the state stores this, never a checkout's folder. */
const recordProvider = forwardingProvider("infra/dns/rfc2136-provider.ts", "recordProvider", ["diff", "update", "delete"]);

type Args<T> = { [K in keyof T]: pulumi.Input<T[K]> };
export type Rfc2136RecordArgs = Args<RecordInputs>;
export type Rfc2136Settings = Extract<DnsSettings, { provider: "rfc2136" }>;

export class Rfc2136Record extends pulumi.dynamic.Resource {
  declare public readonly name: pulumi.Output<string>;
  declare public readonly target: pulumi.Output<string>;

  constructor(name: string, args: Rfc2136RecordArgs, opts?: pulumi.CustomResourceOptions) {
    super(recordProvider, name, args, { ...opts, additionalSecretOutputs: ["keySecret"] }, "drivergigspro-dns", "Rfc2136Record");
  }
}

/**
 * The record of one active tenant as its provider writes it (rfc2136-operations.ts
 * upsertRecord): a signup's claim of a pooled tenant writes exactly this
 * (onboarding/), so the update that follows creates the same record over it.
 */
export function rfc2136RecordSpec(dns: Rfc2136Settings, domain: string, tenantId: string): DnsRecordSpec {
  return {
    tenantId,
    name: domain,
    zone: dns.zone,
    server: dns.server,
    port: dns.port,
    keyName: dns.keyName,
    keyAlgorithm: dns.keyAlgorithm,
    keySecret: dns.keySecret,
    type: dns.recordType,
    target: dns.target,
    ttl: dns.ttl,
  };
}

/** The record of one active tenant, from the stack's validated dns settings and the tenant's name. */
export function rfc2136RecordArgs(dns: Rfc2136Settings, domain: string, tenantId: pulumi.Input<string>): Rfc2136RecordArgs {
  return { ...rfc2136RecordSpec(dns, domain, ""), tenantId, keySecret: pulumi.secret(dns.keySecret) };
}

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
import { join } from "node:path";
import type { DnsSettings } from "../config";
import { loadTypeScriptModule } from "../dynamic-module";
import type * as Operations from "./rfc2136-operations";
import type { DnsRecordSpec } from "./rfc2136-operations";

/** Captured by value into each serialized provider. */
const OPERATIONS_MODULE = join(__dirname, "rfc2136-operations.ts");

function operations(): typeof Operations {
  return loadTypeScriptModule(OPERATIONS_MODULE);
}

type RecordInputs = DnsRecordSpec;

/** Inputs that live in the record's data or in how it is reached: updated in place. */
const UPDATED_IN_PLACE: (keyof RecordInputs)[] = ["type", "target", "ttl", "server", "port", "keyName", "keyAlgorithm", "keySecret"];

const recordProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: RecordInputs) {
    await operations().upsertRecord(inputs);
    return { id: inputs.name, outs: inputs };
  },
  // tenantId is only for messages (and never changes for a deployed tenant).
  async diff(_id: string, olds: RecordInputs, news: RecordInputs) {
    const replaces = (["name", "zone"] as const).filter((key) => olds[key] !== news[key]);
    const updates = UPDATED_IN_PLACE.filter((key) => olds[key] !== news[key]);
    return { changes: replaces.length + updates.length > 0, replaces };
  },
  // Writes to the new server with the new key: a retired server or key is never needed again.
  async update(_id: string, _olds: RecordInputs, news: RecordInputs) {
    await operations().upsertRecord(news);
    return { outs: news };
  },
  async delete(_id: string, props: RecordInputs) {
    await operations().deleteRecord(props);
  },
};

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

/** The record of one active tenant, from the stack's validated dns settings and the tenant's name. */
export function rfc2136RecordArgs(dns: Rfc2136Settings, domain: string, tenantId: pulumi.Input<string>): Rfc2136RecordArgs {
  return {
    tenantId,
    name: domain,
    zone: dns.zone,
    server: dns.server,
    port: dns.port,
    keyName: dns.keyName,
    keyAlgorithm: dns.keyAlgorithm,
    keySecret: pulumi.secret(dns.keySecret),
    type: dns.recordType,
    target: dns.target,
    ttl: dns.ttl,
  };
}

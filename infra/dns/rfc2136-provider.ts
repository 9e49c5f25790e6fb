/**
 * The rfc2136 DNS record's resource provider: what the engine calls for each
 * Rfc2136Record. Loaded at run time inside the dynamic-provider process from
 * the checkout the engine runs in (infra/dynamic-module.ts).
 */
import type * as pulumi from "@pulumi/pulumi";
import * as operations from "./rfc2136-operations";
import type { DnsRecordSpec } from "./rfc2136-operations";

type RecordInputs = DnsRecordSpec;

/** Inputs that live in the record's data or in how it is reached: updated in place. */
const UPDATED_IN_PLACE: (keyof RecordInputs)[] = ["type", "target", "ttl", "server", "port", "keyName", "keyAlgorithm", "keySecret"];

export const recordProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: RecordInputs) {
    await operations.upsertRecord(inputs);
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
    await operations.upsertRecord(news);
    return { outs: news };
  },
  async delete(_id: string, props: RecordInputs) {
    await operations.deleteRecord(props);
  },
};

/**
 * The builtin database provider's resource providers: what the engine calls
 * for each Role, Database and PUBLIC revoke. Loaded at run time, inside the
 * dynamic-provider process, from the checkout the engine runs in (see
 * infra/dynamic-module.ts); the SQL is in operations.ts.
 */
import type * as pulumi from "@pulumi/pulumi";
import * as operations from "./operations";

export interface RoleInputs {
  adminUrl: string;
  name: string;
  password: string;
  login: boolean;
}

export interface DatabaseInputs {
  adminUrl: string;
  name: string;
  owner: string;
}

export interface RevokeInputs {
  adminUrl: string;
  database: string;
}

/** A changed admin URL (rotated admin password) is stored by an update so delete can still connect. */
function diffOf<T extends object>(olds: T, news: T, replaceOn: (keyof T)[], updateOn: (keyof T)[]): pulumi.dynamic.DiffResult {
  const replaces = replaceOn.filter((key) => olds[key] !== news[key]).map(String);
  const updates = updateOn.filter((key) => olds[key] !== news[key]);
  return { changes: replaces.length + updates.length > 0, replaces, deleteBeforeReplace: true };
}

export const roleProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: RoleInputs) {
    await operations.createRole(inputs.adminUrl, inputs);
    return { id: inputs.name, outs: inputs };
  },
  async diff(_id: string, olds: RoleInputs, news: RoleInputs) {
    return diffOf(olds, news, ["name"], ["login", "password", "adminUrl"]);
  },
  async update(_id: string, _olds: RoleInputs, news: RoleInputs) {
    await operations.updateRole(news.adminUrl, news);
    return { outs: news };
  },
  async delete(_id: string, props: RoleInputs) {
    await operations.dropRole(props.adminUrl, props.name);
  },
};

export const databaseProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: DatabaseInputs) {
    await operations.createDatabase(inputs.adminUrl, inputs);
    return { id: inputs.name, outs: inputs };
  },
  async diff(_id: string, olds: DatabaseInputs, news: DatabaseInputs) {
    return diffOf(olds, news, ["name"], ["owner", "adminUrl"]);
  },
  async update(_id: string, _olds: DatabaseInputs, news: DatabaseInputs) {
    await operations.alterDatabaseOwner(news.adminUrl, news);
    return { outs: news };
  },
  async delete(_id: string, props: DatabaseInputs) {
    await operations.dropDatabase(props.adminUrl, props.name);
  },
};

export const revokeProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: RevokeInputs) {
    await operations.revokePublic(inputs.adminUrl, inputs.database);
    return { id: inputs.database, outs: inputs };
  },
  async diff(_id: string, olds: RevokeInputs, news: RevokeInputs) {
    return diffOf(olds, news, ["database"], ["adminUrl"]);
  },
  async update(_id: string, _olds: RevokeInputs, news: RevokeInputs) {
    await operations.revokePublic(news.adminUrl, news.database);
    return { outs: news };
  },
  // Never grant PUBLIC back: the database either goes with its tenant or stays private.
  async delete() {},
};


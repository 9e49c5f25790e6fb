/**
 * The builtin database provider: Role, Database and the PUBLIC revoke as
 * Pulumi dynamic resources over `pg`, for machines where the
 * `pulumi-resource-postgresql` plugin cannot be installed (see
 * toolchain/README.md). The engine, state, previews, retainOnDelete and
 * secrets work exactly as with any provider; only the CRUD is ours.
 */
import * as pulumi from "@pulumi/pulumi";
import { join } from "node:path";
import { loadTypeScriptModule } from "../dynamic-module";
import type * as Operations from "./operations";

/** Captured by value into each serialized provider. */
const OPERATIONS_MODULE = join(__dirname, "operations.ts");

function operations(): typeof Operations {
  return loadTypeScriptModule(OPERATIONS_MODULE);
}

interface RoleInputs {
  adminUrl: string;
  name: string;
  password: string;
  login: boolean;
}

interface DatabaseInputs {
  adminUrl: string;
  name: string;
  owner: string;
}

interface RevokeInputs {
  adminUrl: string;
  database: string;
}

/** A changed admin URL (rotated admin password) is stored by an update so delete can still connect. */
function diffOf<T extends object>(olds: T, news: T, replaceOn: (keyof T)[], updateOn: (keyof T)[]): pulumi.dynamic.DiffResult {
  const replaces = replaceOn.filter((key) => olds[key] !== news[key]).map(String);
  const updates = updateOn.filter((key) => olds[key] !== news[key]);
  return { changes: replaces.length + updates.length > 0, replaces, deleteBeforeReplace: true };
}

const roleProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: RoleInputs) {
    await operations().createRole(inputs.adminUrl, inputs);
    return { id: inputs.name, outs: inputs };
  },
  async diff(_id: string, olds: RoleInputs, news: RoleInputs) {
    return diffOf(olds, news, ["name"], ["login", "password", "adminUrl"]);
  },
  async update(_id: string, _olds: RoleInputs, news: RoleInputs) {
    await operations().updateRole(news.adminUrl, news);
    return { outs: news };
  },
  async delete(_id: string, props: RoleInputs) {
    await operations().dropRole(props.adminUrl, props.name);
  },
};

const databaseProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: DatabaseInputs) {
    await operations().createDatabase(inputs.adminUrl, inputs);
    return { id: inputs.name, outs: inputs };
  },
  async diff(_id: string, olds: DatabaseInputs, news: DatabaseInputs) {
    return diffOf(olds, news, ["name"], ["owner", "adminUrl"]);
  },
  async update(_id: string, _olds: DatabaseInputs, news: DatabaseInputs) {
    await operations().alterDatabaseOwner(news.adminUrl, news);
    return { outs: news };
  },
  async delete(_id: string, props: DatabaseInputs) {
    await operations().dropDatabase(props.adminUrl, props.name);
  },
};

const revokeProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: RevokeInputs) {
    await operations().revokePublic(inputs.adminUrl, inputs.database);
    return { id: inputs.database, outs: inputs };
  },
  async diff(_id: string, olds: RevokeInputs, news: RevokeInputs) {
    return diffOf(olds, news, ["database"], ["adminUrl"]);
  },
  async update(_id: string, _olds: RevokeInputs, news: RevokeInputs) {
    await operations().revokePublic(news.adminUrl, news.database);
    return { outs: news };
  },
  // Never grant PUBLIC back: the database either goes with its tenant or stays private.
  async delete() {},
};

type Args<T> = { [K in keyof T]: pulumi.Input<T[K]> };
const SECRET_OUTPUTS = ["adminUrl", "password"];

export class BuiltinRole extends pulumi.dynamic.Resource {
  declare public readonly name: pulumi.Output<string>;
  constructor(name: string, args: Args<RoleInputs>, opts?: pulumi.CustomResourceOptions) {
    super(roleProvider, name, args, { ...opts, additionalSecretOutputs: SECRET_OUTPUTS }, "drivergigspro-postgres", "Role");
  }
}

export class BuiltinDatabase extends pulumi.dynamic.Resource {
  declare public readonly name: pulumi.Output<string>;
  constructor(name: string, args: Args<DatabaseInputs>, opts?: pulumi.CustomResourceOptions) {
    super(databaseProvider, name, args, { ...opts, additionalSecretOutputs: SECRET_OUTPUTS }, "drivergigspro-postgres", "Database");
  }
}

export class BuiltinPublicRevoke extends pulumi.dynamic.Resource {
  constructor(name: string, args: Args<RevokeInputs>, opts?: pulumi.CustomResourceOptions) {
    super(revokeProvider, name, args, { ...opts, additionalSecretOutputs: SECRET_OUTPUTS }, "drivergigspro-postgres", "PublicRevoke");
  }
}

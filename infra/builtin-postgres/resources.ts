/**
 * The builtin database provider: Role, Database and the PUBLIC revoke as
 * Pulumi dynamic resources over `pg`, for machines where the
 * `pulumi-resource-postgresql` plugin cannot be installed (see
 * toolchain/README.md). The engine, state, previews, retainOnDelete and
 * secrets work exactly as with any provider; only the CRUD is ours.
 */
import * as pulumi from "@pulumi/pulumi";
import { forwardingProvider } from "../dynamic-module";
import type { DatabaseInputs, RevokeInputs, RoleInputs } from "./providers";

/** Paths from the project root: the state stores these, never a checkout's folder. */
const PROVIDERS = "infra/builtin-postgres/providers.ts";
const roleProvider = forwardingProvider(PROVIDERS, "roleProvider", ["diff", "update", "delete"]);
const databaseProvider = forwardingProvider(PROVIDERS, "databaseProvider", ["diff", "update", "delete"]);
const revokeProvider = forwardingProvider(PROVIDERS, "revokeProvider", ["diff", "update", "delete"]);

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

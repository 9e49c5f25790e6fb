/**
 * The builtin database provider: Role, Database and the PUBLIC revoke as
 * Pulumi dynamic resources over `pg`, for machines where the
 * `pulumi-resource-postgresql` plugin cannot be installed (see
 * toolchain/README.md). The engine, state, previews, retainOnDelete and
 * secrets work exactly as with any provider; only the CRUD is ours.
 */
import * as pulumi from "@pulumi/pulumi";
import { forwardingProvider } from "../dynamic-module";
import type { DatabaseInputs, HardeningInputs, MarkerInputs, RevokeInputs, RoleInputs, RoleParameterInputs } from "./providers";

/** Paths from the project root: the state stores these, never a checkout's folder. */
const PROVIDERS = "infra/builtin-postgres/providers.ts";
// `read` makes `pulumi refresh` see what a tenant (or anyone) changed by hand.
const METHODS = ["diff", "update", "delete", "read"] as const;
const roleProvider = forwardingProvider(PROVIDERS, "roleProvider", METHODS);
const databaseProvider = forwardingProvider(PROVIDERS, "databaseProvider", METHODS);
const revokeProvider = forwardingProvider(PROVIDERS, "revokeProvider", METHODS);
const hardeningProvider = forwardingProvider(PROVIDERS, "hardeningProvider", METHODS);
const roleParameterProvider = forwardingProvider(PROVIDERS, "roleParameterProvider", METHODS);
const markerProvider = forwardingProvider(PROVIDERS, "markerProvider", METHODS);

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
  /** Changes when the database is created again (after a drop): the seed runs again. */
  declare public readonly oid: pulumi.Output<string>;
  constructor(name: string, args: Args<DatabaseInputs>, opts?: pulumi.CustomResourceOptions) {
    super(databaseProvider, name, { oid: undefined, ...args }, { ...opts, additionalSecretOutputs: SECRET_OUTPUTS }, "drivergigspro-postgres", "Database");
  }
}

export class BuiltinPublicRevoke extends pulumi.dynamic.Resource {
  constructor(name: string, args: Args<RevokeInputs>, opts?: pulumi.CustomResourceOptions) {
    super(revokeProvider, name, args, { ...opts, additionalSecretOutputs: SECRET_OUTPUTS }, "drivergigspro-postgres", "PublicRevoke");
  }
}

/** CONNECT and TEMPORARY taken from PUBLIC on every non-tenant database of one server. */
export class BuiltinServerHardening extends pulumi.dynamic.Resource {
  constructor(name: string, args: Args<HardeningInputs>, opts?: pulumi.CustomResourceOptions) {
    super(hardeningProvider, name, args, { ...opts, additionalSecretOutputs: ["adminUrl"] }, "drivergigspro-postgres", "ServerHardening");
  }
}

/** A role default the @pulumi/postgresql Role cannot set (`temp_file_limit`), beside it. */
export class BuiltinRoleParameter extends pulumi.dynamic.Resource {
  constructor(name: string, args: Args<RoleParameterInputs>, opts?: pulumi.CustomResourceOptions) {
    super(roleParameterProvider, name, args, { ...opts, additionalSecretOutputs: ["adminUrl"] }, "drivergigspro-postgres", "RoleParameter");
  }
}

/** With @pulumi/postgresql (which sets no comments): the tenant marker on its role and database. */
export class BuiltinTenantMarker extends pulumi.dynamic.Resource {
  constructor(name: string, args: Args<MarkerInputs>, opts?: pulumi.CustomResourceOptions) {
    super(markerProvider, name, args, { ...opts, additionalSecretOutputs: ["adminUrl"] }, "drivergigspro-postgres", "TenantMarker");
  }
}

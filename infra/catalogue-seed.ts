/**
 * The post-deploy seed hook: a dynamic resource per active tenant whose
 * create/update runs the seed (migrations, then the courier catalogue) of
 * one published seed release (seed/releases.ts) as the tenant's own role,
 * inside `pulumi up`.
 *
 * Why a dynamic resource rather than a log line or a script after `up`:
 * - a seed failure fails the update, with the tenant ID in the message;
 * - a failed create leaves no state, so the next `pulumi up` retries it;
 * - it re-runs exactly when the tenant's release changes (infra/rollout.ts
 *   decides which tenants move), and `pulumi preview` shows that as an
 *   update of `<user>-catalogue`; a tenant whose release stays is not touched.
 */
import * as pulumi from "@pulumi/pulumi";
import { forwardingProvider } from "./dynamic-module";

export interface CatalogueSeedArgs {
  readonly tenantId: pulumi.Input<string>;
  readonly database: pulumi.Input<string>;
  /** The tenant role's own URL (a secret): the seed never uses admin rights. */
  readonly databaseUrl: pulumi.Input<string>;
  /** The seed release to load, e.g. "2". */
  readonly seedVersion: pulumi.Input<string>;
  /** The database's identity (its oid, builtin provider): a database made again after a drop is seeded again. */
  readonly databaseIncarnation?: pulumi.Input<string>;
  /** Where the releases are, from the project folder ("seed/releases"); never part of the diff. */
  readonly releases: pulumi.Input<string>;
}

/** A path from the project root: the state stores this, never a checkout's folder. */
const seedProvider = forwardingProvider("infra/catalogue-seed-provider.ts", "seedProvider", ["diff", "update", "delete", "read"]);

export class CatalogueSeed extends pulumi.dynamic.Resource {
  declare public readonly catalogueVersion: pulumi.Output<string>;
  declare public readonly seedVersion: pulumi.Output<string>;

  constructor(name: string, args: CatalogueSeedArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      seedProvider,
      name,
      { ...args, catalogueVersion: undefined, migrationsApplied: undefined, inserted: undefined, updated: undefined, deactivated: undefined },
      { ...opts, additionalSecretOutputs: ["databaseUrl"] },
      "drivergigspro",
      "CatalogueSeed",
    );
  }
}

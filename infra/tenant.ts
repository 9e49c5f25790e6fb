/**
 * One DriverGigsPro tenant: everything in the brief's "What each tenant gets"
 * table, as children of a single component named by its tenant ID
 * (infra/naming.ts tenantResourceName), so a username change or a pool claim
 * renames nothing. Stacks deployed before IDs were allocated in the file named
 * the component (and every child, `<name>-role` ...) by username: fleet.ts
 * gives that name as an alias, and Pulumi carries the alias to every child
 * whose name starts with the component's.
 */
import * as cloudflare from "@pulumi/cloudflare";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { TenantStatus } from "../tenants/schema";
import { CatalogueSeed } from "./catalogue-seed";
import { adoptedName, type Adoption } from "./adoption";
import type { DnsSettings, PlanLimits, ServerAddress } from "./config";
import type { DatabaseBackend } from "./database-backend";
import { Rfc2136Record, rfc2136RecordArgs } from "./dns/rfc2136-record";
import { databaseName, databaseUrl, domainName, tenantIdFromHex } from "./naming";

export interface TenantArgs {
  readonly username: string;
  readonly status: TenantStatus;
  /** The tenant ID allocated before the engine (the entry's `tenantId:`, or what the last update deployed). */
  readonly pinnedTenantId?: string;
  /**
   * Keep (or, for an entry with no ID yet, draw the ID from) the `RandomId` that
   * programs before tenant-ID allocation declared: only tenants such a stack
   * deployed have one, so removing it would show as a delete.
   */
  readonly randomId: boolean;
  /** The stack the tenant belongs to: its marker on its role and database names it. */
  readonly stack: string;
  /** Its own stack deployed it under this ID: an existing role or database without a marker (older programs) is adopted. */
  readonly adoptLegacy: boolean;
  readonly appName: string;
  /** Where the tenant's server is, for its connection URL (the admin's credentials stay with the backend). */
  readonly server: ServerAddress;
  /** What creates the tenant's role and database on that server. */
  readonly backend: DatabaseBackend;
  readonly dns: DnsSettings;
  /** Keep the database and role when the tenant leaves the program (the default). */
  readonly retainOnDelete: boolean;
  /** Import the existing role/database (postgresql provider, infra/adoption.ts); the seed waits for the next update. */
  readonly adopt?: Adoption;
  /** The seed release the seed hook loads (infra/rollout.ts); a change re-seeds the tenant. */
  readonly seedVersion: string;
  /** The tenant's plan's limits, set on its role and database. */
  readonly limits: PlanLimits;
  /** Where the seed releases are, from the project folder (stack config seedReleases). */
  readonly seedReleases: string;
}

/** The component's type token, as it appears in URNs and in `pulumi preview`. */
export const TENANT_TYPE = "drivergigspro:fleet:Tenant";

export class Tenant extends pulumi.ComponentResource {
  /** The support handle: 8 upper-case hex digits, stable for the tenant's life. */
  public readonly tenantId: pulumi.Output<string>;
  public readonly databaseName: pulumi.Output<string>;
  public readonly roleName: pulumi.Output<string>;
  public readonly domain: string;
  /** `postgresql://role:password@host:port/db`, a secret. */
  public readonly databaseUrl: pulumi.Output<string>;
  /** At least 32 random bytes' worth (64 alphanumerics), a secret. */
  public readonly sessionSecret: pulumi.Output<string>;
  public readonly role: pulumi.CustomResource;
  public readonly database: pulumi.CustomResource;
  /** The seed hook; absent while suspended. */
  public readonly seed?: CatalogueSeed;
  /** The tenant's DNS record; absent with DNS provider `none` and while suspended. */
  public readonly dnsRecord?: cloudflare.DnsRecord | Rfc2136Record;

  constructor(name: string, args: TenantArgs, opts?: pulumi.ComponentResourceOptions) {
    super(TENANT_TYPE, name, {}, opts);
    const parent = { parent: this };
    // Databases and roles hold the tenant's data: by default they outlive
    // their entry in the tenants file. Everything else is cheap to recreate.
    const keepData = { parent: this, retainOnDelete: args.retainOnDelete };

    const drawn = args.randomId
      ? new random.RandomId(`${name}-id`, { byteLength: 4, keepers: { username: args.username } }, parent).hex.apply(tenantIdFromHex)
      : undefined;
    const tenantId = args.pinnedTenantId !== undefined ? pulumi.output(args.pinnedTenantId) : drawn;
    if (tenantId === undefined) throw new Error(`tenant "${args.username}" has neither an allocated tenant ID nor a RandomId`);
    this.tenantId = tenantId;
    const dbName = this.tenantId.apply((id) => databaseName(args.appName, id));

    const password = new random.RandomPassword(`${name}-db-password`, { length: 40, special: false }, parent);
    const sessionSecret = new random.RandomPassword(`${name}-session-secret`, { length: 64, special: false }, parent);

    // Secret already by the provider's schema; said again so no code path can drop it.
    const rolePassword = pulumi.secret(password.result);
    const adopt = args.adopt;
    // An adoption handed over from a killed update names the object the RandomId in the state made; it must be this one.
    const checkedName = adopt ? dbName.apply((actual) => adoptedName(name, adopt.name, actual)) : dbName;
    const created = args.backend.declare(
      name,
      {
        name: checkedName,
        password: rolePassword,
        // A pooled tenant's role logs in like an active one's: its seed connects as that role (so the
        // tenant owns every table), and its password is known to the stack alone until a claim.
        login: args.status === "active" || args.status === "pooled",
        limits: args.limits,
        owner: { tenantId: this.tenantId, stack: args.stack, adoptLegacy: args.adoptLegacy },
        ...(adopt ? { adopt } : {}),
      },
      keepData,
    );
    this.role = created.role;
    this.database = created.database;

    const url = pulumi.secret(
      pulumi
        .all([created.roleName, rolePassword, created.databaseName])
        .apply(([user, pw, database]) =>
          databaseUrl({ user, password: pw, host: args.server.host, port: args.server.port, database, sslmode: args.server.sslmode }),
        ),
    );

    // A pooled tenant is seeded like an active one (at the stack's stable release: infra/rollout.ts).
    // A suspended role cannot log in, so it cannot be seeded; resuming seeds
    // again, which is a no-op when the catalogue is already there. An adopted role
    // keeps its old password until the next update sets it: the seed waits for that.
    if ((args.status === "active" || args.status === "pooled") && adopt === undefined) {
      this.seed = new CatalogueSeed(
        `${name}-catalogue`,
        {
          tenantId: this.tenantId,
          database: created.databaseName,
          databaseUrl: url,
          seedVersion: args.seedVersion,
          releases: args.seedReleases,
          ...(created.databaseIncarnation ? { databaseIncarnation: created.databaseIncarnation } : {}),
        },
        { parent: this, dependsOn: [created.role, created.database, ...created.ready] },
      );
    }

    // A pooled tenant has no username yet, so no domain and no DNS record (a claim makes them).
    this.domain = args.status === "pooled" ? "" : domainName(args.dns.recordTemplate, args.appName, args.dns.zone, args.username);
    if (args.dns.provider === "cloudflare" && args.status === "active") {
      this.dnsRecord = new cloudflare.DnsRecord(
        `${name}-dns`,
        {
          zoneId: args.dns.zoneId,
          name: this.domain,
          type: "CNAME",
          content: args.dns.target,
          proxied: args.dns.proxied,
          ttl: 1, // 1 means "automatic" to Cloudflare.
          comment: pulumi.interpolate`DriverGigsPro tenant ${this.tenantId}`,
        },
        parent,
      );
    }
    // RFC 2136 + TSIG on the stack's own DNS server (infra/dns/): like Cloudflare's, gone while suspended.
    if (args.dns.provider === "rfc2136" && args.status === "active") {
      this.dnsRecord = new Rfc2136Record(`${name}-dns`, rfc2136RecordArgs(args.dns, this.domain, this.tenantId), parent);
    }

    this.databaseName = created.databaseName;
    this.roleName = created.roleName;
    this.sessionSecret = pulumi.secret(sessionSecret.result);
    this.databaseUrl = url;

    this.registerOutputs({
      tenantId: this.tenantId,
      databaseName: this.databaseName,
      roleName: this.roleName,
      domain: this.domain,
      databaseUrl: this.databaseUrl,
      sessionSecret: this.sessionSecret,
    });
  }
}

/**
 * Stack configuration: read with `pulumi.Config`, validated with zod, and
 * turned into one typed `FleetSettings` object before anything is declared.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { releaseVersionSchema } from "../seed/releases";
import { DEFAULT_TENANTS_FILE } from "../tenants/paths";
import { planNameSchema, RINGS, ringSchema, serverNameSchema, USERNAME_MAX } from "../tenants/schema";
import { isDnsServer, isHostName, isIPv4Address, isTsigKeyName, isTsigSecret, RECORD_TYPES, TSIG_ALGORITHMS } from "./dns/rfc2136-operations";
import { databaseUrl, DEFAULT_APP_NAME, DEFAULT_RECORD_TEMPLATE, dnsLabel } from "./naming";

/** `pulumi config set --path` may store numbers and booleans as strings; accept both. */
const integerSchema = (min: number, max: number) =>
  z.preprocess((value) => (typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value), z.number().int().min(min).max(max));
const portSchema = integerSchema(1, 65535);
const flagSchema = z.preprocess((value) => (value === "true" ? true : value === "false" ? false : value), z.boolean());

export const serverSchema = z.strictObject({
  name: serverNameSchema,
  host: z.string().min(1),
  port: portSchema.default(5432),
  adminUser: z.string().min(1).default("postgres"),
  /** Set with `pulumi config set --secret --path 'servers[0].adminPassword' ...`. */
  adminPassword: z.string().min(1, { error: "adminPassword is required; set it as a secret" }),
  /** Database the admin connects to for CREATE DATABASE / CREATE ROLE. */
  adminDatabase: z.string().min(1).default("postgres"),
  sslmode: z.enum(["disable", "require", "verify-ca", "verify-full"]).default("require"),
  /** Managed services (RDS, Cloud SQL) give a non-superuser admin; the provider adapts. */
  adminIsSuperuser: flagSchema.default(true),
});

/** The zone of `dns.provider: none`: names read `john-driver-drivergigspro.localhost`, which browsers resolve to this machine. */
export const LOCAL_DNS_ZONE = "localhost";

const hostNameSchema = (what: string) =>
  z.string().refine(isHostName, { error: `${what} must be a lower-case host name such as fleet.example.com (no trailing dot)` });

const KEY_SECRET_HELP =
  "keySecret must be the TSIG key's base64 secret (as tsig-keygen prints it); set it with: pulumi config set --path --secret dns.keySecret";

/**
 * RFC 2136 dynamic updates signed with TSIG (BIND, Knot, PowerDNS, ...); see
 * infra/dns/rfc2136-record.ts. Set the secret with
 * `pulumi config set --path --secret dns.keySecret` (it reads stdin).
 */
const rfc2136Schema = z
  .strictObject({
    provider: z.literal("rfc2136"),
    zone: hostNameSchema("zone"),
    recordTemplate: z.string().default(DEFAULT_RECORD_TEMPLATE),
    /** The primary server that accepts the updates: an IP address or host name. */
    server: z.string().refine(isDnsServer, { error: "server must be an IP address or a lower-case host name" }),
    port: portSchema.default(53),
    keyName: z.string().refine(isTsigKeyName, { error: "keyName must be the TSIG key's name as the DNS server knows it, e.g. drivergigspro-fleet" }),
    keyAlgorithm: z.enum(TSIG_ALGORITHMS).default("hmac-sha256"),
    /** Base64, as `tsig-keygen` prints it. A secret: never printed, never on a command line. */
    keySecret: z.string({ error: KEY_SECRET_HELP }).refine(isTsigSecret, { error: KEY_SECRET_HELP }),
    recordType: z.enum(RECORD_TYPES).default("CNAME"),
    /** An IPv4 address for A records, a host name for CNAME records. */
    target: z.string({ error: "target is required: an IPv4 address (recordType A) or a host name (recordType CNAME)" }),
    ttl: integerSchema(1, 604800).default(300),
  })
  .superRefine((dns, ctx) => {
    const ok = typeof dns.target === "string" && (dns.recordType === "A" ? isIPv4Address(dns.target) : isHostName(dns.target));
    if (!ok) {
      const wanted = dns.recordType === "A" ? "an IPv4 address such as 203.0.113.10" : "a lower-case host name such as ingress.example.com";
      ctx.addIssue({ code: "custom", path: ["target"], message: `target must be ${wanted} for recordType ${dns.recordType}` });
    }
  });

export const dnsSchema = z.discriminatedUnion("provider", [
  z.strictObject({
    provider: z.literal("none"),
    zone: z.string().min(1).default(LOCAL_DNS_ZONE),
    recordTemplate: z.string().default(DEFAULT_RECORD_TEMPLATE),
  }),
  z.strictObject({
    provider: z.literal("cloudflare"),
    zone: z.string().min(1),
    recordTemplate: z.string().default(DEFAULT_RECORD_TEMPLATE),
    /** The Cloudflare zone ID of `zone`. */
    zoneId: z.string().min(1),
    /** Where tenant names point: the app's ingress host name (a CNAME target). */
    target: z.string().min(1),
    proxied: flagSchema.default(true),
  }),
  rfc2136Schema,
]);

/** A plan without tempFileLimitMb: 1 GiB of temporary files per session. */
export const DEFAULT_TEMP_FILE_LIMIT_MB = 1024;
/** A plan without storageHardLimitMb: its quota plus 20 % (the margin between the warning and the stop). */
export function defaultHardLimitMb(storageQuotaMb: number): number {
  return Math.ceil(storageQuotaMb * 1.2);
}

/**
 * What a plan sets for each of its tenants (infra/tenant.ts applies it; README "Security" says where each holds):
 * - connectionLimit: on the tenant's role and on its database, where the tenant cannot lift it;
 * - statementTimeoutMs, idleInTransactionTimeoutMs: the role's defaults (a session may override them);
 * - tempFileLimitMb: the role's default `temp_file_limit` (a superuser-only setting: the tenant cannot lift
 *   it), per session: one sort or hash past it fails with the tenant's own error instead of filling the disk;
 * - storageQuotaMb: a size to warn at (`npm run usage`, the metrics); nothing is refused;
 * - storageHardLimitMb: past it the usage sampler stops the tenant's writes (infra/storage-lock.ts) until
 *   it is under again or its plan grows. At least storageQuotaMb.
 * The last three are optional in a stack's config, for plans written before they existed.
 */
export const planSchema = z
  .strictObject({
    connectionLimit: integerSchema(1, 10_000),
    statementTimeoutMs: integerSchema(0, 86_400_000),
    idleInTransactionTimeoutMs: integerSchema(0, 86_400_000),
    tempFileLimitMb: integerSchema(1, 2_000_000).default(DEFAULT_TEMP_FILE_LIMIT_MB),
    storageQuotaMb: integerSchema(1, 100_000_000),
    storageHardLimitMb: integerSchema(1, 100_000_000).optional(),
  })
  .transform((plan) => ({ ...plan, storageHardLimitMb: plan.storageHardLimitMb ?? defaultHardLimitMb(plan.storageQuotaMb) }))
  .refine((plan) => plan.storageHardLimitMb >= plan.storageQuotaMb, {
    error: "storageHardLimitMb must be at least storageQuotaMb (the quota warns, the hard limit stops writes)",
    path: ["storageHardLimitMb"],
  });
export type PlanLimits = z.output<typeof planSchema>;

export const DEFAULT_PLANS: Record<string, PlanLimits> = {
  // 2 connections: on the 2-core reference server, a tenant running its whole connection limit of large
  // sorts keeps a neighbour's p99 within 2x of its p99 alone; 10 did not (README "Security", npm run bench -- neighbours).
  starter: {
    connectionLimit: 2,
    statementTimeoutMs: 30_000,
    idleInTransactionTimeoutMs: 60_000,
    tempFileLimitMb: 256,
    storageQuotaMb: 500,
    storageHardLimitMb: 600,
  },
  pro: {
    connectionLimit: 40,
    statementTimeoutMs: 120_000,
    idleInTransactionTimeoutMs: 300_000,
    tempFileLimitMb: 1024,
    storageQuotaMb: 5_000,
    storageHardLimitMb: 6_000,
  },
};
export const DEFAULT_PLAN = "starter";

/**
 * Staged rollout of seed releases (infra/rollout.ts). `target`: the release
 * to roll out (default: the newest published); `waves`: rings in rollout
 * order (a comma-separated string works too); `promoted`: the last wave that
 * gets the target (default: the last wave, i.e. everyone).
 */
export const rolloutSchema = z
  .strictObject({
    target: releaseVersionSchema.optional(),
    waves: z
      .preprocess((value) => (typeof value === "string" ? value.split(",").map((ring) => ring.trim()) : value), z.array(ringSchema).min(1))
      .default([...RINGS]),
    promoted: ringSchema.optional(),
  })
  .superRefine((rollout, ctx) => {
    rollout.waves.forEach((ring, index) => {
      if (rollout.waves.indexOf(ring) !== index) ctx.addIssue({ code: "custom", path: ["waves", index], message: `wave "${ring}" is listed twice` });
    });
    if (rollout.promoted !== undefined && !rollout.waves.includes(rollout.promoted)) {
      ctx.addIssue({ code: "custom", path: ["promoted"], message: `promoted "${rollout.promoted}" is not one of the waves (${rollout.waves.join(", ")})` });
    }
  });

export const fleetSettingsSchema = z
  .strictObject({
    appName: z
      .string()
      .regex(/^[a-z][a-z0-9]{1,19}$/, { error: "appName must be 2-20 characters of a-z and 0-9, starting with a letter" })
      .default(DEFAULT_APP_NAME),
    tenantsFile: z.string().min(1).default(DEFAULT_TENANTS_FILE),
    servers: z.array(serverSchema).min(1, { error: "list at least one PostgreSQL server" }),
    /** Where entries without `server:` are placed; defaults to the first server. */
    defaultServer: serverNameSchema.optional(),
    dns: dnsSchema.default({ provider: "none", zone: LOCAL_DNS_ZONE, recordTemplate: DEFAULT_RECORD_TEMPLATE }),
    /** When false (the default), removed tenants keep their database and role. */
    allowPurge: flagSchema.default(false),
    /**
     * What creates roles and databases: the @pulumi/postgresql provider, or
     * this project's builtin dynamic resources where that plugin cannot be
     * installed (air-gapped machines; see toolchain/README.md).
     */
    databaseProvider: z.enum(["postgresql", "builtin"]).default("postgresql"),
    /** Named sets of per-tenant limits; a tenant's `plan:` picks one, else defaultPlan. */
    plans: z.record(planNameSchema, planSchema).default(DEFAULT_PLANS),
    defaultPlan: planNameSchema.default(DEFAULT_PLAN),
    /** Where the published seed releases are, from the project folder (seed/releases.ts). */
    seedReleases: z.string().min(1).default("seed/releases"),
    /** Which tenants get which seed release (infra/rollout.ts); absent: everyone gets the newest. */
    rollout: rolloutSchema.optional(),
  })
  .superRefine((settings, ctx) => {
    const names = settings.servers.map((server) => server.name);
    names.forEach((name, index) => {
      if (names.indexOf(name) !== index) {
        ctx.addIssue({ code: "custom", path: ["servers", index, "name"], message: `server name "${name}" is listed twice` });
      }
    });
    if (settings.defaultServer !== undefined && !names.includes(settings.defaultServer)) {
      ctx.addIssue({
        code: "custom",
        path: ["defaultServer"],
        message: `defaultServer "${settings.defaultServer}" is not one of the servers (${names.join(", ")})`,
      });
    }
    if (!Object.hasOwn(settings.plans, settings.defaultPlan)) {
      ctx.addIssue({
        code: "custom",
        path: ["defaultPlan"],
        message: `defaultPlan "${settings.defaultPlan}" is not one of the plans (${Object.keys(settings.plans).join(", ")})`,
      });
    }
    const template = settings.dns.recordTemplate;
    // The longest username must still give a valid DNS label (RFC 1035: 63 characters).
    const longest = dnsLabel(template, settings.appName, "a".repeat(USERNAME_MAX));
    if (!template.includes("{user}") || !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(longest)) {
      ctx.addIssue({
        code: "custom",
        path: ["dns", "recordTemplate"],
        message: `recordTemplate must contain "{user}" and give a DNS label of at most 63 characters of a-z, 0-9 and - (it gives "${longest}")`,
      });
    }
  });

export type FleetSettings = z.output<typeof fleetSettingsSchema>;
export type ServerSettings = z.output<typeof serverSchema>;
/** Where a server is, all a tenant needs for its connection URL: never the admin's credentials. */
export type ServerAddress = Pick<ServerSettings, "host" | "port" | "sslmode">;
export type DnsSettings = z.output<typeof dnsSchema>;
export type RolloutSettings = z.output<typeof rolloutSchema>;

/** The config keys this program reads; everything else in the namespace is ignored. */
const KEYS = [
  "appName",
  "tenantsFile",
  "servers",
  "defaultServer",
  "dns",
  "allowPurge",
  "databaseProvider",
  "plans",
  "defaultPlan",
  "seedReleases",
  "rollout",
] as const;

export class StackConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`the stack config has ${problems.length} problem(s); fix them with "pulumi config set" and run again:\n${problems.join("\n")}`);
    this.name = "StackConfigError";
  }
}

/** Validates raw config values (as `pulumi.Config` returns them) into settings. */
export function parseFleetSettings(raw: Record<string, unknown>, namespace: string): FleetSettings {
  const parsed = fleetSettingsSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new StackConfigError(
    parsed.error.issues.map((issue) => {
      const path = issue.path
        .map((part) => (typeof part === "number" ? `[${part}]` : `.${String(part)}`))
        .join("")
        .slice(1);
      const key = path.length > 0 ? `${namespace}:${path}` : namespace;
      return `  ${key}: ${issue.message}`;
    }),
  );
}

/** Reads this program's keys from the current stack's config. */
export function readFleetSettings(config = new pulumi.Config()): FleetSettings {
  const raw: Record<string, unknown> = {};
  for (const key of KEYS) {
    const text = config.get(key);
    if (text === undefined) continue;
    // Structured values (servers, dns, booleans) arrive as JSON text.
    try {
      raw[key] = JSON.parse(text);
    } catch {
      raw[key] = text;
    }
  }
  return parseFleetSettings(raw, config.name);
}

/** The server a tenant lives on: its own `server:` or the stack's default. */
/** The admin's connection URL on a server (a secret wherever it goes: it carries the admin password). */
export function serverAdminUrl(server: ServerSettings): string {
  return databaseUrl({
    user: server.adminUser,
    password: server.adminPassword,
    host: server.host,
    port: server.port,
    database: server.adminDatabase,
    sslmode: server.sslmode,
  });
}

export function serverFor(settings: FleetSettings, requested: string | undefined): string {
  return requested ?? settings.defaultServer ?? settings.servers[0]!.name;
}

/** The plan a tenant is on: its own `plan:` or the stack's default. */
export function planFor(settings: FleetSettings, requested: string | undefined): string {
  return requested ?? settings.defaultPlan;
}

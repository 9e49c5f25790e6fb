/**
 * The shape of `tenants/tenants.yaml`, as zod schemas. Every TypeScript type
 * for a tenant entry is inferred from here, so the file format is written
 * down exactly once.
 */
import { z } from "zod";
import { TENANT_ID_PATTERN, usernameToLabel } from "../infra/naming";

/** Words that would shadow system databases, roles or well-known host names. */
const RESERVED_USERNAMES: ReadonlySet<string> = new Set([
  "admin",
  "administrator",
  "api",
  "app",
  "apps",
  "assets",
  "auth",
  "billing",
  "cdn",
  "dashboard",
  "default",
  "dev",
  "docs",
  "ftp",
  "help",
  "localhost",
  "mail",
  "metrics",
  "ns1",
  "ns2",
  "pg",
  "pgbouncer",
  "postgres",
  "postmaster",
  "public",
  "replication",
  "root",
  "signup",
  "smtp",
  "staging",
  "static",
  "status",
  "superuser",
  "support",
  "system",
  "template0",
  "template1",
  "test",
  "www",
]);

const USERNAME_MIN = 3;
export const USERNAME_MAX = 40;

/** The longest piece of a hostile value an error message repeats. */
const ECHO_MAX_CHARACTERS = 60;

/**
 * A value as error messages echo it: whole when short, else its first 60
 * characters and its length, so a 5 MB value gives a one-line message.
 */
export function clipForMessage(value: string, max = ECHO_MAX_CHARACTERS): string {
  if (value.length <= max) return value;
  let length = 0;
  for (const _ of value) length++; // code points, as people count characters
  if (length <= max) return value;
  return `${Array.from(value.slice(0, 2 * max))
    .slice(0, max)
    .join("")}... (${length} characters)`;
}

function describeChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  return `"${ch}" (U+${code.toString(16).toUpperCase().padStart(4, "0")})`;
}

/**
 * Every reason a username is unacceptable, in the order a person would fix
 * them. Empty when the username is valid. Kept as a plain function (and
 * wrapped by the zod schema below) so the CLI can explain a rejection with
 * the same words the Pulumi program uses.
 */
export function usernameProblems(value: string): string[] {
  if (value.length === 0) return ["username is empty; use 3 to 40 characters of a-z, 0-9, _ and -"];
  const problems: string[] = [];
  const lower = value.toLowerCase();
  if (value !== lower && /^[a-z0-9_-]+$/.test(lower)) {
    // Never fix it silently: the user must see and choose the lower-case form.
    problems.push(`username must be lower case; write "${clipForMessage(lower)}"`);
  } else {
    const bad = new Set<string>();
    for (const ch of value) {
      if (!/[a-z0-9_-]/.test(ch)) bad.add(ch);
      if (bad.size === 5) break;
    }
    if (bad.size > 0) {
      problems.push(`username may only contain a-z, 0-9, _ and -; found ${[...bad].map(describeChar).join(", ")}`);
    }
  }
  let length = 0;
  for (const _ of value) length++;
  if (length < USERNAME_MIN || length > USERNAME_MAX) {
    problems.push(`username must be ${USERNAME_MIN} to ${USERNAME_MAX} characters long; it has ${length}`);
  }
  if (!/^[a-zA-Z]/.test(value)) problems.push("username must start with a letter");
  if (/[_-]$/.test(value)) problems.push('username must not end with "_" or "-"');
  // "ab--" in positions 3-4 is reserved for IDNA labels (RFC 5891), e.g. "xn--".
  if (usernameToLabel(lower).slice(2, 4) === "--") {
    problems.push('username must not have "_" or "-" as both its 3rd and 4th characters (reserved in DNS)');
  }
  if (RESERVED_USERNAMES.has(lower)) problems.push(`username "${lower}" is reserved; choose another`);
  return problems;
}

export const usernameSchema = z.string().superRefine((value, ctx) => {
  for (const message of usernameProblems(value)) ctx.addIssue({ code: "custom", message });
});

/** 8 upper-case hex digits: the support handle and the suffix of every name. */
export const tenantIdSchema = z
  // An unquoted all-digit ID (12345678) reads as a number in YAML: say how to write it.
  .string({ error: 'tenantId must be 8 upper-case hex digits, written in quotes when they are all digits (tenantId: "12345678")' })
  .regex(TENANT_ID_PATTERN, { error: "tenantId must be exactly 8 upper-case hex digits, e.g. A1B2C3D4" });

/** A server name as listed in the stack config. */
export const serverNameSchema = z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, { error: "server must be a server name from the stack config (a-z, 0-9, -)" });

/** A plan name as listed in the stack config's `plans`. */
export const planNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{0,30}$/, { error: "plan must be a plan name from the stack config (a-z, 0-9, _ and -, starting with a letter)" });

/**
 * `removed` is a tombstone: the tenant is offboarded (its DNS record, secrets
 * and seed leave the stack; its database and role are kept unless the stack
 * allows purging). The entry stays in the file for good, so a copy of the
 * file that merely lacks a tenant can never remove it (infra/continuity.ts).
 *
 * `pooled` is a warm-pool tenant (tenants/pool.ts): made in full (database,
 * role, catalogue, session secret) under its `tenantId`, with no username, no
 * e-mail and no DNS record, until a signup claims it (the entry then gets the
 * username and e-mail and loses `status: pooled`).
 * A pooled entry is taken out of the pool by `status: removed` (a tombstone
 * with no username, keyed by its tenant ID, data kept like any tombstone); it
 * cannot be suspended (nobody uses it). See the README's "Warm pool" section.
 */
const tenantStatusSchema = z.enum(["active", "suspended", "removed", "pooled"], {
  error: 'status must be "active", "suspended", "removed" or "pooled"',
});

/**
 * Rollout rings for new seed releases (infra/rollout.ts), earliest first. A
 * tenant without `ring:` is in the stack's last wave.
 */
export const RINGS = ["canary", "early", "all"] as const;
export const ringSchema = z.enum(RINGS, { error: 'ring must be "canary", "early" or "all"' });

const tenantEntryFields = z.strictObject(
  {
    /** Required, except on a pooled entry (which must have none). */
    username: usernameSchema.optional(),
    email: z.email({ error: "email must be a valid e-mail address" }).max(254).optional(),
    tenantId: tenantIdSchema.optional(),
    server: serverNameSchema.optional(),
    /** Optional: a plan from the stack config (its limits); default: the stack's defaultPlan. */
    plan: planNameSchema.optional(),
    status: tenantStatusSchema.default("active"),
    /** Which rollout wave gets a new seed release first; default: the last wave. */
    ring: ringSchema.optional(),
    /** Keep the tenant at its deployed seed release whatever the rollout says. */
    hold: z.boolean({ error: "hold must be true or false" }).optional(),
  },
  { error: (issue) => (issue.code === "unrecognized_keys" ? undefined : "each tenant must be a mapping with a username") },
);

/** Fields a pooled entry may not have: it belongs to nobody yet, and follows the stack's stable seed release. */
const NOT_ON_POOLED = ["username", "email", "plan", "ring", "hold"] as const;

/**
 * An entry's key everywhere the fleet keys tenants (stack outputs, the last
 * update's record, placement, rollout): its username, or for a pooled entry
 * its tenant ID, which is upper case and so can never be a username.
 */
export const tenantEntrySchema = tenantEntryFields
  .superRefine((entry, ctx) => {
    if (entry.status === "pooled") {
      if (entry.tenantId === undefined)
        ctx.addIssue({ code: "custom", path: ["tenantId"], message: "a pooled entry needs its tenantId (npm run tenants -- pool refill writes them)" });
      for (const key of NOT_ON_POOLED) {
        if (entry[key] !== undefined)
          ctx.addIssue({
            code: "custom",
            path: [key],
            message: `a pooled entry has no ${key}; a signup's claim writes the username and e-mail and removes "status: pooled"`,
          });
      }
    } else if (entry.username === undefined) {
      // The tombstone of a pooled entry (npm run tenants -- remove <tenant ID>): keyed by its tenant ID, like the pooled entry it was.
      if (entry.status === "removed" && entry.tenantId !== undefined) return;
      const message =
        entry.status === "suspended" && entry.tenantId !== undefined
          ? 'an entry without a username is an unclaimed pooled tenant, which cannot be suspended (nobody can use it and it has no DNS record); write "status: pooled" back, or take it out of the pool with "status: removed" (npm run tenants -- remove <tenant ID>)'
          : 'username is required (only an entry with "status: pooled" has none); the tombstone of a pooled entry keeps its tenantId and "status: removed"';
      ctx.addIssue({ code: "custom", path: ["username"], message });
    }
  })
  .transform((entry) => ({ ...entry, username: entry.username ?? entry.tenantId ?? "" }));

/** One tenant as written in the file, after defaults are applied. */
export type TenantEntry = z.output<typeof tenantEntrySchema>;
export type TenantStatus = z.output<typeof tenantStatusSchema>;

/** Whether an entry is an unclaimed warm-pool tenant (its `username` is then its tenant ID: see tenantEntrySchema). */
export function isPooled(entry: { readonly status: string }): boolean {
  return entry.status === "pooled";
}

/**
 * Whether an entry has no username of its own: a pooled entry, or the
 * tombstone of one (`tenantId` + `status: removed`). Its key (`username`) is
 * then its tenant ID, which no username can equal (usernames are lower case
 * and start with a letter; tenant IDs are upper-case hex).
 */
export function isUnnamed(entry: { readonly username: string; readonly tenantId?: string | undefined; readonly status: string }): boolean {
  return isPooled(entry) || (entry.tenantId !== undefined && entry.username === entry.tenantId);
}

/** A validated entry together with its 1-based line in the file, for error messages. */
export type LocatedTenant = TenantEntry & { readonly line: number };

/**
 * verify-tenant-isolation: active probes, run as each tenant's own role.
 * A probe passes only when PostgreSQL itself refuses what must be refused;
 * nothing here trusts the program's own idea of what it declared.
 * The attack probes (other databases, control-plane locks, connection limit)
 * live in attack-probes.ts; verifyFleet also returns each tenant's limits.
 */
import { Client, type ClientConfig } from "pg";
import { inPool } from "../lib/in-pool";
import { clientConfigFromUrl } from "../lib/postgres-url";
import { z } from "zod";

import { stackOutputsSchema, tenantSummarySchema, type StackOutputs } from "../infra/outputs";
import {
  ATTACK_PROBES,
  limitsOf,
  probeConnectionLimit,
  probeOtherDatabases,
  probeTempFileLimit,
  readTenantView,
  type TenantLimits,
  type TenantView,
} from "./attack-probes";
import { errorMessage } from "../lib/errors";

/** The outputs' contract lives in infra/outputs.ts; re-exported for verify's callers. */
export { stackOutputsSchema, type StackOutputs };
export type { TenantLimits };

export interface TenantUnderTest {
  tenantId: string;
  username: string;
  database: string;
  databaseUrl: string;
  sessionSecret: string;
  /** A new tenant must have no users yet. */
  isNew: boolean;
}

export interface ProbeResult {
  tenantId: string;
  username: string;
  probe: string;
  ok: boolean;
  detail: string;
}

export const MIN_ACTIVE_COMPANIES = 400;
const SESSION_SECRET_MIN_LENGTH = 43; // 32 random bytes, base64-encoded, is 43 characters.

/**
 * Active and pooled tenants: a suspended tenant's role is meant to be unable
 * to log in. A pooled tenant (warm pool, no one's yet) is probed like any
 * other, and its `users` table must always be empty.
 */
export function tenantsFromOutputs(outputs: StackOutputs, isNew: (username: string) => boolean): TenantUnderTest[] {
  return Object.values(outputs.tenants)
    .filter((tenant) => tenant.status === "active" || tenant.status === "pooled")
    .map((tenant) => {
      const connection = outputs.connections[tenant.username];
      if (connection === undefined) throw new Error(`tenant ${tenant.tenantId} (${tenant.username}) has no connection details in the outputs`);
      return { ...tenant, ...connection, isNew: tenant.status === "pooled" || isNew(tenant.username) };
    });
}

/**
 * Usernames of the tenants an update created: those whose tenant ID is in
 * the outputs after it and not before (`before` is whatever the stack
 * exported before the update, possibly nothing). Only these must have an
 * empty `users` table; a tenant that has been live may have users.
 */
export function tenantsCreatedBetween(before: unknown, after: StackOutputs): Set<string> {
  const earlier = z.object({ tenants: z.record(z.string(), tenantSummarySchema.pick({ tenantId: true })) }).safeParse(before);
  const known = new Set(earlier.success ? Object.values(earlier.data.tenants).map((tenant) => tenant.tenantId) : []);
  return new Set(
    Object.values(after.tenants)
      .filter((tenant) => !known.has(tenant.tenantId))
      .map((tenant) => tenant.username),
  );
}

async function withClient<T>(config: ClientConfig, use: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client(config);
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

function errorCode(error: unknown): string {
  return (error as { code?: string }).code ?? "";
}

/** Probes that need a session in the tenant's own database. */
async function ownDatabaseProbes(tenant: TenantUnderTest, record: (probe: string, ok: boolean, detail: string) => void) {
  try {
    await withClient(clientConfigFromUrl(tenant.databaseUrl), async (client) => {
      record("connects to own database", true, tenant.database);

      const role = (await client.query("SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = current_user"))
        .rows[0] as Record<string, boolean>;
      const powers = Object.entries(role)
        .filter(([, granted]) => granted)
        .map(([name]) => name);
      record("role has no special powers", powers.length === 0, powers.length === 0 ? "none" : `has ${powers.join(", ")}`);

      // NULL datacl means the defaults, which give PUBLIC CONNECT.
      const publicConnect = (
        await client.query(
          `SELECT EXISTS (
             SELECT 1 FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) acl
             WHERE d.datname = current_database() AND acl.grantee = 0 AND acl.privilege_type = 'CONNECT') AS granted`,
        )
      ).rows[0].granted as boolean;
      record("PUBLIC has no CONNECT", !publicConnect, publicConnect ? "PUBLIC can connect" : "revoked");

      for (const [probe, sql] of [
        ["cannot create databases", "CREATE DATABASE dgp_isolation_probe"],
        ["cannot create roles", "CREATE ROLE dgp_isolation_probe"],
      ] as const) {
        try {
          await client.query(sql);
          // It worked, which is the failure; undo it so the probe leaves nothing behind.
          await client.query(sql.replace("CREATE", "DROP")).catch(() => undefined);
          record(probe, false, `${sql} succeeded`);
        } catch (error) {
          record(probe, errorCode(error) === "42501", `refused (${errorCode(error) || errorMessage(error)})`);
        }
      }

      try {
        const active = Number((await client.query("SELECT count(*) AS n FROM companies WHERE is_active")).rows[0].n);
        record("catalogue loaded", active >= MIN_ACTIVE_COMPANIES, `${active} active companies (need ${MIN_ACTIVE_COMPANIES})`);
      } catch (error) {
        record("catalogue loaded", false, `no catalogue: ${errorMessage(error)}`);
      }

      if (tenant.isNew) {
        try {
          const users = Number((await client.query("SELECT count(*) AS n FROM users")).rows[0].n);
          record("new tenant has no users", users === 0, `${users} row(s) in users`);
        } catch (error) {
          record("new tenant has no users", false, `no users table: ${errorMessage(error)}`);
        }
      }
    });
  } catch (error) {
    record("connects to own database", false, errorMessage(error));
  }
}

/** Real cross-tenant logins per tenant; the privilege matrix covers every pair. */
export const DEFAULT_LOGINS_PER_TENANT = 3;

export interface VerifyOptions {
  /** Parallel connections; kept well under max_connections. */
  concurrency?: number;
  /** Real login attempts per tenant into other tenants' databases (Infinity: all of them). */
  loginsPerTenant?: number;
}

type Recorder = (tenant: TenantUnderTest) => (probe: string, ok: boolean, detail: string) => void;

/**
 * Two kinds of evidence that no tenant reaches another's database:
 * - real logins with the tenant's credentials into the databases of the next
 *   `logins` tenants on its server (a ring, so every database is tried by
 *   several strangers): O(N) connections rather than O(N^2);
 * - PostgreSQL's own CONNECT check (has_database_privilege, the check a login
 *   performs) for the tenant against every other tenant database, one query.
 */
async function crossTenantProbes(tenants: readonly TenantUnderTest[], concurrency: number, logins: number, recorder: Recorder) {
  const byServer = new Map<string, TenantUnderTest[]>();
  for (const tenant of tenants) byServer.set(serverOf(tenant), [...(byServer.get(serverOf(tenant)) ?? []), tenant]);
  const neighbours = (tenant: TenantUnderTest) => {
    const ring = byServer.get(serverOf(tenant))!;
    const at = ring.indexOf(tenant);
    const count = Math.min(logins, ring.length - 1);
    return Array.from({ length: count }, (_, i) => ring[(at + 1 + i) % ring.length]!);
  };

  const pairs = tenants.flatMap((tenant) => neighbours(tenant).map((other) => [tenant, other] as const));
  const leaks = new Map<TenantUnderTest, string[]>();
  await inPool(pairs, concurrency, async ([tenant, other]) => {
    try {
      await withClient(clientConfigFromUrl(tenant.databaseUrl, { database: other.database }), async () => undefined);
      leaks.set(tenant, [...(leaks.get(tenant) ?? []), `${other.tenantId} (${other.database})`]);
    } catch {
      // Refused, as it must be.
    }
  });
  for (const tenant of tenants) {
    const leaked = leaks.get(tenant) ?? [];
    const tried = neighbours(tenant).length;
    recorder(tenant)(
      "cannot connect to other tenants",
      leaked.length === 0,
      leaked.length === 0 ? `refused by ${tried} of ${tried} tried` : `connected to ${leaked.join(", ")}`,
    );
  }

  await inPool(tenants, concurrency, async (tenant) => {
    const others = byServer
      .get(serverOf(tenant))!
      .filter((other) => other !== tenant)
      .map((other) => other.database);
    try {
      const reachable = await withClient(clientConfigFromUrl(tenant.databaseUrl), async (client) =>
        (
          await client.query(
            "SELECT datname FROM pg_database WHERE datname = ANY($1::text[]) AND has_database_privilege(datname, 'CONNECT') ORDER BY datname",
            [others],
          )
        ).rows.map((row) => row.datname as string),
      );
      recorder(tenant)(
        "no CONNECT on other tenants",
        reachable.length === 0,
        reachable.length === 0 ? `none of ${others.length}` : `may connect to ${reachable.join(", ")}`,
      );
    } catch (error) {
      recorder(tenant)("no CONNECT on other tenants", false, errorMessage(error));
    }
  });
}

function serverOf(tenant: TenantUnderTest): string {
  return new URL(tenant.databaseUrl).host;
}

/**
 * The attack probes (attack-probes.ts) for every tenant; returns the limits
 * each tenant's sessions get. The connection-limit and temporary-file probes
 * run one tenant at a time: each holds up to its limit open, or writes up to it.
 */
async function attackProbes(tenants: readonly TenantUnderTest[], concurrency: number, recorder: Recorder): Promise<TenantLimits[]> {
  const tenantDatabases = new Map<string, Set<string>>();
  for (const tenant of tenants) tenantDatabases.set(serverOf(tenant), (tenantDatabases.get(serverOf(tenant)) ?? new Set()).add(tenant.database));
  const connectAs = (tenant: TenantUnderTest) => (database?: string) => clientConfigFromUrl(tenant.databaseUrl, { database });
  const views = new Map<TenantUnderTest, TenantView>();
  await inPool(tenants, concurrency, async (tenant) => {
    try {
      views.set(tenant, await readTenantView(connectAs(tenant)()));
    } catch (error) {
      for (const probe of ATTACK_PROBES) recorder(tenant)(probe, false, `could not log in to try it: ${errorMessage(error)}`);
      return;
    }
    await probeOtherDatabases(connectAs(tenant), views.get(tenant)!, tenantDatabases.get(serverOf(tenant))!, recorder(tenant));
  });
  for (const [tenant, view] of views) {
    await probeConnectionLimit(connectAs(tenant), view, recorder(tenant));
    await probeTempFileLimit(connectAs(tenant), view, recorder(tenant)).catch((error: unknown) =>
      recorder(tenant)(ATTACK_PROBES[3], false, `could not try it: ${errorMessage(error)}`),
    );
  }
  return tenants.filter((tenant) => views.has(tenant)).map((tenant) => limitsOf(tenant, views.get(tenant)!));
}

export interface VerifyReport {
  results: ProbeResult[];
  limits: TenantLimits[];
}

/** Probes only; verifyFleet also reports each tenant's limits. */
export async function verifyIsolation(tenants: readonly TenantUnderTest[], options: VerifyOptions = {}): Promise<ProbeResult[]> {
  return (await verifyFleet(tenants, options)).results;
}

export async function verifyFleet(tenants: readonly TenantUnderTest[], options: VerifyOptions = {}): Promise<VerifyReport> {
  const concurrency = options.concurrency ?? 8;
  const results: ProbeResult[] = [];
  const recorder: Recorder = (tenant) => (probe, ok, detail) => results.push({ tenantId: tenant.tenantId, username: tenant.username, probe, ok, detail });

  await inPool(tenants, concurrency, (tenant) => ownDatabaseProbes(tenant, recorder(tenant)));

  await crossTenantProbes(tenants, concurrency, options.loginsPerTenant ?? DEFAULT_LOGINS_PER_TENANT, recorder);

  const limits = await attackProbes(tenants, concurrency, recorder);

  const bySecret = new Map<string, TenantUnderTest[]>();
  for (const tenant of tenants) bySecret.set(tenant.sessionSecret, [...(bySecret.get(tenant.sessionSecret) ?? []), tenant]);
  for (const tenant of tenants) {
    const sharing = bySecret.get(tenant.sessionSecret)!.filter((other) => other !== tenant);
    const long = tenant.sessionSecret.length >= SESSION_SECRET_MIN_LENGTH;
    recorder(tenant)(
      "session secret unique",
      sharing.length === 0 && long,
      !long
        ? `only ${tenant.sessionSecret.length} characters`
        : sharing.length === 0
          ? "unique"
          : `shared with ${sharing.map((other) => other.tenantId).join(", ")}`,
    );
  }
  return {
    results: results.sort((a, b) => a.tenantId.localeCompare(b.tenantId) || a.probe.localeCompare(b.probe)),
    limits: limits.sort((a, b) => a.tenantId.localeCompare(b.tenantId)),
  };
}

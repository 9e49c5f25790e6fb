/**
 * Adoption for the `@pulumi/postgresql` provider: a tenant whose role or
 * database already exists on its server but is not in this stack's record
 * (a tombstone brought back with its tenantId, or a tenant pinned in the file
 * to adopt it) is imported with Pulumi's `import` resource option instead of
 * created, which would fail with "already exists".
 *
 * The builtin provider adopts in its own create (builtin-postgres/), so this
 * runs for stacks on the postgresql provider only. Before anything is
 * imported the server is asked whether the objects are this tenant's: a role
 * with no superuser, role-creating or replication rights and no memberships,
 * and a database owned by the admin (or, in older stacks, the tenant's role)
 * holding nothing owned by anyone else. Otherwise the update stops, naming the
 * tenant and the object.
 *
 * An import takes the objects as they are (every managed property is in
 * `ignoreChanges` for that one update, as Pulumi requires an import to match);
 * the next update sets password, login and limits as declared and seeds. The
 * program lists such tenants in the `adopted` output, and the deployment
 * paths (engine/converge.ts) run that next update at once.
 */
import type { Client } from "pg";
import { z } from "zod";
import type { LocatedTenant } from "../tenants/schema";
import { asAdmin } from "./builtin-postgres/admin-session";
import { serverAdminUrl, type FleetSettings, type ServerSettings } from "./config";
import type { LastUpdate } from "./last-update";
import { placeTenants } from "./placement";
import { databaseName, tenantIdOfDatabase } from "./naming";

/** What of a tenant already exists on its server and is to be imported, under which name. */
export interface Adoption {
  readonly name: string;
  readonly role: boolean;
  readonly database: boolean;
}

export interface AdoptionCandidate {
  readonly username: string;
  /** The role's and the database's name. */
  readonly name: string;
  readonly server: ServerSettings;
}

/**
 * The environment variable through which the deployment paths hand the
 * program what a killed update created but never recorded
 * (engine/pending-creates.ts): JSON, username to the object's name.
 */
export const PENDING_ADOPTIONS_VARIABLE = "DGP_ADOPT_PENDING";

/** Reads PENDING_ADOPTIONS_VARIABLE; absent means none. Every name must be one of the app's tenant names (infra/naming.ts). */
export function pendingAdoptionsFromEnv(appName: string, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const text = env[PENDING_ADOPTIONS_VARIABLE];
  if (text === undefined || text === "") return {};
  const names = z.record(
    z.string(),
    z.string().refine((name) => tenantIdOfDatabase(appName, name) !== undefined),
  );
  const parsed = names.safeParse(jsonOrUndefined(text));
  if (!parsed.success) throw new AdoptionError([`${PENDING_ADOPTIONS_VARIABLE} must map usernames to role names; unset it`]);
  return parsed.data;
}

function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Tenants the last update did not deploy (or left as a tombstone) whose role
 * and database name is known before the update: pinned in the file, or
 * handed over as a killed update's pending create (`pending`, username to
 * name). Each on the server placement gives it. Empty for the builtin
 * provider, which adopts in its own create.
 */
export function adoptionCandidates(
  settings: FleetSettings,
  tenants: readonly LocatedTenant[],
  deployed: LastUpdate,
  pending: Readonly<Record<string, string>> = {},
): AdoptionCandidate[] {
  if (settings.databaseProvider !== "postgresql") return [];
  const live = tenants.filter((tenant) => tenant.status !== "removed");
  const placed = placeTenants(settings, live, deployed).servers;
  return live
    .filter((tenant) => deployed[tenant.username] === undefined || deployed[tenant.username]!.status === "removed")
    .flatMap((tenant) => {
      const name = tenant.tenantId !== undefined ? databaseName(settings.appName, tenant.tenantId) : pending[tenant.username];
      const server = settings.servers.find((candidate) => candidate.name === placed.get(tenant.username));
      // A tenant without a valid server fails the update in declareFleet, with the file's other problems.
      return name === undefined || server === undefined ? [] : [{ username: tenant.username, name, server }];
    });
}

/** The name an adopting tenant's tenant ID makes, when it is the one handed over; else the update fails naming both. */
export function adoptedName(username: string, adopting: string, actual: string): string {
  if (actual === adopting) return actual;
  throw new AdoptionError([
    `tenant "${username}": asked to adopt "${adopting}" but its tenant ID makes "${actual}"; run the update again without ${PENDING_ADOPTIONS_VARIABLE}`,
  ]);
}

/** Asks each candidate's server what exists; throws naming the tenant when something is not the tenant's. */
export async function findAdoptions(candidates: readonly AdoptionCandidate[]): Promise<Map<string, Adoption>> {
  const adoptions = new Map<string, Adoption>();
  const problems: string[] = [];
  for (const serverName of new Set(candidates.map((candidate) => candidate.server.name))) {
    const onServer = candidates.filter((candidate) => candidate.server.name === serverName);
    const server = onServer[0]!.server;
    const url = serverAdminUrl(server);
    await asAdmin(url, async (client) => {
      for (const candidate of onServer) {
        const found = await inspect(client, url, server.adminUser, candidate.name);
        if (found.problem !== undefined) problems.push(`tenant "${candidate.username}": ${found.problem}`);
        else if (found.role || found.database) adoptions.set(candidate.username, { name: candidate.name, role: found.role, database: found.database });
      }
    });
  }
  if (problems.length > 0) throw new AdoptionError(problems);
  return adoptions;
}

export class AdoptionError extends Error {
  constructor(readonly problems: string[]) {
    super(`cannot adopt existing objects:\n${problems.map((problem) => `  ${problem}`).join("\n")}`);
    this.name = "AdoptionError";
  }
}

/** What exists under `name` on the server at `url` (the admin's), and why it is not a tenant's if it is not. */
export async function inspectExisting(url: string, admin: string, name: string): Promise<Omit<Adoption, "name"> & { problem?: string }> {
  return asAdmin(url, (client) => inspect(client, url, admin, name));
}

async function inspect(client: Client, url: string, admin: string, name: string): Promise<Omit<Adoption, "name"> & { problem?: string }> {
  const role = await client.query<{ rolsuper: boolean; rolcreaterole: boolean; rolreplication: boolean; rolbypassrls: boolean; memberships: number }>(
    `SELECT rolsuper, rolcreaterole, rolreplication, rolbypassrls,
            (SELECT count(*)::int FROM pg_auth_members m WHERE m.member = r.oid) AS memberships
       FROM pg_roles r WHERE rolname = $1`,
    [name],
  );
  const database = await client.query<{ owner: string }>("SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1", [name]);
  const foundRole = role.rows[0];
  if (foundRole && (foundRole.rolsuper || foundRole.rolcreaterole || foundRole.rolreplication || foundRole.rolbypassrls || foundRole.memberships > 0)) {
    return {
      role: true,
      database: false,
      problem: `role "${name}" exists with rights or memberships a tenant role never has; it is not this tenant's: remove the tenantId pin or fix the role by hand`,
    };
  }
  const owner = database.rows[0]?.owner;
  if (owner !== undefined && owner !== admin && owner !== name) {
    return {
      role: foundRole !== undefined,
      database: true,
      problem: `database "${name}" is owned by "${owner}", not by the admin "${admin}" or the tenant's role; it is not this tenant's`,
    };
  }
  if (owner !== undefined) {
    const strangers = await asAdmin(url, (inDatabase) => foreignOwners(inDatabase, [admin, name]), name);
    if (strangers.length > 0) {
      return {
        role: foundRole !== undefined,
        database: true,
        problem: `database "${name}" holds objects owned by ${strangers.map((who) => `"${who}"`).join(", ")}; it is not this tenant's`,
      };
    }
  }
  return { role: foundRole !== undefined, database: owner !== undefined };
}

/** Owners of schemas and relations (outside the system's) other than `allowed`. */
async function foreignOwners(client: Client, allowed: string[]): Promise<string[]> {
  const result = await client.query<{ owner: string }>(
    `SELECT DISTINCT pg_get_userbyid(owner) AS owner FROM (
       SELECT nspowner AS owner FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
       UNION ALL
       SELECT c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
     ) owners`,
  );
  return result.rows.map((row) => row.owner).filter((owner) => !allowed.includes(owner) && owner !== "pg_database_owner");
}

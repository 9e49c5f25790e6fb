/**
 * The builtin database provider's resource providers: what the engine calls
 * for each Role, Database, PUBLIC revoke and ServerHardening. Loaded at run
 * time, inside the dynamic-provider process, from the checkout the engine
 * runs in (see infra/dynamic-module.ts); the SQL is in operations.ts.
 *
 * Drift: each `read` returns what PostgreSQL has now, so `pulumi refresh` and
 * `pulumi preview --refresh` show a tenant's own changes (its password, its
 * role's settings, PUBLIC or another role granted CONNECT, ALLOW_CONNECTIONS,
 * IS_TEMPLATE, a dropped database) as an update (or a create), and
 * `pulumi up --refresh` repairs them. `diff` compares that reading (the old
 * outputs) with what the program declares.
 */
import type * as pulumi from "@pulumi/pulumi";
import * as operations from "./operations";

/** Whose role or database it is (its marker); absent in the state of stacks from before tenant markers: the next update sets it. */
type Owner = operations.TenantOwner;

export interface RoleInputs extends operations.RoleLimits, Owner {
  adminUrl: string;
  name: string;
  password: string;
  login: boolean;
}

/** The outputs: the inputs, plus what PostgreSQL showed at the last write or read. */
interface RoleOutputs extends RoleInputs {
  settings?: string[];
  powers?: string[];
}

export interface DatabaseInputs extends Owner {
  adminUrl: string;
  name: string;
  /** The tenant's role. (Stacks from before the ownership redesign have `owner` instead.) */
  tenantRole: string;
  connectionLimit?: number;
}

type DatabaseOutputs = DatabaseInputs & Partial<operations.DatabaseReading>;

export interface RevokeInputs {
  adminUrl: string;
  database: string;
}

export interface HardeningInputs {
  adminUrl: string;
  /** Databases named `<appName>_<8 hex>` are tenants' and left to their own resources. */
  appName: string;
}

/** One role default set beside an @pulumi/postgresql Role (which has no property for it). */
export interface RoleParameterInputs {
  adminUrl: string;
  role: string;
  parameter: string;
  value: string;
}

/** A stand-in for a password PostgreSQL no longer has: never equal to a real one, so the next update sets it again. */
export const DRIFTED_PASSWORD = "(changed outside Pulumi)";

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
/** The marker differs (or the state predates markers): an update writes it. adoptLegacy only matters to a create. */
const ownerChanged = (olds: Partial<Owner>, news: Owner) => olds.tenantId !== news.tenantId || olds.stack !== news.stack;
const changed = (replaces: string[], anyChange: boolean): pulumi.dynamic.DiffResult => ({
  changes: anyChange || replaces.length > 0,
  replaces,
  deleteBeforeReplace: true,
});
/** The `read` answer for something that is gone: the engine drops it from the state and the next update creates it. */
const gone = (): pulumi.dynamic.ReadResult => ({ id: "", props: {} });

function roleOutputs(inputs: RoleInputs): RoleOutputs {
  return { ...inputs, settings: operations.expectedRoleSettings(inputs), powers: [] };
}

export const roleProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: RoleInputs) {
    await operations.createRole(inputs.adminUrl, inputs);
    return { id: inputs.name, outs: roleOutputs(inputs) };
  },
  // A changed admin URL (rotated admin password) is stored by an update so delete can still connect.
  async diff(_id: string, olds: RoleOutputs, news: RoleInputs) {
    const updates =
      (["login", "password", "adminUrl", "connectionLimit"] as const).some((key) => olds[key] !== news[key]) ||
      ownerChanged(olds, news) ||
      !same(olds.settings, operations.expectedRoleSettings(news)) ||
      (olds.powers ?? []).length > 0;
    return changed(olds.name === news.name ? [] : ["name"], updates);
  },
  async update(_id: string, _olds: RoleOutputs, news: RoleInputs) {
    await operations.updateRole(news.adminUrl, news);
    return { outs: roleOutputs(news) };
  },
  async read(id: string, props: RoleOutputs) {
    const reading = await operations.readRole(props.adminUrl, props);
    if (reading === undefined) return gone();
    const { passwordMatches, ...seen } = reading;
    return { id, props: { ...props, ...seen, password: passwordMatches === false ? DRIFTED_PASSWORD : props.password } };
  },
  async delete(_id: string, props: RoleInputs) {
    await operations.dropRole(props.adminUrl, props.name);
  },
};

/**
 * One role default (`temp_file_limit`) beside an @pulumi/postgresql Role. `read` shows what PostgreSQL
 * holds, so a default changed or reset by hand is drift that `pulumi up --refresh` repairs.
 */
export const roleParameterProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: RoleParameterInputs) {
    await operations.setRoleParameter(inputs.adminUrl, inputs.role, inputs.parameter, inputs.value);
    return { id: `${inputs.role}/${inputs.parameter}`, outs: inputs };
  },
  async diff(_id: string, olds: RoleParameterInputs, news: RoleParameterInputs) {
    const replaces = olds.role === news.role && olds.parameter === news.parameter ? [] : ["role", "parameter"];
    return changed(replaces, olds.value !== news.value || olds.adminUrl !== news.adminUrl);
  },
  async update(_id: string, _olds: RoleParameterInputs, news: RoleParameterInputs) {
    await operations.setRoleParameter(news.adminUrl, news.role, news.parameter, news.value);
    return { outs: news };
  },
  async read(id: string, props: RoleParameterInputs) {
    const value = await operations.readRoleParameter(props.adminUrl, props.role, props.parameter);
    return value === undefined ? gone() : { id, props: { ...props, value: value ?? "" } };
  },
  // The role keeps it (retained roles keep their limits); a purged role takes it along.
  async delete() {},
};

/** Everything about the database that differs from the design, for the given inputs. */
function databaseDrift(olds: DatabaseOutputs, news: DatabaseInputs): boolean {
  return (
    olds.tenantRole !== news.tenantRole ||
    ownerChanged(olds, news) ||
    olds.adminUrl !== news.adminUrl ||
    (olds.connectionLimit ?? -1) !== (news.connectionLimit ?? -1) ||
    olds.owner === undefined ||
    olds.owner !== olds.adminRole ||
    olds.allowConnections !== true ||
    olds.isTemplate !== false ||
    // Stopped writes (storage hard limit, infra/storage-lock.ts) are the usage sampler's to lift: not drift.
    !same(olds.grants, operations.expectedGrants(news.tenantRole, olds.writesStopped === true)) ||
    (olds.settings ?? []).length > 0 ||
    olds.publicSchemaOwner !== operations.expectedSchemaOwner(news.tenantRole, olds.writesStopped === true)
  );
}

export const databaseProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: DatabaseInputs) {
    const reading = await operations.createDatabase(inputs.adminUrl, inputs);
    return { id: inputs.name, outs: { ...inputs, ...reading } };
  },
  async diff(_id: string, olds: DatabaseOutputs, news: DatabaseInputs) {
    return changed(olds.name === news.name ? [] : ["name"], databaseDrift(olds, news));
  },
  // Also the move from the older design (database owned by the tenant's role): an update, never a replace.
  async update(_id: string, _olds: DatabaseOutputs, news: DatabaseInputs) {
    return { outs: { ...news, ...(await operations.configureDatabase(news.adminUrl, news)) } };
  },
  async read(id: string, props: DatabaseOutputs) {
    const reading = await operations.readDatabase(props.adminUrl, props.name, props.tenantRole);
    // A dropped database: created again, empty, by the next update, then seeded (its oid changes).
    return reading === undefined ? gone() : { id, props: { ...props, ...reading } };
  },
  async delete(_id: string, props: DatabaseInputs) {
    await operations.dropDatabase(props.adminUrl, props.name);
  },
};

export const revokeProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: RevokeInputs) {
    await operations.revokePublic(inputs.adminUrl, inputs.database);
    return { id: inputs.database, outs: { ...inputs, publicPrivileges: [] } };
  },
  async diff(_id: string, olds: RevokeInputs & { publicPrivileges?: string[] }, news: RevokeInputs) {
    const updates = olds.adminUrl !== news.adminUrl || (olds.publicPrivileges ?? []).length > 0;
    return changed(olds.database === news.database ? [] : ["database"], updates);
  },
  async update(_id: string, _olds: RevokeInputs, news: RevokeInputs) {
    await operations.revokePublic(news.adminUrl, news.database);
    return { outs: { ...news, publicPrivileges: [] } };
  },
  async read(id: string, props: RevokeInputs) {
    return { id, props: { ...props, publicPrivileges: await operations.publicPrivileges(props.adminUrl, props.database) } };
  },
  // Never grant PUBLIC back: the database either goes with its tenant or stays private.
  async delete() {},
};

/**
 * One per server: CONNECT and TEMPORARY taken from PUBLIC on every non-tenant
 * database. Its diff asks the server, so every `pulumi up` re-applies it when
 * something is open (a database made since) and stays "unchanged" otherwise.
 */
export const hardeningProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: HardeningInputs) {
    const revoked = await operations.hardenServer(inputs.adminUrl, inputs.appName);
    return { id: new URL(inputs.adminUrl).host, outs: { ...inputs, open: [], lastRevoked: revoked } };
  },
  async diff(_id: string, olds: HardeningInputs, news: HardeningInputs) {
    if (olds.adminUrl !== news.adminUrl || olds.appName !== news.appName) return changed([], true);
    try {
      return changed([], (await operations.openDatabases(news.adminUrl, news.appName)).length > 0);
    } catch {
      return changed([], true); // cannot tell: the update says why
    }
  },
  async update(_id: string, _olds: HardeningInputs, news: HardeningInputs) {
    const revoked = await operations.hardenServer(news.adminUrl, news.appName);
    return { outs: { ...news, open: [], lastRevoked: revoked } };
  },
  async read(id: string, props: HardeningInputs) {
    return { id, props: { ...props, open: await operations.openDatabases(props.adminUrl, props.appName) } };
  },
  // Leaving the program grants nothing back.
  async delete() {},
};

export interface MarkerInputs {
  adminUrl: string;
  role: string;
  database: string;
  tenantId: string;
  stack: string;
}

/**
 * The tenant marker on a role and database that @pulumi/postgresql made (it
 * sets no comments): what the adoption check (infra/tenant-claims.ts) reads.
 */
export const markerProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: MarkerInputs) {
    await operations.markTenant(inputs.adminUrl, inputs);
    return { id: inputs.role, outs: { ...inputs, marked: true } };
  },
  async diff(_id: string, olds: MarkerInputs & { marked?: boolean }, news: MarkerInputs) {
    const keys = ["adminUrl", "role", "database", "tenantId", "stack"] as const;
    return changed([], olds.marked !== true || keys.some((key) => olds[key] !== news[key]));
  },
  async update(_id: string, _olds: MarkerInputs, news: MarkerInputs) {
    await operations.markTenant(news.adminUrl, news);
    return { outs: { ...news, marked: true } };
  },
  async read(id: string, props: MarkerInputs) {
    return { id, props: { ...props, marked: await operations.isMarked(props.adminUrl, props) } };
  },
  // The role and database keep their marker: they stay the tenant's (retainOnDelete) or go with it.
  async delete() {},
};

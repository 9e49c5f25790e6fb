/**
 * Who creates a tenant's role, database, grants and PUBLIC revoke on a server,
 * and hardens the server itself (with the builtin ServerHardening for both):
 * - "postgresql": the @pulumi/postgresql provider (the default);
 * - "builtin": this project's dynamic resources (infra/builtin-postgres), for
 *   machines where the postgresql provider plugin cannot be installed.
 * Both give the same names, owners and privileges; the Tenant component does
 * not know which one it uses.
 *
 * Ownership (README "Security"): the database is owned by the server's admin,
 * the tenant's role has CONNECT and TEMPORARY on it and owns its schema
 * `public`; PUBLIC has nothing. The plan's limits go on the role (connection
 * limit, statement and idle-in-transaction timeouts, temp_file_limit) and on
 * the database (connection limit), where the tenant cannot lift them (the
 * timeouts excepted: a session may SET those).
 */
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import { tempFileLimitValue } from "./builtin-postgres/operations";
import {
  BuiltinDatabase,
  BuiltinPublicRevoke,
  BuiltinRole,
  BuiltinRoleParameter,
  BuiltinServerHardening,
  BuiltinTenantMarker,
} from "./builtin-postgres/resources";
import type { Adoption } from "./adoption";
import { serverAdminUrl, type PlanLimits, type ServerSettings } from "./config";

export interface TenantDatabaseSpec {
  name: pulumi.Output<string>;
  password: pulumi.Output<string>;
  login: boolean;
  limits: PlanLimits;
  /** Import the role or database that already exists under this name (infra/adoption.ts); postgresql provider only. */
  adopt?: Adoption;
  /** Whose they are: the marker (a COMMENT) both providers put on the role and the database (infra/naming.ts tenantMarker). */
  owner: { tenantId: pulumi.Output<string>; stack: string; adoptLegacy: boolean };
}

export interface TenantDatabaseResources {
  role: pulumi.CustomResource;
  database: pulumi.CustomResource;
  /** What must exist before the tenant's role can use its database (grants, schema owner). */
  ready: pulumi.CustomResource[];
  roleName: pulumi.Output<string>;
  databaseName: pulumi.Output<string>;
  /** Changes when the database is made again (after a drop), so the seed runs again; absent where unknown. */
  databaseIncarnation?: pulumi.Output<string>;
}

export interface DatabaseBackend {
  /** `keepData` goes on the role and the database: retainOnDelete and the parent. */
  declare(prefix: string, spec: TenantDatabaseSpec, keepData: pulumi.CustomResourceOptions): TenantDatabaseResources;
  /** Once per server: CONNECT and TEMPORARY taken from PUBLIC on the non-tenant databases. */
  hardenServer(appName: string): pulumi.CustomResource[];
}

export function postgresqlProviderBackend(server: ServerSettings): DatabaseBackend {
  const provider = new postgresql.Provider(`postgres-${server.name}`, {
    host: server.host,
    port: server.port,
    username: server.adminUser,
    password: pulumi.secret(server.adminPassword),
    database: server.adminDatabase,
    sslmode: server.sslmode,
    superuser: server.adminIsSuperuser,
    connectTimeout: 15,
  });
  return {
    // The provider manages grants per named database: the two every server has.
    // The builtin hardening for both providers: grants of @pulumi/postgresql name their database, so
    // they would miss the databases made later (the state's, the control database, anything new).
    hardenServer: (appName) => [new BuiltinServerHardening(`harden-${server.name}`, { adminUrl: adminUrlOf(server), appName })],
    declare(prefix, spec, keepData) {
      const onServer = { ...keepData, provider };
      const role = new postgresql.Role(
        `${prefix}-role`,
        {
          name: spec.name,
          password: spec.password,
          // A suspended tenant keeps its role and data but cannot log in.
          login: spec.login,
          superuser: false,
          createDatabase: false,
          createRole: false,
          replication: false,
          bypassRowLevelSecurity: false,
          inherit: false,
          connectionLimit: spec.limits.connectionLimit,
          statementTimeout: spec.limits.statementTimeoutMs,
          idleInTransactionSessionTimeout: spec.limits.idleInTransactionTimeoutMs,
        },
        { ...onServer, ...importing(spec.adopt?.role ? spec.adopt.name : undefined, ROLE_SETTINGS) },
      );
      // The Role has no property for temp_file_limit: the builtin resource sets it beside it (superuser-only:
      // the tenant cannot lift it; a non-superuser admin needs GRANT SET ON PARAMETER temp_file_limit).
      const tempFileLimit = new BuiltinRoleParameter(
        `${prefix}-temp-file-limit`,
        { adminUrl: adminUrlOf(server), role: role.name, parameter: "temp_file_limit", value: tempFileLimitValue(spec.limits.tempFileLimitMb) },
        { parent: keepData.parent, dependsOn: [role] },
      );
      // Owned by the admin, so the tenant cannot ALTER, DROP or GRANT on it.
      const database = new postgresql.Database(
        `${prefix}-database`,
        {
          name: spec.name,
          owner: server.adminUser,
          template: "template0",
          encoding: "UTF8",
          allowConnections: true,
          isTemplate: false,
          connectionLimit: spec.limits.connectionLimit,
        },
        { ...onServer, dependsOn: [role], ...importing(spec.adopt?.database ? spec.adopt.name : undefined, DATABASE_SETTINGS) },
      );
      // An empty privilege list revokes everything PUBLIC has on the database,
      // CONNECT and TEMPORARY included; the owner keeps its implicit rights.
      const revokePublic = new postgresql.Grant(
        `${prefix}-revoke-public`,
        { database: database.name, role: "public", objectType: "database", privileges: [] },
        { parent: keepData.parent, provider },
      );
      // After the revoke, not beside it: both rewrite the database's ACL, and two grants on one
      // object at once fail with "tuple concurrently updated" (cyrilgdn/terraform-provider-postgresql#178).
      const connect = new postgresql.Grant(
        `${prefix}-connect`,
        { database: database.name, role: role.name, objectType: "database", privileges: ["CONNECT", "TEMPORARY"] },
        { parent: keepData.parent, provider, dependsOn: [revokePublic] },
      );
      // The tenant's tables live in public: the tenant owns it (and may create there on PostgreSQL 15+).
      const publicSchema = new postgresql.Schema(
        `${prefix}-schema-public`,
        { name: "public", database: database.name, owner: role.name, ifNotExists: true, dropCascade: false },
        // Never dropped on its own: it holds the tenant's tables, and a purged database takes it along.
        { ...onServer, retainOnDelete: true },
      );
      // The provider has no comments: the builtin marker names the tenant on its role and database, as the builtin provider's own do.
      const marker = new BuiltinTenantMarker(
        `${prefix}-marker`,
        { adminUrl: adminUrlOf(server), role: role.name, database: database.name, tenantId: spec.owner.tenantId, stack: spec.owner.stack },
        { parent: keepData.parent, dependsOn: [role, database] },
      );
      return { role, database, ready: [revokePublic, connect, publicSchema, tempFileLimit, marker], roleName: role.name, databaseName: database.name };
    },
  };
}

/** Every property the program sets on a Role besides its name: what an import takes as it finds it. */
const ROLE_SETTINGS = [
  "password",
  "login",
  "superuser",
  "createDatabase",
  "createRole",
  "replication",
  "bypassRowLevelSecurity",
  "inherit",
  "connectionLimit",
  "statementTimeout",
  "idleInTransactionSessionTimeout",
];
const DATABASE_SETTINGS = ["owner", "template", "encoding", "allowConnections", "isTemplate", "connectionLimit", "lcCollate", "lcCtype", "tablespaceName"];

/**
 * Pulumi's import option for an object that exists (adoption.ts). An import
 * must match what it finds, so the settings are left as found for this one
 * update; the next update (engine/converge.ts runs it) makes them as declared.
 */
function importing(name: string | undefined, settings: string[]): pulumi.CustomResourceOptions {
  return name === undefined ? {} : { import: name, ignoreChanges: settings };
}

/** The admin's URL on the server, a secret: what the builtin resources connect with. */
function adminUrlOf(server: ServerSettings): pulumi.Output<string> {
  return pulumi.secret(serverAdminUrl(server));
}

export function builtinBackend(server: ServerSettings): DatabaseBackend {
  const adminUrl = adminUrlOf(server);
  return {
    hardenServer: (appName) => [new BuiltinServerHardening(`harden-${server.name}`, { adminUrl, appName })],
    declare(prefix, spec, keepData) {
      const { connectionLimit, statementTimeoutMs, idleInTransactionTimeoutMs, tempFileLimitMb } = spec.limits;
      const owner = spec.owner;
      const role = new BuiltinRole(
        `${prefix}-role`,
        {
          adminUrl,
          name: spec.name,
          password: spec.password,
          login: spec.login,
          connectionLimit,
          statementTimeoutMs,
          idleInTransactionTimeoutMs,
          tempFileLimitMb,
          ...owner,
        },
        keepData,
      );
      // Owned by the admin; grants, options and schema owner are the Database resource's (builtin-postgres/database-operations.ts).
      const database = new BuiltinDatabase(`${prefix}-database`, { adminUrl, name: spec.name, tenantRole: role.name, connectionLimit, ...owner }, keepData);
      const revokePublic = new BuiltinPublicRevoke(`${prefix}-revoke-public`, { adminUrl, database: database.name }, { parent: keepData.parent });
      return {
        role,
        database,
        ready: [revokePublic],
        roleName: role.name,
        databaseName: database.name,
        databaseIncarnation: database.oid,
      };
    },
  };
}

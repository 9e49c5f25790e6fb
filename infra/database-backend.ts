/**
 * Who creates a tenant's role, database and PUBLIC revoke on a server:
 * - "postgresql": the @pulumi/postgresql provider (the default);
 * - "builtin": this project's dynamic resources (infra/builtin-postgres), for
 *   machines where the postgresql provider plugin cannot be installed.
 * Both give the same names, owners and privileges; the Tenant component does
 * not know which one it uses.
 */
import * as postgresql from "@pulumi/postgresql";
import * as pulumi from "@pulumi/pulumi";
import { BuiltinDatabase, BuiltinPublicRevoke, BuiltinRole } from "./builtin-postgres/resources";
import type { ServerSettings } from "./config";
import { databaseUrl } from "./naming";

export interface TenantDatabaseSpec {
  name: pulumi.Output<string>;
  password: pulumi.Output<string>;
  login: boolean;
}

export interface TenantDatabaseResources {
  role: pulumi.CustomResource;
  database: pulumi.CustomResource;
  revokePublic: pulumi.CustomResource;
  roleName: pulumi.Output<string>;
  databaseName: pulumi.Output<string>;
}

export interface DatabaseBackend {
  /** `keepData` goes on the role and the database: retainOnDelete and the parent. */
  declare(prefix: string, spec: TenantDatabaseSpec, keepData: pulumi.CustomResourceOptions): TenantDatabaseResources;
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
        },
        onServer,
      );
      const database = new postgresql.Database(
        `${prefix}-database`,
        { name: spec.name, owner: role.name, template: "template0", encoding: "UTF8", allowConnections: true },
        onServer,
      );
      // An empty privilege list revokes everything PUBLIC has on the database,
      // CONNECT and TEMPORARY included; the owner keeps its implicit rights.
      const revokePublic = new postgresql.Grant(
        `${prefix}-revoke-public`,
        { database: database.name, role: "public", objectType: "database", privileges: [] },
        { parent: keepData.parent, provider },
      );
      return { role, database, revokePublic, roleName: role.name, databaseName: database.name };
    },
  };
}

export function builtinBackend(server: ServerSettings): DatabaseBackend {
  const adminUrl = pulumi.secret(
    databaseUrl({
      user: server.adminUser,
      password: server.adminPassword,
      host: server.host,
      port: server.port,
      database: server.adminDatabase,
      sslmode: server.sslmode,
    }),
  );
  return {
    declare(prefix, spec, keepData) {
      const role = new BuiltinRole(`${prefix}-role`, { adminUrl, name: spec.name, password: spec.password, login: spec.login }, keepData);
      const database = new BuiltinDatabase(`${prefix}-database`, { adminUrl, name: spec.name, owner: role.name }, keepData);
      const revokePublic = new BuiltinPublicRevoke(
        `${prefix}-revoke-public`,
        { adminUrl, database: database.name },
        { parent: keepData.parent },
      );
      return { role, database, revokePublic, roleName: role.name, databaseName: database.name };
    },
  };
}

/**
 * The program's shape under Pulumi's mocks: which resources each tenant
 * declares and with which inputs. Deployment behaviour is proven by the
 * end-to-end tests against the real engine.
 */
import * as pulumi from "@pulumi/pulumi";
import { resolve } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { adoptedName, adoptionCandidates, pendingAdoptionsFromEnv } from "../infra/adoption";
import { parseFleetSettings, type FleetSettings } from "../infra/config";
import { declareFleet } from "../infra/fleet";
import { readLastUpdate, withClaimsBound, type DeployedTenant } from "../infra/last-update";
import { listReleases } from "../seed/releases";
import type { LocatedTenant } from "../tenants/schema";
import { installMocks, isSecret, settle, valueOf, type DeclaredResource } from "../harness/pulumi-mocks";

const T = {
  randomId: "random:index/randomId:RandomId",
  password: "random:index/randomPassword:RandomPassword",
  role: "postgresql:index/role:Role",
  database: "postgresql:index/database:Database",
  grant: "postgresql:index/grant:Grant",
  schema: "postgresql:index/schema:Schema",
  provider: "pulumi:providers:postgresql",
  dns: "cloudflare:index/dnsRecord:DnsRecord",
  tenant: "drivergigspro:fleet:Tenant",
  seed: "pulumi-nodejs:dynamic/drivergigspro:CatalogueSeed",
};

/** The server's hardening, one builtin resource per server whichever the database provider. */
const HARDENING = "pulumi-nodejs:dynamic/drivergigspro-postgres:ServerHardening";
const ROLE_PARAMETER = "pulumi-nodejs:dynamic/drivergigspro-postgres:RoleParameter";
/** With @pulumi/postgresql: the tenant marker (tenant ID and stack) on its role and database, a builtin resource. */
const MARKER = "pulumi-nodejs:dynamic/drivergigspro-postgres:TenantMarker";

function settings(overrides: Record<string, unknown> = {}): FleetSettings {
  return parseFleetSettings(
    {
      servers: [{ name: "local", host: "127.0.0.1", port: 5432, adminPassword: "admin-pw", sslmode: "disable" }],
      ...overrides,
    },
    "drivergigspro",
  );
}

function tenant(username: string, extra: Partial<LocatedTenant> = {}): LocatedTenant {
  return { username, status: "active", line: 1, ...extra };
}

let declared: DeclaredResource[];
beforeEach(() => {
  declared = installMocks();
});

const ofType = (type: string) => declared.filter((resource) => resource.type === type);

async function deploy(config: FleetSettings, tenants: LocatedTenant[]) {
  const fleet = declareFleet(config, tenants);
  await valueOf(fleet.connections);
  await settle();
  return fleet;
}

describe("one tenant", () => {
  it("declares exactly its id, passwords, role, database, revoke and no DNS record with provider none", async () => {
    await deploy(settings(), [tenant("john_driver")]);
    const byType = declared.map((resource) => `${resource.type} ${resource.name}`).sort();
    expect(byType).toEqual(
      [
        `${T.tenant} john_driver`,
        `${T.database} john_driver-database`,
        `${T.grant} john_driver-revoke-public`,
        `${T.grant} john_driver-connect`,
        `${T.schema} john_driver-schema-public`,
        `${HARDENING} harden-local`,
        `${T.role} john_driver-role`,
        `${ROLE_PARAMETER} john_driver-temp-file-limit`,
        `${T.randomId} john_driver-id`,
        `${T.password} john_driver-db-password`,
        `${T.password} john_driver-session-secret`,
        `${T.provider} postgres-local`,
        `${T.seed} john_driver-catalogue`,
        `${MARKER} john_driver-marker`,
      ].sort(),
    );
  });

  it("names the database and role after the tenant ID, owned by the admin, the role connects and owns public, PUBLIC revoked", async () => {
    const fleet = await deploy(settings(), [tenant("john_driver")]);
    const id = await valueOf(fleet.tenants.john_driver!.tenantId);
    expect(id).toMatch(/^[0-9A-F]{8}$/);
    const [randomId] = ofType(T.randomId);
    expect(randomId!.inputs).toEqual({ byteLength: 4, keepers: { username: "john_driver" } });

    const [role] = ofType(T.role);
    expect(role!.inputs).toMatchObject({
      name: `drivergigspro_${id.toLowerCase()}`,
      login: true,
      superuser: false,
      createDatabase: false,
      createRole: false,
      replication: false,
      bypassRowLevelSecurity: false,
      // The default plan (starter).
      connectionLimit: 2,
      statementTimeout: 30000,
      idleInTransactionSessionTimeout: 60000,
    });
    const [database] = ofType(T.database);
    expect(database!.inputs).toMatchObject({ name: `drivergigspro_${id.toLowerCase()}`, owner: "postgres", isTemplate: false, connectionLimit: 2 });
    // temp_file_limit, which the postgresql Role cannot set, beside it: a superuser-only setting the tenant cannot lift.
    expect(ofType(ROLE_PARAMETER)[0]!.inputs).toMatchObject({ role: role!.inputs.name, parameter: "temp_file_limit", value: "256MB" });
    const grants = Object.fromEntries(ofType(T.grant).map((grant) => [grant.name, grant.inputs]));
    expect(grants["john_driver-revoke-public"]).toEqual({
      database: `drivergigspro_${id.toLowerCase()}`,
      role: "public",
      objectType: "database",
      privileges: [],
    });
    expect(grants["john_driver-connect"]).toEqual({
      database: `drivergigspro_${id.toLowerCase()}`,
      role: role!.inputs.name,
      objectType: "database",
      privileges: ["CONNECT", "TEMPORARY"],
    });
    expect(ofType(T.schema)[0]!.inputs).toMatchObject({
      name: "public",
      database: `drivergigspro_${id.toLowerCase()}`,
      owner: role!.inputs.name,
      dropCascade: false,
    });
    expect(fleet.tenants.john_driver!.domain).toBe("john-driver-drivergigspro.localhost");
  });

  it("uses a 40-character password for the role and a 64-character session secret, both secret", async () => {
    const fleet = await deploy(settings(), [tenant("john_driver")]);
    const passwords = Object.fromEntries(ofType(T.password).map((resource) => [resource.name, resource.inputs]));
    expect(passwords["john_driver-db-password"]).toMatchObject({ length: 40, special: false });
    // 64 characters of [A-Za-z0-9] carry ~381 bits: more than the 32 bytes the brief asks for.
    expect(passwords["john_driver-session-secret"]).toMatchObject({ length: 64, special: false });
    const component = fleet.components.john_driver!;
    expect(await isSecret(component.sessionSecret)).toBe(true);
    expect(await isSecret(component.databaseUrl)).toBe(true);
    expect(await isSecret(fleet.connections)).toBe(true);
    expect(await isSecret(fleet.tenants.john_driver!.tenantId)).toBe(false);
    const url = new URL(await valueOf(component.databaseUrl));
    expect(url.hostname).toBe("127.0.0.1");
    expect(url.username).toBe(await valueOf(component.roleName));
    expect(url.searchParams.get("sslmode")).toBe("disable");
  });

  it("points the provider at the configured server with the admin password as a secret input", async () => {
    await deploy(settings(), [tenant("john_driver")]);
    const [provider] = ofType(T.provider);
    expect(provider!.inputs).toMatchObject({ host: "127.0.0.1", port: "5432", username: "postgres", sslmode: "disable" });
    for (const child of [...ofType(T.role), ...ofType(T.database), ...ofType(T.grant)]) {
      expect(child.provider).toContain("postgres-local");
    }
  });

  it("seeds the catalogue as the tenant's own role, keyed on the seed release (the newest published without a rollout)", async () => {
    const fleet = await deploy(settings(), [tenant("john_driver")]);
    const [seed] = ofType(T.seed);
    const id = await valueOf(fleet.tenants.john_driver!.tenantId);
    expect(seed!.inputs).toMatchObject({ tenantId: id, database: `drivergigspro_${id.toLowerCase()}` });
    expect(seed!.inputs.seedVersion).toBe(listReleases().at(-1));
    expect(seed!.inputs.releases).toBe("seed/releases");
    // The URL reaches the engine wrapped as a secret (Pulumi's secret signature).
    const { value: url, ...marker } = seed!.inputs.databaseUrl;
    expect(marker).toEqual({ [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig });
    expect(url).toBe(await valueOf(fleet.components.john_driver!.databaseUrl));
    expect(new URL(url).username).toBe(`drivergigspro_${id.toLowerCase()}`);
    // The serialized provider is a stub naming the module by its path in the project, never the
    // checkout's folder, so the state is the same from every clone (infra/dynamic-module.ts).
    expect(seed!.inputs.__provider).toContain("infra/catalogue-seed-provider.ts");
    expect(seed!.inputs.__provider).not.toContain(resolve(__dirname, ".."));
    expect(seed!.inputs.__provider.length).toBeLessThan(4000);
  });
});

describe("many tenants", () => {
  it("declares N of each resource for N tenants", async () => {
    const names = Array.from({ length: 7 }, (_, i) => `driver_${i}`);
    await deploy(
      settings(),
      names.map((name) => tenant(name)),
    );
    for (const type of [T.tenant, T.randomId, T.role, T.database, T.schema, T.seed]) expect(ofType(type)).toHaveLength(7);
    // Two per tenant (PUBLIC revoked, the role's CONNECT); the server's hardening is one ServerHardening.
    expect(ofType(T.grant)).toHaveLength(7 * 2);
    expect(ofType(HARDENING)).toHaveLength(1);
    expect(ofType(T.password)).toHaveLength(14);
    expect(ofType(T.provider)).toHaveLength(1);
    expect(new Set(ofType(T.database).map((db) => db.inputs.name)).size).toBe(7);
  });

  it("uses a pinned tenant ID as is and declares no RandomId for it", async () => {
    const fleet = await deploy(settings(), [tenant("john_driver", { tenantId: "A1B2C3D4" })]);
    expect(ofType(T.randomId)).toHaveLength(0);
    expect(await valueOf(fleet.tenants.john_driver!.tenantId)).toBe("A1B2C3D4");
    expect(ofType(T.database)[0]!.inputs.name).toBe("drivergigspro_a1b2c3d4");
  });

  it("suspends a tenant: the role cannot log in and no DNS record is declared, the database stays", async () => {
    const cloudflare = { provider: "cloudflare", zone: "drivergigspro.app", zoneId: "z1", target: "ingress.drivergigspro.app" };
    await deploy(settings({ dns: cloudflare }), [tenant("john_driver", { status: "suspended" }), tenant("maria_k")]);
    const roles = Object.fromEntries(ofType(T.role).map((role) => [role.name, role.inputs.login]));
    expect(roles).toEqual({ "john_driver-role": false, "maria_k-role": true });
    expect(ofType(T.database)).toHaveLength(2);
    expect(ofType(T.dns).map((record) => record.name)).toEqual(["maria_k-dns"]);
    // A role that cannot log in cannot be seeded; resuming seeds it again.
    expect(ofType(T.seed).map((seed) => seed.name)).toEqual(["maria_k-catalogue"]);
  });
});

describe("data retention", () => {
  // The engine reads retainOnDelete from state when an entry disappears from
  // the file, so the flag must be on every database and role it registers.
  it("retains databases and roles by default", async () => {
    await deploy(settings(), [tenant("john_driver")]);
    const retained = declared.filter((resource) => resource.retainOnDelete).map((resource) => resource.name);
    expect(retained.sort()).toEqual(["john_driver-database", "john_driver-role", "john_driver-schema-public"]);
  });

  it("lets them be dropped only when allowPurge is set", async () => {
    await deploy(settings({ allowPurge: true }), [tenant("john_driver")]);
    expect(ofType(T.database)[0]!.retainOnDelete).toBe(false);
    // Schema public goes with its database, never on its own.
    expect(declared.filter((resource) => resource.retainOnDelete).map((resource) => resource.name)).toEqual(["john_driver-schema-public"]);
  });
});

/** What the last update recorded for a tenant (see infra/last-update.ts). */
function deployedOn(server: string, tenantId: string, appName = "drivergigspro"): DeployedTenant {
  return { server, tenantId, database: `${appName}_${tenantId.toLowerCase()}` };
}

describe("a deployed tenant keeps its ID and database", () => {
  it("refuses a pinned tenantId that differs from the deployed one, and an appName that renames databases", () => {
    const tenants = [tenant("ann_driver", { tenantId: "0C0C0C0C", line: 3 }), tenant("bob_driver", { line: 5 }), tenant("new_driver", { line: 7 })];
    const deployed = { ann_driver: deployedOn("local", "0A0A0A0A"), bob_driver: deployedOn("local", "0B0B0B0B") };
    expect(() => declareFleet(settings({ appName: "dgp" }), tenants, deployed)).toThrow(
      new RegExp(
        'tenants\\.yaml:3: tenant "ann_driver": was deployed as tenant 0A0A0A0A; pinning 0C0C0C0C would give it a new, empty database: write tenantId: 0A0A0A0A or remove the line\n' +
          '.*tenants\\.yaml:5: tenant "bob_driver": its database is "drivergigspro_0b0b0b0b"; appName "dgp" would make it "dgp_0b0b0b0b", a new, empty one: put appName back',
      ),
    );
    expect(declared).toHaveLength(0);
  });

  it("accepts the deployed tenantId pinned again, next to a new tenant", async () => {
    const fleet = declareFleet(settings(), [tenant("ann_driver", { tenantId: "0A0A0A0A" }), tenant("new_driver")], {
      ann_driver: deployedOn("local", "0A0A0A0A"),
    });
    await valueOf(fleet.connections);
    await settle();
    expect(await valueOf(fleet.tenants.ann_driver!.database)).toBe("drivergigspro_0a0a0a0a");
    expect(ofType(T.database)).toHaveLength(2);
  });
});

describe("placement", () => {
  const twoServers = {
    servers: [
      { name: "eu-1", host: "pg-eu-1.internal", adminPassword: "a" },
      { name: "us-1", host: "pg-us-1.internal", adminPassword: "b" },
    ],
  };

  it("declares one provider per server and gives each tenant its server's provider", async () => {
    const fleet = await deploy(settings(twoServers), [tenant("ann_driver", { server: "us-1" }), tenant("bob_driver")]);
    expect(
      ofType(T.provider)
        .map((provider) => provider.name)
        .sort(),
    ).toEqual(["postgres-eu-1", "postgres-us-1"]);
    const providerOf = (name: string) => declared.find((resource) => resource.name === name)!.provider!;
    expect(providerOf("ann_driver-database")).toContain("postgres-us-1");
    expect(providerOf("bob_driver-database")).toContain("postgres-eu-1");
    expect(fleet.tenants.ann_driver!.server).toBe("us-1");
    expect(new URL(await valueOf(fleet.components.ann_driver!.databaseUrl)).hostname).toBe("pg-us-1.internal");
  });

  it("places entries without a server on defaultServer", async () => {
    const fleet = await deploy(settings({ ...twoServers, defaultServer: "us-1" }), [tenant("bob_driver")]);
    expect(fleet.tenants.bob_driver!.server).toBe("us-1");
    expect(ofType(T.provider).map((provider) => provider.name)).toEqual(["postgres-us-1"]);
  });

  it("keeps a deployed tenant on its server when defaultServer changes; new tenants go to the new default", async () => {
    const fleet = declareFleet(settings({ ...twoServers, defaultServer: "us-1" }), [tenant("ann_driver"), tenant("bob_driver")], {
      ann_driver: deployedOn("eu-1", "0A0A0A0A"),
    });
    await valueOf(fleet.connections);
    await settle();
    expect(fleet.tenants.ann_driver!.server).toBe("eu-1");
    expect(fleet.tenants.bob_driver!.server).toBe("us-1");
    const providerOf = (name: string) => declared.find((resource) => resource.name === name)!.provider!;
    // The deployed tenant is named by its tenant ID (the new one, with no ID yet, by its username).
    expect(providerOf("0A0A0A0A-database")).toContain("postgres-eu-1");
    expect(providerOf("bob_driver-database")).toContain("postgres-us-1");
  });

  it("refuses to move a deployed tenant by an explicit server:, or to lose the server it lives on, before declaring anything", () => {
    const tenants = [tenant("ann_driver", { server: "us-1", line: 4 }), tenant("bob_driver", { line: 6 })];
    const deployed = { ann_driver: deployedOn("eu-1", "0A0A0A0A"), bob_driver: deployedOn("ap-1", "0B0B0B0B") };
    expect(() => declareFleet(settings(twoServers), tenants, deployed)).toThrow(
      new RegExp(
        'tenants\\.yaml:4: tenant "ann_driver": lives on server "eu-1"; moving it to "us-1" would create an empty database there and leave its data behind: write server: eu-1\n' +
          '.*tenants\\.yaml:6: tenant "bob_driver": lives on server "ap-1", which is no longer in the stack config; put that server back',
      ),
    );
    expect(declared).toHaveLength(0);
  });

  it("reads what each tenant was deployed as from this stack's last update", async () => {
    const ann = { username: "ann_driver", status: "active", role: "drivergigspro_0a0a0a0a", ...deployedOn("eu-1", "0A0A0A0A") };
    // bob_driver's summary comes from an older program without `server`: nothing to hold him to.
    declared = installMocks({}, { stackOutputs: { tenants: { ann_driver: ann, bob_driver: { tenantId: "0B0B0B0B" } } } });
    expect(await readLastUpdate()).toEqual({ ann_driver: { ...deployedOn("eu-1", "0A0A0A0A"), status: "active" } });
    const [reference] = declared.filter((resource) => resource.type === "pulumi:pulumi:StackReference");
    expect(reference!.inputs.name).toBe("organization/drivergigspro/test");
  });

  it("treats a stack never deployed as having deployed no one", async () => {
    expect(await readLastUpdate()).toEqual({});
  });

  it("rejects a tenant on an unknown server, naming the tenant and line, before declaring anything", () => {
    expect(() => declareFleet(settings(twoServers), [tenant("bob_driver", { server: "ap-1", line: 12 })])).toThrow(
      /tenants\/tenants\.yaml:12: tenant "bob_driver": server "ap-1" is not in the stack config/,
    );
    expect(declared).toHaveLength(0);
  });
});

describe("DNS", () => {
  it("declares a proxied CNAME per active tenant with provider cloudflare", async () => {
    const dns = { provider: "cloudflare", zone: "drivergigspro.app", zoneId: "zone-123", target: "ingress.drivergigspro.app" };
    const fleet = await deploy(settings({ dns }), [tenant("john_driver")]);
    const [record] = ofType(T.dns);
    expect(record!.inputs).toMatchObject({
      zoneId: "zone-123",
      name: "john-driver-drivergigspro.drivergigspro.app",
      type: "CNAME",
      content: "ingress.drivergigspro.app",
      proxied: true,
    });
    expect(record!.inputs.comment).toBe(`DriverGigsPro tenant ${await valueOf(fleet.tenants.john_driver!.tenantId)}`);
  });

  it("declares no record with provider none but still computes the domain from the template", async () => {
    const dns = { provider: "none", zone: "example.test", recordTemplate: "{app}-{user}" };
    const fleet = await deploy(settings({ dns }), [tenant("john_driver")]);
    expect(ofType(T.dns)).toHaveLength(0);
    expect(fleet.tenants.john_driver!.domain).toBe("drivergigspro-john-driver.example.test");
  });
});

describe("DNS with provider rfc2136", () => {
  const RFC2136 = "pulumi-nodejs:dynamic/drivergigspro-dns:Rfc2136Record";
  const KEY = Buffer.alloc(32, 9).toString("base64");
  const rfc2136 = {
    provider: "rfc2136",
    zone: "fleet.example",
    server: "ns1.fleet.example",
    keyName: "dgp-fleet",
    keySecret: KEY,
    target: "ingress.fleet.example",
  };

  it("declares one record per active tenant, none while suspended, with the TSIG secret as a secret input", async () => {
    const fleet = await deploy(settings({ dns: rfc2136 }), [tenant("john_driver"), tenant("maria_k", { status: "suspended" })]);
    const records = ofType(RFC2136);
    expect(records.map((record) => record.name)).toEqual(["john_driver-dns"]);
    expect(ofType(T.dns)).toEqual([]);
    const { keySecret, __provider, ...inputs } = records[0]!.inputs;
    expect(inputs).toEqual({
      tenantId: await valueOf(fleet.tenants.john_driver!.tenantId),
      name: "john-driver-drivergigspro.fleet.example",
      zone: "fleet.example",
      server: "ns1.fleet.example",
      port: 53,
      keyName: "dgp-fleet",
      keyAlgorithm: "hmac-sha256",
      type: "CNAME",
      target: "ingress.fleet.example",
      ttl: 300,
    });
    expect(keySecret).toEqual({ [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig, value: KEY });
    // The provider loads its operations module; the key is never part of its code.
    expect(__provider).toContain("infra/dns/rfc2136-provider.ts");
    expect(__provider).not.toContain(KEY);
    expect(fleet.tenants.maria_k!.domain).toBe("maria-k-drivergigspro.fleet.example");
  });

  it("takes an A record, port and ttl given as strings by pulumi config set --path", async () => {
    const dns = { ...rfc2136, server: "192.0.2.53", port: "5353", recordType: "A", target: "203.0.113.10", ttl: "60", recordTemplate: "{user}" };
    await deploy(settings({ dns }), [tenant("john_driver")]);
    expect(ofType(RFC2136)[0]!.inputs).toMatchObject({
      name: "john-driver.fleet.example",
      server: "192.0.2.53",
      port: 5353,
      type: "A",
      target: "203.0.113.10",
      ttl: 60,
    });
  });

  it("names every bad rfc2136 key, never echoing the secret", () => {
    const bad = {
      ...rfc2136,
      zone: "Fleet.Example.",
      server: "ns1;rm",
      keyName: "bad key",
      keyAlgorithm: "hmac-md4",
      keySecret: "not base64!\nsend",
      recordType: "A",
      target: "ingress.fleet.example",
      ttl: 0,
      port: 70000,
    };
    const run = () => settings({ dns: bad });
    expect(run).toThrow(
      new RegExp(
        [
          "drivergigspro:dns\\.zone: zone must be a lower-case host name",
          "drivergigspro:dns\\.server: server must be an IP address",
          "drivergigspro:dns\\.port: ",
          "drivergigspro:dns\\.keyName: keyName must be the TSIG key's name",
          "drivergigspro:dns\\.keyAlgorithm: ",
          "drivergigspro:dns\\.keySecret: keySecret must be the TSIG key's base64 secret.*pulumi config set --path --secret dns\\.keySecret",
          "drivergigspro:dns\\.ttl: ",
        ].join("[\\s\\S]*"),
      ),
    );
    expect(run).not.toThrow(/not base64!/);
    expect(() => settings({ dns: { ...rfc2136, keySecret: undefined } })).toThrow(/drivergigspro:dns\.keySecret: keySecret must be/);
    expect(() => settings({ dns: { ...rfc2136, recordType: "A" } })).toThrow(
      /drivergigspro:dns\.target: target must be an IPv4 address such as 203\.0\.113\.10 for recordType A/,
    );
    expect(() => settings({ dns: { ...rfc2136, target: "10.0.0.1\nsend" } })).toThrow(/drivergigspro:dns\.target: target must be a lower-case host name/);
  });
});

describe("builtin database provider", () => {
  const B = {
    role: "pulumi-nodejs:dynamic/drivergigspro-postgres:Role",
    database: "pulumi-nodejs:dynamic/drivergigspro-postgres:Database",
    revoke: "pulumi-nodejs:dynamic/drivergigspro-postgres:PublicRevoke",
    hardening: "pulumi-nodejs:dynamic/drivergigspro-postgres:ServerHardening",
  };
  const unwrapSecret = (value: any) => {
    expect(value[pulumi.runtime.specialSigKey]).toBe(pulumi.runtime.specialSecretSig);
    return value.value;
  };

  it("declares the same role, database and revoke as dynamic resources, with no postgresql provider", async () => {
    const fleet = await deploy(settings({ databaseProvider: "builtin" }), [tenant("john_driver", { status: "suspended" })]);
    const id = (await valueOf(fleet.tenants.john_driver!.tenantId)).toLowerCase();
    expect(ofType(T.provider)).toEqual([]);
    expect(ofType(T.role)).toEqual([]);
    const [role] = ofType(B.role);
    expect(role!.inputs).toMatchObject({
      name: `drivergigspro_${id}`,
      login: false,
      connectionLimit: 2,
      statementTimeoutMs: 30000,
      idleInTransactionTimeoutMs: 60000,
      tempFileLimitMb: 256,
    });
    expect(unwrapSecret(role!.inputs.password)).toHaveLength(40);
    const adminUrl = new URL(unwrapSecret(role!.inputs.adminUrl));
    expect([adminUrl.hostname, adminUrl.port, adminUrl.password]).toEqual(["127.0.0.1", "5432", "admin-pw"]);
    const [database] = ofType(B.database);
    expect(database!.inputs).toMatchObject({ name: `drivergigspro_${id}`, tenantRole: `drivergigspro_${id}`, connectionLimit: 2 });
    expect(ofType(ROLE_PARAMETER)).toEqual([]);
    expect(database!.inputs.owner).toBeUndefined();
    expect(ofType(B.revoke)[0]!.inputs).toMatchObject({ database: `drivergigspro_${id}` });
    const [hardening] = ofType(B.hardening);
    expect(hardening!.inputs).toMatchObject({ appName: "drivergigspro" });
    expect(new URL(unwrapSecret(hardening!.inputs.adminUrl)).hostname).toBe("127.0.0.1");
  });

  it("retains the role and database by default, like the provider path", async () => {
    await deploy(settings({ databaseProvider: "builtin" }), [tenant("john_driver")]);
    const retained = declared.filter((resource) => resource.retainOnDelete).map((resource) => resource.name);
    expect(retained.sort()).toEqual(["john_driver-database", "john_driver-role"]);
  });
});

describe("plans", () => {
  const B = { role: "pulumi-nodejs:dynamic/drivergigspro-postgres:Role", database: "pulumi-nodejs:dynamic/drivergigspro-postgres:Database" };

  it("sets each tenant's plan's limits on its role and database, and exports plan and limits", async () => {
    const plans = {
      starter: {
        connectionLimit: "3",
        statementTimeoutMs: "1000",
        idleInTransactionTimeoutMs: "2000",
        tempFileLimitMb: "64",
        storageQuotaMb: "10",
        storageHardLimitMb: "12",
      },
      pro: { connectionLimit: 20, statementTimeoutMs: 60000, idleInTransactionTimeoutMs: 0, storageQuotaMb: 1024 },
    };
    const fleet = await deploy(settings({ databaseProvider: "builtin", plans }), [tenant("ann_driver"), tenant("bob_driver", { plan: "pro" })]);
    const roles = Object.fromEntries(ofType(B.role).map((role) => [role.name, role.inputs]));
    expect(roles["ann_driver-role"]).toMatchObject({ connectionLimit: 3, statementTimeoutMs: 1000, idleInTransactionTimeoutMs: 2000, tempFileLimitMb: 64 });
    // A plan written before tempFileLimitMb and storageHardLimitMb existed gets 1 GiB and its quota + 20 %.
    expect(roles["bob_driver-role"]).toMatchObject({ connectionLimit: 20, statementTimeoutMs: 60000, idleInTransactionTimeoutMs: 0, tempFileLimitMb: 1024 });
    expect(
      ofType(B.database)
        .map((database) => database.inputs.connectionLimit)
        .sort(),
    ).toEqual([20, 3]);
    expect(fleet.tenants.ann_driver).toMatchObject({
      plan: "starter",
      limits: {
        connectionLimit: 3,
        statementTimeoutMs: 1000,
        idleInTransactionTimeoutMs: 2000,
        tempFileLimitMb: 64,
        storageQuotaMb: 10,
        storageHardLimitMb: 12,
      },
    });
    expect(fleet.tenants.bob_driver).toMatchObject({ plan: "pro", limits: { ...plans.pro, tempFileLimitMb: 1024, storageHardLimitMb: 1229 } });
    const below = { ...plans, pro: { ...plans.pro, storageHardLimitMb: 1000 } };
    expect(() => settings({ plans: below })).toThrow(/drivergigspro:plans\.pro\.storageHardLimitMb: storageHardLimitMb must be at least storageQuotaMb/);
  });

  it("uses defaultPlan, and the built-in starter and pro plans when the stack sets none", async () => {
    const fleet = await deploy(settings({ defaultPlan: "pro" }), [tenant("ann_driver"), tenant("bob_driver", { plan: "starter" })]);
    expect([fleet.tenants.ann_driver!.plan, fleet.tenants.ann_driver!.limits?.connectionLimit]).toEqual(["pro", 40]);
    expect(fleet.tenants.ann_driver!.limits).toMatchObject({ tempFileLimitMb: 1024, storageHardLimitMb: 6000 });
    expect([fleet.tenants.bob_driver!.plan, fleet.tenants.bob_driver!.limits?.storageQuotaMb]).toEqual(["starter", 500]);
  });

  it("refuses a plan the stack does not define, naming tenant and line, before declaring anything", () => {
    expect(() => declareFleet(settings(), [tenant("ann_driver", { plan: "gold", line: 7 })])).toThrow(
      /tenants\.yaml:7: tenant "ann_driver": plan "gold" is not in the stack config \(plans: starter, pro\)/,
    );
    expect(declared).toHaveLength(0);
    expect(() => settings({ defaultPlan: "gold" })).toThrow(/drivergigspro:defaultPlan: defaultPlan "gold" is not one of the plans \(starter, pro\)/);
    expect(() => settings({ plans: { free: { connectionLimit: 0 } } })).toThrow(
      /drivergigspro:plans\.free\.connectionLimit: [\s\S]*drivergigspro:plans\.free\.statementTimeoutMs/,
    );
  });

  it("hardens each server that holds tenants once, whatever the number of tenants", async () => {
    const servers = [
      { name: "eu-1", host: "pg-eu-1.internal", adminPassword: "a" },
      { name: "us-1", host: "pg-us-1.internal", adminPassword: "b" },
      { name: "ap-1", host: "pg-ap-1.internal", adminPassword: "c" },
    ];
    const tenants = [tenant("ann_driver"), tenant("bob_driver"), tenant("cy_driver", { server: "us-1" }), tenant("di_driver", { server: "us-1" })];
    await deploy(settings({ servers, databaseProvider: "builtin" }), tenants);
    expect(
      ofType(HARDENING)
        .map((resource) => resource.name)
        .sort(),
    ).toEqual(["harden-eu-1", "harden-us-1"]);
    // The same hardening with @pulumi/postgresql: its grants name one database each, so they could not
    // cover databases made later; the builtin resource revokes on every non-tenant database.
    declared.length = 0;
    await deploy(settings({ servers }), tenants);
    expect(
      ofType(HARDENING)
        .map((resource) => resource.name)
        .sort(),
    ).toEqual(["harden-eu-1", "harden-us-1"]);
    expect(ofType(T.grant).filter((grant) => grant.name.startsWith("harden-"))).toEqual([]);
  });
});

describe("stack config", () => {
  it("reports every bad key with its full config path", () => {
    expect(() =>
      parseFleetSettings({ servers: [{ name: "Bad Name", host: "", port: 70000 }], dns: { provider: "route53" }, allowPurge: "yes" }, "drivergigspro"),
    ).toThrow(/drivergigspro:servers\[0\]\.name: .*\n.*drivergigspro:servers\[0\]\.host/s);
  });

  it("rejects a record template that cannot give a valid DNS label", () => {
    const run = () => settings({ dns: { provider: "none", recordTemplate: "{user}.{app}" } });
    expect(run).toThrow(/drivergigspro:dns\.recordTemplate: recordTemplate must contain "\{user\}"/);
  });

  it("rejects a missing server list", () => {
    expect(() => parseFleetSettings({}, "drivergigspro")).toThrow(/drivergigspro:servers: /);
  });
});

describe("tenant identity: resources keyed by the tenant ID (issue 17)", () => {
  it("names a tenant with an allocated ID by that ID, with no RandomId, its marker naming tenant and stack", async () => {
    await deploy(settings(), [tenant("john_driver", { tenantId: "A1B2C3D4" })]);
    expect(ofType(T.tenant).map((resource) => [resource.name, resource.aliases])).toEqual([["A1B2C3D4", ["john_driver"]]]);
    expect(ofType(T.randomId)).toHaveLength(0);
    expect(ofType(T.role).map((resource) => resource.name)).toEqual(["A1B2C3D4-role"]);
    const [marker] = ofType(MARKER);
    expect(marker!.inputs).toMatchObject({ tenantId: "A1B2C3D4", stack: "test", role: "drivergigspro_a1b2c3d4", database: "drivergigspro_a1b2c3d4" });
  });

  it("renames a tenant an older program deployed (by username) to its ID with the username as alias, keeping its RandomId", async () => {
    const fleet = declareFleet(settings(), [tenant("john_driver")], { john_driver: deployedOn("local", "0A0A0A0A") });
    await valueOf(fleet.connections);
    await settle();
    expect(ofType(T.tenant).map((resource) => [resource.name, resource.aliases])).toEqual([["0A0A0A0A", ["john_driver"]]]);
    // Kept (a delete would show in the upgrade's preview); its ID is the deployed one whatever it draws.
    expect(ofType(T.randomId).map((resource) => resource.name)).toEqual(["0A0A0A0A-id"]);
    expect(await valueOf(fleet.tenants.john_driver!.tenantId)).toBe("0A0A0A0A");
    expect(fleet.tenants.john_driver!.randomId).toBe(true);
  });

  it("declares no RandomId for a tenant whose last update had none (randomId: false)", async () => {
    const fleet = declareFleet(settings(), [tenant("john_driver", { tenantId: "0A0A0A0A" })], {
      john_driver: { ...deployedOn("local", "0A0A0A0A"), randomId: false },
    });
    await valueOf(fleet.connections);
    await settle();
    expect(ofType(T.randomId)).toHaveLength(0);
    expect(fleet.tenants.john_driver!.randomId).toBe(false);
  });

  it("builtin provider: role and database carry the tenant ID and stack (their marker) and adopt only this stack's older objects", async () => {
    const fleet = declareFleet(
      settings({ databaseProvider: "builtin" }),
      [tenant("ann_driver", { tenantId: "0A0A0A0A", status: "active" }), tenant("new_one", { tenantId: "0C0C0C0C" })],
      {
        ann_driver: { ...deployedOn("local", "0A0A0A0A"), status: "removed" },
      },
    );
    await valueOf(fleet.connections);
    await settle();
    const roles = declared.filter((resource) => resource.type.endsWith(":Role"));
    expect(roles.map((role) => [role.name, role.inputs.tenantId, role.inputs.stack, role.inputs.adoptLegacy])).toEqual([
      ["0A0A0A0A-role", "0A0A0A0A", "test", true],
      ["0C0C0C0C-role", "0C0C0C0C", "test", false],
    ]);
    const databases = declared.filter((resource) => resource.type.endsWith(":Database"));
    expect(databases.map((database) => [database.inputs.tenantId, database.inputs.stack])).toEqual([
      ["0A0A0A0A", "test"],
      ["0C0C0C0C", "test"],
    ]);
  });

  it("refuses an ID this stack deployed for another tenant, naming both tenants and lines, declaring nothing", () => {
    const deployed = { john_driver: deployedOn("local", "A1B2C3D4") };
    expect(() => declareFleet(settings(), [tenant("john_driver", { line: 2 }), tenant("collider", { line: 5, tenantId: "A1B2C3D4" })], deployed)).toThrow(
      /tenants\.yaml:5: tenant "collider": tenantId A1B2C3D4 belongs to tenant "john_driver" \(line 2 of this file, deployed by this stack as database drivergigspro_a1b2c3d4\)/,
    );
    expect(declared).toHaveLength(0);
  });
});

describe("explicit offboarding", () => {
  it("fails naming the tenant, its ID and the file when a deployed tenant is missing, declaring nothing", () => {
    const deployed = { ann_driver: deployedOn("local", "0A0A0A0A"), bob_driver: deployedOn("local", "0B0B0B0B") };
    expect(() => declareFleet(settings(), [tenant("bob_driver"), tenant("new_driver", { line: 3 })], deployed)).toThrow(
      /tenants\.yaml: tenant "ann_driver": tenant 0A0A0A0A \(database drivergigspro_0a0a0a0a\) was deployed by the last update but has no entry in this file;.*npm run tenants -- remove ann_driver/,
    );
    expect(declared).toHaveLength(0);
  });

  it("declares nothing for a tombstone but keeps it in the outputs with its tenant ID and database", async () => {
    const deployed = { ann_driver: deployedOn("local", "0A0A0A0A"), bob_driver: deployedOn("local", "0B0B0B0B") };
    const fleet = declareFleet(settings(), [tenant("ann_driver", { status: "removed" }), tenant("bob_driver")], deployed);
    await valueOf(fleet.connections);
    await settle();
    expect(ofType(T.tenant).map((resource) => resource.name)).toEqual(["0B0B0B0B"]);
    expect(fleet.tenants.ann_driver!.status).toBe("removed");
    expect(await valueOf(fleet.tenants.ann_driver!.tenantId)).toBe("0A0A0A0A");
    expect(await valueOf(fleet.tenants.ann_driver!.database)).toBe("drivergigspro_0a0a0a0a");
    expect(Object.keys(await valueOf(fleet.connections))).toEqual(["bob_driver"]);
  });

  it("brings a tombstoned tenant back only with its tenant ID pinned, onto its kept database", async () => {
    const deployed = { ann_driver: { ...deployedOn("local", "0A0A0A0A"), status: "removed" } };
    expect(() => declareFleet(settings(), [tenant("ann_driver", { line: 4 })], deployed)).toThrow(
      /tenants\.yaml:4: tenant "ann_driver": was offboarded as tenant 0A0A0A0A; to bring it back onto its kept database write tenantId: 0A0A0A0A/,
    );
    expect(declared).toHaveLength(0);
    const fleet = declareFleet(settings(), [tenant("ann_driver", { tenantId: "0A0A0A0A" })], deployed);
    await valueOf(fleet.connections);
    await settle();
    expect(ofType(T.randomId)).toHaveLength(0);
    expect(await valueOf(fleet.tenants.ann_driver!.database)).toBe("drivergigspro_0a0a0a0a");
  });
});

describe("adoption with the postgresql provider (infra/adoption.ts)", () => {
  it("imports the kept role and database of a returning tenant, settings as found, and leaves its seed to the next update", async () => {
    const deployed = { ann_driver: { ...deployedOn("local", "0A0A0A0A"), status: "removed" } };
    const adoptions = new Map([["ann_driver", { name: "drivergigspro_0a0a0a0a", role: true, database: true }]]);
    const fleet = declareFleet(settings(), [tenant("ann_driver", { tenantId: "0A0A0A0A" }), tenant("bob_driver")], deployed, undefined, adoptions);
    await valueOf(fleet.connections);
    await settle();
    const [role] = ofType(T.role).filter((resource) => resource.name === "0A0A0A0A-role");
    const [database] = ofType(T.database).filter((resource) => resource.name === "0A0A0A0A-database");
    expect(role).toMatchObject({ importId: "drivergigspro_0a0a0a0a", retainOnDelete: true });
    expect(role!.ignoreChanges).toEqual(expect.arrayContaining(["password", "login", "connectionLimit"]));
    expect(role!.ignoreChanges).not.toContain("name");
    expect(database).toMatchObject({ importId: "drivergigspro_0a0a0a0a" });
    expect(database!.ignoreChanges).toEqual(expect.arrayContaining(["owner", "connectionLimit"]));
    // The other tenant is created as usual and seeded; the adopted one waits for the next update.
    expect(ofType(T.role).find((resource) => resource.name === "bob_driver-role")).toMatchObject({ importId: "" });
    expect(ofType(T.seed).map((resource) => resource.name)).toEqual(["bob_driver-catalogue"]);
    expect(fleet.adopted).toEqual(["ann_driver"]);
  });

  it("imports only what exists (a database without its role)", async () => {
    const adoptions = new Map([["ann_driver", { name: "drivergigspro_0a0a0a0a", role: false, database: true }]]);
    await valueOf(declareFleet(settings(), [tenant("ann_driver", { tenantId: "0A0A0A0A" })], {}, undefined, adoptions).connections);
    await settle();
    expect(ofType(T.role)[0]).toMatchObject({ importId: "" });
    expect(ofType(T.database)[0]).toMatchObject({ importId: "drivergigspro_0a0a0a0a" });
  });

  it("grants on one database run one after the other, never at once (tuple concurrently updated)", async () => {
    await deploy(settings(), [tenant("john_driver")]);
    const grants = ofType(T.grant).filter((resource) => resource.name.startsWith("john_driver-"));
    const revoke = grants.find((resource) => resource.name === "john_driver-revoke-public")!;
    const connect = grants.find((resource) => resource.name === "john_driver-connect")!;
    expect(connect.dependencies).toEqual(expect.arrayContaining([expect.stringMatching(/::john_driver-revoke-public$/)]));
    expect(revoke.dependencies ?? []).not.toEqual(expect.arrayContaining([expect.stringMatching(/::john_driver-connect$/)]));
  });

  it("has no candidates for the builtin provider, or for tenants the last update deployed, or without a pinned ID", () => {
    const deployed = { kept: deployedOn("local", "0C0C0C0C"), gone: { ...deployedOn("local", "0D0D0D0D"), status: "removed" } };
    const tenants = [
      tenant("kept", { tenantId: "0C0C0C0C" }),
      tenant("gone", { tenantId: "0D0D0D0D" }),
      tenant("pinned", { tenantId: "0E0E0E0E" }),
      tenant("fresh"),
      tenant("leaving", { status: "removed", tenantId: "0F0F0F0F" }),
    ];
    expect(adoptionCandidates(settings(), tenants, deployed).map((candidate) => [candidate.username, candidate.name, candidate.server.name])).toEqual([
      ["gone", "drivergigspro_0d0d0d0d", "local"],
      ["pinned", "drivergigspro_0e0e0e0e", "local"],
    ]);
    expect(adoptionCandidates(settings({ databaseProvider: "builtin" }), tenants, deployed)).toEqual([]);
    // A killed update's pending create names an unpinned tenant's objects; deployed tenants are never candidates.
    const pending = { fresh: "drivergigspro_01010101", kept: "drivergigspro_0c0c0c0c" };
    expect(adoptionCandidates(settings(), tenants, deployed, pending).map((candidate) => [candidate.username, candidate.name])).toEqual([
      ["gone", "drivergigspro_0d0d0d0d"],
      ["pinned", "drivergigspro_0e0e0e0e"],
      ["fresh", "drivergigspro_01010101"],
    ]);
  });

  it("reads the pending adoptions a deployment path hands over, and refuses anything but usernames to role names", () => {
    expect(pendingAdoptionsFromEnv("drivergigspro", {})).toEqual({});
    expect(pendingAdoptionsFromEnv("drivergigspro", { DGP_ADOPT_PENDING: '{"ann_driver":"drivergigspro_0a0a0a0a"}' })).toEqual({
      ann_driver: "drivergigspro_0a0a0a0a",
    });
    expect(() => pendingAdoptionsFromEnv("drivergigspro", { DGP_ADOPT_PENDING: '{"ann":"x; DROP ROLE y"}' })).toThrow(
      /DGP_ADOPT_PENDING must map usernames to role names/,
    );
  });

  it("an unpinned tenant adopts only the object its own tenant ID names", () => {
    expect(adoptedName("fresh", "drivergigspro_01010101", "drivergigspro_01010101")).toBe("drivergigspro_01010101");
    expect(() => adoptedName("fresh", "drivergigspro_01010101", "drivergigspro_3c5a40ea")).toThrow(
      /tenant "fresh": asked to adopt "drivergigspro_01010101" but its tenant ID makes "drivergigspro_3c5a40ea"/,
    );
  });
});

describe("the warm pool (issue 18): pooled tenants", () => {
  const RFC2136 = "pulumi-nodejs:dynamic/drivergigspro-dns:Rfc2136Record";
  const rfc2136 = {
    provider: "rfc2136",
    zone: "fleet.example",
    server: "ns1.fleet.example",
    keyName: "dgp-fleet",
    keySecret: Buffer.alloc(32, 9).toString("base64"),
    target: "ingress.fleet.example",
  };
  const pooled = (tenantId: string): LocatedTenant => ({ username: tenantId, tenantId, status: "pooled", line: 3 });

  it("declares a pooled tenant in full (role that logs in, database, secrets, seed at the stable release) with no DNS record and no domain", async () => {
    const fleet = await deploy(settings({ dns: rfc2136 }), [tenant("john_driver", { tenantId: "A1B2C3D4" }), pooled("0F0F0F0F")]);
    expect(
      ofType(T.tenant)
        .map((resource) => resource.name)
        .sort(),
    ).toEqual(["0F0F0F0F", "A1B2C3D4"]);
    expect(Object.fromEntries(ofType(T.role).map((role) => [role.name, role.inputs.login]))).toEqual({ "A1B2C3D4-role": true, "0F0F0F0F-role": true });
    expect(
      ofType(T.database)
        .map((database) => database.inputs.name)
        .sort(),
    ).toEqual(["drivergigspro_0f0f0f0f", "drivergigspro_a1b2c3d4"]);
    expect(ofType(T.password).map((password) => password.name)).toContain("0F0F0F0F-session-secret");
    expect(
      ofType(T.seed)
        .map((seed) => seed.name)
        .sort(),
    ).toEqual(["0F0F0F0F-catalogue", "A1B2C3D4-catalogue"]);
    expect(await valueOf(fleet.tenants["0F0F0F0F"]!.seedVersion!)).toBe(fleet.seedRollout.stable);
    expect(ofType(RFC2136).map((record) => record.name)).toEqual(["A1B2C3D4-dns"]);
    const summary = fleet.tenants["0F0F0F0F"]!;
    expect([summary.username, summary.status, summary.domain, await valueOf(summary.tenantId)]).toEqual(["0F0F0F0F", "pooled", "", "0F0F0F0F"]);
    const connections = await valueOf(fleet.connections);
    expect(Object.keys(connections).sort()).toEqual(["0F0F0F0F", "john_driver"]);
  });

  it("a claimed entry keeps the pooled tenant's resources (same names, no RandomId) and gains only its DNS record", async () => {
    const deployed = { "0F0F0F0F": { ...deployedOn("local", "0F0F0F0F"), status: "pooled", randomId: false } };
    const claimed = tenant("maria_k", { tenantId: "0F0F0F0F" });
    const bound = withClaimsBound([claimed], deployed);
    expect(Object.keys(bound)).toEqual(["maria_k"]);
    const fleet = declareFleet(settings({ dns: rfc2136 }), [claimed], bound);
    await valueOf(fleet.connections);
    await settle();
    expect(ofType(T.tenant).map((resource) => resource.name)).toEqual(["0F0F0F0F"]);
    expect(ofType(T.randomId)).toEqual([]);
    expect(ofType(RFC2136).map((record) => [record.name, record.inputs.name])).toEqual([["0F0F0F0F-dns", "maria-k-drivergigspro.fleet.example"]]);
    expect(fleet.tenants.maria_k!.status).toBe("active");
  });

  it("with @pulumi/postgresql (useBuiltinProvider false) a pooled entry declares what an active tenant declares (role, database, grants, schema, marker), with the same inputs, and no DNS record", async () => {
    const cloudflare = { provider: "cloudflare", zone: "drivergigspro.app", zoneId: "z1", target: "ingress.drivergigspro.app" };
    const config = settings({ databaseProvider: "postgresql", dns: cloudflare });
    expect(config.databaseProvider).toBe("postgresql");
    await deploy(config, [tenant("john_driver", { tenantId: "A1B2C3D4" }), pooled("0F0F0F0F")]);
    const of = (id: string) =>
      declared
        .filter((resource) => resource.name.startsWith(`${id}-`))
        .map((resource) => `${resource.type} ${resource.name.slice(id.length)}`)
        .sort();
    // The active tenant's list less its DNS record is exactly the pooled one's.
    expect(of("A1B2C3D4")).toContain(`${T.dns} -dns`);
    expect(of("0F0F0F0F")).toEqual(of("A1B2C3D4").filter((resource) => resource !== `${T.dns} -dns`));
    expect(of("0F0F0F0F")).toEqual(
      expect.arrayContaining([
        `${T.role} -role`,
        `${T.database} -database`,
        `${T.grant} -connect`,
        `${T.grant} -revoke-public`,
        `${T.schema} -schema-public`,
        `${MARKER} -marker`,
      ]),
    );
    expect(ofType(T.dns).map((record) => record.name)).toEqual(["A1B2C3D4-dns"]);
    // Same inputs but for the names the tenant ID gives (role, database, marker text).
    const inputsOf = (id: string, suffix: string) =>
      JSON.parse(
        JSON.stringify(declared.find((resource) => resource.name === `${id}${suffix}`)!.inputs)
          .replaceAll(id.toLowerCase(), "<id>")
          .replaceAll(id, "<ID>"),
      ) as unknown;
    for (const suffix of ["-role", "-database", "-connect", "-revoke-public", "-schema-public", "-marker", "-temp-file-limit"]) {
      const { password: _pooledPassword, ...pooledInputs } = inputsOf("0F0F0F0F", suffix) as Record<string, unknown>;
      const { password: _activePassword, ...activeInputs } = inputsOf("A1B2C3D4", suffix) as Record<string, unknown>;
      expect([suffix, pooledInputs]).toEqual([suffix, activeInputs]);
    }
    // The marker names the tenant and the stack, so a claim or a later adoption finds its own objects.
    expect(ofType(MARKER).find((marker) => marker.name === "0F0F0F0F-marker")!.inputs).toMatchObject({
      tenantId: "0F0F0F0F",
      stack: "test",
      role: "drivergigspro_0f0f0f0f",
      database: "drivergigspro_0f0f0f0f",
    });
  });

  it("the tombstone of a pooled entry (tenantId + status: removed) declares nothing and keeps its outputs by tenant ID", async () => {
    const deployed = { "0F0F0F0F": { ...deployedOn("local", "0F0F0F0F"), status: "pooled", randomId: false } };
    const fleet = declareFleet(settings(), [tenant("john_driver", { tenantId: "A1B2C3D4" }), { ...pooled("0F0F0F0F"), status: "removed" }], deployed);
    await valueOf(fleet.connections);
    await settle();
    expect(declared.filter((resource) => resource.name.startsWith("0F0F0F0F"))).toEqual([]);
    expect(fleet.tenants["0F0F0F0F"]).toMatchObject({ status: "removed", domain: "" });
    expect(await valueOf(fleet.tenants["0F0F0F0F"]!.database)).toBe("drivergigspro_0f0f0f0f");
  });

  it("a pooled record is bound only to an entry with its tenant ID; a pooled tenant missing from the file fails the update", () => {
    const deployed = { "0F0F0F0F": { ...deployedOn("local", "0F0F0F0F"), status: "pooled" } };
    expect(Object.keys(withClaimsBound([tenant("maria_k", { tenantId: "0E0E0E0E" })], deployed))).toEqual(["0F0F0F0F"]);
    expect(Object.keys(withClaimsBound([pooled("0F0F0F0F")], deployed))).toEqual(["0F0F0F0F"]);
    expect(() => declareFleet(settings(), [tenant("maria_k", { tenantId: "0E0E0E0E" })], deployed)).toThrow(/tenant 0F0F0F0F .* has no entry in this file/);
  });
});

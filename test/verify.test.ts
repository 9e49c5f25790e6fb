/**
 * verify-tenant-isolation against a real PostgreSQL: it passes on a healthy
 * fleet and catches each kind of breakage, naming the broken tenant's ID.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { escapeIdentifier } from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { createPrivateDatabase } from "../onboarding/db";
import { tenantsCreatedBetween, verifyFleet, verifyIsolation, type ProbeResult, type TenantUnderTest } from "../verify/probes";
import { queryAsAdmin, seededTenantUnderTest, type TestTenant } from "../harness/tenant-databases";

let server: LocalPostgres;
let tenants: TestTenant[];
let underTest: TenantUnderTest[];

/** Each test's tenants have this connection limit, unless it changes it. */
const LIMIT = 5;
/** And this temp_file_limit (small, so the probe's query reaches it at once). */
const TEMP_LIMIT = "8MB";

beforeAll(async () => {
  server = await startLocalPostgres();
  // A hardened server: no tenant may open the databases every cluster has.
  await asAdmin("REVOKE CONNECT, TEMPORARY ON DATABASE postgres FROM PUBLIC");
  await asAdmin("REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC");
});
afterAll(async () => {
  await server?.stop();
});

beforeEach(async () => {
  const seeded = [];
  for (let i = 0; i < 3; i++) seeded.push(await seededTenantUnderTest(server, i));
  tenants = seeded.map((entry) => entry.tenant);
  underTest = seeded.map((entry) => entry.underTest);
  for (const tenant of tenants) {
    await asAdmin(`ALTER ROLE ${escapeIdentifier(tenant.role)} CONNECTION LIMIT ${LIMIT}`);
    await asAdmin(`ALTER ROLE ${escapeIdentifier(tenant.role)} SET temp_file_limit = '${TEMP_LIMIT}'`);
  }
});

// Every test leaves the server as it found it: no database of an earlier test is a "non-tenant" one to the next.
afterEach(async () => {
  for (const tenant of tenants) {
    await asAdmin(`DROP DATABASE IF EXISTS ${escapeIdentifier(tenant.database)} WITH (FORCE)`);
    await asAdmin(`DROP ROLE IF EXISTS ${escapeIdentifier(tenant.role)}`);
  }
});

/** A row in the tenant's `users`, as the app would write once someone signs in. */
async function addUser(tenant: TestTenant): Promise<void> {
  const columns = await queryAsAdmin<{ column_name: string }>(
    tenant,
    "SELECT column_name FROM information_schema.columns WHERE table_name = 'users' AND is_nullable = 'NO' AND column_default IS NULL",
  );
  const values = columns.map((_, i) => `'probe-${i}'`).join(", ");
  await queryAsAdmin(tenant, `INSERT INTO users (${columns.map((c) => escapeIdentifier(c.column_name)).join(", ")}) VALUES (${values})`);
}

const failures = (results: ProbeResult[]) => results.filter((result) => !result.ok).map((result) => `${result.tenantId} ${result.probe}: ${result.detail}`);

async function asAdmin(sql: string) {
  const admin = await server.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

describe("a healthy fleet", () => {
  it("passes every probe for every tenant", async () => {
    const results = await verifyIsolation(underTest);
    expect(failures(results)).toEqual([]);
    const probes = new Set(results.map((result) => result.probe));
    expect([...probes].sort()).toEqual([
      "PUBLIC has no CONNECT",
      "cannot connect to non-tenant databases",
      "cannot connect to other tenants",
      "cannot create databases",
      "cannot create roles",
      "cannot take control-plane locks",
      "catalogue loaded",
      "connection limit enforced",
      "connects to own database",
      "new tenant has no users",
      "no CONNECT on other tenants",
      "role has no special powers",
      "session secret unique",
      "temporary files bounded",
    ]);
    expect(results).toHaveLength(3 * probes.size);
  });
});

describe("each breakage is caught, naming the tenant", () => {
  it("GRANT CONNECT ... TO PUBLIC on one tenant database", async () => {
    const victim = tenants[1]!;
    await asAdmin(`GRANT CONNECT ON DATABASE ${escapeIdentifier(victim.database)} TO PUBLIC`);
    const failed = failures(await verifyIsolation(underTest));
    expect(failed).toContain(`${victim.tenantId} PUBLIC has no CONNECT: PUBLIC can connect`);
    // And the other tenants can now get in, which the connection probe sees too.
    expect(failed).toContain(`${tenants[0]!.tenantId} cannot connect to other tenants: connected to ${victim.tenantId} (${victim.database})`);
    expect(failed).toContain(`${tenants[2]!.tenantId} no CONNECT on other tenants: may connect to ${victim.database}`);
  });

  it("a tenant role made superuser", async () => {
    const victim = tenants[2]!;
    await asAdmin(`ALTER ROLE ${escapeIdentifier(victim.role)} SUPERUSER`);
    const failed = failures(await verifyIsolation(underTest));
    expect(failed).toContain(`${victim.tenantId} role has no special powers: has rolsuper`);
    expect(failed).toContain(`${victim.tenantId} cannot create databases: CREATE DATABASE dgp_isolation_probe succeeded`);
    const leftovers = await queryAsAdmin(victim, "SELECT 1 FROM pg_database WHERE datname = 'dgp_isolation_probe'");
    expect(leftovers).toEqual([]); // the probe cleaned up after itself
  });

  it("a missing catalogue", async () => {
    const victim = tenants[0]!;
    await queryAsAdmin(victim, "UPDATE companies SET is_active = false WHERE id % 2 = 0");
    const failed = failures(await verifyIsolation(underTest));
    expect(failed).toEqual([expect.stringMatching(new RegExp(`^${victim.tenantId} catalogue loaded: \\d+ active companies \\(need 400\\)$`))]);
  });

  it("a reused session secret", async () => {
    underTest[2] = { ...underTest[2]!, sessionSecret: underTest[0]!.sessionSecret };
    const failed = failures(await verifyIsolation(underTest));
    expect(failed).toEqual(
      [
        `${tenants[0]!.tenantId} session secret unique: shared with ${tenants[2]!.tenantId}`,
        `${tenants[2]!.tenantId} session secret unique: shared with ${tenants[0]!.tenantId}`,
      ].sort(),
    );
  });

  it("a users row in a new tenant, but not in one that has been live", async () => {
    const victim = tenants[1]!;
    await addUser(victim);
    const failed = failures(await verifyIsolation(underTest));
    expect(failed).toEqual([`${victim.tenantId} new tenant has no users: 1 row(s) in users`]);

    const live = underTest.map((tenant) => ({ ...tenant, isNew: tenant.tenantId !== victim.tenantId }));
    const results = await verifyIsolation(live);
    expect(failures(results)).toEqual([]);
    expect(
      results
        .filter((result) => result.probe === "new tenant has no users")
        .map((result) => result.tenantId)
        .sort(),
    ).toEqual([tenants[0]!.tenantId, tenants[2]!.tenantId].sort());
  });

  it("a tenant whose password no longer works", async () => {
    underTest[0] = { ...underTest[0]!, databaseUrl: underTest[0]!.databaseUrl.replace(/:[^:@/]+@/, ":wrong@") };
    const failed = failures(await verifyIsolation(underTest));
    const id = tenants[0]!.tenantId;
    expect(failed).toEqual([
      expect.stringMatching(new RegExp(`^${id} cannot connect to non-tenant databases: could not log in to try it: .*password authentication failed`)),
      expect.stringMatching(new RegExp(`^${id} cannot take control-plane locks: could not log in to try it: .*password authentication failed`)),
      expect.stringMatching(new RegExp(`^${id} connection limit enforced: could not log in to try it: .*password authentication failed`)),
      expect.stringMatching(new RegExp(`^${id} connects to own database: .*password authentication failed`)),
      expect.stringMatching(new RegExp(`^${id} no CONNECT on other tenants: .*password authentication failed`)),
      expect.stringMatching(new RegExp(`^${id} temporary files bounded: could not log in to try it: .*password authentication failed`)),
    ]);
  });
});

describe("attack probes, run as each tenant", () => {
  it("a tenant that can reach postgres fails, naming its tenant ID; after REVOKE CONNECT it passes", async () => {
    await asAdmin("GRANT CONNECT ON DATABASE postgres TO PUBLIC");
    try {
      const failed = failures(await verifyIsolation(underTest));
      for (const tenant of tenants) {
        expect(failed).toContain(`${tenant.tenantId} cannot connect to non-tenant databases: connected to postgres`);
        // Any database a tenant gets into may be the control plane's: it took the service's lock classes there.
        expect(failed).toContain(`${tenant.tenantId} cannot take control-plane locks: took advisory lock class 3435, 3436 in postgres`);
      }
      expect(failed).toHaveLength(2 * tenants.length);
    } finally {
      await asAdmin("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC");
    }
    const results = await verifyIsolation(underTest);
    expect(failures(results)).toEqual([]);
    const refused = results.find((result) => result.probe === "cannot connect to non-tenant databases")!;
    expect(refused.detail).toMatch(/^refused by \d+ of \d+ \(.*postgres.*template1/);
  });

  it("reaches no onboarding control database made private; one left open to PUBLIC is named with the locks taken in it", async () => {
    await asAdmin("CREATE DATABASE verify_probe_control");
    try {
      const failed = failures(await verifyIsolation(underTest.slice(0, 1)));
      expect(failed).toEqual([
        `${tenants[0]!.tenantId} cannot connect to non-tenant databases: connected to verify_probe_control`,
        `${tenants[0]!.tenantId} cannot take control-plane locks: took advisory lock class 3435, 3436 in verify_probe_control`,
      ]);
      // What the local onboarding service (npm run serve:local) does.
      await createPrivateDatabase(server.url(), "verify_probe_control");
      expect(failures(await verifyIsolation(underTest.slice(0, 1)))).toEqual([]);
    } finally {
      await asAdmin("DROP DATABASE verify_probe_control WITH (FORCE)");
    }
  });

  it("a role with CONNECTION LIMIT 3 passes and shows 3; one with no limit (-1) fails", async () => {
    const [limited, unlimited] = tenants;
    await asAdmin(`ALTER ROLE ${escapeIdentifier(limited!.role)} CONNECTION LIMIT 3`);
    await asAdmin(`ALTER ROLE ${escapeIdentifier(unlimited!.role)} CONNECTION LIMIT -1`);
    const { results, limits } = await verifyFleet(underTest);
    const limitProbe = (tenant: TestTenant) => results.find((result) => result.tenantId === tenant.tenantId && result.probe === "connection limit enforced")!;
    expect(limitProbe(limited!)).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^limit 3: held [0-3], the next was refused \(.*too many connections for role/),
    });
    expect(failures(results)).toEqual([
      `${unlimited!.tenantId} connection limit enforced: no limit set (rolconnlimit -1): this tenant can take every connection of the server`,
    ]);
    expect(limits.find((limit) => limit.tenantId === limited!.tenantId)).toMatchObject({ connectionLimit: 3 });
    expect(limits.find((limit) => limit.tenantId === unlimited!.tenantId)).toMatchObject({ connectionLimit: null });
    // Every connection the probe opened is closed again.
    const [open] = await queryAsAdmin<{ n: string }>(limited!, "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1", [limited!.role]);
    expect(Number(open!.n)).toBe(0);
  });

  it("temp_file_limit: a query past it is refused in the tenant's own session and its files are gone; none (-1) fails; over the cap is not exercised", async () => {
    await asAdmin(`ALTER ROLE ${escapeIdentifier(tenants[1]!.role)} RESET temp_file_limit`);
    await asAdmin(`ALTER ROLE ${escapeIdentifier(tenants[2]!.role)} SET temp_file_limit = '2GB'`);
    const { results, limits } = await verifyFleet(underTest);
    const probe = (tenant: TestTenant) => results.find((result) => result.tenantId === tenant.tenantId && result.probe === "temporary files bounded")!;
    expect(probe(tenants[0]!)).toMatchObject({
      ok: true,
      detail: `limit ${TEMP_LIMIT}, cannot be lifted; a query past it was refused in its own session (53400)`,
    });
    expect(probe(tenants[1]!)).toMatchObject({ ok: false, detail: expect.stringMatching(/^no temp_file_limit \(-1\)/) });
    expect(probe(tenants[2]!)).toMatchObject({ ok: true, detail: expect.stringMatching(/^limit 2GB, cannot be lifted; not exercised/) });
    expect(limits.map((limit) => limit.tempFileLimit)).toEqual(
      [...tenants]
        .sort((a, b) => a.tenantId.localeCompare(b.tenantId))
        .map((tenant) => ({ [tenants[0]!.tenantId]: TEMP_LIMIT, [tenants[1]!.tenantId]: "-1", [tenants[2]!.tenantId]: "2GB" })[tenant.tenantId]),
    );
    // PostgreSQL removes the refused query's files (just after it answers): the server's disk holds none of them.
    let left: unknown[] = [];
    for (let attempt = 0; attempt < 50; attempt++) {
      const admin = await server.connect();
      left = (await admin.query("SELECT name, size FROM pg_ls_tmpdir()")).rows;
      await admin.end();
      if (left.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(left).toEqual([]);
  });

  it("a limit the server cannot honour (not below max_connections) fails", async () => {
    await asAdmin(`ALTER ROLE ${escapeIdentifier(tenants[2]!.role)} CONNECTION LIMIT 5000`);
    expect(failures(await verifyIsolation(underTest))).toEqual([
      expect.stringMatching(new RegExp(`^${tenants[2]!.tenantId} connection limit enforced: limit 5000 is not below the server's \\d+ usable connections`)),
    ]);
  });
});

describe("tenantsCreatedBetween (which tenants npm start's update created)", () => {
  const outputs = (...ids: [string, string][]) => ({
    tenants: Object.fromEntries(
      ids.map(([username, tenantId]) => [username, { tenantId, username, database: "d", role: "r", domain: "", server: "local", status: "active" }]),
    ),
    connections: {},
  });

  it("is the tenants whose ID was not exported before the update", () => {
    const after = outputs(["old_one", "AAAAAAAA"], ["new_one", "BBBBBBBB"]);
    expect([...tenantsCreatedBetween(outputs(["old_one", "AAAAAAAA"]), after)]).toEqual(["new_one"]);
    expect([...tenantsCreatedBetween({}, after)].sort()).toEqual(["new_one", "old_one"]);
    expect([...tenantsCreatedBetween(undefined, after)].sort()).toEqual(["new_one", "old_one"]);
  });
});

describe("npm run verify", () => {
  function runVerify(outputs: unknown, ...flags: string[]) {
    const file = join(mkdtempSync(join(tmpdir(), "dgp-verify-")), "outputs.json");
    writeFileSync(file, JSON.stringify(outputs));
    return spawnSync(join(__dirname, "..", "node_modules", ".bin", "tsx"), [join(__dirname, "..", "verify", "cli.ts"), "--outputs", file, ...flags], {
      encoding: "utf8",
    });
  }

  function outputsOf(list: TenantUnderTest[]) {
    return {
      tenants: Object.fromEntries(
        list.map((t) => [
          t.username,
          { tenantId: t.tenantId, username: t.username, database: t.database, role: t.database, domain: "", server: "local", status: "active" },
        ]),
      ),
      connections: Object.fromEntries(list.map((t) => [t.username, { databaseUrl: t.databaseUrl, sessionSecret: t.sessionSecret }])),
    };
  }

  it("prints a table and exits 0 on a healthy fleet, JSON with --json", () => {
    const table = runVerify(outputsOf(underTest), "--new", "all");
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/^TENANT ID\s+USERNAME\s+PROBE\s+RESULT\s+DETAIL/);
    expect(table.stdout).toMatch(/3 tenant\(s\), 42 probe\(s\), 0 failed/);
    const json = JSON.parse(runVerify(outputsOf(underTest), "--json", "--new", "all").stdout);
    expect(json.ok).toBe(true);
    expect(json.results).toHaveLength(42);
  });

  it("reports each tenant's limits as its sessions get them, in the table and in --json", async () => {
    await asAdmin(`ALTER ROLE ${escapeIdentifier(tenants[0]!.role)} SET statement_timeout = '30s'`);
    await asAdmin(`ALTER DATABASE ${escapeIdentifier(tenants[0]!.database)} SET idle_in_transaction_session_timeout = '1min'`);
    const table = runVerify(outputsOf(underTest));
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/^TENANT ID\s+USERNAME\s+CONNECTION LIMIT\s+STATEMENT_TIMEOUT\s+IDLE_IN_TRANSACTION_SESSION_TIMEOUT\s+TEMP_FILE_LIMIT$/m);
    expect(table.stdout).toMatch(new RegExp(`^${tenants[0]!.tenantId}\\s+driver_0\\s+${LIMIT}\\s+30s\\s+1min\\s+${TEMP_LIMIT}$`, "m"));
    expect(table.stdout).toMatch(new RegExp(`^${tenants[1]!.tenantId}\\s+driver_1\\s+${LIMIT}\\s+none\\s+none\\s+${TEMP_LIMIT}$`, "m"));
    const json = JSON.parse(runVerify(outputsOf(underTest), "--json").stdout);
    expect(json.limits).toContainEqual({
      tenantId: tenants[0]!.tenantId,
      username: "driver_0",
      connectionLimit: LIMIT,
      statementTimeout: "30s",
      idleInTransactionSessionTimeout: "1min",
      tempFileLimit: TEMP_LIMIT,
    });
    expect(json.limits).toHaveLength(3);
  });

  it("exits 1 with the tenant ID on the failing line", async () => {
    await asAdmin(`ALTER ROLE ${escapeIdentifier(tenants[0]!.role)} CREATEROLE`);
    const result = runVerify(outputsOf(underTest));
    expect(result.status).toBe(1);
    const failing = result.stdout.split("\n").filter((line) => line.includes("FAIL"));
    expect(failing.length).toBeGreaterThan(0);
    for (const line of failing) expect(line.startsWith(tenants[0]!.tenantId)).toBe(true);
  });

  it("expects no users only of the tenants --new names (none by default)", async () => {
    await addUser(tenants[0]!);
    const byDefault = runVerify(outputsOf(underTest));
    expect(byDefault.status).toBe(0);
    expect(byDefault.stdout).toMatch(/3 tenant\(s\), 39 probe\(s\), 0 failed/);
    const named = runVerify(outputsOf(underTest), "--new", underTest[0]!.username);
    expect(named.status).toBe(1);
    expect(named.stdout).toMatch(new RegExp(`^${tenants[0]!.tenantId} .*new tenant has no users.*FAIL.*1 row\\(s\\) in users`, "m"));
  });

  it("rejects a bad flag with exit 2", () => {
    const result = runVerify(outputsOf(underTest), "--bogus");
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/Unknown option '--bogus'/);
  });
});

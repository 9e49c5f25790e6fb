/**
 * The warm pool end to end (issue 18): the real Pulumi engine, a real
 * PostgreSQL and a real BIND. A pooled entry is made in full by `pulumi up`
 * (database, role, catalogue, session secret; no DNS record), verify probes
 * it, and a claim (the entry's username written, the DNS record made the way
 * the provider makes it) is recorded by the next update with nothing but the
 * record created over it: no replace, password and rows kept, and the
 * preview after it is empty. A pooled tenant removed by its tenant ID keeps
 * its data (the preview marks the deletes [retain]), the refill makes a new
 * one, and resume puts the removed one back into the pool on its kept data.
 *
 * The steps share one stack and run in order.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { escapeIdentifier } from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { releaseStaleLock, setStackConfig } from "../../engine/pulumi";
import { upsertRecord } from "../../infra/dns/rfc2136-operations";
import { rfc2136RecordSpec } from "../../infra/dns/rfc2136-record";
import { claimPooledTenant } from "../../tenants/edit";
import { refillPools } from "../../tenants/pool";
import { validateTenantsText } from "../../tenants/load";
import { killUpAt } from "../support/kill-up";
import { tenantsFromOutputs, verifyIsolation } from "../../verify/probes";
import { rfc2136Settings, rfc2136StackConfig, startBind, type LocalBind } from "../../harness/bind";
import { urlQuery } from "../../harness/admin-query";
import { setUpEngineStack, type EngineStack } from "../../harness/engine-stack";

vi.setConfig({ testTimeout: 5 * 60 * 1000 });

const ZONE = "fleet.test";
const TARGET = "127.0.0.1";
const POOLED = "0F0F0F0F";

let bind: LocalBind;
let engine: EngineStack;

beforeAll(
  async () => {
    bind = await startBind(ZONE);
    engine = await setUpEngineStack({
      name: "e2e-pool",
      state: "file",
      config: rfc2136StackConfig(bind, TARGET),
    });
    setStackConfig(engine.context, engine.stack, { "dns.keySecret": bind.keySecret }, { secret: true });
  },
  60 * 60 * 1000,
);

afterAll(async () => {
  await engine?.cleanup();
  await bind?.stop();
});

describe("a warm pool on the real engine", () => {
  let urlBefore = "";

  it("pulumi up makes a pooled tenant in full with no DNS record; outputs and verify show it as pooled; nothing left to change", async () => {
    engine.writeTenants("username: john_driver\n    tenantId: A1B2C3D4", `tenantId: ${POOLED}\n    status: pooled`);
    engine.up();
    const outputs = engine.outputs();
    expect(outputs.tenants[POOLED]).toMatchObject({ username: POOLED, tenantId: POOLED, status: "pooled", domain: "", database: "drivergigspro_0f0f0f0f" });
    urlBefore = outputs.connections[POOLED]!.databaseUrl;
    const [seeded] = await urlQuery<{ active: string; owner: string; users: string }>(
      urlBefore,
      `SELECT (SELECT count(*) FROM companies WHERE is_active) AS active,
              (SELECT tableowner FROM pg_tables WHERE tablename = 'companies') AS owner,
              (SELECT count(*) FROM users) AS users`,
    );
    expect(Number(seeded!.active)).toBeGreaterThanOrEqual(400);
    expect([seeded!.owner, seeded!.users]).toEqual(["drivergigspro_0f0f0f0f", "0"]);
    const [role] = await engine.sql<{ rolcanlogin: boolean }>("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'drivergigspro_0f0f0f0f'");
    expect(role!.rolcanlogin).toBe(true);
    // The only record in the zone is john_driver's: a pooled tenant has no name yet.
    expect(bind.dig(`john-driver-drivergigspro.${ZONE}`)).toEqual([TARGET]);
    const results = await verifyIsolation(tenantsFromOutputs(outputs, () => true));
    expect(results.filter((result) => !result.ok)).toEqual([]);
    expect(new Set(results.map((result) => result.tenantId))).toEqual(new Set(["A1B2C3D4", POOLED]));
    engine.run("preview", "--expect-no-changes");
  });

  it("a claim (username bound in the file, DNS record made as the provider makes it) is recorded by one update: only the record, adopted; password and rows kept", async () => {
    const claimed = claimPooledTenant(readFileSync(engine.tenantsFile, "utf8"), POOLED, { username: "maria_k", email: "maria@example.com" });
    if (!claimed.ok) throw new Error(JSON.stringify(claimed.problems));
    writeFileSync(engine.tenantsFile, claimed.text);
    const domain = `maria-k-drivergigspro.${ZONE}`;
    const dns = rfc2136Settings(bind, TARGET);
    await upsertRecord(rfc2136RecordSpec(dns, domain, POOLED));
    expect(bind.dig(domain)).toEqual([TARGET]);
    await urlQuery(urlBefore, "INSERT INTO users (username, email) VALUES ('maria_k', 'maria@example.com')");

    expect(engine.preview().changes).toEqual([`create ${POOLED}-dns`]);
    engine.up();
    const outputs = engine.outputs();
    expect(outputs.tenants[POOLED]).toBeUndefined();
    expect(outputs.tenants.maria_k).toMatchObject({ tenantId: POOLED, status: "active", domain, database: "drivergigspro_0f0f0f0f" });
    expect(outputs.connections.maria_k!.databaseUrl).toBe(urlBefore);
    expect(bind.dig(domain)).toEqual([TARGET]);
    const kept = await urlQuery<{ username: string }>(urlBefore, "SELECT username FROM users");
    expect(kept).toEqual([{ username: "maria_k" }]);
    engine.run("preview", "--expect-no-changes");
  });

  it("a pooled tenant removed by its tenant ID (npm run tenants -- remove) keeps its data, the preview says so; the refill makes a new one; resume puts it back", async () => {
    // The work folder as a one-shard fleet with a pool of one (tenants/shards.yaml), so the refill is the one the CLI runs.
    mkdirSync(join(engine.workDir, "tenants"), { recursive: true });
    writeFileSync(join(engine.workDir, "tenants", "shards.yaml"), "poolSize: 1\nshards:\n  - name: s001\n    file: tenants.yaml\n");
    const [first] = await refillPools(engine.workDir);
    expect(first!.added).toHaveLength(1);
    const pooled = first!.added[0]!;
    engine.up();
    const made = engine.outputs().tenants[pooled]!;
    expect(made).toMatchObject({ status: "pooled", tenantId: pooled });
    await engine.sql("INSERT INTO sessions (sid, sess, expire) VALUES ('kept', '{}', now())", [], made.database);

    const outputsFile = join(engine.workDir, "outputs.json");
    writeFileSync(outputsFile, engine.run("stack", "output", "--json"));
    const cli = (...args: string[]) =>
      spawnSync(join(__dirname, "..", "..", "node_modules", ".bin", "tsx"), [join(__dirname, "..", "..", "cli", "tenants.ts"), ...args], {
        encoding: "utf8",
      });
    const removed = cli("remove", pooled.toLowerCase(), "--file", engine.tenantsFile, "--outputs", outputsFile);
    expect(removed.stderr).toBe("");
    expect(removed.status).toBe(0);
    expect(removed.stdout).toContain(`database ${made.database} and role are KEPT with all data`);
    expect(readFileSync(engine.tenantsFile, "utf8")).toContain(`  - tenantId: ${pooled}\n    status: removed\n`);
    // The preview names it by its tenant ID and marks its database and role as kept.
    const preview = engine.preview().changes;
    expect(preview).toEqual(expect.arrayContaining([`delete ${pooled}`, `delete ${pooled}-database [retain]`, `delete ${pooled}-role [retain]`]));
    expect(preview.filter((change) => !change.startsWith("delete "))).toEqual([]);
    engine.up();
    expect(await engine.sql("SELECT sid FROM sessions", [], made.database)).toEqual([{ sid: "kept" }]);
    expect(await engine.sql("SELECT 1 FROM pg_roles WHERE rolname = $1", [made.role])).toHaveLength(1);
    const after = engine.outputs();
    expect(after.tenants[pooled]).toMatchObject({ status: "removed", tenantId: pooled, database: made.database });
    expect(Object.keys(after.connections)).not.toContain(pooled);

    // The tombstone holds no room in the pool: the refill makes a new pooled tenant, under a new ID.
    const [second] = await refillPools(engine.workDir);
    expect(second!.added).toHaveLength(1);
    const replacement = second!.added[0]!;
    expect(replacement).not.toBe(pooled);
    engine.up();
    expect(engine.outputs().tenants[replacement]).toMatchObject({ status: "pooled", database: `drivergigspro_${replacement.toLowerCase()}` });
    engine.run("preview", "--expect-no-changes");

    // resume puts the removed one back into the pool on its kept database, rows and all.
    expect(cli("resume", pooled, "--file", engine.tenantsFile).status).toBe(0);
    engine.up();
    const back = engine.outputs();
    expect(back.tenants[pooled]).toMatchObject({ status: "pooled", tenantId: pooled, database: made.database, role: made.role });
    expect(await urlQuery<{ sid: string }>(back.connections[pooled]!.databaseUrl, "SELECT sid FROM sessions")).toEqual([{ sid: "kept" }]);
    engine.run("preview", "--expect-no-changes");
  });

  it("a pooled tenant's drift (role powers, PUBLIC granted CONNECT) shows in preview --refresh and up --refresh repairs it; verify fails a pooled tenant with users", async () => {
    const out = engine.outputs();
    const id = Object.keys(out.tenants).find((key) => out.tenants[key]!.status === "pooled")!;
    const pooled = out.tenants[id]!;
    const url = out.connections[id]!.databaseUrl;
    // Nobody but the stack holds its password, so drift comes from the admin's side.
    await engine.sql(`ALTER ROLE ${escapeIdentifier(pooled.role)} CREATEDB`);
    await engine.sql(`GRANT CONNECT ON DATABASE ${escapeIdentifier(pooled.database)} TO PUBLIC`);
    const drift = engine.preview({ flags: ["--refresh"] }).changes;
    expect(drift).toEqual(expect.arrayContaining([`update ${id}-role`, `update ${id}-revoke-public`]));
    engine.run("up", "--refresh", "--yes", "--skip-preview");
    const [repaired] = await engine.sql<{ createdb: boolean; public: boolean }>(
      "SELECT rolcreatedb AS createdb, has_database_privilege('public', $2, 'CONNECT') AS public FROM pg_roles WHERE rolname = $1",
      [pooled.role, pooled.database],
    );
    expect(repaired).toEqual({ createdb: false, public: false });
    expect(engine.preview({ flags: ["--refresh"] }).changes).toEqual([]);

    // verify probes every pooled tenant as a new one: its users table must be empty.
    const probe = async () => (await verifyIsolation(tenantsFromOutputs(engine.outputs(), () => false))).filter((result) => !result.ok);
    expect(await probe()).toEqual([]);
    await urlQuery(url, "INSERT INTO users (username, email) VALUES ('intruder', 'x@example.com')");
    expect((await probe()).map((result) => [result.tenantId, result.probe])).toEqual([[id, "new tenant has no users"]]);
    await urlQuery(url, "DELETE FROM users");
  });

  it(
    "an update that records claim bindings and refills the pool, SIGKILLed at 3 moments, converges on the next up: no tenant lost, doubled or claimed twice",
    async () => {
      writeFileSync(join(engine.workDir, "tenants", "shards.yaml"), "poolSize: 2\nshards:\n  - name: s001\n    file: tenants.yaml\n");
      const dns = rfc2136Settings(bind, TARGET);
      /** Claimed so far: username to tenant ID and database, with a row of its own. */
      const claimed = new Map<string, { tenantId: string; database: string }>();
      const figures: string[] = [];
      for (const moment of [0, 1, 4]) {
        // A claim as the service makes it (the username bound in the file, the record upserted), a row written, and a refill: one update.
        const before = engine.outputs();
        const id = Object.keys(before.tenants).find((key) => before.tenants[key]!.status === "pooled")!;
        const username = `kill${moment}_user`;
        const bound = claimPooledTenant(readFileSync(engine.tenantsFile, "utf8"), id, { username, email: `${username}@example.com` });
        if (!bound.ok) throw new Error(JSON.stringify(bound.problems));
        writeFileSync(engine.tenantsFile, bound.text);
        await upsertRecord(rfc2136RecordSpec(dns, `kill${moment}-user-drivergigspro.${ZONE}`, id));
        await urlQuery(before.connections[id]!.databaseUrl, `INSERT INTO users (username, email) VALUES ('${username}', 'x@example.com')`);
        claimed.set(username, { tenantId: id, database: before.tenants[id]!.database });
        const [refill] = await refillPools(engine.workDir);
        expect(refill!.added.length).toBeGreaterThan(0);

        const { signal, created, killed, left } = await killUpAt(engine.context, engine.stack, moment);
        expect(left).toEqual([]);
        // Every moment is reached while the update still runs: the kill is real, and so is its lock.
        expect(signal).toBe("SIGKILL");
        expect(await releaseStaleLock(engine.context, engine.stack)).toMatch(/removed the lock left by an interrupted pulumi up/);
        await engine.converge();

        const out = engine.outputs();
        const file = validateTenantsText(readFileSync(engine.tenantsFile, "utf8"));
        if (!file.ok) throw new Error(JSON.stringify(file.problems));
        // Exactly the file's tenants, each once, under its own ID; pooled ones still pooled.
        expect(Object.keys(out.tenants).sort()).toEqual(file.tenants.map((tenant) => tenant.username).sort());
        const ids = Object.values(out.tenants).map((tenant) => tenant.tenantId);
        expect(new Set(ids).size).toBe(ids.length);
        for (const tenant of file.tenants) expect(out.tenants[tenant.username]).toMatchObject({ tenantId: tenant.tenantId, status: tenant.status });
        // Every claimed tenant keeps its username, ID, database and rows; one database per tenant, none doubled.
        for (const [name, was] of claimed) {
          expect(out.tenants[name]).toMatchObject({ tenantId: was.tenantId, database: was.database, status: "active" });
          expect(await urlQuery(out.connections[name]!.databaseUrl, "SELECT username FROM users")).toEqual([{ username: name }]);
        }
        const databases = (await engine.sql<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'drivergigspro\\_%' ORDER BY 1")).map(
          (row) => row.datname,
        );
        expect(databases).toEqual(
          Object.values(out.tenants)
            .map((tenant) => tenant.database)
            .sort(),
        );
        expect(bind.dig(`kill${moment}-user-drivergigspro.${ZONE}`)).toEqual([TARGET]);
        figures.push(`moment ${moment}: ${signal} after ${created} created, ${killed.length} processes killed, converged`);
      }
      engine.run("preview", "--expect-no-changes");
      const results = await verifyIsolation(tenantsFromOutputs(engine.outputs(), () => false));
      expect(results.filter((result) => !result.ok)).toEqual([]);
      console.log(figures.join("\n"));
    },
    15 * 60 * 1000,
  );
});

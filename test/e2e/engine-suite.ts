/**
 * The end-to-end suite, once per PostgreSQL major: engine.test.ts runs it on
 * the embedded server (or E2E_POSTGRES), engine-pg15.test.ts on Debian's 15.
 *
 * End to end with the real Pulumi engine (built by toolchain/build.sh) on a
 * local file backend, against a real PostgreSQL started here. Every check of
 * the result is plain SQL through `pg`, not the program's own code.
 *
 * The steps share one stack and run in order, like a tenant's life:
 * create, no-op, add, suspend/resume, remove (kept), purge, destroy.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { escapeIdentifier } from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { bundledPostgresMajor, type LocalPostgres } from "../../local/embedded-postgres";
import { PROJECT_DIR, projectName } from "../../engine/paths";
import { onPath, releaseStaleLock, setStackConfig, spawnPulumi, type PulumiContext } from "../../engine/pulumi";
import { STATE_DATABASE } from "../../engine/state-backend";
import { canLogInWithUrl } from "../support/can-log-in";
import { cloneCheckout, copyStackConfig } from "../../harness/checkout";
import { setUpEngineStack, type EngineStack, type PulumiArg } from "../../harness/engine-stack";
import { killTree } from "../support/process-tree";
import { killUpAt } from "../support/kill-up";
import { tenantsFromOutputs, verifyIsolation } from "../../verify/probes";
import { serverMajor, startTestPostgres, type PostgresKind } from "../support/test-postgres";

/** The major the suite expects, known before the server starts so that the title can name it. */
function majorOf(kind: PostgresKind): string {
  return kind === "embedded" ? bundledPostgresMajor() : kind;
}

export function defineEngineSuite(kind: PostgresKind): void {
  const major = majorOf(kind);
  // The same promises whichever provider runs: the upstream plugin where the engine finds one, else the builtin.
  const provider = onPath("pulumi-resource-postgresql") ? "postgresql" : "builtin";
  const serverKind = kind === "embedded" ? "embedded-postgres" : "Debian's postgresql-" + kind;
  describe(`end to end on PostgreSQL ${major} (${serverKind}), databaseProvider ${provider}`, () => {
    // Every step is one or more real `pulumi up`s; a slow machine may need minutes.
    vi.setConfig({ testTimeout: 5 * 60 * 1000 });

    let engine: EngineStack;
    let server: LocalPostgres;
    let context: PulumiContext;
    let stack: string;
    const tenantsFile = () => engine.tenantsFile;
    const writeTenants = (...entries: string[]) => engine.writeTenants(...entries);
    const run = (...args: PulumiArg[]) => engine.run(...args);
    /** Every update as the deployment paths run it (engine/converge.ts), so both providers keep the same promises. */
    const up = (cwd?: string) => engine.converge(cwd);
    const outputs = () => engine.outputs();
    const sql = <T = Record<string, unknown>>(query: string, values?: unknown[], database?: string) => engine.sql<T>(query, values, database);
    /** The preview's changes (see EngineStack.preview), from the project folder or from another checkout. */
    const previewChanges = (cwd?: string) => engine.preview({ flags: ["--diff"], cwd }).changes;
    const logIn = canLogInWithUrl;

    /** Tenants offboarded along the way: their tombstones stay in every later file. */
    const TOMBSTONES = ["username: sam-courier\n    status: removed", "username: new_driver\n    status: removed"];
    /** A second checkout of the project in another folder (see cloneCheckout). */
    let clone: string;

    function setConfig(path: string, value: string, secret = false): void {
      setStackConfig(context, stack, { [path]: value }, { secret });
    }

    async function tenantDatabases(): Promise<string[]> {
      const rows = await sql<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'drivergigspro\\_%' ORDER BY 1");
      return rows.map((row) => row.datname);
    }

    beforeAll(
      async () => {
        // State in PostgreSQL, on the tenants' server but in a database no tenant can open.
        engine = await setUpEngineStack({ name: `e2e${kind === "embedded" ? "" : `-pg${kind}`}`, startPostgres: () => startTestPostgres(kind) });
        ({ server, context, stack } = engine);
        expect(await serverMajor(server)).toBe(major);
        expect(engine.databaseProvider).toBe(provider);
        console.log(`end-to-end suite: PostgreSQL ${major}, databaseProvider ${provider}`);
      },
      60 * 60 * 1000,
    );

    afterAll(async () => {
      if (clone) rmSync(join(clone, ".."), { recursive: true, force: true });
      await engine?.cleanup();
    });

    describe("pulumi up with three tenants", () => {
      it("creates three isolated databases, each owned by the admin and open only to its own role, with PUBLIC revoked", async () => {
        writeTenants("username: john_driver", "username: maria_k", "username: sam-courier");
        await up();
        const out = outputs();
        expect(Object.keys(out.tenants).sort()).toEqual(["john_driver", "maria_k", "sam-courier"]);

        const databases = await sql<{ datname: string; owner: string; public_connect: boolean }>(
          `SELECT d.datname, pg_get_userbyid(d.datdba) AS owner,
                  EXISTS (SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                          WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT') AS public_connect
           FROM pg_database d WHERE d.datname LIKE 'drivergigspro\\_%' ORDER BY 1`,
        );
        expect(databases).toHaveLength(3);
        for (const database of databases) {
          // Owned by the admin, so the tenant cannot alter, drop or grant on it (README "Security").
          expect(database.owner).toBe(server.adminUser);
          expect(database.public_connect).toBe(false);
        }
        const roles = await sql<Record<string, unknown>>(
          `SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls
           FROM pg_roles WHERE rolname LIKE 'drivergigspro\\_%' ORDER BY 1`,
        );
        expect(roles).toEqual(
          databases.map((database) => ({
            rolname: database.datname,
            rolcanlogin: true,
            rolsuper: false,
            rolcreatedb: false,
            rolcreaterole: false,
            rolreplication: false,
            rolbypassrls: false,
          })),
        );

        for (const [username, connection] of Object.entries(out.connections)) {
          const own = out.tenants[username]!.database;
          expect(await logIn(connection.databaseUrl)).toBe(true);
          for (const other of databases.map((database) => database.datname).filter((name) => name !== own)) {
            expect(await logIn(connection.databaseUrl, other)).toMatch(/permission denied for database/);
          }
        }
      });

      it("seeded every tenant with the catalogue, owned by the tenant, and verify passes", async () => {
        for (const tenant of Object.values(outputs().tenants)) {
          const [row] = await sql<{ active: string; owner: string; users: string }>(
            `SELECT (SELECT count(*) FROM companies WHERE is_active) AS active,
                    (SELECT tableowner FROM pg_tables WHERE tablename = 'companies') AS owner,
                    (SELECT count(*) FROM users) AS users`,
            [],
            tenant.database,
          );
          expect(Number(row!.active)).toBeGreaterThanOrEqual(400);
          expect(row!.owner).toBe(tenant.database);
          expect(Number(row!.users)).toBe(0);
        }
        const results = await verifyIsolation(tenantsFromOutputs(outputs(), () => true));
        expect(results.filter((result) => !result.ok)).toEqual([]);
      });

      it("npm run tenants -- list and show read the deployed stack through the built toolchain, with no pulumi on PATH", () => {
        const cli = (...args: string[]) =>
          execFileSync(
            join(PROJECT_DIR, "node_modules", ".bin", "tsx"),
            [join(PROJECT_DIR, "cli", "tenants.ts"), ...args, "--file", tenantsFile(), "--stack", stack],
            {
              encoding: "utf8",
              env: {
                ...context.env,
                PATH: (process.env.PATH ?? "")
                  .split(":")
                  .filter((dir) => !existsSync(join(dir, "pulumi")))
                  .join(":"),
              },
            },
          );
        const deployed = outputs().tenants;
        const listed = JSON.parse(cli("list", "--json")) as { username: string; tenantId: string; database: string }[];
        expect(listed.map((row) => [row.username, row.tenantId, row.database])).toEqual(
          ["john_driver", "maria_k", "sam-courier"].map((username) => [username, deployed[username]!.tenantId, deployed[username]!.database]),
        );
        const shown = cli("show", deployed.maria_k!.tenantId.toLowerCase());
        expect(shown).toMatch(new RegExp(`username\\s+maria_k[\\s\\S]*database\\s+${deployed.maria_k!.database}`));
        expect(shown).not.toMatch(/postgresql:\/\/|password/i);
      });

      it("a second up changes nothing", () => {
        expect(previewChanges()).toEqual([]);
        const second = run("up", "--yes", "--skip-preview", "--expect-no-changes");
        expect(second).not.toMatch(/\+ .*create|~ .*update|- .*delete/);
      });

      it("verify fails once a tenant is broken by hand, naming its tenant ID", async () => {
        const victim = outputs().tenants.maria_k!;
        await sql(`GRANT CONNECT ON DATABASE ${escapeIdentifier(victim.database)} TO PUBLIC`);
        const failed = (await verifyIsolation(tenantsFromOutputs(outputs(), () => true))).filter((result) => !result.ok);
        expect(failed.map((result) => `${result.tenantId} ${result.probe}`)).toContain(`${victim.tenantId} PUBLIC has no CONNECT`);
        await sql(`REVOKE CONNECT ON DATABASE ${escapeIdentifier(victim.database)} FROM PUBLIC`);
      });
    });

    describe("changing the tenants file", () => {
      it("a bad tenants file fails the update with every problem listed and changes nothing", async () => {
        const before = await tenantDatabases();
        writeTenants("username: john_driver", "username: Maria_K", "username: maria_k", "username: john-driver", "username: admin");
        await expect(up()).rejects.toThrow(
          /tenants\.yaml:3: tenant "Maria_K": username must be lower case; write "maria_k"[\s\S]*tenants\.yaml:5: tenant "john-driver": collides with "john_driver" on line 2[\s\S]*tenants\.yaml:6: tenant "admin": username "admin" is reserved/,
        );
        expect(await tenantDatabases()).toEqual(before);
        writeTenants("username: john_driver", "username: maria_k", "username: sam-courier");
        expect(previewChanges()).toEqual([]);
      });

      it("adding a tenant previews and creates only that tenant's resources", async () => {
        const before = await sql<{ oid: number; datname: string }>("SELECT oid, datname FROM pg_database WHERE datname LIKE 'drivergigspro\\_%'");
        writeTenants("username: john_driver", "username: maria_k", "username: sam-courier", "username: new_driver");
        const changes = previewChanges();
        expect(changes.length).toBeGreaterThan(0);
        for (const change of changes) expect(change).toMatch(/^create new_driver/);
        await up();
        const after = await sql<{ oid: number; datname: string }>("SELECT oid, datname FROM pg_database WHERE datname LIKE 'drivergigspro\\_%'");
        expect(after).toHaveLength(4);
        for (const database of before) expect(after).toContainEqual(database);
      });

      it("suspending stops the role from logging in; resuming lets it in again", async () => {
        const url = outputs().connections.maria_k!.databaseUrl;
        writeTenants("username: john_driver", "username: maria_k\n    status: suspended", "username: sam-courier", "username: new_driver");
        await up();
        expect(await logIn(url)).toMatch(/not permitted to log in/);
        writeTenants("username: john_driver", "username: maria_k", "username: sam-courier", "username: new_driver");
        await up();
        expect(await logIn(url)).toBe(true);
      });

      let removed: { tenantId: string; database: string; role: string };

      it("a copy of the file that lacks a deployed tenant fails the update, naming it, and removes no one", async () => {
        const before = await tenantDatabases();
        const missing = outputs().tenants.new_driver!;
        writeTenants("username: john_driver", "username: maria_k", "username: sam-courier");
        await expect(up()).rejects.toThrow(
          new RegExp(
            `tenant "new_driver": tenant ${missing.tenantId} \\(database ${missing.database}\\) was deployed by the last update but has no entry in this file`,
          ),
        );
        expect(await tenantDatabases()).toEqual(before);
        expect(Object.keys(outputs().tenants)).toContain("new_driver");
      });

      it("offboarding with a tombstone (status: removed) keeps its database, role and data while purging is disabled", async () => {
        removed = outputs().tenants.new_driver!;
        await sql("INSERT INTO sessions (sid, sess, expire) VALUES ('kept', '{}', now())", [], removed.database);
        writeTenants("username: john_driver", "username: maria_k", "username: sam-courier", "username: new_driver\n    status: removed");
        // The preview names the tenant (its resources are keyed by its tenant ID) and says its data is kept.
        const id = removed.tenantId;
        expect(previewChanges()).toEqual(expect.arrayContaining([`delete ${id}`, `delete ${id}-database [retain]`, `delete ${id}-role [retain]`]));
        await up();
        expect(await sql("SELECT sid FROM sessions", [], removed.database)).toEqual([{ sid: "kept" }]);
        expect(await sql("SELECT 1 FROM pg_roles WHERE rolname = $1", [removed.role])).toHaveLength(1);
        expect(outputs().tenants.new_driver).toMatchObject({ status: "removed", tenantId: removed.tenantId, database: removed.database });
        expect(Object.keys(outputs().connections)).not.toContain("new_driver");
      });

      it("setting a tombstoned tenant active again with its tenant ID brings it back on its kept database, data and all", async () => {
        writeTenants("username: john_driver", "username: maria_k", "username: sam-courier", "username: new_driver");
        await expect(up()).rejects.toThrow(
          new RegExp(
            `tenant "new_driver": was offboarded as tenant ${removed.tenantId}; to bring it back onto its kept database write tenantId: ${removed.tenantId}`,
          ),
        );
        writeTenants("username: john_driver", "username: maria_k", "username: sam-courier", `username: new_driver\n    tenantId: "${removed.tenantId}"`);
        await up();
        const back = outputs();
        expect(back.tenants.new_driver).toMatchObject({ tenantId: removed.tenantId, database: removed.database, role: removed.role, status: "active" });
        expect(await sql("SELECT sid FROM sessions", [], removed.database)).toEqual([{ sid: "kept" }]);
        expect(await logIn(back.connections.new_driver!.databaseUrl)).toBe(true);
        expect(previewChanges()).toEqual([]);
      });

      it("the stack is the same from a clone in another folder: no changes, and it purges from there", async () => {
        // Nothing in the state names the folder the stack was deployed from.
        const [checkpoint] = await sql<{ text: string }>(
          "SELECT convert_from(decode(data->>'data', 'base64'), 'UTF8') AS text FROM pulumi_state WHERE key LIKE $1 || '%' AND key NOT LIKE '%history%' AND key NOT LIKE '%.bak'",
          [`${STATE_DATABASE}/.pulumi/stacks/${projectName()}/${stack}.json`],
          STATE_DATABASE,
        );
        expect(checkpoint!.text).toContain(`"new_driver"`);
        expect(checkpoint!.text).not.toContain(PROJECT_DIR);

        clone = cloneCheckout(stack);
        expect(previewChanges(clone)).toEqual([]);
        setConfig("allowPurge", "true");
        copyStackConfig(stack, clone);
        await up(clone); // records retainOnDelete=false for every tenant still in the file
        const purged = outputs().tenants["sam-courier"]!;
        writeTenants("username: john_driver", "username: maria_k", ...TOMBSTONES);
        const [sam, gone] = [purged.tenantId, removed.tenantId];
        expect(previewChanges(clone)).toEqual(
          expect.arrayContaining([`delete ${sam}-database`, `delete ${sam}-role`, `delete ${gone}-database`, `delete ${gone}-role`]),
        );
        await up(clone);
        expect(await tenantDatabases()).not.toContain(purged.database);
        expect(await tenantDatabases()).not.toContain(removed.database);
        expect(await sql("SELECT 1 FROM pg_roles WHERE rolname = $1", [purged.role])).toHaveLength(0);
        // And back in the first folder, nothing to do either.
        expect(previewChanges()).toEqual([]);
      });

      it("a tenant stays on its server when defaultServer changes; new tenants go to the new default; a move is refused", async () => {
        // A second configured server: the same PostgreSQL reached as another admin, so its settings differ.
        await sql("CREATE ROLE fleet_admin_2 LOGIN SUPERUSER PASSWORD 'second-admin'");
        setStackConfig(context, stack, {
          "servers[1].name": "second",
          "servers[1].host": server.host,
          "servers[1].port": String(server.port),
          "servers[1].adminUser": "fleet_admin_2",
          "servers[1].sslmode": "disable",
          defaultServer: "second",
        });
        setConfig("servers[1].adminPassword", "second-admin", true);
        expect(previewChanges()).toEqual([]);

        writeTenants("username: john_driver", "username: maria_k", "username: placed_driver", ...TOMBSTONES);
        await up();
        const serverOf = () =>
          Object.fromEntries(
            Object.entries(JSON.parse(run("stack", "output", "tenants", "--json")) as Record<string, { server: string }>).map(([username, t]) => [
              username,
              t.server,
            ]),
          );
        expect(serverOf()).toEqual({ john_driver: "local", maria_k: "local", placed_driver: "second", "sam-courier": "local", new_driver: "local" });

        const before = await tenantDatabases();
        writeTenants("username: john_driver", "username: maria_k\n    server: second", "username: placed_driver", ...TOMBSTONES);
        await expect(up()).rejects.toThrow(
          /tenants\.yaml:3: tenant "maria_k": lives on server "local"; moving it to "second" would create an empty database there/,
        );
        expect(await tenantDatabases()).toEqual(before);
        writeTenants("username: john_driver", "username: maria_k\n    server: local", "username: placed_driver", ...TOMBSTONES);
        expect(previewChanges()).toEqual([]);
      });

      it("an appName change or a different pinned tenantId is refused before it can swap in empty databases", async () => {
        const before = await tenantDatabases();
        const maria = outputs().tenants.maria_k!;
        setConfig("appName", "dgp");
        await expect(up()).rejects.toThrow(
          /tenant "john_driver": its database is "drivergigspro_[0-9a-f]{8}"; appName "dgp" would make it "dgp_[0-9a-f]{8}", a new, empty one: put appName back/,
        );
        setConfig("appName", "drivergigspro");
        writeTenants("username: john_driver", "username: maria_k\n    tenantId: 0BADF00D", "username: placed_driver", ...TOMBSTONES);
        await expect(up()).rejects.toThrow(
          new RegExp(`tenants\\.yaml:3: tenant "maria_k": was deployed as tenant ${maria.tenantId}; pinning 0BADF00D would give it a new, empty database`),
        );
        expect(await tenantDatabases()).toEqual(before);
        // Pinning the ID it already has (what assign-ids writes) is accepted and changes nothing: its RandomId stays.
        writeTenants("username: john_driver", `username: maria_k\n    tenantId: "${maria.tenantId}"`, "username: placed_driver", ...TOMBSTONES);
        expect(previewChanges()).toEqual([]);
      });

      it("destroy with purging enabled, from the clone, leaves no tenant database or role of the stack behind", async () => {
        const managed = Object.values(outputs().tenants)
          .filter((tenant) => tenant.status !== "removed")
          .map((tenant) => tenant.database);
        copyStackConfig(stack, clone);
        run("destroy", "--yes", "--skip-preview", { cwd: clone });
        const remaining = await tenantDatabases();
        for (const database of managed) expect(remaining).not.toContain(database);
        const roles = await sql<{ rolname: string }>("SELECT rolname FROM pg_roles WHERE rolname = ANY($1)", [managed]);
        expect(roles).toEqual([]);
      });
    });

    describe("an interrupted pulumi up", () => {
      it("converges when run again", async () => {
        const baseline = (await tenantDatabases()).length;
        writeTenants(...Array.from({ length: 6 }, (_, i) => `username: burst_${i}`));
        const child = spawn("pulumi", ["up", "--yes", "--skip-preview", "--stack", stack, "--non-interactive"], {
          cwd: PROJECT_DIR,
          env: context.env,
        });
        let output = "";
        const interrupted = new Promise<void>((resolve) => {
          child.stdout.on("data", (chunk: Buffer) => {
            output += chunk.toString();
            // The first tenant's database exists: interrupt, as Ctrl-C or a cancelled CI job would.
            if (/burst_\d-database\s+created/.test(output) && !child.killed) child.kill("SIGINT");
          });
          child.on("exit", () => resolve());
        });
        await interrupted;
        expect(output).toMatch(/created/);
        const partial = (await tenantDatabases()).length - baseline;
        expect(partial).toBeGreaterThan(0);

        await up();
        expect((await tenantDatabases()).length - baseline).toBe(6);
        const databases = await tenantDatabases();
        for (const tenant of Object.values(outputs().tenants)) expect(databases).toContain(tenant.database);
        expect(previewChanges()).toEqual([]);
        const results = await verifyIsolation(tenantsFromOutputs(outputs(), () => true));
        expect(results.filter((result) => !result.ok)).toEqual([]);
      });

      it(
        "converges after the engine and everything it started are killed outright (SIGKILL) at 10 moments of an update",
        async () => {
          const base = Array.from({ length: 6 }, (_, i) => `burst_${i}`);
          const keeper = outputs().tenants.burst_0!;
          await sql("INSERT INTO sessions (sid, sess, expire) VALUES ('before-kills', '{}', now())", [], keeper.database);
          const names = [...base];
          const figures: string[] = [];
          // Moment k: as soon as the update has reported k created resources (0: right after it starts).
          for (let moment = 0; moment < 10; moment++) {
            // One new tenant gives about 8 "created" lines; the late moments need a second one to reach them.
            names.push(`kill${moment}_a`, ...(moment >= 7 ? [`kill${moment}_b`] : []));
            writeTenants(...names.map((name) => `username: ${name}`));
            // The CLI, the language host, the program and the providers at once, as a lost CI runner would; returns once
            // they are gone (a big process may take a moment to tear down on a loaded machine).
            const kill = await killUpAt(context, stack, moment);
            expect(kill.left).toEqual([]);

            // The stack still loads; the killed run's lock is removed because its process is gone.
            expect(() => run("stack", "export")).not.toThrow();
            // Every moment is reached while the update still runs: the kill is real, and so is its lock.
            expect(kill.signal).toBe("SIGKILL");
            const released = await releaseStaleLock(context, stack);
            expect(released).toMatch(/removed the lock left by an interrupted pulumi up \(pid \d+/);
            expect(await releaseStaleLock(context, stack)).toBeUndefined();
            await up();
            const out = outputs();
            expect(Object.keys(out.tenants).sort()).toEqual([...names].sort());
            const databases = await tenantDatabases();
            for (const tenant of Object.values(out.tenants)) expect(databases).toContain(tenant.database);
            expect(await sql("SELECT sid FROM sessions", [], keeper.database)).toEqual([{ sid: "before-kills" }]);
            figures.push(`moment ${moment}: ${kill.signal ?? "exited"} after ${kill.created} created, ${kill.killed.length} processes killed, converged`);
          }
          expect(previewChanges()).toEqual([]);
          const results = await verifyIsolation(tenantsFromOutputs(outputs(), () => true));
          expect(results.filter((result) => !result.ok)).toEqual([]);
          console.log(figures.join("\n"));
          // Twenty real `pulumi up`s: on a loaded 2-core machine (load 12) they took longer than the suite's 5 minutes.
        },
        20 * 60 * 1000,
      );

      it("a plain up after a kill names the lock and pulumi cancel", async () => {
        const names = Object.keys(outputs().tenants);
        writeTenants(...[...names, "late_a", "late_b"].map((name) => `username: ${name}`));
        const before = await tenantDatabases();
        const child = spawnPulumi(context, ["up", "--yes", "--skip-preview", "--stack", stack, "--non-interactive"], { stdio: "ignore" });
        const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
        await waitFor(async () => (await tenantDatabases()).length > before.length);
        killTree(child.pid!);
        expect(await exited).toBe("SIGKILL");
        await expect(up()).rejects.toThrow(/currently locked[\s\S]*pulumi cancel/);
        expect(await releaseStaleLock(context, stack)).toMatch(/removed the lock left by an interrupted pulumi up/);
        await up();
        expect(previewChanges()).toEqual([]);
      });
    });
  });
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline;) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`gave up after ${timeoutMs} ms`);
}

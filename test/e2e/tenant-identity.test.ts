/**
 * Issue 17 end to end, with the real engine against a real PostgreSQL:
 *
 * 1. a stack deployed by the code on main before tenant IDs were allocated
 *    (commit dac7b6f, checked out with `git archive` into a temporary folder,
 *    node_modules linked) upgrades to this code with no replace and no delete,
 *    every row and every password kept, and an empty preview afterwards; then
 *    the one-time `npm run tenants -- assign-ids` writes the deployed IDs, and
 *    the preview stays empty;
 * 2. the pinned collision of the issue (`tenants add collider --tenant-id
 *    <john_driver's ID>`) is refused by the CLI, and the same entry written by
 *    hand is refused by the program before anything changes;
 * 3. a second stack (another shard) on the same server whose entry has
 *    john_driver's ID is refused before anything changes (the role and
 *    database carry john_driver's marker: tenant ID and stack);
 * 4. a forced collision of generated IDs (the signup service's allocator with
 *    an injected generator) draws again, and the new tenant deploys beside
 *    john_driver; a generator that only collides fails the batch, file unchanged.
 * Both tenants' data and passwords are checked intact after each refusal.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { PROJECT_DIR } from "../../engine/paths";
import { pulumi } from "../../engine/pulumi";
import { configureLocalStack } from "../../local/stack";
import { LocalTenantsFile } from "../../onboarding/tenants-repo";
import { parseStackOutputs } from "../../infra/outputs";
import { canLogInWithUrl } from "../support/can-log-in";
import { copyStackConfig } from "../support/checkout";
import { removeStack, setUpEngineStack, type EngineStack } from "../support/engine-stack";

/** The code on main before this change: what today's stacks were deployed with. */
const BEFORE_ISSUE_17 = "dac7b6f";
const TSX = join(PROJECT_DIR, "node_modules", ".bin", "tsx");
const CLI = join(PROJECT_DIR, "cli", "tenants.ts");

/** The project as it was at `commit`, in a folder of its own, sharing this checkout's node_modules. */
function checkoutAt(commit: string): string {
  const parent = mkdtempSync(join(tmpdir(), "dgp-old-code-"));
  chmodSync(parent, 0o755);
  const dir = join(parent, "checkout");
  mkdirSync(dir);
  const archive = execFileSync("git", ["-C", PROJECT_DIR, "archive", "--format=tar", commit], { maxBuffer: 256 * 1024 * 1024 });
  execFileSync("tar", ["-x", "-C", dir], { input: archive });
  symlinkSync(join(PROJECT_DIR, "node_modules"), join(dir, "node_modules"));
  return dir;
}

const UNSAFE = /^(delete|replace|create-replacement|delete-replaced|discard)\b/;

describe("tenant identity: upgrade from the code before allocated IDs, and collisions refused before anything changes", () => {
  vi.setConfig({ testTimeout: 10 * 60 * 1000 });
  let engine: EngineStack;
  let oldCode: string;
  let stackB: string;
  let fileB: string;
  /** john_driver's and maria_k's database URLs (passwords) and IDs as the old code deployed them. */
  let john: { id: string; url: string };
  let maria: { id: string; url: string };

  const sql = <T = Record<string, unknown>>(query: string, values?: unknown[], database?: string) => engine.sql<T>(query, values, database);
  const passwordHashes = async () =>
    sql<{ rolname: string; rolpassword: string }>("SELECT rolname, rolpassword FROM pg_authid WHERE rolname LIKE 'drivergigspro\\_%' ORDER BY 1");

  /**
   * john_driver's and maria_k's rows and passwords (their deployed URLs still log in), as they must stay
   * through every step; `hashes`: also the stored verifiers unchanged (a step that runs no update).
   */
  async function expectBothIntact(hashes?: { rolname: string; rolpassword: string }[]): Promise<void> {
    if (hashes !== undefined) expect(await passwordHashes()).toEqual(expect.arrayContaining(hashes));
    for (const tenant of [john, maria]) {
      expect(await canLogInWithUrl(tenant.url)).toBe(true);
      const database = `drivergigspro_${tenant.id.toLowerCase()}`;
      expect(await sql("SELECT note FROM kept_through_issue_17", [], database)).toEqual([{ note: `row of ${tenant.id}` }]);
    }
  }

  function cli(...args: string[]) {
    const result = spawnSync(TSX, [CLI, ...args], { encoding: "utf8", env: { ...process.env, PULUMI_BACKEND_URL: undefined } });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  beforeAll(
    async () => {
      engine = await setUpEngineStack({ name: "identity" });
      oldCode = checkoutAt(BEFORE_ISSUE_17);
      stackB = `${engine.stack}-b`;
    },
    60 * 60 * 1000,
  );

  afterAll(async () => {
    if (engine && stackB) removeStack(engine.context, stackB, { destroy: false });
    if (oldCode) rmSync(join(oldCode, ".."), { recursive: true, force: true });
    await engine?.cleanup();
  });

  it("the code before this change deploys two tenants named by username, IDs drawn by RandomId", async () => {
    engine.writeTenants("username: john_driver", "username: maria_k");
    copyStackConfig(engine.stack, oldCode);
    engine.up(oldCode);
    const out = engine.outputs();
    john = { id: out.tenants.john_driver!.tenantId, url: out.connections.john_driver!.databaseUrl };
    maria = { id: out.tenants.maria_k!.tenantId, url: out.connections.maria_k!.databaseUrl };
    for (const tenant of [john, maria]) {
      await sql("CREATE TABLE kept_through_issue_17 (note text)", [], `drivergigspro_${tenant.id.toLowerCase()}`);
      await sql("INSERT INTO kept_through_issue_17 VALUES ($1)", [`row of ${tenant.id}`], `drivergigspro_${tenant.id.toLowerCase()}`);
    }
    const state = engine.run("stack", "export");
    expect(state).toContain("drivergigspro:fleet:Tenant::john_driver");
  });

  it("this code takes the stack over with no replace and no delete, keeps rows and passwords, and then previews empty", async () => {
    const changes = engine.preview({ flags: ["--diff"] }).changes;
    console.log(`upgrade preview: ${changes.join("; ")}`);
    expect(changes.filter((change) => UNSAFE.test(change))).toEqual([]);
    await engine.converge();
    // The same passwords (the role update writes the marker and sends the password's verifier again, with a new salt).
    await expectBothIntact();
    // Every resource is keyed by the tenant ID now; the usernames were only aliases.
    const state = engine.run("stack", "export");
    expect(state).toContain(`drivergigspro:fleet:Tenant::${john.id}`);
    expect(state).not.toContain("drivergigspro:fleet:Tenant::john_driver");
    const markers = await sql<{ rolname: string; note: string }>(
      "SELECT rolname, shobj_description(oid, 'pg_authid') AS note FROM pg_roles WHERE rolname = $1",
      [`drivergigspro_${john.id.toLowerCase()}`],
    );
    expect(markers[0]!.note).toBe(`drivergigspro tenant ${john.id} of stack ${engine.stack}`);
    expect(engine.preview().changes).toEqual([]);
  });

  it("refuses `tenants add collider --tenant-id <john_driver's ID>`, and the program refuses the same entry written by hand; nothing changes", async () => {
    const hashes = await passwordHashes();
    const outputs = join(engine.workDir, "outputs.json");
    writeFileSync(outputs, engine.run("stack", "output", "--json"));
    const before = readFileSync(engine.tenantsFile, "utf8");
    const added = cli("add", "collider", "--tenant-id", john.id, "--file", engine.tenantsFile, "--outputs", outputs);
    expect(added.status).toBe(1);
    expect(added.stderr).toMatch(new RegExp(`new tenant "collider": tenantId ${john.id} belongs to tenant "john_driver"`));
    expect(readFileSync(engine.tenantsFile, "utf8")).toBe(before);

    // Past the CLI (a hand edit in a pull request): the program refuses it before declaring anything.
    writeFileSync(engine.tenantsFile, `${before}  - username: collider\n    tenantId: "${john.id}"\n`);
    let failure = "";
    try {
      engine.up();
    } catch (error) {
      failure = (error as Error).message;
    }
    // john_driver's entry has no tenantId yet (the old code drew it): the stack's own record names him (identity.ts).
    expect(failure).toMatch(
      new RegExp(
        `tenants\\.yaml:4: tenant "collider": tenantId ${john.id} belongs to tenant "john_driver" \\(line 2 of this file, deployed by this stack as database drivergigspro_${john.id.toLowerCase()}\\)`,
      ),
    );
    expect(
      await sql("SELECT 1 FROM pg_roles WHERE rolname = 'collider' OR rolname LIKE 'drivergigspro\\_%' AND rolname <> ALL($1)", [
        [john, maria].map((tenant) => `drivergigspro_${tenant.id.toLowerCase()}`),
      ]),
    ).toEqual([]);
    await expectBothIntact(hashes);
    writeFileSync(engine.tenantsFile, before);
  });

  it("assign-ids writes each deployed tenant's own ID into its entry (idempotent), and the preview stays empty", () => {
    const outputs = join(engine.workDir, "outputs.json");
    const first = cli("assign-ids", "--file", engine.tenantsFile, "--outputs", outputs);
    expect(first.status).toBe(0);
    const text = readFileSync(engine.tenantsFile, "utf8");
    // (Quoted by the YAML writer when an ID reads as a number, e.g. 1234E567.)
    expect(text).toMatch(new RegExp(`username: john_driver\n    tenantId: "?${john.id}"?\n`));
    expect(text).toMatch(new RegExp(`username: maria_k\n    tenantId: "?${maria.id}"?\n`));
    expect(cli("assign-ids", "--file", engine.tenantsFile, "--outputs", outputs).stdout).toMatch(/every entry has its tenantId/);
    expect(readFileSync(engine.tenantsFile, "utf8")).toBe(text);
    expect(engine.preview().changes).toEqual([]);
  });

  it("refuses john_driver's ID in another shard's stack on the same server before anything changes, saying whose the role and database are", async () => {
    const hashes = await passwordHashes();
    fileB = join(engine.workDir, "tenants-b.yaml");
    writeFileSync(fileB, `tenants:\n  - username: collider\n    tenantId: "${john.id}"\n`);
    configureLocalStack(engine.context, stackB, engine.server, { tenantsFile: fileB });
    let failure = "";
    try {
      pulumi(engine.context, ["up", "--yes", "--skip-preview", "--stack", stackB, "--non-interactive"]);
    } catch (error) {
      failure = (error as Error).message;
    }
    const name = `drivergigspro_${john.id.toLowerCase()}`;
    expect(failure).toMatch(
      new RegExp(
        `tenants-b\\.yaml:2: tenant "collider": on server "local": role "${name}" already exists and is not tenant ${john.id}'s of stack ${stackB}: its marker says it is tenant ${john.id} of stack ${engine.stack}`,
      ),
    );
    expect(failure).toMatch(new RegExp(`database "${name}" already exists .*its marker says it is tenant ${john.id} of stack ${engine.stack}`));
    // Nothing of stack B's was made: no resources in its state beyond the stack itself.
    const exported = JSON.parse(pulumi(engine.context, ["stack", "export", "--stack", stackB])) as { deployment?: { resources?: { type: string }[] } };
    expect((exported.deployment?.resources ?? []).filter((resource) => !resource.type.startsWith("pulumi:"))).toEqual([]);
    await expectBothIntact(hashes);
  });

  it("a forced collision of generated IDs draws again: the new tenant deploys beside john_driver; a generator that only collides changes nothing", async () => {
    const hashes = await passwordHashes();
    // Shard B as a fleet's second shard: the allocator takes every shard's IDs (john_driver's and maria_k's are in shard A's file).
    mkdirSync(join(engine.workDir, "tenants"), { recursive: true });
    writeFileSync(join(engine.workDir, "tenants", "shards.yaml"), "shards:\n  - name: a\n    file: tenants.yaml\n  - name: b\n    file: tenants-b.yaml\n");
    writeFileSync(fileB, "tenants: []\n");
    const stuck = new LocalTenantsFile(fileB, { fleetDir: engine.workDir, generate: () => john.id });
    await expect(stuck.addSignups([{ username: "new_driver", email: "new@example.com" }])).rejects.toThrow(/could not allocate a tenant ID/);
    expect(readFileSync(fileB, "utf8")).toBe("tenants: []\n");

    const draws = [john.id, maria.id, "0E17E17E"];
    const store = new LocalTenantsFile(fileB, { fleetDir: engine.workDir, generate: () => draws.shift()! });
    expect((await store.addSignups([{ username: "new_driver", email: "new@example.com" }])).added).toEqual(["new_driver"]);
    expect(readFileSync(fileB, "utf8")).toContain("tenantId: 0E17E17E");
    pulumi(engine.context, ["up", "--yes", "--skip-preview", "--stack", stackB, "--non-interactive"]);
    const outB = parseStackOutputs(JSON.parse(pulumi(engine.context, ["stack", "output", "--json", "--show-secrets", "--stack", stackB])));
    expect(outB.tenants.new_driver!.tenantId).toBe("0E17E17E");
    expect(await canLogInWithUrl(outB.connections.new_driver!.databaseUrl)).toBe(true);
    await expectBothIntact(hashes);
    pulumi(engine.context, ["destroy", "--yes", "--skip-preview", "--stack", stackB, "--non-interactive"]);
  });
});

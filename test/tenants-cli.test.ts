/** `npm run tenants`, run as a process, the way people and CI run it. */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { validateTenantsText } from "../tenants/load";

const TSX = join(__dirname, "..", "node_modules", ".bin", "tsx");
const CLI = join(__dirname, "..", "cli", "tenants.ts");
let file: string;

/** No pulumi on PATH and no built toolchain: list and show read only --outputs, whatever this machine has deployed. */
const HERMETIC_ENV = { ...process.env, PATH: "/usr/bin:/bin", DGP_TOOLCHAIN_CACHE: join(tmpdir(), "dgp-no-toolchain"), PULUMI_BACKEND_URL: undefined };

function run(...args: string[]) {
  const result = spawnSync(TSX, [CLI, ...args, "--file", file], { encoding: "utf8", env: HERMETIC_ENV });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeEach(() => {
  file = join(mkdtempSync(join(tmpdir(), "dgp-cli-")), "tenants.yaml");
  copyFileSync(join(__dirname, "..", "tenants", "tenants.yaml"), file);
});

function expectRejectedUnchanged(args: string[], status: number, stderr: RegExp) {
  const before = readFileSync(file);
  const result = run(...args);
  expect(result.status).toBe(status);
  expect(result.stderr).toMatch(stderr);
  expect(readFileSync(file).equals(before)).toBe(true);
  return result;
}

describe("add", () => {
  it("appends an entry and keeps every comment and existing line", () => {
    const before = readFileSync(file, "utf8");
    const result = run("add", "bob_smith", "--email", "bob@example.com", "--server", "local");
    expect(result.status).toBe(0);
    const id = /added bob_smith as tenant ([0-9A-F]{8}) \(.*tenants\.yaml:17\)/.exec(result.stdout)?.[1];
    expect(id).toBeDefined();
    const after = readFileSync(file, "utf8");
    expect(after.startsWith(before)).toBe(true);
    // The tenant ID is allocated now, before any engine runs, and written into the entry.
    expect(after.slice(before.length)).toBe(`  - username: bob_smith\n    email: bob@example.com\n    tenantId: ${id}\n    server: local\n`);
  });

  it("starts a block list in a file that says tenants: []", () => {
    writeFileSync(file, "# empty fleet\ntenants: []\n");
    expect(run("add", "first_driver").status).toBe(0);
    expect(readFileSync(file, "utf8")).toMatch(/^# empty fleet\ntenants:\n {2}- username: first_driver\n {4}tenantId: [0-9A-F]{8}\n$/);
  });

  it("adds --count N generated usernames that pass validation and prints them", () => {
    const result = run("add", "--count", "25");
    expect(result.status).toBe(0);
    const printed = [...result.stdout.matchAll(/added (\S+) /g)].map((match) => match[1]);
    expect(printed).toHaveLength(25);
    const parsed = validateTenantsText(readFileSync(file, "utf8"));
    expect(parsed.ok && parsed.tenants.map((tenant) => tenant.username).slice(3)).toEqual(printed);
    // Each with its own tenant ID.
    const ids = parsed.ok ? parsed.tenants.slice(3).map((tenant) => tenant.tenantId) : [];
    expect(new Set(ids).size).toBe(25);
    for (const id of ids) expect(id).toMatch(/^[0-9A-F]{8}$/);
  });

  it.each([
    [["add", "Bob_Smith"], 1, /new tenant "Bob_Smith": username must be lower case; write "bob_smith"/],
    [["add", "john-driver"], 1, /collides with "john_driver" on line 11/],
    [["add", "john_driver"], 1, /is listed twice/],
    [["add", "x'; DROP DATABASE postgres; --"], 1, /only contain a-z/],
    [["add", "ab"], 1, /3 to 40 characters/],
    [["add", "a".repeat(200)], 1, /it has 200/],
    [["add", ""], 1, /empty/],
    [["add", "jоhn"], 1, /U\+043E/],
    [["add", "ok_name", "--email", "nope"], 1, /email must be a valid e-mail address/],
    [["add", "ok_name", "--tenant-id", "xyz"], 1, /8 upper-case hex digits/],
    [["add", "--count", "0"], 2, /--count must be a whole number/],
    [["add", "--count", "3x"], 2, /--count must be a whole number/],
    [["add", "one", "two"], 2, /exactly one username/],
    [["add", "ok_name", "--colour", "blue"], 2, /Unknown option '--colour'/],
    [["frobnicate"], 2, /unknown command "frobnicate"/],
  ])("rejects %j and leaves the file unchanged", (args, status, stderr) => {
    expectRejectedUnchanged(args as string[], status as number, stderr as RegExp);
  });
});

describe("a file that is already broken", () => {
  it.each([
    ["malformed YAML", "tenants:\n  - username: [unclosed\n", /tenants\.yaml:\d+: not valid YAML/],
    ["bad entry", "tenants:\n  - username: Root\n", /tenants\.yaml:2: tenant "Root": username must be lower case/],
  ])("refuses every edit on %s, naming the line, and changes nothing", (_what, text, stderr) => {
    writeFileSync(file, text);
    expectRejectedUnchanged(["add", "new_driver"], 1, stderr);
    expectRejectedUnchanged(["suspend", "root"], 1, stderr);
  });

  it("says so when the file is missing", () => {
    file = join(tmpdir(), "does-not-exist", "tenants.yaml");
    const result = run("list");
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/file not found; create it with "tenants: \[\]"/);
  });
});

describe("suspend, resume, remove", () => {
  it("suspends and resumes by adding and removing status", () => {
    const original = readFileSync(file, "utf8");
    expect(run("suspend", "maria_k").status).toBe(0);
    expect(readFileSync(file, "utf8")).toContain("  - username: maria_k\n    email: maria@example.com\n    status: suspended\n");
    expect(run("resume", "maria_k").status).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(original);
  });

  it("offboards with a tombstone (status: removed), never by deleting the entry, and says the data is kept", () => {
    const result = run("remove", "sam-courier");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/database and role are KEPT/);
    expect(readFileSync(file, "utf8")).toMatch(/username: sam-courier\n(\s+\w+: .*\n)*\s+status: removed/);
  });

  it("refuses an unknown username", () => {
    expectRejectedUnchanged(["suspend", "nobody_here"], 1, /no tenant "nobody_here" in the file/);
    expectRejectedUnchanged(["remove", "nobody_here"], 1, /no tenant "nobody_here"/);
  });
});

describe("suspend, resume, remove of a pooled entry (addressed by its tenant ID)", () => {
  const POOLED = "  # warm pool\n  - tenantId: 0A1B2C3D\n    status: pooled\n";
  beforeEach(() => writeFileSync(file, `${readFileSync(file, "utf8")}${POOLED}`));
  const pooledLine = () => readFileSync(file, "utf8").split("\n").indexOf("  - tenantId: 0A1B2C3D") + 1;

  it("refuses to suspend or resume it, naming the file, line and tenant ID and what to do; the file is unchanged", () => {
    const line = pooledLine();
    const suspend = expectRejectedUnchanged(["suspend", "0a1b2c3d"], 1, /is a pooled \(unclaimed\) entry: nobody can use it/);
    expect(suspend.stderr).toContain(`:${line}: tenant 0A1B2C3D`);
    expect(suspend.stderr).toContain("npm run tenants -- remove 0A1B2C3D");
    expectRejectedUnchanged(["resume", "0A1B2C3D"], 1, new RegExp(`:${line}: tenant 0A1B2C3D is a pooled \\(unclaimed\\) entry, not suspended`));
  });

  it("remove writes its tombstone (tenantId + status: removed, comment kept) and says the data is kept; resume puts it back into the pool", () => {
    const original = readFileSync(file, "utf8");
    const removed = run("remove", "0a1b2c3d");
    expect(removed.status).toBe(0);
    expect(removed.stdout).toMatch(/removed pooled tenant 0A1B2C3D/);
    expect(removed.stdout).toMatch(/database drivergigspro_0a1b2c3d and role are KEPT with all data/);
    expect(removed.stdout).toMatch(/pool refill/);
    expect(readFileSync(file, "utf8")).toBe(original.replace(POOLED, "  # warm pool\n  - tenantId: 0A1B2C3D\n    status: removed\n"));
    const result = validateTenantsText(readFileSync(file, "utf8"));
    expect(result.ok && result.tenants.at(-1)).toMatchObject({ username: "0A1B2C3D", tenantId: "0A1B2C3D", status: "removed" });
    // A tombstone of a pooled entry has no username: it cannot be suspended either.
    expectRejectedUnchanged(["suspend", "0A1B2C3D"], 1, /tenant 0A1B2C3D is the tombstone of a pooled entry \(no username\), so it cannot be suspended/);
    const resumed = run("resume", "0A1B2C3D");
    expect(resumed.status).toBe(0);
    expect(resumed.stdout).toMatch(/returned 0A1B2C3D to the warm pool/);
    expect(readFileSync(file, "utf8")).toBe(original);
  });

  it("a tombstone without a username is valid only for a pooled entry's tenant ID; status: suspended by hand is refused with what to do", () => {
    writeFileSync(file, readFileSync(file, "utf8").replace("    status: pooled\n", "    status: suspended\n"));
    const line = pooledLine();
    const result = run("list");
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`:${line}:`);
    expect(result.stderr).toMatch(/an entry without a username is an unclaimed pooled tenant, which cannot be suspended/);
    writeFileSync(
      file,
      readFileSync(file, "utf8").replace("  - tenantId: 0A1B2C3D\n    status: suspended\n", "  - email: x@example.com\n    status: removed\n"),
    );
    expect(run("list").stderr).toMatch(/username is required \(only an entry with "status: pooled" has none\)/);
  });
});

describe("the deployed stack, read through the pulumi on PATH", () => {
  /** What toolchain/build.sh wants beside a pulumi on PATH before it takes that one (stubs: the CLI runs only `pulumi`). */
  const PLUGINS = ["pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs", "pulumi-resource-random"];
  /** Runs the CLI with a stand-in `pulumi` on PATH that runs `script` (sh) for "stack output". */
  function runWithPulumi(script: string, ...args: string[]) {
    const bin = mkdtempSync(join(tmpdir(), "dgp-fake-pulumi-"));
    // New enough and complete (engine/pulumi.ts takes a pulumi on PATH only then): the stand-in is what runs.
    writeFileSync(join(bin, "pulumi"), `#!/bin/sh\nif [ "$1" = version ]; then echo v3.259.0; exit 0; fi\n${script}\n`);
    for (const plugin of PLUGINS) writeFileSync(join(bin, plugin), "#!/bin/sh\nexit 1\n");
    for (const tool of ["pulumi", ...PLUGINS]) chmodSync(join(bin, tool), 0o755);
    const env = { ...HERMETIC_ENV, PATH: `${bin}:/usr/bin:/bin`, PULUMI_BACKEND_URL: "postgres://state.invalid/pulumi_state" };
    const result = spawnSync(TSX, [CLI, ...args, "--file", file, "--stack", "prod-s001"], { encoding: "utf8", env });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }
  const DEPLOYED = JSON.stringify({
    tenants: {
      "sam-courier": {
        username: "sam-courier",
        tenantId: "0A1B2C3D",
        database: "drivergigspro_0a1b2c3d",
        role: "drivergigspro_0a1b2c3d",
        domain: "",
        server: "local",
        status: "active",
      },
    },
  });

  it("remove pins the deployed tenant ID and names the database it keeps", () => {
    const result = runWithPulumi(`echo '${DEPLOYED}'`, "remove", "sam-courier");
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/database drivergigspro_0a1b2c3d and role are KEPT/);
    expect(readFileSync(file, "utf8")).toMatch(/username: sam-courier\n(\s+\w+: .*\n)*\s+tenantId: 0A1B2C3D\n/);
  });

  it("remove refuses, naming the stack and what to do, when the deployed stack cannot be read; the file is unchanged", () => {
    const before = readFileSync(file);
    const result = runWithPulumi(`echo "error: could not connect to the backend: connection refused" >&2; exit 255`, "remove", "sam-courier");
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /^error: cannot read the deployed tenants of stack prod-s001 \(error: could not connect to the backend: connection refused\)/,
    );
    expect(result.stderr).toMatch(/PULUMI_BACKEND_URL/);
    expect(result.stderr).toMatch(/--outputs FILE/);
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it("resume of a tombstone refuses too when the deployed stack cannot be read", () => {
    expect(runWithPulumi(`echo "${DEPLOYED.replaceAll('"', '\\"')}"`, "remove", "sam-courier").status).toBe(0);
    writeFileSync(file, readFileSync(file, "utf8").replace("    tenantId: 0A1B2C3D\n", ""));
    const before = readFileSync(file);
    const result = runWithPulumi(`echo "error: passphrase must be set" >&2; exit 255`, "resume", "sam-courier");
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/cannot read the deployed tenants of stack prod-s001/);
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it("a stack never deployed is not an error: remove writes the tombstone without an ID", () => {
    const result = runWithPulumi(`echo "error: no stack named 'prod-s001' found" >&2; exit 6`, "remove", "sam-courier");
    expect(result.status).toBe(0);
    expect(result.stderr).toBe("");
    expect(readFileSync(file, "utf8")).toMatch(/username: sam-courier\n(\s+\w+: .*\n)*\s+status: removed/);
    expect(readFileSync(file, "utf8")).not.toContain("tenantId: 0A1B2C3D");
  });

  it("add reads the deployed stack only while an entry lacks its tenantId: once every entry has one, the file holds every deployed ID", () => {
    const calls = join(mkdtempSync(join(tmpdir(), "dgp-pulumi-calls-")), "calls");
    const logged = `echo "$*" >> ${calls}; echo '${DEPLOYED}'`;
    // The example file's entries have no IDs yet: the deployed ones are only in the state, so it is read.
    expect(runWithPulumi(logged, "add", "first_new").status).toBe(0);
    expect(readFileSync(calls, "utf8")).toMatch(/stack output --json --stack prod-s001/);
    writeFileSync(calls, "");
    writeFileSync(file, "tenants:\n  - username: john_driver\n    tenantId: A1B2C3D4\n  - username: gone_k\n    tenantId: 0C0FFEE0\n    status: removed\n");
    const result = runWithPulumi(logged, "add", "second_new");
    expect(result.status).toBe(0);
    expect(readFileSync(calls, "utf8")).toBe("");
    expect(readFileSync(file, "utf8")).toMatch(/username: second_new\n(\s+\w+: .*\n)*\s+tenantId: [0-9A-F]{8}\n/);
  });

  it("list goes on with a note when the deployed stack cannot be read", () => {
    const result = runWithPulumi(`echo "error: could not connect to the backend" >&2; exit 255`, "list");
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/note: stack prod-s001 not read \(error: could not connect to the backend\)/);
    expect(result.stdout).toMatch(/3 tenant\(s\)/);
  });
});

describe("tenant IDs (issue 17)", () => {
  /** Stack outputs with john_driver deployed as A1B2C3D4 (its entry, written before IDs were allocated, has none). */
  function deployedOutputs(): string {
    const outputs = join(mkdtempSync(join(tmpdir(), "dgp-outputs-")), "outputs.json");
    const john = {
      username: "john_driver",
      tenantId: "A1B2C3D4",
      database: "drivergigspro_a1b2c3d4",
      role: "drivergigspro_a1b2c3d4",
      domain: "",
      server: "local",
      status: "active",
    };
    writeFileSync(outputs, JSON.stringify({ tenants: { john_driver: john } }));
    return outputs;
  }

  it("refuses add --tenant-id with a deployed tenant's ID, naming that tenant; the file is unchanged", () => {
    const outputs = deployedOutputs();
    expectRejectedUnchanged(
      ["add", "collider", "--tenant-id", "A1B2C3D4", "--outputs", outputs],
      1,
      /new tenant "collider": tenantId A1B2C3D4 belongs to tenant "john_driver" \(deployed, .*outputs\.json\)/,
    );
  });

  it("refuses add --tenant-id with an ID another entry has, naming its file and line", () => {
    expect(run("add", "first_one", "--tenant-id", "0F0F0F0F").status).toBe(0);
    expectRejectedUnchanged(["add", "collider", "--tenant-id", "0F0F0F0F"], 1, /tenantId 0F0F0F0F belongs to tenant "first_one" \(.*tenants\.yaml:17\)/);
  });

  it("assign-ids writes each deployed tenant's own ID and a new one for the others; a second run changes nothing", () => {
    const outputs = deployedOutputs();
    const first = run("assign-ids", "--outputs", outputs);
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(/john_driver tenantId: A1B2C3D4 \(deployed\)/);
    const parsed = validateTenantsText(readFileSync(file, "utf8"));
    const ids = parsed.ok ? Object.fromEntries(parsed.tenants.map((tenant) => [tenant.username, tenant.tenantId])) : {};
    expect(ids.john_driver).toBe("A1B2C3D4");
    expect(ids.maria_k).toMatch(/^[0-9A-F]{8}$/);
    expect(new Set(Object.values(ids)).size).toBe(3);
    const after = readFileSync(file);
    const second = run("assign-ids", "--outputs", outputs);
    expect(second.stdout).toMatch(/every entry has its tenantId/);
    expect(readFileSync(file).equals(after)).toBe(true);
  });

  it("assign-ids refuses when the deployed stacks cannot be read (it would give deployed tenants new IDs)", () => {
    expectRejectedUnchanged(["assign-ids"], 1, /cannot read the deployed stacks.*nothing was changed/);
  });
});

describe("list and show", () => {
  it("lists tenants as JSON, enriched with the stack's outputs", () => {
    const outputs = join(file, "..", "outputs.json");
    writeFileSync(
      outputs,
      JSON.stringify({
        tenants: {
          john_driver: {
            username: "john_driver",
            tenantId: "0A1B2C3D",
            database: "drivergigspro_0a1b2c3d",
            role: "drivergigspro_0a1b2c3d",
            domain: "john-driver-drivergigspro.example.com",
            server: "local",
            status: "active",
          },
        },
        connections: "[secret]",
      }),
    );
    const listed = JSON.parse(run("list", "--json", "--outputs", outputs).stdout);
    expect(listed.map((row: { username: string }) => row.username)).toEqual(["john_driver", "maria_k", "sam-courier"]);
    expect(listed[0]).toMatchObject({ tenantId: "0A1B2C3D", database: "drivergigspro_0a1b2c3d", domain: "john-driver-drivergigspro.example.com", line: 11 });

    const shown = run("show", "0a1b2c3d", "--outputs", outputs);
    expect(shown.status).toBe(0);
    expect(shown.stdout).toMatch(/username\s+john_driver/);
    expect(shown.stdout).toMatch(/tenantId\s+0A1B2C3D/);
    expect(shown.stdout).not.toMatch(/password|secret/i);
  });

  it("prints a table for people", () => {
    const result = run("list");
    expect(result.stdout.split("\n")[0]).toMatch(/^USERNAME\s+TENANT ID\s+STATUS\s+SERVER\s+DATABASE\s+DOMAIN\s+SEED\s+SHARD$/);
    expect(result.stdout).toMatch(/3 tenant\(s\)/);
  });
});

/**
 * `npm run deploy` over three shards at once (deploy/parallel.ts), with the
 * real engine, in a second checkout as CI's workspace would be, the state in
 * PostgreSQL: shard s003's tenants file is invalid on purpose.
 *
 *  1. `up --env ci --parallel 2` (every shard, the default; two at a time): s001 and
 *     s002 are deployed although s003 fails; the command exits non-zero
 *     naming s003; every line of a shard's output carries that shard's name
 *     and no other shard's (whole lines, never mixed); one table ends it;
 *  2. `preview --json --parallel 3 --comment-file`: stdout is one JSON
 *     document (shards in the manifest's order, s003 failed with its file's
 *     line), the comment shows the two good shards and s003's error;
 *  3. `list --json` (CI's matrix) and `report` (CI's last job) on those results.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import { findEngine, pulumiContext, type PulumiContext } from "../../engine/pulumi";
import { ensureStateDatabase } from "../../local/state-backend";
import { cloneCheckout } from "../../harness/checkout";

let server: LocalPostgres;
let context: PulumiContext;
let checkout: string;
let scratch: string;

const SHARDS = ["s001", "s002", "s003"];

function pulumiIn(args: string[], input?: string): string {
  return execFileSync("pulumi", args, { cwd: checkout, env: context.env, encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

/** `npm run deploy -- ARGS` in the checkout, as the README tells a person to run it: its exit code, stdout and stderr. */
function deploy(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn("npm", ["run", "--silent", "deploy", "--", ...args], {
    cwd: checkout,
    env: { ...context.env, PATH: `${dirname(process.execPath)}:${context.env.PATH}` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

/** Every line that names a shard's stack carries that shard's prefix: no line holds two shards' text. */
function expectWholePrefixedLines(output: string): void {
  for (const line of output.split("\n")) {
    const named = /drivergigspro-ci-(s00\d)|stack ci-(s00\d)|^\[(s00\d)\]/.exec(line);
    if (named === null) continue;
    const shard = named[1] ?? named[2] ?? named[3];
    if (line.startsWith("error: up failed on") || line.startsWith("error: preview failed on")) continue; // the closing line names them all
    expect(line, "a line of one shard, prefixed with its name").toMatch(new RegExp(`^\\[${shard}\\] `));
    for (const other of SHARDS.filter((name) => name !== shard)) expect(line).not.toContain(`[${other}]`);
  }
}

beforeAll(async () => {
  const bin = findEngine({ mayBuild: true });
  server = await startLocalPostgres();
  scratch = mkdtempSync(join(tmpdir(), "dgp-parallel-"));
  context = pulumiContext(bin, join(scratch, "state"), await ensureStateDatabase(server));
  checkout = cloneCheckout("parallel");
  writeFileSync(
    join(checkout, "tenants", "shards.yaml"),
    `maxTenants: 100\nshards:\n${SHARDS.map((name, i) => `  - name: ${name}\n    file: tenants/${i === 0 ? "tenants" : name}.yaml\n`).join("")}`,
  );
  writeFileSync(join(checkout, "tenants", "tenants.yaml"), "tenants:\n  - username: ann_k\n    email: ann@example.com\n");
  writeFileSync(join(checkout, "tenants", "s002.yaml"), "tenants:\n  - username: bob_k\n    email: bob@example.com\n");
  // Invalid on purpose: upper case is refused, naming the line.
  writeFileSync(join(checkout, "tenants", "s003.yaml"), "tenants:\n  - username: Max_Power\n");
  // The environment's first shard stack, as a team would have committed its Pulumi.ci-s001.yaml; s002 and s003 are made from it.
  pulumiIn(["stack", "init", "ci-s001"]);
  const plain = {
    "servers[0].name": "local",
    "servers[0].host": server.host,
    "servers[0].port": String(server.port),
    "servers[0].sslmode": "disable",
    databaseProvider: "builtin",
    "dns.provider": "none",
    "dns.zone": "localhost",
    tenantsFile: "tenants/tenants.yaml",
  };
  pulumiIn(["config", "set-all", "--path", "--stack", "ci-s001", ...Object.entries(plain).flatMap(([key, value]) => ["--plaintext", `${key}=${value}`])]);
  pulumiIn(["config", "set", "--path", "--secret", "--stack", "ci-s001", "servers[0].adminPassword"], server.adminPassword);
}, 900_000);

afterAll(async () => {
  await server?.stop();
  if (checkout) rmSync(dirname(checkout), { recursive: true, force: true });
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("npm run deploy over several shards at once, with the real engine", () => {
  it("deploys every good shard although one fails, names the failed one, and ends with one table", async () => {
    const { code, stdout, stderr } = await deploy(["up", "--env", "ci", "--parallel", "2"]);
    const all = `${stdout}\n${stderr}`;
    expect(code, all).toBe(1);
    expect(stdout).toContain("deploy: up of every shard: s001, s002, s003 (2 at a time)");
    // Two at a time: s002 starts before s001 ends (the pool starts both at once; no clock involved).
    expect(stdout.indexOf("[s002] ci-s002: started")).toBeGreaterThan(-1);
    expect(stdout.indexOf("[s002] ci-s002: started")).toBeLessThan(stdout.indexOf("[s001] ci-s001: ok in"));
    expect(stdout).toContain("[s002] created stack ci-s002 for the new shard s002, config copied from ci-s001");
    expect(stdout).toMatch(/^\[s001\] Resources:$/m);
    expect(all).toMatch(/^\[s003\] .*tenants\/s003\.yaml:2: tenant "Max_Power"/m);
    expect(stderr).toContain("error: up failed on 1 of 3 shard(s): s003 (stack ci-s003)");
    expectWholePrefixedLines(all);
    console.log(stdout.slice(stdout.indexOf("\nSHARD")), stderr.slice(stderr.lastIndexOf("error: up failed")));
    // The table: both good shards created their tenant's resources (counted once: the update, not its preview); s003 changed nothing.
    expect(stdout).toMatch(/^SHARD\s+RESULT\s+CHANGES\s+SECONDS$/m);
    for (const shard of ["s001", "s002"]) {
      const created = new RegExp(`^\\[${shard}\\]\\s+\\+ (\\d+) created$`, "m").exec(stdout)?.[1];
      expect(created, `${shard}'s own summary`).toBeDefined();
      expect(stdout).toMatch(new RegExp(`^${shard}\\s+ok\\s+\\+${created}\\s+\\d+\\.\\d$`, "m"));
    }
    expect(stdout).toMatch(/^s003\s+failed\s+none\s+\d+\.\d$/m);
    expect(stdout).toMatch(/^total\s+2\/3 ok\s+\d+\.\d$/m);
    for (const [stack, username] of [
      ["ci-s001", "ann_k"],
      ["ci-s002", "bob_k"],
    ] as const) {
      const outputs = JSON.parse(pulumiIn(["stack", "output", "--json", "--stack", stack])) as { tenants: Record<string, { status: string }> };
      expect(outputs.tenants[username]?.status, stack).toBe("active");
    }
  }, 900_000);

  it("previews with --json: one document on stdout, the comment with every shard", async () => {
    const comment = join(scratch, "preview.md");
    const { code, stdout, stderr } = await deploy(["preview", "--env", "ci", "--parallel", "3", "--json", "--comment-file", comment]);
    expect(code, stderr).toBe(1);
    writeFileSync(join(scratch, "preview.json"), stdout);
    const report = JSON.parse(stdout) as {
      command: string;
      parallel: number;
      shards: { shard: string; result: string; changes?: Record<string, number>; error?: string; tenants?: { unchanged: number } }[];
    };
    expect(report).toMatchObject({ command: "preview", parallel: 3 });
    expect(report.shards.map((shard) => [shard.shard, shard.result])).toEqual([
      ["s001", "ok"],
      ["s002", "ok"],
      ["s003", "failed"],
    ]);
    // Deployed above: nothing to change, one tenant left as it is.
    expect(report.shards[0]).toMatchObject({ changes: {}, tenants: { unchanged: 1 } });
    expect(report.shards[2]!.error).toMatch(/tenants\/s003\.yaml:2: tenant "Max_Power"/);
    expect(stderr).toContain("deploy: preview of every shard: s001, s002, s003 (3 at a time)");
    expect(stderr).toContain("error: preview failed on 1 of 3 shard(s): s003 (stack ci-s003)");
    expectWholePrefixedLines(stderr);
    const text = readFileSync(comment, "utf8");
    expect(text).toContain("| s001 | `ci-s001` | 0 | 0 | 0 | 0 | 0 | 0 |");
    expect(text).toContain("| s003 | `ci-s003` | preview failed |");
  }, 900_000);

  it("lists the chosen shards for CI's matrix and gathers the matrix jobs' results into one comment and summary", async () => {
    const listed = await deploy(["list", "--env", "ci", "--shard", "s002", "--shard", "s003", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({
      shards: [
        { shard: "s002", stack: "ci-s002" },
        { shard: "s003", stack: "ci-s003" },
      ],
    });

    // s004's job never wrote a result: it is a failed row too.
    const comment = join(scratch, "gathered.md");
    const summary = join(scratch, "summary.md");
    const gathered = await deploy([
      "report",
      "--env",
      "ci",
      "--expect",
      "s001,s002,s003,s004",
      "--comment-file",
      comment,
      "--summary-file",
      summary,
      join(scratch, "preview.json"),
    ]);
    expect(gathered.code, gathered.stderr).toBe(1);
    expect(gathered.stdout).toMatch(/^s004\s+failed\s+0\.0$/m);
    expect(gathered.stderr).toContain("error: preview failed on 2 of 4 shard(s): s003 (stack ci-s003), s004 (stack ci-s004)");
    expect(readFileSync(comment, "utf8")).toContain("| s001 | `ci-s001` | 0 | 0 | 0 | 0 | 0 | 0 |");
    const markdown = readFileSync(summary, "utf8");
    expect(markdown).toContain("| s003 | failed |  |");
    expect(markdown).toMatch(/\| s001 \| ok \| none \| \d+\.\d \|/);

    const other = await deploy(["report", "--env", "prod", join(scratch, "preview.json")]);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('a run of environment "ci", not "prod"');
  }, 120_000);
});

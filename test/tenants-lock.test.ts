/** Serialized tenants-file edits: `npm run tenants` run as real, concurrent processes. */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { tenantsLockPath } from "../tenants/lock";
import { validateTenantsText } from "../tenants/load";

const ROOT = join(__dirname, "..");
const TSX = join(ROOT, "node_modules", ".bin", "tsx");
const CLI = join(ROOT, "cli", "tenants.ts");
const ENV = { ...process.env, PATH: "/usr/bin:/bin", DGP_TOOLCHAIN_CACHE: join(tmpdir(), "dgp-no-toolchain"), PULUMI_BACKEND_URL: undefined };
let file: string;

beforeEach(() => {
  file = join(mkdtempSync(join(tmpdir(), "dgp-lock-")), "tenants.yaml");
  copyFileSync(join(ROOT, "tenants", "tenants.yaml"), file);
});

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [CLI, ...args, "--file", file], { env: ENV });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

function usernames(): string[] {
  const parsed = validateTenantsText(readFileSync(file, "utf8"));
  if (!parsed.ok) throw new Error(parsed.problems.map((p) => p.message).join("; "));
  return parsed.tenants.map((tenant) => tenant.username);
}

describe("concurrent edits of one tenants file", () => {
  it("8 concurrent `add` processes: 8 entries, each printed added, comments kept", async () => {
    const before = readFileSync(file, "utf8");
    const existing = usernames();
    const names = Array.from({ length: 8 }, (_, i) => `racer_${i}`);
    const results = await Promise.all(names.map((name) => run(["add", name, "--email", `${name}@example.com`])));
    for (const [i, result] of results.entries()) {
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^added ${names[i]} `));
    }
    expect(usernames().sort()).toEqual([...existing, ...names].sort());
    expect(readFileSync(file, "utf8").startsWith(before)).toBe(true);
    expect(existsSync(tenantsLockPath(file))).toBe(false);
  }, 120_000);

  it("add, suspend, resume and remove racing each other all land", async () => {
    await run(["add", "base_one"]);
    await run(["add", "base_two"]);
    const results = await Promise.all([run(["add", "mixed_a"]), run(["suspend", "base_one"]), run(["remove", "base_two"]), run(["add", "mixed_b"])]);
    expect(results.map((r) => r.status)).toEqual([0, 0, 0, 0]);
    const names = usernames();
    expect(names).toEqual(expect.arrayContaining(["mixed_a", "mixed_b", "base_one", "base_two"]));
    // Removing is a tombstone, never a lost line.
    expect(readFileSync(file, "utf8")).toMatch(/username: base_two\n(\s+\w+: .*\n)*\s+status: removed/);
    expect(readFileSync(file, "utf8")).toMatch(/username: base_one\n(\s+tenantId: [0-9A-F]{8}\n)\s+status: suspended/);
  }, 120_000);
});

describe("a lock left behind", () => {
  it("held by a process that was killed (SIGKILL) is taken over at once", async () => {
    // A real holder: takes the lock through the same code, says so, then waits forever.
    const holder = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "-e",
        `require(${JSON.stringify(join(ROOT, "tenants", "lock.ts"))}).withTenantsFileLock(${JSON.stringify(file)}, () => { console.log("locked"); setInterval(() => {}, 1000); return new Promise(() => {}); })`,
      ],
      { env: ENV, cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("locked") && resolve());
      holder.on("exit", (code) => reject(new Error(`holder exited with ${code} before locking`)));
    });
    const exited = new Promise((resolve) => holder.on("exit", resolve));
    holder.kill("SIGKILL");
    await exited;
    expect(existsSync(tenantsLockPath(file))).toBe(true);
    const owner = JSON.parse(readFileSync(join(tenantsLockPath(file), "owner"), "utf8"));
    expect(owner.pid).toBe(holder.pid);

    const result = await run(["add", "after_crash"]);
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    expect(usernames()).toContain("after_crash");
    expect(existsSync(tenantsLockPath(file))).toBe(false);
  }, 120_000);

  it("not refreshed for longer than the stale limit (a holder on another machine) is taken over", async () => {
    const lockPath = tenantsLockPath(file);
    mkdirSync(lockPath);
    writeFileSync(join(lockPath, "owner"), JSON.stringify({ host: "some-other-host", pid: 1 }));
    const longAgo = new Date(Date.now() - 10 * 60_000);
    utimesSync(lockPath, longAgo, longAgo);
    const result = await run(["add", "after_stale"]);
    expect(result.status).toBe(0);
    expect(usernames()).toContain("after_stale");
  }, 120_000);
});

/**
 * toolchain/build.sh run twice at once (two checkouts sharing the cache):
 * the second waits on the build lock, then finds everything built. A fake
 * `go` stands in for the compiler, so nothing is really built (the real
 * build takes 15 minutes); everything else is the real script, flock and mv.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BUILD, buildEnv, executable, fakeGo, goBuilds } from "./support/fake-toolchain";

// Each compile's output prints the pulumi version; a build waits for $FAKE_GO_BARRIER to exist, so a test can hold it mid-build.
const FAKE_GO = fakeGo("v3.259.0");

let root: string;
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

function setUp(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  root = mkdtempSync(join(tmpdir(), "dgp-toolchain-lock-"));
  const bin = join(root, "fakebin");
  executable(join(bin, "go"), FAKE_GO);
  return buildEnv(root, [bin], extra);
}

interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  done: Promise<number | null>;
}

function runBuild(env: NodeJS.ProcessEnv): Run {
  const child = spawn("bash", [BUILD], { env, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const run: Run = { child, stdout: "", stderr: "", done: new Promise((resolve) => child.on("exit", (code) => resolve(code))) };
  child.stdout!.on("data", (chunk) => (run.stdout += chunk));
  child.stderr!.on("data", (chunk) => (run.stderr += chunk));
  return run;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 1200; attempt++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`never happened: ${what}`);
}

const builds = goBuilds;

describe("toolchain/build.sh in two checkouts at once", () => {
  it("builds once: the second run waits for the lock, then finds every binary built", async () => {
    const env = setUp({ FAKE_GO_BARRIER: "" });
    env.FAKE_GO_BARRIER = join(root, "release");
    const first = runBuild(env);
    await until(() => builds(env).length === 1, "the first run's compile started");
    const second = runBuild(env);
    await until(() => second.stderr.includes("another toolchain build is running"), "the second run waits");
    expect(builds(env)).toHaveLength(1); // the second run has not compiled anything
    writeFileSync(env.FAKE_GO_BARRIER!, "");

    expect([await first.done, await second.done]).toEqual([0, 0]);
    const bindir = first.stdout.trim().split("\n").at(-1)!;
    expect(second.stdout.trim().split("\n").at(-1)).toBe(bindir);
    expect(builds(env)).toHaveLength(3); // pulumi, language host, random provider: once each
    expect(second.stderr).toMatch(/pulumi: cached[\s\S]*pulumi-language-nodejs: cached[\s\S]*pulumi-resource-random: cached/);
    // Only the finished files and the lock: no temporary names left behind.
    expect(readdirSync(bindir).sort()).toEqual(["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs", "pulumi-resource-random"]);
    expect(readdirSync(dirname(bindir)).sort()).toEqual(["bin", "build.lock"]);
    for (const out of builds(env)) expect(out).toMatch(new RegExp(`^${bindir}/\\.pulumi[a-z-]*\\.[A-Za-z0-9]{6}/pulumi[a-z-]*$`));
  });

  it("a failed compile exits 1, leaves no temporary file and no lock: the next run builds", async () => {
    const env = setUp({ FAKE_GO_FAIL: "1" });
    const failed = runBuild(env);
    expect(await failed.done).toBe(1);
    expect(failed.stderr).toMatch(/go build of github\.com\/pulumi\/pulumi\/pkg\/v3\/cmd\/pulumi failed/);
    const bindir = join(root, "cache", readdirSync(join(root, "cache"))[0]!, "bin");
    expect(readdirSync(bindir)).toEqual([]);

    const again = runBuild({ ...env, FAKE_GO_FAIL: "" });
    expect(await again.done).toBe(0);
    expect(again.stderr).not.toMatch(/another toolchain build is running/);
  });
});

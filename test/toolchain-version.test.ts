/**
 * toolchain/build.sh with a `pulumi` already on PATH (issue 11, item 5): one
 * of v3.259.0 or newer is used as is, an older one is not; of the plugins an
 * engine run needs, only those the install lacks are built. Fake `pulumi`
 * and `go` scripts stand in for the real ones, so nothing is really built.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BUILD, buildEnv, executable, fakeGo, goBuilds } from "./support/fake-toolchain";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "dgp-toolchain-version-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** An install of `pulumi` reporting `version`, with the given plugins next to it; returns its folder. */
function fakeInstall(version: string, plugins: string[] = ["pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"]): string {
  const dir = join(root, "pulumi-install", "bin");
  executable(join(dir, "pulumi"), `#!/bin/sh\n[ "$1" = version ] && echo ${version}\n`);
  for (const plugin of plugins) executable(join(dir, plugin), "#!/bin/sh\n");
  return dir;
}

/** The random plugin as `pulumi plugin install resource random v4.21.2` leaves it in PULUMI_HOME. */
function installRandomPlugin(): void {
  executable(join(root, "pulumi-home", "plugins", "resource-random-v4.21.2", "pulumi-resource-random"), "#!/bin/sh\n");
}

function run(pulumiDir: string, args: string[] = []) {
  executable(join(root, "fakego", "go"), fakeGo("built"));
  const env = buildEnv(root, [pulumiDir, join(root, "fakego")], { PULUMI_HOME: join(root, "pulumi-home") });
  const result = spawnSync("bash", [BUILD, ...args], { env, encoding: "utf8" });
  return { status: result.status, bin: result.stdout.trim().split("\n").pop(), stderr: result.stderr, built: goBuilds(env) };
}

describe("toolchain/build.sh with a pulumi on PATH", () => {
  it.each(["v3.259.0", "v3.260.1", "v3.1000.0", "v4.0.0", "v3.260.0-alpha.1+dirty"])("uses %s as is when its install has every plugin", (version) => {
    const dir = fakeInstall(version);
    installRandomPlugin();
    const result = run(dir);
    expect(result.status, result.stderr).toBe(0);
    expect(result.bin).toBe(dir);
    expect(result.stderr).toContain(`using pulumi ${version} already on PATH (${dir})`);
    expect(result.built).toEqual([]);
  });

  it.each(["v3.200.0", "v3.258.9", "v2.999.0", "unknown", ""])("does not use %j: it would build its own", (version) => {
    installRandomPlugin();
    // --cached-only on an empty cache: says it would build, and stops before building anything.
    const result = run(fakeInstall(version), ["--cached-only"]);
    expect(result.status).toBe(3);
    expect(result.stderr).toContain(`pulumi on PATH is '${version || "unknown"}', older than v3.259.0`);
    expect(result.stderr).toContain("not built yet; run: npm run toolchain");
    expect(result.built).toEqual([]);
  });

  it("builds only the random plugin when a new enough install lacks it, and puts it beside that pulumi", () => {
    const dir = fakeInstall("v3.260.1");
    const result = run(dir);
    expect(result.status, result.stderr).toBe(0);
    expect(result.built).toHaveLength(1);
    expect(result.built[0]).toMatch(
      /\/plugins_langhost-v3\.68\.0_random-4\.21\.2_go1\.99-fake_linux-amd64\/bin\/\.pulumi-resource-random\.\w+\/pulumi-resource-random$/,
    );
    expect(result.stderr).toContain("it lacks pulumi-resource-random: adding our own");
    expect(readlinkSync(join(result.bin!, "pulumi"))).toBe(join(dir, "pulumi"));
    expect(spawnSync(join(result.bin!, "pulumi"), ["version"], { encoding: "utf8" }).stdout.trim()).toBe("v3.260.1");
    expect(existsSync(join(result.bin!, "pulumi-resource-random"))).toBe(true);
    // The install's own language host is the one used: no link to ours.
    expect(existsSync(join(result.bin!, "pulumi-language-nodejs"))).toBe(false);

    // A second run builds nothing more, and --cached-only finds it.
    expect(run(dir).built).toHaveLength(1);
    expect(run(dir, ["--cached-only"])).toMatchObject({ status: 0, bin: result.bin });
  });

  it("adds the language host and the dynamic-provider script when the install has neither", () => {
    const dir = fakeInstall("v3.261.0", []);
    installRandomPlugin();
    const result = run(dir);
    expect(result.status, result.stderr).toBe(0);
    expect(result.built.map((path) => path.split("/").pop())).toEqual(["pulumi-language-nodejs"]);
    expect(readFileSync(join(result.bin!, "pulumi-resource-pulumi-nodejs"), "utf8")).toContain("@pulumi/pulumi/cmd/dynamic-provider");
    expect(existsSync(join(result.bin!, "pulumi-resource-random"))).toBe(false);
  });
});

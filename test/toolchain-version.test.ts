/**
 * toolchain/build.sh with a `pulumi` already on PATH (issue 11, item 5): one
 * of v3.259.0 or newer is used as is, an older one is not; of the plugins an
 * engine run needs, only those the install lacks are built. Fake `pulumi`
 * and `go` scripts stand in for the real ones, so nothing is really built.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const BUILD = join(__dirname, "..", "toolchain", "build.sh");

// Answers `go env` and `go build -o OUT` (OUT: a script), and logs each build's output.
const FAKE_GO = `#!/bin/sh
case "$1" in
  env) case "$2" in GOVERSION) echo go1.99-fake ;; GOOS) echo linux ;; GOARCH) echo amd64 ;; esac ;;
  build)
    out=""
    while [ $# -gt 0 ]; do [ "$1" = "-o" ] && out="$2"; shift; done
    echo "$out" >> "$FAKE_GO_LOG"
    printf '#!/bin/sh\\necho built\\n' > "$out"
    chmod 755 "$out" ;;
esac
`;

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "dgp-toolchain-version-"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

function executable(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, 0o755);
}

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
  executable(join(root, "fakego", "go"), FAKE_GO);
  const env = {
    PATH: `${pulumiDir}:${join(root, "fakego")}:${dirname(process.execPath)}:/usr/bin:/bin`,
    HOME: root,
    PULUMI_HOME: join(root, "pulumi-home"),
    DGP_TOOLCHAIN_CACHE: join(root, "cache"),
    FAKE_GO_LOG: join(root, "go.log"),
  };
  const result = spawnSync("bash", [BUILD, ...args], { env, encoding: "utf8" });
  const built = existsSync(env.FAKE_GO_LOG) ? readFileSync(env.FAKE_GO_LOG, "utf8").trim().split("\n") : [];
  return { status: result.status, bin: result.stdout.trim().split("\n").pop(), stderr: result.stderr, built };
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

/**
 * The pull-request workflow (.github/workflows/tenants.yml) cannot drift from
 * what is tested: actionlint (built from the Go module proxy by
 * toolchain/actionlint.sh) finds nothing in it; every `npm run X` it runs is
 * a script of package.json; `test:unit` runs files that start no engine and
 * no server; and its Pulumi versions and comment marker are the project's.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PREVIEW_COMMENT_MARKER } from "../deploy/preview-summary";
import { UNIT_TEST_FILES } from "./unit-files";

const ROOT = join(__dirname, "..");
const WORKFLOWS = join(ROOT, ".github", "workflows");
const WORKFLOW_FILES = readdirSync(WORKFLOWS).filter((file) => /\.ya?ml$/.test(file));
const workflow = parse(readFileSync(join(WORKFLOWS, "tenants.yml"), "utf8")) as {
  env: Record<string, string>;
  jobs: Record<string, { permissions: Record<string, string>; steps: { run?: string; uses?: string; with?: Record<string, string> }[] }>;
};
const steps = Object.values(workflow.jobs).flatMap((job) => job.steps);
const scripts = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

describe("the GitHub Actions workflows", () => {
  it("pass actionlint with no finding", () => {
    const actionlint = execFileSync("bash", [join(ROOT, "toolchain", "actionlint.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })
      .trim()
      .split("\n")
      .pop()!;
    const result = spawnSync(actionlint, ["-no-color", ...WORKFLOW_FILES.map((file) => join(".github", "workflows", file))], { cwd: ROOT, encoding: "utf8" });
    expect(`${result.stdout}${result.stderr}`).toBe("");
    expect(result.status).toBe(0);
  }, 600_000);

  it("run only npm scripts that package.json has, and the ones the tests run", () => {
    const runs = steps.flatMap((step) => [...(step.run ?? "").matchAll(/npm run ([\w:-]+)/g)].map((match) => match[1]!));
    expect(new Set(runs)).toEqual(new Set(["typecheck", "test:unit", "deploy"]));
    for (const name of runs) expect(scripts, `npm run ${name}`).toHaveProperty([name]);
    // test/deploy/lock-wait.e2e.test.ts runs `npm run deploy`; test:unit is this list of files.
    expect(scripts.deploy).toBe("tsx scripts/deploy.ts");
    expect(scripts["test:unit"]).toBe("vitest run --config vitest.unit.config.mts");
    expect(scripts.test).toBe("vitest run");
  });

  it("keep test:unit to files that exist and start no engine and no server", () => {
    expect(UNIT_TEST_FILES).toContain("test/workflow.test.ts");
    for (const file of UNIT_TEST_FILES) {
      expect(existsSync(join(ROOT, file)), file).toBe(true);
      if (file === "test/workflow.test.ts") continue; // it names them below
      const text = readFileSync(join(ROOT, file), "utf8");
      // findEngine({ mayBuild: false }) only looks (find-engine.test.ts points it at a fake toolchain); one that may build is an engine.
      expect(text, file).not.toMatch(
        /startLocalPostgres|findEngine\(\{ mayBuild: true|resolveFleet|resolveEngine|spawnPulumi|setUpEngineStack|startBind|startUsageFleet|startService|LocalWorkspace/,
      );
    }
  });

  it("install the Pulumi CLI and random plugin at the toolchain's versions, with minimal permissions", () => {
    const build = readFileSync(join(ROOT, "toolchain", "build.sh"), "utf8");
    expect(`v${workflow.env.PULUMI_VERSION}`).toBe(/^PULUMI_VERSION="(v[^"]+)"/m.exec(build)![1]);
    expect(workflow.env.RANDOM_PLUGIN_VERSION).toBe(/^RANDOM_VERSION="([^"]+)"/m.exec(build)![1]);
    expect(workflow.env.PULUMI_BACKEND_URL).toBe("${{ secrets.PULUMI_BACKEND_URL }}");
    expect(workflow.env.PULUMI_CONFIG_PASSPHRASE).toBe("${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
    expect(workflow.jobs.preview!.permissions).toEqual({ contents: "read", "pull-requests": "write" });
    expect(workflow.jobs.deploy!.permissions).toEqual({ contents: "read", actions: "read" });
    for (const step of steps.filter((step) => step.uses)) expect(step.uses).toMatch(/@v\d+(\.\d+)*$|@[0-9a-f]{40}$/);
  });

  it("find their own comment by the marker the preview comment starts with", () => {
    const post = steps.find((step) => step.uses?.startsWith("actions/github-script") && step.with?.script?.includes("createComment"))!;
    expect(post.with!.script).toContain(`const marker = "${PREVIEW_COMMENT_MARKER}";`);
    expect(steps.some((step) => step.run?.includes("--comment-file preview.md"))).toBe(true);
    expect(post.with!.script).toContain('readFileSync("preview.md"');
  });
});

/**
 * The pull-request workflow (.github/workflows/tenants.yml) cannot drift from
 * what is tested: actionlint (built from the Go module proxy by
 * toolchain/actionlint.sh) finds nothing in it; every `npm run X` it runs is
 * a script of package.json; `test:unit` runs files that start no engine and
 * no server; and its Pulumi versions and comment marker are the project's.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { PREVIEW_COMMENT_MARKER } from "../deploy/preview-summary";
import { UNIT_TEST_FILES } from "./unit-files";

const ROOT = join(__dirname, "..");
const WORKFLOWS = join(ROOT, ".github", "workflows");
const WORKFLOW_FILES = readdirSync(WORKFLOWS).filter((file) => /\.ya?ml$/.test(file));
interface Step {
  id?: string;
  if?: string;
  run?: string;
  uses?: string;
  shell?: string;
  with?: Record<string, string | boolean>;
  env?: Record<string, string>;
}
interface Job {
  needs?: string | string[];
  if?: string;
  permissions: Record<string, string>;
  outputs?: Record<string, string>;
  strategy?: { "fail-fast"?: boolean; "max-parallel"?: number; matrix?: unknown };
  concurrency?: { group: string; "cancel-in-progress": boolean };
  steps: Step[];
}
const workflow = parse(readFileSync(join(WORKFLOWS, "tenants.yml"), "utf8")) as {
  env: Record<string, string>;
  jobs: Record<string, Job>;
};
const steps: Step[] = Object.values(workflow.jobs).flatMap((job) => job.steps);
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
    expect(Object.keys(workflow.jobs).sort()).toEqual(["deploy", "deploy-summary", "preview", "preview-comment", "shards"]);
    expect(workflow.jobs.shards!.permissions).toEqual({ contents: "read", actions: "read" });
    expect(workflow.jobs.preview!.permissions).toEqual({ contents: "read" });
    expect(workflow.jobs["preview-comment"]!.permissions).toEqual({ contents: "read", "pull-requests": "write" });
    expect(workflow.jobs.deploy!.permissions).toEqual({ contents: "read" });
    expect(workflow.jobs["deploy-summary"]!.permissions).toEqual({ contents: "read" });
    for (const step of steps.filter((step) => step.uses)) expect(step.uses).toMatch(/@v\d+(\.\d+)*$|@[0-9a-f]{40}$/);
  });

  it("find their own comment by the marker the preview comment starts with", () => {
    const gather = workflow.jobs["preview-comment"]!.steps;
    const post = gather.find((step) => step.uses?.startsWith("actions/github-script") && String(step.with?.script).includes("createComment"))!;
    expect(post.with!.script).toContain(`const marker = "${PREVIEW_COMMENT_MARKER}";`);
    expect(gather.some((step) => step.run?.includes("--comment-file preview.md"))).toBe(true);
    expect(post.with!.script).toContain('readFileSync("preview.md"');
  });

  describe("fan out over the changed shards", () => {
    const shards = workflow.jobs.shards!;
    const select = shards.steps.find((step) => step.id === "select")!;

    it("compute the shards once, as a JSON matrix, from npm run deploy -- list", () => {
      expect(select.run).toMatch(/npm run deploy --silent -- list --env prod --changed-since "\$SINCE" --json > shards\.json/);
      expect(select.env!.SINCE).toContain("origin/{0}', github.base_ref");
      expect(select.env!.SINCE).toContain("steps.last.outputs.sha");
      for (const output of ["matrix", "names", "count"]) expect(shards.outputs![output]).toBe(`\${{ steps.select.outputs.${output} }}`);
    });

    it("turn list's --json into the matrix, names and count the other jobs read", () => {
      // The select step's own shell, on what `list --json` prints (see test/deploy/parallel.e2e.test.ts).
      const dir = mkdtempSync(join(tmpdir(), "dgp-workflow-"));
      try {
        const listed = {
          environment: "prod",
          reason: "2 shard(s) changed",
          shards: ["s001", "s003"].map((shard) => ({ shard, stack: `prod-${shard}`, file: "x" })),
        };
        const script = select.run!.replace(/^npm run deploy .*$/m, `printf '%s' '${JSON.stringify(listed)}' > shards.json`);
        const result = spawnSync("bash", ["-e", "-c", script], { cwd: dir, env: { ...process.env, GITHUB_OUTPUT: join(dir, "out") }, encoding: "utf8" });
        expect(result.status, result.stderr).toBe(0);
        const outputs = Object.fromEntries(
          readFileSync(join(dir, "out"), "utf8")
            .trim()
            .split("\n")
            .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
        );
        expect(JSON.parse(outputs.matrix!)).toEqual({ shard: ["s001", "s003"] });
        expect(outputs).toMatchObject({ names: "s001,s003", count: "2" });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    for (const [name, command, gatherer, upload] of [
      ["preview", "preview", "preview-comment", "tenants-preview-"],
      ["deploy", "up", "deploy-summary", "tenants-deploy-"],
    ] as const) {
      it(`run ${name} as one job per shard, at most max-parallel at once, one per stack at a time, and gather them in ${gatherer}`, () => {
        const job = workflow.jobs[name]!;
        expect(job.needs).toBe("shards");
        expect(job.if).toContain("needs.shards.outputs.count != '0'");
        expect(job.strategy!.matrix).toBe("${{ fromJSON(needs.shards.outputs.matrix) }}");
        expect(job.strategy!["fail-fast"]).toBe(false);
        expect(job.strategy!["max-parallel"]).toBeGreaterThan(1);
        expect(job.concurrency!.group).toMatch(/^tenants-.*\$\{\{ matrix\.shard \}\}$/);
        expect(job.concurrency!["cancel-in-progress"]).toBe(name === "preview");
        const run = job.steps.find((step) => step.run?.includes("npm run deploy"))!;
        expect(run.run).toBe(`npm run deploy --silent -- ${command} --env prod --shard "$SHARD" --json > "result-$SHARD.json"`);
        expect(run.env).toEqual({ SHARD: "${{ matrix.shard }}" });
        const keep = job.steps.find((step) => step.uses?.startsWith("actions/upload-artifact"))!;
        expect(keep.if).toBe("${{ !cancelled() }}");
        expect(keep.with).toMatchObject({ name: `${upload}\${{ matrix.shard }}`, path: "result-${{ matrix.shard }}.json" });

        const gather = workflow.jobs[gatherer]!;
        expect(gather.needs).toEqual(["shards", name]);
        expect(gather.if).toContain("!cancelled()");
        const download = gather.steps.find((step) => step.uses?.startsWith("actions/download-artifact"))!;
        expect(download.with).toMatchObject({ pattern: `${upload}*`, path: "results", "merge-multiple": true });
        const report = gather.steps.find((step) => step.run?.includes("npm run deploy"))!;
        expect(report.run).toMatch(/^npm run deploy -- report --env prod --expect "\$SHARDS" --(comment|summary)-file \S+ results\/\*\.json$/);
        expect(report.shell).toBe("bash -O nullglob -e {0}");
        expect(report.env).toEqual({ SHARDS: "${{ needs.shards.outputs.names }}" });
      });
    }
  });
});

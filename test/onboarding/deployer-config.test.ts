/**
 * The file the service writes is the file the program reads: with a tenants
 * file given (TENANTS_FILE, or the service's git clone) the deployer sets the
 * stack config `drivergigspro:tenantsFile` to its absolute path. Real pulumi
 * CLI on a file backend; no update is run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { findEngine, pulumi, pulumiContext, type PulumiContext, setStackConfig } from "../../engine/pulumi";
import { PROJECT_DIR } from "../../engine/paths";
import { AutomationDeployer, engineEnvVars } from "../../onboarding/deployer";

let context: PulumiContext;
let workDir: string;
const stack = `onb-cfg-${process.pid}`;

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), "dgp-deployer-config-"));
  context = pulumiContext(findEngine({ mayBuild: true }), join(workDir, "state"));
  pulumi(context, ["stack", "init", stack]);
  setStackConfig(context, stack, { tenantsFile: "tenants/tenants.yaml" });
}, 120_000);

afterAll(() => {
  try {
    pulumi(context, ["stack", "rm", "--yes", "--force", stack]);
  } finally {
    rmSync(join(PROJECT_DIR, `Pulumi.${stack}.yaml`), { force: true });
    rmSync(workDir, { recursive: true, force: true });
  }
});

it("sets the stack's tenantsFile to the file the service writes, and reads it back", async () => {
  const file = join(workDir, "clone", "tenants", "tenants.yaml");
  const open = (tenantsFile?: string) =>
    AutomationDeployer.open({
      stackName: stack,
      workDir: PROJECT_DIR,
      envVars: engineEnvVars({ ...context.env, TENANTS_GIT_URL: "https://t:secret@x/r.git" }),
      tenantsFile,
    });
  expect((await open()).tenantsFile).toBe(join(PROJECT_DIR, "tenants", "tenants.yaml"));
  expect((await open(file)).tenantsFile).toBe(file);
  expect(pulumi(context, ["config", "get", "drivergigspro:tenantsFile", "--stack", stack]).trim()).toBe(file);
  expect((await open()).tenantsFile).toBe(file);
  expect(engineEnvVars({ A: "1", TENANTS_GIT_URL: "https://t:secret@x/r.git" })).toEqual({ A: "1" });
}, 120_000);

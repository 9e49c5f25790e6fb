/**
 * A new shard's stack, created by the service when it first deploys it: the
 * first shard's stack's config is copied (servers with their secret admin
 * password, dns, databaseProvider) and tenantsFile is the new shard's file.
 * Real pulumi CLI on a file backend; no update is run.
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
const env = `onbshard${process.pid}`;
const first = `${env}-s001`;
const second = `${env}-s002`;

beforeAll(() => {
  workDir = mkdtempSync(join(tmpdir(), "dgp-shard-stack-"));
  context = pulumiContext(findEngine({ mayBuild: true }), join(workDir, "state"));
  pulumi(context, ["stack", "init", first]);
  setStackConfig(context, first, {
    tenantsFile: "tenants/tenants.yaml",
    databaseProvider: "builtin",
    "servers[0].name": "eu-1",
    "servers[0].host": "db.example.com",
    "dns.provider": "none",
  });
  setStackConfig(context, first, { "servers[0].adminPassword": "s3cret-admin-pw" }, { secret: true });
}, 120_000);

afterAll(() => {
  try {
    for (const stack of [second, first]) pulumi(context, ["stack", "rm", "--yes", "--force", stack]);
  } finally {
    for (const stack of [first, second]) rmSync(join(PROJECT_DIR, `Pulumi.${stack}.yaml`), { force: true });
    rmSync(workDir, { recursive: true, force: true });
  }
});

const config = (stack: string) =>
  JSON.parse(pulumi(context, ["config", "--json", "--show-secrets", "--stack", stack])) as Record<
    string,
    { value?: string; objectValue?: unknown; secret?: boolean }
  >;

it("creates a missing shard stack with the first shard's config and its own tenants file; an existing one is only selected", async () => {
  const file = join(workDir, "tenants", "s002.yaml");
  const open = () =>
    AutomationDeployer.open({ stackName: second, workDir: PROJECT_DIR, envVars: engineEnvVars(context.env), tenantsFile: file, createFrom: first });
  expect((await open()).tenantsFile).toBe(file);

  const copied = config(second);
  expect(copied["drivergigspro:tenantsFile"]?.value).toBe(file);
  expect(copied["drivergigspro:databaseProvider"]?.value).toBe("builtin");
  expect(copied["drivergigspro:servers"]?.objectValue).toEqual([{ name: "eu-1", host: "db.example.com", adminPassword: "s3cret-admin-pw" }]);
  expect(copied["drivergigspro:dns"]?.objectValue).toEqual({ provider: "none" });
  // The password stays a secret in the new stack's file, encrypted with its own key.
  const stackFile = pulumi(context, ["config", "--json", "--stack", second]);
  expect(stackFile).not.toContain("s3cret-admin-pw");
  expect(config(first)["drivergigspro:tenantsFile"]?.value).toBe("tenants/tenants.yaml");

  // Opened again (the stack exists now): selected, nothing copied over its config.
  pulumi(context, ["config", "set", "--stack", second, "databaseProvider", "postgresql"]);
  expect((await open()).tenantsFile).toBe(file);
  expect(config(second)["drivergigspro:databaseProvider"]?.value).toBe("postgresql");

  // A template stack that does not exist: a clear error, nothing created.
  await expect(
    AutomationDeployer.open({
      stackName: `${env}-s009`,
      workDir: PROJECT_DIR,
      envVars: engineEnvVars(context.env),
      tenantsFile: file,
      createFrom: `${env}-missing`,
    }),
  ).rejects.toThrow(/the stack "onbshard\d+-missing" whose config a new shard copies does not exist/);
}, 180_000);

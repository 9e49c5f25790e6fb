/**
 * Git mode through the real engine: the service (deployments in detached
 * runner processes, as in production) commits signups to a bare repository
 * and `pulumi up` deploys the pushed file; a person's commit is deployed
 * with the next batch. Real git, real PostgreSQL, real SMTP.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pulumi } from "../../engine/pulumi";
import type { RunningService } from "../../onboarding/service";
import { GitTenantsRepo } from "../../onboarding/tenants-repo";
import { addTenants } from "../../tenants/edit";
import { createTenantsRemote, git } from "../../harness/git-remote";
import { setUpEngineStack, startServiceWithRunners, stopServiceStack, TENANTS_HEADER, type EngineStack } from "../../harness/service-engine-stack";
import { signup, startMailSink, tenantStatus, waitFor, type MailSink } from "../../harness/onboarding";

const FILE = "shard/tenants.yaml";
let engine: EngineStack;
let sink: MailSink;
let service: RunningService;
let remote: string;
let person: string;
let clone: string;

beforeAll(
  async () => {
    engine = await setUpEngineStack("onb-git");
    ({ remote, person } = createTenantsRemote(engine.workDir, { [FILE]: TENANTS_HEADER }, "The shard's tenants file"));
    clone = join(engine.workDir, "service-clone");

    const env = engine.serviceEnv({ TENANTS_GIT_URL: remote, TENANTS_GIT_DIR: clone, TENANTS_GIT_PATH: FILE });
    delete env.TENANTS_FILE;
    const repo = await GitTenantsRepo.open({ url: remote, branch: "main", dir: clone, path: FILE, author: { name: "x", email: "x@x.x" }, pushAttempts: 5 });
    sink = await startMailSink();
    service = await startServiceWithRunners(engine, sink.url, { env, tenantsFile: repo.file });
  },
  30 * 60 * 1000,
);

afterAll(() => stopServiceStack({ service, sink, engine }), 30 * 60 * 1000);

const waitReady = (username: string) =>
  waitFor(
    `${username} ready`,
    async () => {
      const { body } = await tenantStatus(service.url, username);
      return body.status === "ready" ? body : undefined;
    },
    15 * 60 * 1000,
    1000,
  );

describe("git mode with the real engine", { timeout: 30 * 60 * 1000 }, () => {
  it("deploys the commit it pushed, and a person's commit with the next batch", async () => {
    for (const u of ["git_e2e_one", "git_e2e_two"]) expect((await signup(service.url, { username: u, email: `${u}@example.com` })).status).toBe(202);
    await waitReady("git_e2e_one");
    await waitReady("git_e2e_two");
    const remoteFile = () => git(remote, "show", `main:${FILE}`);
    expect(remoteFile()).toMatch(/^# tenants of the onboarding e2e stack[\s\S]*username: git_e2e_one[\s\S]*username: git_e2e_two/);
    expect(git(remote, "log", "-1", "--format=%an", "main").trim()).toBe("DriverGigsPro signup service");
    // The program read the service's clone: the stack config says so, and the outputs have both.
    expect(pulumi(engine.context, ["config", "get", "drivergigspro:tenantsFile", "--stack", engine.stack]).trim()).toBe(join(clone, FILE));
    expect(Object.keys(engine.outputs().tenants).sort()).toEqual(["git_e2e_one", "git_e2e_two"]);

    // A person's pull request is merged; the next signup's deployment carries it too.
    git(person, "pull", "--quiet", "--rebase", "origin", "main");
    const edit = addTenants(readFileSync(join(person, FILE), "utf8"), [{ username: "person_e2e" }]);
    if (!edit.ok) throw new Error("edit failed");
    writeFileSync(join(person, FILE), edit.text);
    git(person, "commit", "--quiet", "-am", "Add person_e2e");
    git(person, "push", "--quiet", "origin", "HEAD:main");
    expect((await signup(service.url, { username: "git_e2e_three", email: "three@example.com" })).status).toBe(202);
    await waitReady("git_e2e_three");
    expect(Object.keys(engine.outputs().tenants).sort()).toEqual(["git_e2e_one", "git_e2e_three", "git_e2e_two", "person_e2e"]);
    expect(remoteFile()).toMatch(/username: person_e2e[\s\S]*username: git_e2e_three/);
  });
});

/**
 * What runs the engine. The service only needs "deploy the tenants file and
 * tell me every tenant's ID, domain and status", so that is the interface;
 * `AutomationDeployer` is the real one (Pulumi's Automation API on this
 * project and stack), tests of batching and backoff use a fake.
 */
import { existsSync } from "node:fs";
import { basename, delimiter, dirname, isAbsolute, join, resolve } from "node:path";
import { LocalWorkspace, PulumiCommand, type Stack, type EngineEvent, type UpResult } from "@pulumi/pulumi/automation";
import { z } from "zod";
import { errorMessage } from "../lib/errors";
import { parseFleetSettings, type FleetSettings } from "../infra/config";
import { tenantSummarySchema } from "../infra/outputs";
import { DEFAULT_TENANTS_FILE } from "../tenants/paths";
import { CONTROL_DATABASE_VARIABLE, SERVICE_SECRETS } from "./secrets";
import { ENGINE_DEFAULTS } from "../engine/pulumi";
import { withStackLockWait } from "../engine/stack-lock-wait";
import { contextFromEnv, convergeUp } from "../engine/converge";
import { createShardStack } from "../engine/fleet-access";

export interface DeployedTenant {
  tenantId: string;
  domain: string;
  /** "active" or "suspended", as declared in the tenants file. */
  status: string;
  /** Where the tenant's app connects (never the password: that is only in the stack's secret `connections` output). */
  connection?: TenantConnection;
}

/** A tenant's connection details without the secret: its server's host and port (stack config), database and role (tenants output). */
export interface TenantConnection {
  host: string;
  port: number;
  database: string;
  role: string;
}

export interface DeployResult {
  tenants: Record<string, DeployedTenant>;
  /** Wall-clock seconds of the engine's update (program, resources, seed hooks). */
  engineSeconds: number;
  /** Seconds from the first seed hook starting to the last one finishing, when any ran. */
  seedSeconds?: number;
}

export interface Deployer {
  /** The tenants file this stack reconciles (absolute). */
  readonly tenantsFile: string;
  deploy(): Promise<DeployResult>;
  /** The stack's program settings (its config, secrets included), for a claim's DNS record (claim.ts). */
  fleetSettings?(): Promise<FleetSettings>;
}

/** The part of the stack outputs the service reads; never the `connections` secret. */
const tenantsOutputSchema = z.record(
  z.string(),
  tenantSummarySchema.pick({ tenantId: true, domain: true, status: true, database: true, role: true, server: true }),
);

export interface AutomationDeployerOptions {
  stackName: string;
  /** The Pulumi project folder (Pulumi.yaml); default: this repository. */
  workDir: string;
  /** Environment of the engine: backend URL, passphrase, PATH with the pulumi CLI, ... */
  envVars: Record<string, string>;
  /**
   * The tenants file to deploy (TENANTS_FILE, or the file in the service's git
   * clone). When given, the stack config `drivergigspro:tenantsFile` is set to
   * its absolute path, so the program reads the file the service writes.
   */
  tenantsFile?: string;
  /**
   * A fleet's shard: when `stackName` does not exist yet it is created with
   * this stack's config (servers, dns, databaseProvider, secrets re-encrypted
   * for the new stack) and its own tenantsFile, by createShardStack
   * (engine/fleet-access.ts), as `npm run deploy` creates one.
   */
  createFrom?: string;
  /** The shard's file as tenants/shards.yaml names it, what a created stack's tenantsFile says (default: tenantsFile). */
  shardFile?: string;
  onOutput?: (text: string) => void;
}

export class AutomationDeployer implements Deployer {
  private constructor(
    private readonly stack: Stack,
    readonly tenantsFile: string,
    private readonly onOutput?: (text: string) => void,
  ) {}

  static async open(options: AutomationDeployerOptions): Promise<AutomationDeployer> {
    const workspaceOptions = { envVars: { ...ENGINE_DEFAULTS, ...options.envVars }, pulumiCommand: await pulumiCommandFor(options.envVars) };
    if (options.createFrom !== undefined && options.createFrom !== options.stackName) {
      const context = contextFromEnv(workspaceOptions.envVars);
      const file = options.shardFile ?? options.tenantsFile ?? DEFAULT_TENANTS_FILE;
      const log = (line: string) => options.onOutput?.(`${line}\n`);
      await createShardStack(context, options.stackName, { name: options.stackName, file }, options.createFrom, { cwd: options.workDir, log });
    }
    const stack = await LocalWorkspace.selectStack({ stackName: options.stackName, workDir: options.workDir }, workspaceOptions);
    // The program runs with the project folder as its working directory.
    const absolute = (file: string) => (isAbsolute(file) ? file : resolve(options.workDir, file));
    const configured = (await stack.getAllConfig())["drivergigspro:tenantsFile"]?.value;
    if (options.tenantsFile === undefined) {
      return new AutomationDeployer(stack, absolute(configured ?? DEFAULT_TENANTS_FILE), options.onOutput);
    }
    // The file the service writes must be the file the program reads: the stack's config says so.
    const file = absolute(options.tenantsFile);
    if (configured === undefined || absolute(configured) !== file) {
      await stack.setConfig("drivergigspro:tenantsFile", { value: file, secret: false });
    }
    return new AutomationDeployer(stack, file, options.onOutput);
  }

  async fleetSettings(): Promise<FleetSettings> {
    const project = (await this.stack.workspace.projectSettings()).name;
    const raw: Record<string, unknown> = {};
    for (const [key, { value }] of Object.entries(await this.stack.getAllConfig())) {
      if (!key.startsWith(`${project}:`)) continue;
      // Structured values (servers, dns) arrive as JSON text, as the program reads them (infra/config.ts).
      try {
        raw[key.slice(project.length + 1)] = JSON.parse(value);
      } catch {
        raw[key.slice(project.length + 1)] = value;
      }
    }
    return parseFleetSettings(raw, project);
  }

  async deploy(): Promise<DeployResult> {
    const seeds = new Map<string, { start?: number; end?: number }>();
    const onEvent = (event: EngineEvent) => {
      const pre = event.resourcePreEvent?.metadata;
      const done = event.resOutputsEvent?.metadata;
      if (pre && pre.urn.includes("CatalogueSeed") && pre.op !== "same") seeds.set(pre.urn, { start: Date.now() });
      if (done && seeds.has(done.urn)) seeds.get(done.urn)!.end = Date.now();
    };
    const started = Date.now();
    // Waits out other deployments; a killed run's pending creates imported first, an adoption
    // completed by a second update (engine/converge.ts).
    const result = await this.waitingForOtherDeployments(async () => {
      let last: UpResult | undefined;
      await convergeUp(contextFromEnv(this.stack.workspace.envVars), this.stack.name, {
        projectDir: this.stack.workspace.workDir,
        up: async (env) => {
          const workspace = this.stack.workspace;
          for (const [key, value] of Object.entries(env)) workspace.envVars[key] = value;
          try {
            last = await this.stack.up({ onOutput: this.onOutput, onEvent, color: "never" });
          } finally {
            for (const key of Object.keys(env)) delete workspace.envVars[key];
          }
          return Object.fromEntries(Object.entries(last.outputs).map(([key, output]) => [key, output.value as unknown]));
        },
        log: (line) => this.onOutput?.(`${line}\n`),
      });
      return last!;
    });
    const engineSeconds = (Date.now() - started) / 1000;
    const tenants = tenantsOutputSchema.parse(result.outputs.tenants?.value ?? {});
    const servers = await this.serverAddresses();
    const spans = [...seeds.values()].filter((span) => span.start !== undefined && span.end !== undefined);
    const seedSeconds = spans.length > 0 ? (Math.max(...spans.map((s) => s.end!)) - Math.min(...spans.map((s) => s.start!))) / 1000 : undefined;
    return {
      tenants: Object.fromEntries(
        Object.entries(tenants).map(([username, tenant]) => {
          const server = servers.get(tenant.server);
          const connection = server ? { connection: { ...server, database: tenant.database, role: tenant.role } } : {};
          return [username, { tenantId: tenant.tenantId, domain: tenant.domain, status: tenant.status, ...connection }];
        }),
      ),
      engineSeconds,
      seedSeconds,
    };
  }

  /** Host and port of each server of the stack config (no credentials); empty when the config cannot be read (answers then carry no connection details). */
  private async serverAddresses(): Promise<Map<string, { host: string; port: number }>> {
    try {
      const settings = await this.fleetSettings();
      return new Map(settings.servers.map((server) => [server.name, { host: server.host, port: server.port }]));
    } catch (error) {
      this.onOutput?.(`cannot read the servers of ${this.stack.name} for the tenants' connection details: ${errorMessage(error)}\n`);
      return new Map();
    }
  }

  /**
   * CI deploying the same shard holds the stack's lock: wait for it rather
   * than fail (engine/stack-lock-wait.ts). A runner killed outright (OOM,
   * SIGKILL) leaves its lock behind; only a lock whose process is gone from
   * this machine is removed (engine/stale-lock.ts).
   */
  private async waitingForOtherDeployments<T>(run: () => Promise<T>): Promise<T> {
    const backendUrl = this.stack.workspace.envVars.PULUMI_BACKEND_URL ?? "";
    const project = (await this.stack.workspace.projectSettings()).name;
    const log = (line: string) => this.onOutput?.(`${line}\n`);
    return withStackLockWait(run, { backendUrl, project, stack: this.stack.name, cancel: () => this.stack.cancel(), log });
  }
}

/**
 * The engine's environment from the service's: without the tenants
 * repository's URL, which may carry a token the engine has no use for.
 */
export function engineEnvVars(env: NodeJS.ProcessEnv): Record<string, string> {
  const withheld = new Set<string>(["TENANTS_GIT_URL", CONTROL_DATABASE_VARIABLE, ...SERVICE_SECRETS]);
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && !withheld.has(entry[0])));
}

/**
 * The Automation API looks `pulumi` up on this process's PATH; the engine's
 * environment may carry its own (the offline toolchain), so use that one.
 */
async function pulumiCommandFor(envVars: Record<string, string>): Promise<PulumiCommand | undefined> {
  for (const dir of (envVars.PATH ?? "").split(delimiter).filter(Boolean)) {
    if (!existsSync(join(dir, "pulumi"))) continue;
    // PulumiCommand wants the folder above bin/.
    return basename(dir) === "bin" ? PulumiCommand.get({ root: dirname(dir) }) : undefined;
  }
  return undefined;
}

/**
 * The reason shown for a failed deployment: the engine's error lines, not
 * its whole log, cut to a size a status page can show. Pulumi masks secrets
 * in its output, and nothing else is added here.
 */
export function failureReason(error: unknown): string {
  const text = errorMessage(error);
  const lines = text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  const interesting = lines.filter((line) => /error|failed|refused|denied|invalid|problem/i.test(line) && !/^at /.test(line));
  const chosen = (interesting.length > 0 ? interesting : lines).slice(0, 8).join("\n");
  return chosen.length > 2000 ? `${chosen.slice(0, 1997)}...` : chosen;
}

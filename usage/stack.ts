/**
 * Where `npm run usage` and the service's sampler find the fleet: the stack's
 * outputs (or a saved file of them) for the tenants, and for each server's
 * admin connection either explicit URLs (--admin-url NAME=URL, or
 * USAGE_ADMIN_URLS="NAME=URL,...") or the stack config's `servers`, read the
 * way verify/cli.ts reads outputs (the project's Pulumi CLI on its backend).
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { LOCAL_STATE_DIR, PROJECT_DIR, projectName } from "../engine/paths";
import { findEngine, pulumiContext, type PulumiContext } from "../engine/pulumi";
import { localBackendUrl } from "../engine/state-backend";
import { adminServersFromConfig, parseAdminUrl, tenantsFromStackOutputs, type AdminServer, type UsageTenant } from "./inputs";

export interface FleetSourceOptions {
  /** Saved `pulumi stack output --json` instead of asking the engine. */
  outputsFile?: string;
  stack: string;
  /** NAME=URL pairs; when any is given, the stack config is not read. */
  adminUrls?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

let cachedContext: PulumiContext | undefined;
function context(env: NodeJS.ProcessEnv): PulumiContext {
  // A PULUMI_BACKEND_URL in the environment (CI, a real backend, the service's engine environment) wins, as it is;
  // else npm start's state database, through the engine findEngine finds (building the toolchain when missing, as before).
  if (env.PULUMI_BACKEND_URL !== undefined) return { stateDir: "", backendUrl: env.PULUMI_BACKEND_URL, env };
  cachedContext ??= pulumiContext(findEngine({ mayBuild: true }), LOCAL_STATE_DIR, localBackendUrl(PROJECT_DIR));
  return cachedContext;
}

/**
 * `pulumi ARGS` without blocking the event loop (the onboarding service keeps
 * answering webhooks while its sampler asks the stack). Throws with stderr.
 */
async function pulumiOutput(env: NodeJS.ProcessEnv, args: string[]): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)("pulumi", args, { cwd: PROJECT_DIR, env: context(env).env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failure = error as { code?: number | string; stderr?: string };
    throw new Error(`pulumi ${args.join(" ")} failed (${failure.code}): ${(failure.stderr ?? "").trim()}`);
  }
}

export async function adminServers(options: FleetSourceOptions): Promise<AdminServer[]> {
  const env = options.env ?? process.env;
  const explicit = [...(options.adminUrls ?? []), ...(env.USAGE_ADMIN_URLS ?? "").split(",").filter((part) => part.trim() !== "")];
  if (explicit.length > 0) return explicit.map((text) => parseAdminUrl(text.trim()));
  const config = JSON.parse(await pulumiOutput(env, ["config", "--json", "--show-secrets", "--stack", options.stack])) as Record<
    string,
    { value?: string; objectValue?: unknown }
  >;
  const entry = config[`${projectName()}:servers`];
  if (entry === undefined) throw new Error(`stack "${options.stack}" has no ${projectName()}:servers config; pass --admin-url NAME=postgresql://...`);
  const servers = entry.objectValue ?? JSON.parse(entry.value ?? "[]");
  if (!Array.isArray(servers)) throw new Error(`${projectName()}:servers of stack "${options.stack}" is not a list`);
  return adminServersFromConfig(servers as Record<string, unknown>[]);
}

export async function stackTenants(options: FleetSourceOptions): Promise<UsageTenant[]> {
  const env = options.env ?? process.env;
  const text =
    options.outputsFile !== undefined
      ? await readFile(options.outputsFile, "utf8")
      : await pulumiOutput(env, ["stack", "output", "--json", "--stack", options.stack]);
  return tenantsFromStackOutputs(JSON.parse(text));
}

/**
 * Where `npm run usage` and the service's sampler find the fleet: the stacks'
 * outputs (or a saved file of them) for the tenants, and for each server's
 * admin connection either explicit URLs (--admin-url NAME=URL, or
 * USAGE_ADMIN_URLS="NAME=URL,...") or the stacks' config `servers`. Which
 * engine, backend and stacks: the caller's Fleet (engine/fleet-access.ts), or
 * for the service the engine environment it deploys with.
 */
import { readFile } from "node:fs/promises";
import { NO_SUCH_STACK, pulumiAsync } from "../engine/fleet-access";
import { projectName } from "../engine/paths";
import type { PulumiContext } from "../engine/pulumi";
import { adminServersFromConfig, parseAdminUrl, tenantsFromStackOutputs, type AdminServer, type UsageTenant } from "./inputs";

export interface FleetSourceOptions {
  /** Saved `pulumi stack output --json` instead of asking the engine. */
  outputsFile?: string;
  /** The stacks to read (every shard of the environment, or one). */
  stacks: readonly string[];
  /** The engine's environment on the fleet's backend; needed unless outputsFile and admin URLs are given. */
  context?: PulumiContext;
  /** NAME=URL pairs; when any is given, the stack config is not read. */
  adminUrls?: readonly string[];
  env?: NodeJS.ProcessEnv;
}

function engineOf(options: FleetSourceOptions): PulumiContext {
  if (options.context === undefined) throw new Error("usage: no engine to read the stacks with; pass --outputs FILE and --admin-url NAME=URL");
  return options.context;
}

/** `pulumi ARGS` of one stack; undefined when the stack does not exist (a shard never deployed). */
async function ofStack(options: FleetSourceOptions, args: string[]): Promise<string | undefined> {
  try {
    return await pulumiAsync(engineOf(options), args);
  } catch (error) {
    if (error instanceof Error && NO_SUCH_STACK.test(error.message)) return undefined;
    throw error;
  }
}

export async function adminServers(options: FleetSourceOptions): Promise<AdminServer[]> {
  const env = options.env ?? process.env;
  const explicit = [...(options.adminUrls ?? []), ...(env.USAGE_ADMIN_URLS ?? "").split(",").filter((part) => part.trim() !== "")];
  if (explicit.length > 0) return explicit.map((text) => parseAdminUrl(text.trim()));
  // Every shard's servers, by name (shards of an environment share them; a shard may add one).
  const byName = new Map<string, AdminServer>();
  for (const stack of options.stacks) {
    const text = await ofStack(options, ["config", "--json", "--show-secrets", "--stack", stack]);
    if (text === undefined) continue;
    const entry = (JSON.parse(text) as Record<string, { value?: string; objectValue?: unknown }>)[`${projectName()}:servers`];
    if (entry === undefined) throw new Error(`stack "${stack}" has no ${projectName()}:servers config; pass --admin-url NAME=postgresql://...`);
    const servers = entry.objectValue ?? JSON.parse(entry.value ?? "[]");
    if (!Array.isArray(servers)) throw new Error(`${projectName()}:servers of stack "${stack}" is not a list`);
    for (const server of adminServersFromConfig(servers as Record<string, unknown>[])) if (!byName.has(server.name)) byName.set(server.name, server);
  }
  if (byName.size === 0) throw new Error(`no stack of ${options.stacks.join(", ")} exists on this backend; run "npm start" (locally) or deploy first`);
  return [...byName.values()];
}

export async function stackTenants(options: FleetSourceOptions): Promise<UsageTenant[]> {
  if (options.outputsFile !== undefined) return tenantsFromStackOutputs(JSON.parse(await readFile(options.outputsFile, "utf8")));
  const tenants: UsageTenant[] = [];
  for (const stack of options.stacks) {
    const text = await ofStack(options, ["stack", "output", "--json", "--stack", stack]);
    if (text !== undefined) tenants.push(...tenantsFromStackOutputs(JSON.parse(text)));
  }
  return tenants;
}

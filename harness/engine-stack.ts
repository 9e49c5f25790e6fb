/**
 * A stack of its own for a test that runs the real Pulumi engine: the
 * toolchain (toolchain/build.sh), a real PostgreSQL to deploy to, the state
 * in a database of that server no tenant can open (or in a file backend),
 * a tenants file in a throw-away work folder, and the stack configured as
 * `npm start` configures its own (configureLocalStack). Every end-to-end
 * file sets its stack up here and tears it down with `cleanup()`.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convergeUp } from "../engine/converge";
import { parseStackOutputs, type StackOutputs } from "../infra/outputs";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { configureLocalStack } from "../local/stack";
import { findEngine, pulumi, pulumiContext, type PulumiContext } from "../engine/pulumi";
import { PROJECT_DIR } from "../engine/paths";
import { ensureStateDatabase } from "../local/state-backend";
import { adminQuery } from "./admin-query";

export interface EngineStackOptions {
  /** The stack is `<name>-<pid>`; the work folder is named after it too. */
  name: string;
  /** The server the stack deploys to (default: a throw-away embedded PostgreSQL). */
  startPostgres?: () => Promise<LocalPostgres>;
  /** "postgres" (default): the state in a database of the server, as `npm start` keeps it; "file": in the work folder. */
  state?: "postgres" | "file";
  /** Stack config besides the server and `tenantsFile`. */
  config?: Record<string, string>;
  /** What the tenants file holds before the first step (default: none written). */
  tenantsText?: string;
}

/** `{ cwd }` as the last argument runs pulumi from another checkout (see support/checkout.ts). */
export type PulumiArg = string | { cwd: string };

export interface EngineStack {
  server: LocalPostgres;
  context: PulumiContext;
  stack: string;
  workDir: string;
  tenantsFile: string;
  /** The database provider configureLocalStack chose: "builtin" where the postgresql plugin is missing. */
  databaseProvider: "postgresql" | "builtin";
  /** `pulumi ARGS --stack <stack> --non-interactive`, from the project folder or from `{ cwd }`. */
  run(...args: PulumiArg[]): string;
  /** `pulumi up --yes --skip-preview`, from the project folder or from `cwd`. */
  up(cwd?: string): string;
  /**
   * One update the way every deployment path runs it (engine/converge.ts): with the
   * upstream postgresql provider, what an interrupted run left pending is imported
   * first and an adoption is completed by a second update; the builtin provider needs neither.
   */
  converge(cwd?: string): Promise<void>;
  /** Writes the tenants file: `tenants:` and one list item per entry (an entry may span lines, indented by four). */
  writeTenants(...entries: string[]): void;
  /** `pulumi stack output --json --show-secrets`, checked against the outputs' schema (other outputs kept as they are). */
  outputs(): StackOutputs & Record<string, unknown>;
  /**
   * `pulumi preview --json FLAGS` reduced to sorted "op name" lines, without
   * unchanged resources ("same", "read": the program looking up its own last
   * outputs (infra/placement.ts), "refresh"); a delete that keeps the
   * resource reads "delete name [retain]", as Pulumi's own display marks it.
   * `log`: the preview's diagnostics, one message a line.
   */
  preview(options?: { flags?: string[]; cwd?: string }): { changes: string[]; log: string };
  /** A query as the server's superuser, in `database` (default "postgres"). */
  sql<T = Record<string, unknown>>(query: string, values?: unknown[], database?: string): Promise<T[]>;
  /** Removes the stack (destroying it first when asked), its config file, the server and the work folder, even after a failed step. */
  cleanup(options?: { destroy?: boolean }): Promise<void>;
}

interface PreviewStep {
  op: string;
  urn: string;
  oldState?: { retainOnDelete?: boolean };
}

const UNCHANGED = ["same", "read", "refresh"];

export async function setUpEngineStack(options: EngineStackOptions): Promise<EngineStack> {
  const bin = findEngine({ mayBuild: true });
  const stack = `${options.name}-${process.pid}`;
  const workDir = mkdtempSync(join(tmpdir(), `dgp-${options.name}-`));
  const tenantsFile = join(workDir, "tenants.yaml");
  let server: LocalPostgres | undefined;
  let context: PulumiContext | undefined;

  async function cleanup({ destroy = false } = {}): Promise<void> {
    if (context) removeStack(context, stack, { destroy });
    else rmSync(join(PROJECT_DIR, `Pulumi.${stack}.yaml`), { force: true });
    await server?.stop();
    rmSync(workDir, { recursive: true, force: true });
  }

  try {
    server = await (options.startPostgres ?? startLocalPostgres)();
    const stateDir = join(workDir, "state");
    context = options.state === "file" ? pulumiContext(bin, stateDir) : pulumiContext(bin, stateDir, await ensureStateDatabase(server));
    if (options.tenantsText !== undefined) writeFileSync(tenantsFile, options.tenantsText);
    const { databaseProvider } = configureLocalStack(context, stack, server, { tenantsFile, ...options.config });
    return engineStack({ server, context, stack, workDir, tenantsFile, databaseProvider, cleanup });
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/**
 * Removes a test's stack (destroyed first when asked) and its config file
 * beside the program, even when a step failed half-way or the stack was
 * never created.
 */
export function removeStack(context: PulumiContext, stack: string, { destroy = false } = {}): void {
  try {
    if (destroy) pulumi(context, ["destroy", "--yes", "--skip-preview", "--stack", stack]);
    pulumi(context, ["stack", "rm", "--yes", "--force", stack]);
  } catch {
    // Leave nothing behind: not created, already gone, or a step failed half-way.
  }
  rmSync(join(PROJECT_DIR, `Pulumi.${stack}.yaml`), { force: true });
}

function engineStack(parts: Pick<EngineStack, "server" | "context" | "stack" | "workDir" | "tenantsFile" | "databaseProvider" | "cleanup">): EngineStack {
  const { server, context, stack, tenantsFile } = parts;
  const run = (...args: PulumiArg[]): string => {
    const last = args[args.length - 1];
    const cwd = typeof last === "object" ? last.cwd : undefined;
    const words = args.filter((arg): arg is string => typeof arg === "string");
    return pulumi(context, [...words, "--stack", stack, "--non-interactive"], { cwd });
  };
  const withCwd = (cwd?: string): PulumiArg[] => (cwd ? [{ cwd }] : []);
  return {
    ...parts,
    run,
    up: (cwd) => run("up", "--yes", "--skip-preview", ...withCwd(cwd)),
    converge: (cwd) =>
      convergeUp(context, stack, {
        projectDir: cwd ?? PROJECT_DIR,
        up: (env) =>
          void pulumi({ ...context, env: { ...context.env, ...env } }, ["up", "--yes", "--skip-preview", "--stack", stack, "--non-interactive"], { cwd }),
        // What it adopted, in the test's output: how the upstream provider's promises were kept.
        log: (line) => console.log(`converge: ${line}`),
      }),
    writeTenants: (...entries) => writeFileSync(tenantsFile, `tenants:\n${entries.map((entry) => `  - ${entry}\n`).join("")}`),
    outputs() {
      const json = JSON.parse(run("stack", "output", "--json", "--show-secrets")) as Record<string, unknown>;
      return { ...json, ...parseStackOutputs(json) };
    },
    preview({ flags = [], cwd } = {}) {
      const json = JSON.parse(run("preview", "--json", ...flags, ...withCwd(cwd))) as { steps?: PreviewStep[]; diagnostics?: { message: string }[] };
      const changes = (json.steps ?? [])
        .filter((step) => !UNCHANGED.includes(step.op))
        .map((step) => `${step.op} ${step.urn.split("::").pop()}${step.op === "delete" && step.oldState?.retainOnDelete ? " [retain]" : ""}`)
        .sort();
      return { changes, log: (json.diagnostics ?? []).map((diagnostic) => diagnostic.message).join("\n") };
    },
    sql: (query, values, database) => adminQuery(server, query, values, database),
  };
}

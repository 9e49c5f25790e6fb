/**
 * One `pulumi up` as every deployment path runs it (npm start, npm run deploy,
 * the signup service, the end-to-end suite), so that the upstream
 * `@pulumi/postgresql` provider keeps the same promises as the builtin one:
 *
 * 1. before: what an interrupted update created but never recorded is
 *    handed to the update, which adopts it (pending-creates.ts);
 * 2. the update itself, run by the caller (its display, its lock waits);
 * 3. after: when the update adopted an existing role or database (the
 *    `adopted` output, infra/adoption.ts), a second update sets what the
 *    import had to take as found (password, login, limits) and seeds; the
 *    pending creates it adopted are cleared from the state.
 *
 * A stack on the builtin provider needs neither: its provider adopts in its
 * own create. That is read from the stack's config file, so it costs nothing.
 *
 * Every update it runs skips the engine's intermediate checkpoints when
 * engine/fleet-access.ts checkpointDecision says the shard allows it (every
 * entry carries its tenantId, builtin provider; PULUMI_SKIP_CHECKPOINTS in the
 * environment wins), and the log says which and why.
 */
import { PENDING_ADOPTIONS_VARIABLE } from "../infra/adoption";
import { adoptedTenants } from "../infra/outputs";
import { projectName } from "./paths";
import { pulumi, type PulumiContext } from "./pulumi";
import { clearPendingCreates, pendingAdoptions } from "./pending-creates";
import { checkpointDecision, stackConfigFile } from "./fleet-access";

export interface ConvergeOptions {
  /** The checkout the engine runs in (its Pulumi.<stack>.yaml says the provider). */
  readonly projectDir: string;
  /**
   * Runs one `pulumi up` of the stack, the caller's way, with `env` added to the engine's
   * environment. A caller that has the update's outputs (the Automation API's UpResult)
   * returns them, as `name: value`; otherwise convergeUp reads them itself.
   */
  readonly up: (env: Readonly<Record<string, string>>) => Promise<Record<string, unknown> | void> | Record<string, unknown> | void;
  /** Progress lines for the caller's log. */
  readonly log?: (line: string) => void;
}

export async function convergeUp(context: PulumiContext, stack: string, options: ConvergeOptions): Promise<void> {
  const log = options.log ?? (() => undefined);
  // Whether this shard's updates skip the intermediate checkpoints: decided in one place (engine/fleet-access.ts).
  const checkpoints = checkpointDecision(options.projectDir, stack, context.env);
  log(checkpoints.reason);
  const up = (env: Readonly<Record<string, string>>) => options.up({ ...checkpoints.env, ...env });
  const upstream = usesUpstreamProvider(options.projectDir, stack);
  if (!upstream) {
    await up({});
    return;
  }
  const pending = await pendingAdoptions(context, stack);
  const handed = Object.keys(pending.adoptions);
  if (handed.length > 0)
    log(`an interrupted update created ${Object.values(pending.adoptions).join(", ")} without recording it: adopting it (${handed.join(", ")})`);
  const outputs = await up(handed.length > 0 ? { [PENDING_ADOPTIONS_VARIABLE]: JSON.stringify(pending.adoptions) } : {});
  const adopted = adoptedTenants(outputs ?? JSON.parse(pulumi(context, ["stack", "output", "--json", "--stack", stack], { cwd: options.projectDir })));
  if (adopted.length > 0) {
    log(`adopted the existing role or database of ${adopted.join(", ")}; a second update sets their password and limits and seeds them`);
    await up({});
  }
  if (pending.urns.length > 0) clearPendingCreates(context, stack, pending.urns);
}

/** Whether the stack uses the `@pulumi/postgresql` provider: the default unless its config says `builtin`. */
export function usesUpstreamProvider(projectDir: string, stack: string): boolean {
  return stackConfigFile(projectDir, stack)[`${projectName()}:databaseProvider`] !== "builtin";
}

/** The CLI context of an Automation API workspace (its environment variables), for convergeUp's own CLI calls. */
export function contextFromEnv(envVars: Record<string, string>): PulumiContext {
  return { stateDir: "", backendUrl: envVars.PULUMI_BACKEND_URL ?? "", env: { ...process.env, ...envVars } };
}

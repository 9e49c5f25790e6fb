/**
 * The kill test's one move (test/e2e/engine-suite.ts, pool.test.ts, kill-skip-checkpoints.test.ts):
 * start `pulumi up` on a stack and, once it has reported `moment` created
 * resources (0: as soon as it updates), SIGKILL the CLI, the language host,
 * the program and the providers at once, as a lost CI runner would. Returns
 * when every killed process is gone (a big process may take a moment to tear
 * down on a loaded machine), so the caller sees the state the kill left.
 */
import { spawnPulumi, type PulumiContext } from "../../engine/pulumi";
import { killTree, stillRunning } from "./process-tree";

export interface KilledUp {
  /** How the CLI ended: "SIGKILL" when the moment was reached while the update still ran. */
  signal: NodeJS.Signals | null;
  /** "created" lines the update had printed by then. */
  created: number;
  /** Every process killed. */
  killed: number[];
  /** Those still running after 30 s (none, or the kill was not real). */
  left: number[];
}

export async function killUpAt(context: PulumiContext, stack: string, moment: number, env?: NodeJS.ProcessEnv): Promise<KilledUp> {
  const child = spawnPulumi(context, ["up", "--yes", "--skip-preview", "--stack", stack, "--non-interactive"], {
    ...(env ? { env } : {}),
    stdio: ["ignore", "pipe", "ignore"],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
  let output = "";
  const reached = new Promise<void>((resolve) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if ((output.match(/ created/g) ?? []).length >= moment && /Updating|\+ /.test(output)) resolve();
    });
    child.on("exit", () => resolve());
  });
  await reached;
  const killed = killTree(child.pid!);
  const signal = await exited;
  for (const deadline = Date.now() + 30_000; Date.now() < deadline && stillRunning(killed).length > 0;) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { signal, created: (output.match(/ created/g) ?? []).length, killed, left: stillRunning(killed) };
}

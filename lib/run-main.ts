/**
 * The one exit wrapper for command-line entry points: runs `main`, exits with
 * the status it returns, and turns a failure into one line on stderr and
 * exit status 1, so every command exits non-zero when it fails.
 *
 * Errors of the `expected` classes (bad configuration, a refused input) are
 * printed as their message alone; anything else is a bug and keeps its stack.
 */
import { errorMessage } from "./errors";

type ErrorClass = abstract new (...args: never[]) => Error;

export interface RunMainOptions {
  /** Printed before the message: `error` by default (`error: ...`). */
  readonly prefix?: string;
  /** Failures the command anticipates: printed without a stack trace. */
  readonly expected?: readonly ErrorClass[];
  /** Exit at once (process.exit) instead of setting process.exitCode: for services with open handles. */
  readonly exitNow?: boolean;
}

export function runMain(main: () => Promise<number | void>, options: RunMainOptions = {}): void {
  const finish = (status: number) => {
    if (options.exitNow) process.exit(status);
    process.exitCode = status;
  };
  main().then(
    (status) => finish(status ?? 0),
    (error: unknown) => {
      const expected = options.expected?.some((kind) => error instanceof kind) ?? true;
      console.error(`${options.prefix ?? "error"}: ${errorMessage(error, { withStack: !expected })}`);
      finish(1);
    },
  );
}

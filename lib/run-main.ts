/**
 * The one exit wrapper for command-line entry points: runs `main`, exits with
 * the status it returns, and turns a failure into one line on stderr and
 * exit status 1, so every command exits non-zero when it fails.
 *
 * Errors of the `expected` classes (bad configuration, a refused input) are
 * printed as their message alone; anything else is a bug and keeps its stack.
 * Without `expected`, every failure is printed as its message alone.
 */
import { errorMessage } from "./errors";
import { redactSecrets } from "./redact";

type ErrorClass = abstract new (...args: never[]) => Error;

export interface RunMainOptions {
  /** Printed before the message: `error` by default (`error: ...`); "" prints the message alone. */
  readonly prefix?: string;
  /** Failures the command anticipates: printed without a stack trace. */
  readonly expected?: readonly ErrorClass[];
  /** Failures that are a wrong command line: exit status 2 instead of 1, like most Unix tools. */
  readonly usage?: readonly ErrorClass[];
  /** Applied to the printed line on top of lib/redact.ts (which always masks URL passwords), e.g. a known secret. */
  readonly redact?: (text: string) => string;
  /** Exit at once (process.exit) instead of setting process.exitCode: for services with open handles. */
  readonly exitNow?: boolean;
}

/** The line a failure prints and the exit status it gives. */
function failure(error: unknown, options: RunMainOptions = {}): { line: string; status: number } {
  const expected = options.expected?.some((kind) => error instanceof kind) ?? true;
  const message = errorMessage(error, { withStack: !expected });
  const line = options.prefix === "" ? message : `${options.prefix ?? "error"}: ${message}`;
  const status = options.usage?.some((kind) => error instanceof kind) ? 2 : 1;
  const masked = redactSecrets(line);
  return { line: options.redact ? options.redact(masked) : masked, status };
}

export function runMain(main: () => Promise<number | void>, options: RunMainOptions = {}): void {
  const finish = (status: number) => {
    if (options.exitNow) process.exit(status);
    process.exitCode = status;
  };
  main().then(
    (status) => finish(status ?? 0),
    (error: unknown) => {
      const { line, status } = failure(error, options);
      console.error(line);
      finish(status);
    },
  );
}

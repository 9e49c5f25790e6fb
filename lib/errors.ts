/**
 * One way to turn anything thrown into a line for a person: the message of an
 * Error, the text of anything else. `withStack` adds the stack trace, for
 * failures nobody anticipated (a bug), where the trace is what a report needs.
 */
export function errorMessage(error: unknown, options: { withStack?: boolean } = {}): string {
  if (error instanceof Error) return options.withStack ? (error.stack ?? error.message) : error.message;
  return String(error);
}

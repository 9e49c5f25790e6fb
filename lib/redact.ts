/**
 * The one masker: keeps passwords out of anything printed. Errors from
 * drivers, from the engine and from our own code may quote a connection
 * string (`postgres://user:password@...`, a git remote with a token, a
 * `password=...` keyword string); every error line, note and log line passes
 * through here before it reaches a terminal or a log (lib/run-main.ts applies
 * it to every command's failure line).
 */

const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^:@/\s]*):([^@/\s]*)@/gi;
const KEYWORD_PASSWORD = /\b(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi;

function passwordOf(databaseUrl: string | undefined): string | null {
  if (databaseUrl === undefined) return null;
  try {
    const password = new URL(databaseUrl).password;
    return password === "" ? null : password;
  } catch {
    return null;
  }
}

/**
 * `text` with the password of every URL in it masked (`scheme://user:***@host`),
 * `password=...` values masked, and, when `databaseUrl` is given, its password
 * masked wherever else it appears (a driver may quote it on its own).
 */
export function redactSecrets(text: string, databaseUrl?: string): string {
  const password = passwordOf(databaseUrl);
  return maskValues(text.replace(URL_CREDENTIALS, "$1$2:***@").replace(KEYWORD_PASSWORD, "$1***"), password === null ? [] : [password]);
}

/** `text` with each of `secrets` (and its URL-decoded spelling) replaced by `***`. */
export function maskValues(text: string, secrets: readonly string[]): string {
  let masked = text;
  for (const secret of secrets) {
    for (const spelling of new Set([secret, safeDecode(secret)])) {
      if (spelling.length > 0) masked = masked.split(spelling).join("***");
    }
  }
  return masked;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** `user@host:port/database`, for reports: names the target without the secret. */
export function describeDatabaseUrl(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    const user = url.username === "" ? "" : `${decodeURIComponent(url.username)}@`;
    return `${user}${url.host}${url.pathname}`;
  } catch {
    return "(unparseable database URL)";
  }
}

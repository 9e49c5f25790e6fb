/**
 * Keeps database passwords out of anything printed. Errors from drivers and
 * from our own code may quote a connection string; they pass through here
 * before they reach a terminal or a log.
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

export function redactSecrets(text: string, databaseUrl?: string): string {
  let redacted = text.replace(URL_CREDENTIALS, "$1$2:***@").replace(KEYWORD_PASSWORD, "$1***");
  const password = passwordOf(databaseUrl);
  if (password !== null) {
    for (const spelling of new Set([password, safeDecode(password)])) {
      if (spelling.length > 0) redacted = redacted.split(spelling).join("***");
    }
  }
  return redacted;
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

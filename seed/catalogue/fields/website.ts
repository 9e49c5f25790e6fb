/**
 * Websites normalised to one spelling: https, lower-case host, no bare
 * trailing slash. Paths, queries and fragments are kept as written because
 * servers may treat their case or trailing slash as significant.
 */

export interface NormalisedWebsite {
  readonly website: string | null;
  /** Why the value differs from the source beyond spelling, for people reviewing the data. */
  readonly note: string | null;
}

function parseHttpUrl(value: string): URL | null {
  try {
    const url = new URL(value);
    const isWebAddress = (url.protocol === "https:" || url.protocol === "http:") && url.hostname.includes(".");
    return isWebAddress && url.username === "" && url.password === "" ? url : null;
  } catch {
    return null;
  }
}

function spell(url: URL): string {
  url.protocol = "https:";
  const path = url.pathname === "/" ? "" : url.pathname;
  return `https://${url.host}${path}${url.search}${url.hash}`;
}

export function normaliseWebsite(raw: string | null): NormalisedWebsite {
  const value = raw?.trim() ?? "";
  if (value === "") return { website: null, note: null };

  const url = parseHttpUrl(value);
  if (url) {
    const note = url.protocol === "http:" ? `upgraded "${value}" to https` : null;
    return { website: spell(url), note };
  }

  // "https://Getloaded.com (Comdata)": a URL followed by a remark in parentheses.
  const remark = /^(\S+)\s+\(([^)]*)\)$/.exec(value);
  const withoutRemark = remark?.[1] === undefined ? null : parseHttpUrl(remark[1]);
  if (withoutRemark && remark) {
    return {
      website: spell(withoutRemark),
      note: `source value "${value}" is not a URL; dropped the remark "(${remark[2] ?? ""})"`,
    };
  }
  return { website: null, note: `source value "${value}" is not a URL; dropped` };
}

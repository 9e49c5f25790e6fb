/**
 * Stable, URL-safe company slugs. The slug is the key the seed upserts on, so
 * the same name must always give the same slug.
 */
import { createHash } from "node:crypto";

// Characters that NFKD does not decompose and that deserve more than "-".
const SPECIAL_CHARACTERS: ReadonlyArray<[RegExp, string]> = [
  [/['’‘`´]/g, ""], // "Hubbard’s" -> "hubbards", not "hubbard-s"
  [/&/g, " and "],
  [/[×*?!]/g, " "], // "Hospital Couriers × (BioTouch)", "PC*MILER", "1-800-Got-Junk?"
];

/** The slug a name would get if no other company competed for it. */
export function baseSlug(name: string): string {
  let value = name.normalize("NFKD").replace(/\p{M}/gu, "");
  for (const [pattern, replacement] of SPECIAL_CHARACTERS) value = value.replace(pattern, replacement);
  return value
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

function shortHash(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex").slice(0, 6);
}

/**
 * Slugs for a list of unique names, keyed by name. When several names share
 * a base slug, the one that sorts first (by code point) keeps it and the
 * others get a suffix hashed from their own name: a suffix that depends only
 * on the name cannot shift when companies are added or removed elsewhere.
 */
export function assignSlugs(names: readonly string[]): Map<string, string> {
  const namesByBase = new Map<string, string[]>();
  for (const name of names) {
    const base = baseSlug(name) || `company-${shortHash(name)}`;
    namesByBase.set(base, [...(namesByBase.get(base) ?? []), name]);
  }
  const slugs = new Map<string, string>();
  for (const [base, competing] of namesByBase) {
    const [first, ...rest] = [...competing].sort(byCodePoint);
    if (first !== undefined) slugs.set(first, base);
    for (const name of rest) slugs.set(name, `${base}-${shortHash(name)}`);
  }
  const taken = new Set<string>();
  for (const slug of slugs.values()) {
    if (taken.has(slug)) throw new Error(`slug "${slug}" was assigned twice; the disambiguation hash collided`);
    taken.add(slug);
  }
  return slugs;
}

/** Code-point order, independent of the machine's locale. */
export function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

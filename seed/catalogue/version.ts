/**
 * The catalogue version: a sha256 of the companies' canonical JSON. A tenant
 * database records the version it was loaded with, so the seed can tell
 * without reading any row whether the catalogue changed.
 */
import { createHash } from "node:crypto";
import { Companies, CatalogueFile, type Catalogue, type Company } from "./schema";

/**
 * Canonical JSON: the companies re-parsed through the schema, so key order
 * is the schema's and no stray key or formatting can change the version.
 */
function canonicalCompaniesJson(companies: readonly Company[]): string {
  return JSON.stringify(Companies.parse(companies));
}

export function catalogueVersion(companies: readonly Company[]): string {
  return createHash("sha256").update(canonicalCompaniesJson(companies), "utf8").digest("hex");
}

/** A catalogue whose version is computed from its companies. */
export function catalogueFromCompanies(companies: readonly Company[]): Catalogue {
  return CatalogueFile.parse({ version: catalogueVersion(companies), companies });
}

/** Parses a catalogue and checks that its version matches its content. */
export function verifiedCatalogue(value: unknown, source: string): Catalogue {
  const result = CatalogueFile.safeParse(value);
  if (!result.success) {
    throw new Error(`${source} is not a valid catalogue: ${result.error.issues.slice(0, 5).map(describeIssue).join("; ")}`);
  }
  const expected = catalogueVersion(result.data.companies);
  if (result.data.version !== expected) {
    throw new Error(
      `${source} says version ${result.data.version} but its companies hash to ${expected}; ` + "it was edited by hand: rebuild it with `npm run catalogue`",
    );
  }
  return result.data;
}

function describeIssue(issue: { path: PropertyKey[]; message: string }): string {
  return `${issue.path.map(String).join(".") || "(root)"}: ${issue.message}`;
}

/**
 * Raw export -> normalised catalogue. Pure: the same input always gives the
 * same bytes, which is what lets `companies.json` be committed and checked.
 */
import { mapContractType } from "./fields/contract-type";
import { normaliseDescription } from "./fields/description";
import { parsePay } from "./fields/pay";
import { assignSlugs, byCodePoint } from "./fields/slug";
import { mapVehicles } from "./fields/vehicles";
import { normaliseWebsite } from "./fields/website";
import { RawCatalogue, type Catalogue, type Company, type RawCompany } from "./schema";
import { catalogueFromCompanies } from "./version";

export interface NormalisationWarnings {
  /** Raw contract types not in the mapping table (mapped to `other`), with how many companies use each. */
  readonly unknownContractTypes: ReadonlyMap<string, number>;
  /** Raw vehicle entries not in the mapping table (mapped to `other`). */
  readonly unknownVehicles: ReadonlyMap<string, number>;
  /** Websites that were repaired or dropped, by company name. */
  readonly websiteNotes: ReadonlyMap<string, string>;
}

export interface NormalisationResult {
  readonly catalogue: Catalogue;
  readonly warnings: NormalisationWarnings;
}

function trimmedUnique(values: readonly string[]): string[] {
  return [...new Set(values.map((value) => value.trim()).filter((value) => value !== ""))];
}

function emptyToNull(value: string | null): string | null {
  const trimmed = value?.trim() ?? "";
  return trimmed === "" ? null : trimmed;
}

function count(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

function normaliseCompany(raw: RawCompany, slug: string): { company: Company; unknownContractType: boolean; unknownVehicles: string[] } {
  const contractTypeRaw = raw.contractType.trim();
  const vehiclesRaw = raw.vehicles.map((entry) => entry.trim()).filter((entry) => entry !== "");
  const { contractType, known } = mapContractType(contractTypeRaw);
  const { vehicleTypes, unknown } = mapVehicles(vehiclesRaw);
  const pay = emptyToNull(raw.pay);
  const { website, note } = normaliseWebsite(raw.website);
  const company: Company = {
    slug,
    name: raw.name.trim(),
    contractType,
    contractTypeRaw,
    vehicleTypes,
    vehiclesRaw,
    serviceVerticals: trimmedUnique(raw.serviceVertical),
    pay,
    ...parsePay(pay),
    website,
    websiteNote: note,
    description: normaliseDescription(raw.description, contractTypeRaw, vehiclesRaw),
    level: raw.level.trim(),
  };
  return { company, unknownContractType: !known, unknownVehicles: unknown };
}

/** Normalises the parsed JSON of `driver-opportunities.json`. */
export function normaliseCatalogue(rawJson: unknown): NormalisationResult {
  const raw = RawCatalogue.parse(rawJson);
  const names = raw.map((company) => company.name.trim());
  const duplicates = names.filter((name, index) => names.indexOf(name) !== index);
  if (duplicates.length > 0) throw new Error(`the raw catalogue repeats company names: ${[...new Set(duplicates)].join(", ")}`);

  const slugs = assignSlugs(names);
  const unknownContractTypes = new Map<string, number>();
  const unknownVehicles = new Map<string, number>();
  const websiteNotes = new Map<string, string>();
  const companies = raw.map((entry) => {
    const name = entry.name.trim();
    const slug = slugs.get(name);
    if (slug === undefined) throw new Error(`no slug was assigned to "${name}"`);
    const result = normaliseCompany(entry, slug);
    if (result.unknownContractType) count(unknownContractTypes, result.company.contractTypeRaw);
    for (const vehicle of result.unknownVehicles) count(unknownVehicles, vehicle);
    if (result.company.websiteNote !== null) websiteNotes.set(name, result.company.websiteNote);
    return result.company;
  });
  companies.sort((a, b) => byCodePoint(a.slug, b.slug));
  return {
    catalogue: catalogueFromCompanies(companies),
    warnings: { unknownContractTypes, unknownVehicles, websiteNotes },
  };
}

/** The bytes of `companies.json`: two-space JSON with a trailing newline. */
function serialiseCatalogue(catalogue: Catalogue): string {
  return `${JSON.stringify(catalogue, null, 2)}\n`;
}

/** Raw file text -> `companies.json` text. */
export function buildCatalogueFile(rawText: string): { text: string; result: NormalisationResult } {
  const result = normaliseCatalogue(JSON.parse(rawText) as unknown);
  return { text: serialiseCatalogue(result.catalogue), result };
}

/**
 * The shape of the courier catalogue: the raw export we read and the
 * normalised dataset we commit (`companies.json`). Every type used by the
 * catalogue and the seed is inferred from these schemas.
 */
import { z } from "zod";

export const CONTRACT_TYPES = ["independent_contractor", "employee", "both", "agency_or_facility", "platform_or_job_board", "other"] as const;
export const ContractType = z.enum(CONTRACT_TYPES);
export type ContractType = z.infer<typeof ContractType>;

// The declaration order is the order vehicle types are listed in a company.
export const VEHICLE_TYPES = [
  "car",
  "suv",
  "minivan",
  "van",
  "cargo_van",
  "box_truck",
  "pickup_truck",
  "truck",
  "bike",
  "scooter",
  "motorcycle",
  "none",
  "other",
] as const;
export const VehicleType = z.enum(VEHICLE_TYPES);
export type VehicleType = z.infer<typeof VehicleType>;

export const PAY_UNITS = ["hour", "trip", "delivery", "mile", "pound", "day", "week", "month", "year", "load", "task", "run", "move", "bag", "pet"] as const;
export const PayUnit = z.enum(PAY_UNITS);
export type PayUnit = z.infer<typeof PayUnit>;

const PAY_CURRENCIES = ["USD", "EUR", "CHF"] as const;
export const PayCurrency = z.enum(PAY_CURRENCIES);
export type PayCurrency = z.infer<typeof PayCurrency>;

// PostgreSQL text cannot hold U+0000; rejecting it here gives a clear error
// instead of a failed COPY deep inside a tenant's seed.
const text = z.string().refine((value) => !value.includes("\u0000"), "must not contain a NUL character");
const nonEmptyText = text.refine((value) => value.trim().length > 0, "must not be empty");

/** One entry of `seed/catalogue/source/driver-opportunities.json`, exactly as exported. */
export const RawCompany = z.strictObject({
  name: nonEmptyText,
  website: text.nullable(),
  contractType: text,
  vehicles: z.array(text),
  pay: text.nullable(),
  description: text.nullable(),
  serviceVertical: z.array(text),
  level: text,
});
export type RawCompany = z.infer<typeof RawCompany>;
export const RawCatalogue = z.array(RawCompany);

const SLUG_PATTERN = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

const httpsUrl = text.refine((value) => {
  try {
    return new URL(value).protocol === "https:";
  } catch {
    return false;
  }
}, "must be an https URL");

/** One normalised company; the key order here is the key order on disk. */
export const Company = z.strictObject({
  slug: text.regex(SLUG_PATTERN, "must be lower-case letters and digits separated by single hyphens"),
  name: nonEmptyText,
  contractType: ContractType,
  contractTypeRaw: text,
  vehicleTypes: z.array(VehicleType),
  vehiclesRaw: z.array(text),
  serviceVerticals: z.array(nonEmptyText),
  pay: text.nullable(),
  payMin: z.number().nonnegative().nullable(),
  payMax: z.number().nonnegative().nullable(),
  payUnit: PayUnit.nullable(),
  payCurrency: PayCurrency.nullable(),
  website: httpsUrl.nullable(),
  websiteNote: text.nullable(),
  description: text.nullable(),
  level: nonEmptyText,
});
export type Company = z.infer<typeof Company>;

/** The companies of a catalogue: unique slugs and names, sorted by slug. */
export const Companies = z.array(Company).superRefine((companies, context) => {
  const seenSlugs = new Set<string>();
  const seenNames = new Set<string>();
  companies.forEach((company, index) => {
    if (seenSlugs.has(company.slug)) {
      context.addIssue({ code: "custom", path: [index, "slug"], message: `duplicate slug "${company.slug}"` });
    }
    if (seenNames.has(company.name)) {
      context.addIssue({ code: "custom", path: [index, "name"], message: `duplicate name "${company.name}"` });
    }
    seenSlugs.add(company.slug);
    seenNames.add(company.name);
    const previous = companies[index - 1];
    if (previous && previous.slug >= company.slug) {
      context.addIssue({ code: "custom", path: [index, "slug"], message: "companies must be sorted by slug" });
    }
  });
});

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** `companies.json`: the companies plus the version that identifies them. */
export const CatalogueFile = z.strictObject({
  version: z.string().regex(SHA256_HEX, "must be a sha256 hex digest"),
  companies: Companies,
});
export type Catalogue = z.infer<typeof CatalogueFile>;

/**
 * The committed courier catalogue and the normaliser that builds it: a valid,
 * deterministic dataset whose every raw spelling was mapped on purpose.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { COMMITTED_CATALOGUE_PATH, DEFAULT_RAW_CATALOGUE_PATH } from "../seed/catalogue/paths";
import { mapContractType } from "../seed/catalogue/fields/contract-type";
import { isTemplatedDescription } from "../seed/catalogue/fields/description";
import { parsePay } from "../seed/catalogue/fields/pay";
import { assignSlugs, baseSlug } from "../seed/catalogue/fields/slug";
import { mapVehicles } from "../seed/catalogue/fields/vehicles";
import { normaliseWebsite } from "../seed/catalogue/fields/website";
import { loadCatalogue } from "../seed/catalogue/load";
import { buildCatalogueFile, normaliseCatalogue } from "../seed/catalogue/normalise";
import { CatalogueFile, CONTRACT_TYPES, PAY_UNITS, VEHICLE_TYPES, type RawCompany } from "../seed/catalogue/schema";
import { catalogueVersion, verifiedCatalogue } from "../seed/catalogue/version";

const committedText = readFileSync(COMMITTED_CATALOGUE_PATH, "utf8");
const committed = CatalogueFile.parse(JSON.parse(committedText));

function rawCompany(overrides: Partial<RawCompany> = {}): RawCompany {
  return {
    name: "Example Couriers",
    website: "https://example.com",
    contractType: "Independent Contractor",
    vehicles: ["Car"],
    pay: "$20–$30/hr",
    description: null,
    serviceVertical: ["Package Delivery"],
    level: "Level 1 - Entry",
    ...overrides,
  };
}

describe("the committed catalogue", () => {
  it("parses with the company schema and holds at least 400 companies", () => {
    expect(committed.companies.length).toBeGreaterThanOrEqual(400);
    for (const company of committed.companies) {
      expect(CONTRACT_TYPES).toContain(company.contractType);
      for (const type of company.vehicleTypes) expect(VEHICLE_TYPES).toContain(type);
      if (company.payUnit !== null) expect(PAY_UNITS).toContain(company.payUnit);
    }
  });

  it("has unique slugs and names, sorted by slug", () => {
    const slugs = committed.companies.map((company) => company.slug);
    expect(new Set(slugs).size).toBe(slugs.length);
    expect(new Set(committed.companies.map((company) => company.name)).size).toBe(slugs.length);
    expect([...slugs].sort()).toEqual(slugs);
  });

  it("has only https URLs (lower-case host, no bare trailing slash) or null as websites", () => {
    for (const { website } of committed.companies) {
      if (website === null) continue;
      const url = new URL(website);
      expect(url.protocol).toBe("https:");
      expect(website).not.toMatch(/^https:\/\/[^/]+\/$/);
      expect(website.startsWith(`https://${url.host}`)).toBe(true);
    }
  });

  it("carries the version of its own content", () => {
    expect(committed.version).toBe(catalogueVersion(committed.companies));
    expect(loadCatalogue().version).toBe(committed.version);
  });

  it("is refused when edited by hand without rebuilding", () => {
    const [first, ...rest] = committed.companies;
    if (!first) throw new Error("empty catalogue");
    const edited = { ...committed, companies: [{ ...first, pay: "$1/hr" }, ...rest] };
    expect(() => verifiedCatalogue(edited, "edited.json")).toThrow(/edited by hand/);
  });

  it("is formatted stably: two-space JSON with a trailing newline", () => {
    expect(committedText).toBe(`${JSON.stringify(committed, null, 2)}\n`);
  });
});

describe("building from the raw export (committed beside it, so this runs in every clone)", () => {
  const rawText = readFileSync(DEFAULT_RAW_CATALOGUE_PATH, "utf8");

  it("is deterministic: two builds give the same bytes", () => {
    expect(buildCatalogueFile(rawText).text).toBe(buildCatalogueFile(rawText).text);
  });

  it("reproduces the committed file exactly", () => {
    expect(buildCatalogueFile(rawText).text).toBe(committedText);
  });

  it("keeps every company and maps every raw spelling explicitly", () => {
    const raw = JSON.parse(rawText) as unknown[];
    const { catalogue, warnings } = normaliseCatalogue(raw);
    expect(catalogue.companies.length).toBe(raw.length);
    expect([...warnings.unknownContractTypes]).toEqual([]);
    expect([...warnings.unknownVehicles]).toEqual([]);
    expect([...warnings.websiteNotes.values()]).toEqual(['source value "https://Getloaded.com (Comdata)" is not a URL; dropped the remark "(Comdata)"']);
  });

  it("drops every templated description and keeps prose", () => {
    const raw = JSON.parse(rawText) as RawCompany[];
    const templated = raw.filter((entry) => entry.description?.includes("Contract type:"));
    expect(templated.length).toBeGreaterThan(100);
    const byName = new Map(committed.companies.map((company) => [company.name, company]));
    for (const entry of templated) expect(byName.get(entry.name)?.description).toBeNull();
    expect(committed.companies.filter((company) => company.description !== null).length).toBeGreaterThan(150);
  });
});

describe("field mappings", () => {
  it("maps contract-type spellings", () => {
    expect(mapContractType("W-2").contractType).toBe("employee");
    expect(mapContractType("Wn2/Un2 Employee").contractType).toBe("employee");
    expect(mapContractType("1099").contractType).toBe("independent_contractor");
    expect(mapContractType("  independent   CONTRACTOR ").contractType).toBe("independent_contractor");
    expect(mapContractType("W-2 or Contract").contractType).toBe("both");
    expect(mapContractType("Contract via clinics").contractType).toBe("agency_or_facility");
    expect(mapContractType("Load Board Platform").contractType).toBe("platform_or_job_board");
    expect(mapContractType("Dedicated Routes")).toEqual({ contractType: "other", known: true });
    expect(mapContractType("Volunteer")).toEqual({ contractType: "other", known: false });
  });

  it("maps vehicle synonyms, deduplicated in a stable order", () => {
    expect(mapVehicles(["Sprinter vans"]).vehicleTypes).toEqual(["cargo_van"]);
    expect(mapVehicles(["Vans", "Van", "Cars", "SUV/Minivan"]).vehicleTypes).toEqual(["car", "suv", "minivan", "van"]);
    expect(mapVehicles(["None Required"]).vehicleTypes).toEqual(["none"]);
    expect(mapVehicles(["Hovercraft"])).toEqual({ vehicleTypes: ["other"], unknown: ["Hovercraft"] });
    expect(mapVehicles([]).vehicleTypes).toEqual([]);
  });

  it("parses pay where the text allows it", () => {
    expect(parsePay("$25–$45/hr")).toEqual({ payMin: 25, payMax: 45, payUnit: "hour", payCurrency: "USD" });
    expect(parsePay("$20-35 per delivery")).toMatchObject({ payMin: 20, payMax: 35, payUnit: "delivery" });
    expect(parsePay("$64k-$110k annually")).toMatchObject({ payMin: 64000, payMax: 110000, payUnit: "year" });
    expect(parsePay("$1.03–$2.35/mile")).toMatchObject({ payMin: 1.03, payMax: 2.35, payUnit: "mile" });
    expect(parsePay("Up to $50/hour")).toMatchObject({ payMin: null, payMax: 50, payUnit: "hour" });
    expect(parsePay("Starts at $40+ per move")).toMatchObject({ payMin: 40, payMax: null, payUnit: "move" });
    expect(parsePay("15€")).toEqual({ payMin: 15, payMax: 15, payUnit: null, payCurrency: "EUR" });
    for (const text of ["Competitive rates", "$25 to...", "80-90% of fare plus tips", "$3-5 per vehicle per month", null]) {
      expect(parsePay(text)).toEqual({ payMin: null, payMax: null, payUnit: null, payCurrency: null });
    }
  });

  it("normalises websites and repairs the one that is not a URL", () => {
    expect(normaliseWebsite("https://CBDriver.com/")).toEqual({ website: "https://cbdriver.com", note: null });
    expect(normaliseWebsite("https://www.ontrac.com/drivers/").website).toBe("https://www.ontrac.com/drivers/");
    expect(normaliseWebsite("http://example.com").website).toBe("https://example.com");
    expect(normaliseWebsite("https://Getloaded.com (Comdata)").website).toBe("https://getloaded.com");
    expect(normaliseWebsite("not a url")).toMatchObject({ website: null });
    expect(normaliseWebsite(null)).toEqual({ website: null, note: null });
  });

  it("recognises a templated description only when it repeats the company's own fields", () => {
    const description = "Pet Transport service. Contract type: Independent Contractor. Vehicles: Truck, Van";
    expect(isTemplatedDescription(description, "Independent Contractor", ["Truck", "Van"])).toBe(true);
    expect(isTemplatedDescription(description, "Employee", ["Truck", "Van"])).toBe(false);
    expect(isTemplatedDescription("Same-day delivery for major retailers.", "Independent Contractor", [])).toBe(false);
  });

  it("makes slugs from names, folding accents and special characters", () => {
    expect(baseSlug("Hubbard’s Express Air Freight")).toBe("hubbards-express-air-freight");
    expect(baseSlug("Hospital Couriers × (BioTouch)")).toBe("hospital-couriers-biotouch");
    expect(baseSlug("PC*MILER")).toBe("pc-miler");
    expect(baseSlug("1-800-Got-Junk?")).toBe("1-800-got-junk");
    expect(baseSlug("Café Crème Délivery")).toBe("cafe-creme-delivery");
    expect(baseSlug("H & R Healthcare")).toBe("h-and-r-healthcare");
  });

  it("disambiguates colliding slugs the same way whatever the input order", () => {
    const forwards = assignSlugs(["Time Matters", "Time:matters"]);
    const backwards = assignSlugs(["Time:matters", "Time Matters"]);
    expect(forwards).toEqual(backwards);
    expect(forwards.get("Time Matters")).toBe("time-matters");
    expect(forwards.get("Time:matters")).toMatch(/^time-matters-[0-9a-f]{6}$/);
  });

  it("maps unknown spellings to other and reports them", () => {
    const { catalogue, warnings } = normaliseCatalogue([rawCompany({ contractType: "Volunteer", vehicles: ["Hovercraft", "Car"] })]);
    expect(catalogue.companies[0]).toMatchObject({ contractType: "other", vehicleTypes: ["car", "other"] });
    expect(warnings.unknownContractTypes.get("Volunteer")).toBe(1);
    expect(warnings.unknownVehicles.get("Hovercraft")).toBe(1);
  });

  it("keeps the spot-checked companies' mappings in the committed file", () => {
    const w2 = committed.companies.find((company) => company.contractTypeRaw === "W-2");
    expect(w2?.contractType).toBe("employee");
    const sprinter = committed.companies.find((company) => company.vehiclesRaw.includes("Sprinter vans"));
    expect(sprinter?.vehicleTypes).toContain("cargo_van");
    const hourly = committed.companies.find((company) => company.pay === "$25–$45/hr");
    expect(hourly).toMatchObject({ payMin: 25, payMax: 45, payUnit: "hour" });
    const getloaded = committed.companies.find((company) => company.website === "https://getloaded.com");
    expect(getloaded?.websiteNote).toMatch(/not a URL/);
  });
});

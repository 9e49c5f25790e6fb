/**
 * A throw-away seed releases folder for tests: starts as a copy of the
 * committed release 1, and publishes test-only releases on top of it (the
 * catalogue plus extra companies, the previous migrations plus extra ones)
 * through the real `publishRelease`.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadCatalogue } from "../../seed/catalogue/load";
import type { Catalogue, Company } from "../../seed/catalogue/schema";
import { catalogueFromCompanies } from "../../seed/catalogue/version";
import { listReleases, loadRelease, publishRelease, RELEASES_DIRECTORY, type ReleaseManifest } from "../../seed/releases";

export function testCompany(slug: string, overrides: Partial<Company> = {}): Company {
  return {
    slug,
    name: `Company ${slug}`,
    contractType: "independent_contractor",
    contractTypeRaw: "Independent Contractor",
    vehicleTypes: ["car"],
    vehiclesRaw: ["Car"],
    serviceVerticals: ["Other"],
    pay: null,
    payMin: null,
    payMax: null,
    payUnit: null,
    payCurrency: null,
    website: null,
    websiteNote: null,
    description: null,
    level: "Level 1 - Entry",
    ...overrides,
  };
}

/** A catalogue of these companies, in slug order as the catalogue keeps them. */
export function withCompanies(companies: Company[]): Catalogue {
  return catalogueFromCompanies([...companies].sort((a, b) => (a.slug < b.slug ? -1 : a.slug > b.slug ? 1 : 0)));
}

export interface TestReleases {
  /** The releases folder (what the stack config `seedReleases` points at). */
  readonly directory: string;
  /** Publishes the next release: the newest one's catalogue and migrations, plus these. */
  publish(version: string, extra: { companies?: Company[]; migrations?: Record<string, string> }): ReleaseManifest;
  remove(): void;
}

export function testReleases(): TestReleases {
  const root = mkdtempSync(path.join(tmpdir(), "dgp-test-releases-"));
  const directory = path.join(root, "releases");
  mkdirSync(directory);
  cpSync(path.join(RELEASES_DIRECTORY, "1"), path.join(directory, "1"), { recursive: true });
  return {
    directory,
    publish(version, extra) {
      const newest = loadRelease(listReleases(directory).at(-1)!, directory);
      const work = mkdtempSync(path.join(root, "work-"));
      writeFileSync(path.join(work, "companies.json"), JSON.stringify(withCompanies([...newest.catalogue.companies, ...(extra.companies ?? [])])));
      cpSync(newest.migrationsDirectory, path.join(work, "migrations"), { recursive: true });
      for (const [name, sql] of Object.entries(extra.migrations ?? {})) writeFileSync(path.join(work, "migrations", `${name}.sql`), sql);
      return publishRelease(version, { directory, catalogueFile: path.join(work, "companies.json"), migrationsDirectory: path.join(work, "migrations") });
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** The committed catalogue's size, for assertions. */
export const COMMITTED_COMPANIES = loadCatalogue(path.join(RELEASES_DIRECTORY, "1", "companies.json")).companies.length;

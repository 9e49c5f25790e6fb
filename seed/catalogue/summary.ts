/**
 * The build's report for people: counts per enum value and the warnings a
 * reviewer must look at before committing a rebuilt catalogue.
 */
import { CONTRACT_TYPES, PAY_UNITS, VEHICLE_TYPES, type Catalogue } from "./schema";
import type { NormalisationWarnings } from "./normalise";
import { renderTable } from "../../lib/table";

/** A titled section: its rows indented under the title, counts right-aligned at least five wide. */
function table(title: string, rows: ReadonlyArray<readonly [string, number]>): string {
  return renderTable(
    [title, ""],
    rows.map(([label, value]) => [label, String(value).padStart(5)]),
    { headAsGiven: true, indentRows: "  " },
  );
}

function countBy<T extends string>(values: readonly T[], keys: readonly T[]): Array<[string, number]> {
  return keys.map((key) => [key, values.filter((value) => value === key).length]);
}

export function formatSummary(catalogue: Catalogue): string {
  const companies = catalogue.companies;
  const levels = [...new Set(companies.map((company) => company.level))].sort();
  return [
    `catalogue version ${catalogue.version}: ${companies.length} companies`,
    table(
      "contract type",
      countBy(
        companies.map((c) => c.contractType),
        CONTRACT_TYPES,
      ),
    ),
    table(
      "vehicle type (companies listing it)",
      countBy(
        companies.flatMap((c) => c.vehicleTypes),
        VEHICLE_TYPES,
      ),
    ),
    table("pay unit", [
      ...countBy(
        companies.flatMap((c) => (c.payUnit === null ? [] : [c.payUnit])),
        PAY_UNITS,
      ),
      ["(pay text, no unit)", companies.filter((c) => c.pay !== null && c.payUnit === null).length],
      ["(no pay text)", companies.filter((c) => c.pay === null).length],
    ]),
    table(
      "level",
      countBy(
        companies.map((c) => c.level),
        levels,
      ),
    ),
    table("other", [
      ["with website", companies.filter((c) => c.website !== null).length],
      ["with description (prose)", companies.filter((c) => c.description !== null).length],
      ["with no vehicle listed", companies.filter((c) => c.vehicleTypes.length === 0).length],
    ]),
  ].join("\n\n");
}

export function formatWarnings(warnings: NormalisationWarnings): string[] {
  const lines: string[] = [];
  for (const [raw, uses] of warnings.unknownContractTypes) {
    lines.push(`warning: unmapped contract type ${JSON.stringify(raw)} (${uses} companies) -> other`);
  }
  for (const [raw, uses] of warnings.unknownVehicles) {
    lines.push(`warning: unmapped vehicle ${JSON.stringify(raw)} (${uses} companies) -> other`);
  }
  for (const [name, note] of warnings.websiteNotes) lines.push(`note: ${name}: website ${note}`);
  return lines;
}

/**
 * How a catalogue company becomes a `companies` row: one entry per column
 * the seed owns. The staging table, the COPY and the upsert are all
 * generated from this one list, so they cannot disagree.
 */
import { CONTRACT_TYPE_LABELS } from "./catalogue/fields/contract-type";
import { VEHICLE_TYPE_LABELS } from "./catalogue/fields/vehicles";
import type { Company } from "./catalogue/schema";
import type { CopyValue } from "./copy-text";

export interface CompanyColumn {
  readonly column: string;
  readonly sqlType: "text" | "text[]" | "numeric";
  readonly value: (company: Company) => CopyValue;
}

export const COMPANY_COLUMNS: readonly CompanyColumn[] = [
  { column: "slug", sqlType: "text", value: (c) => c.slug },
  { column: "name", sqlType: "text", value: (c) => c.name },
  { column: "contract_type", sqlType: "text", value: (c) => CONTRACT_TYPE_LABELS[c.contractType] },
  { column: "contract_type_code", sqlType: "text", value: (c) => c.contractType },
  { column: "contract_type_raw", sqlType: "text", value: (c) => c.contractTypeRaw },
  { column: "vehicle_types", sqlType: "text[]", value: (c) => c.vehicleTypes.map((type) => VEHICLE_TYPE_LABELS[type]) },
  { column: "vehicle_type_codes", sqlType: "text[]", value: (c) => c.vehicleTypes },
  { column: "vehicles_raw", sqlType: "text[]", value: (c) => c.vehiclesRaw },
  { column: "service_vertical", sqlType: "text[]", value: (c) => c.serviceVerticals },
  { column: "average_pay", sqlType: "text", value: (c) => c.pay },
  { column: "pay_min", sqlType: "numeric", value: (c) => c.payMin },
  { column: "pay_max", sqlType: "numeric", value: (c) => c.payMax },
  { column: "pay_unit", sqlType: "text", value: (c) => c.payUnit },
  { column: "pay_currency", sqlType: "text", value: (c) => c.payCurrency },
  { column: "website", sqlType: "text", value: (c) => c.website },
  { column: "website_note", sqlType: "text", value: (c) => c.websiteNote },
  { column: "description", sqlType: "text", value: (c) => c.description },
  { column: "level", sqlType: "text", value: (c) => c.level },
];

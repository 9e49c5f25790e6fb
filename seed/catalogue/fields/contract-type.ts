/**
 * The 55 raw contract-type spellings, each mapped explicitly. A spelling not
 * listed here maps to `other` and is reported by the build, so a new export
 * cannot slip an unreviewed value into the catalogue.
 */
import type { ContractType } from "../schema";
import { lookupKey } from "./lookup-key";

const CONTRACT_TYPE_BY_SPELLING: Readonly<Record<string, ContractType>> = {
  "independent contractor": "independent_contractor",
  "1099": "independent_contractor",
  "1099 independent contractor": "independent_contractor",
  contractor: "independent_contractor",
  "contractor for air crew": "independent_contractor",
  "contractor/agent network": "independent_contractor",
  "contractor/job provider": "independent_contractor",
  // Contracted routes are owned by independent businesses (e.g. auto transport carriers).
  "contract routes": "independent_contractor",
  "gig + rent-to-haul hybrid": "independent_contractor",
  // Members of a driver cooperative drive as self-employed owners.
  "driver cooperative": "independent_contractor",
  // Licensed taxi drivers work for themselves; the company (Curb) is their dispatch app.
  "licensed taxi driver": "independent_contractor",

  employee: "employee",
  "w-2": "employee",
  "w-2 employee": "employee",
  "w-2 driver": "employee",
  // "Wn2/Un2" is a mangled "W-2"; the word "Employee" settles it.
  "wn2/un2 employee": "employee",
  "part-time employee": "employee",
  "part-time and full-time": "employee",

  both: "both",
  "employee/contractor": "both",
  "both employee and independent contractor": "both",
  "contractor or wn2": "both",
  "w-2 or contract": "both",

  // "Contract (x)" / "Contract via x": the driver is contracted through a third
  // party (care agency, clinic, lab, facility, business client).
  "contract (agencies)": "agency_or_facility",
  "contract (business)": "agency_or_facility",
  "contract (care agencies)": "agency_or_facility",
  "contract (care networks)": "agency_or_facility",
  "contract (clinics)": "agency_or_facility",
  "contract (executive care)": "agency_or_facility",
  "contract (facilities)": "agency_or_facility",
  "contract (healthcare)": "agency_or_facility",
  "contract (labs/hospitals)": "agency_or_facility",
  "contract (luxury care)": "agency_or_facility",
  "contract (medical offices)": "agency_or_facility",
  "contract (medical)": "agency_or_facility",
  "contract (premium care)": "agency_or_facility",
  "contract (premium)": "agency_or_facility",
  "contract (senior facilities)": "agency_or_facility",
  "contract via agencies": "agency_or_facility",
  "contract via care centers": "agency_or_facility",
  "contract via clinics": "agency_or_facility",
  "contract via health plans": "agency_or_facility",
  "contract via healthcare": "agency_or_facility",
  "contract via labs": "agency_or_facility",
  "contract via providers": "agency_or_facility",

  "business platform": "platform_or_job_board",
  "load board platform": "platform_or_job_board",
  "job board - lists independent contractor positions": "platform_or_job_board",
  "job board - lists contract, full-time, part-time positions": "platform_or_job_board",
  "peer-to-peer carpooling": "platform_or_job_board",

  // These describe the work or the customer, not how the driver is engaged:
  // the food distributors and airport handlers behind "Dedicated Routes"
  // employ drivers while the auto-transport brokers contract them.
  "dedicated routes": "other",
  "scheduled routes": "other",
  "consumer service": "other",
  "government contract": "other",
};

/** What the app shows in `companies.contract_type`. */
export const CONTRACT_TYPE_LABELS: Readonly<Record<ContractType, string>> = {
  independent_contractor: "Independent Contractor",
  employee: "Employee",
  both: "Employee or Independent Contractor",
  agency_or_facility: "Contract via Agency or Facility",
  platform_or_job_board: "Platform or Job Board",
  other: "Other",
};

export interface ContractTypeMapping {
  readonly contractType: ContractType;
  /** False when the spelling is not in the table and fell back to `other`. */
  readonly known: boolean;
}

export function mapContractType(raw: string): ContractTypeMapping {
  const contractType = CONTRACT_TYPE_BY_SPELLING[lookupKey(raw)];
  return contractType === undefined ? { contractType: "other", known: false } : { contractType, known: true };
}

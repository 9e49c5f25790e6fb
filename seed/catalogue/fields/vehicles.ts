/**
 * Raw vehicle entries (singular/plural, synonyms, typos, and fragments of
 * sentences the export split on commas) mapped explicitly to vehicle types.
 * An entry may name several types ("SUV/Minivan"). An entry not listed maps
 * to `other` and is reported by the build.
 */
import { VEHICLE_TYPES, type VehicleType } from "../schema";
import { lookupKey } from "./lookup-key";

const VEHICLE_TYPES_BY_SPELLING: Readonly<Record<string, readonly VehicleType[]>> = {
  // cars, including named models and kinds of passenger car
  car: ["car"],
  cars: ["car"],
  sedan: ["car"],
  "4-door sedans": ["car"],
  "4-door vehicles": ["car"],
  "passenger cars": ["car"],
  "standard cars": ["car"],
  "your car": ["car"],
  "personal vehicles": ["car"],
  "premium electric vehicles": ["car"],
  "tesla model 3": ["car"],
  "kia niro": ["car"],
  taxi: ["car"],
  "licensed taxi vehicles": ["car"],
  "vtc vehicles": ["car"], // French licensed private-hire cars
  // "Luxury vehicles (BMW, Mercedes, Audi)" arrives split on its commas.
  "luxury vehicles (bmw": ["car"],
  mercedes: ["car"],
  "audi)": ["car"],
  "mid-size car minimum; suv or cargo van preferred for larger deliveries": ["car", "suv", "cargo_van"],
  "car/bike": ["car", "bike"],
  "car/scooter": ["car", "scooter"],
  "car/van/truck": ["car", "van", "truck"],

  suv: ["suv"],
  suvs: ["suv"],
  "small suv": ["suv"],
  "suv with trailer": ["suv"],
  "tesla model y": ["suv"],
  "suv/minivan": ["suv", "minivan"],

  minivan: ["minivan"],
  "mini-van": ["minivan"],

  van: ["van"],
  vans: ["van"],
  "fleet of delivery vans (10-50+ vehicles typically)": ["van"],
  "branded amazon vans (20-40 vehicles) - leased through amazon partners": ["van"],

  // Sprinters, step vans and utility vans are cargo vans; "Sprit"/"Sprir" are
  // the export's truncations of "Sprinter".
  "cargo van": ["cargo_van"],
  "cargo vans": ["cargo_van"],
  "cargo van (min 250 cubic ft)": ["cargo_van"],
  "cargo vans or step vans": ["cargo_van"],
  "cargo van or sprinter with temperature control capability": ["cargo_van"],
  sprinter: ["cargo_van"],
  "sprinter van": ["cargo_van"],
  "sprinter vans": ["cargo_van"],
  sprit: ["cargo_van"],
  sprir: ["cargo_van"],
  "utility van": ["cargo_van"],
  "or sprinter; must be reliable and presentable": ["cargo_van"],
  "or sprinter; climate control may be required for some deliveries": ["cargo_van"],
  "varies widely - from cargo vans to specialized equipment; must meet landstar standards": ["cargo_van", "other"],

  "box truck": ["box_truck"],
  "box trucks": ["box_truck"],
  "box trucks (up to 26ft)": ["box_truck"],
  "or box truck": ["box_truck"],
  "or box truck depending on client needs": ["box_truck"],
  "or box truck for final mile; varies for dcs": ["box_truck"],
  "box truck or large cargo van; clean and professional appearance": ["box_truck", "cargo_van"],
  "box truck or large cargo van; liftgate preferred; must be clean and professional": ["box_truck", "cargo_van"],
  "box truck (16-26 ft) or large cargo van for furniture/freight deliveries": ["box_truck", "cargo_van"],
  "box truck (16-26 ft) or large sprinter; liftgate required for some contracts": ["box_truck", "cargo_van"],

  "pickup truck": ["pickup_truck"],
  "pickup trucks": ["pickup_truck"],
  "pick-up": ["pickup_truck"],
  pick: ["pickup_truck"], // truncated "Pick-Up"

  // Heavy trucks: tractors, semis, straight trucks, car carriers.
  truck: ["truck"],
  trucks: ["truck"],
  "large truck": ["truck"],
  semi: ["truck"],
  "straight truck": ["truck"],
  "straight trucks": ["truck"],
  "day cab truck": ["truck"],
  "car carrier": ["truck"],
  "tractor-trailers": ["truck"],
  "or tractor-trailer depending on route": ["truck"],
  "or tractor-trailer depending on contract": ["truck"],
  "tractor-trailer (semi); equipment age and spec requirements apply": ["truck"],
  "tractor-trailer; reefer or dry van depending on division": ["truck"],
  "tractor (2015 or newer preferred); must meet werner specifications": ["truck"],
  "day cab or sleeper for linehaul; straight truck for local delivery": ["truck"],

  bike: ["bike"],
  bikes: ["bike"],
  bicycle: ["bike"],
  bicycles: ["bike"],
  "bike/scooter": ["bike", "scooter"],

  scooter: ["scooter"],
  "scooters / motorcycles": ["scooter", "motorcycle"],
  "scooters / motorcycle": ["scooter", "motorcycle"],
  "scooters / motor...": ["scooter", "motorcycle"],

  motorcycle: ["motorcycle"],
  motorcycles: ["motorcycle"],
  "bike taxis": ["motorcycle"], // motorbike taxis (Rapido, Gojek, ...)

  // No vehicle of the driver's own is needed.
  none: ["none"],
  "none required": ["none"],
  walking: ["none"],
  "company vehicle": ["none"],
  "we will provide vehicle": ["none"],
  "we will provide ve...": ["none"],

  // Real vehicles outside the list, and vague or non-vehicle entries.
  other: ["other"],
  aircraft: ["other"],
  rv: ["other"],
  "auto-rickshaws": ["other"],
  "autonomous vehicles": ["other"],
  "ai-optimized vehicle fleet": ["other"],
  "ada-accessible vehicles": ["other"],
  "family-friendly vehicles": ["other"],
  "commercial vehicles": ["other"],
  "delivery vehicles": ["other"],
  "ground vehicles": ["other"],
  "specialized vehicles": ["other"],
  "or specialized equipment depending on contract": ["other"],
  "any vehicle": ["other"],
  varies: ["other"],
  "car seats provided": ["other"],
  "restaurant partners": ["other"],
};

/** What the app shows in `companies.vehicle_types`. */
export const VEHICLE_TYPE_LABELS: Readonly<Record<VehicleType, string>> = {
  car: "Car",
  suv: "SUV",
  minivan: "Minivan",
  van: "Van",
  cargo_van: "Cargo Van",
  box_truck: "Box Truck",
  pickup_truck: "Pickup Truck",
  truck: "Truck",
  bike: "Bike",
  scooter: "Scooter",
  motorcycle: "Motorcycle",
  none: "None",
  other: "Other",
};

export interface VehicleMapping {
  /** Deduplicated, in the declaration order of VEHICLE_TYPES. */
  readonly vehicleTypes: VehicleType[];
  /** Raw entries that are not in the table (each mapped to `other`). */
  readonly unknown: string[];
}

export function mapVehicles(rawEntries: readonly string[]): VehicleMapping {
  const found = new Set<VehicleType>();
  const unknown: string[] = [];
  for (const raw of rawEntries) {
    const types = VEHICLE_TYPES_BY_SPELLING[lookupKey(raw)];
    if (types === undefined) {
      unknown.push(raw);
      found.add("other");
    } else {
      for (const type of types) found.add(type);
    }
  }
  return { vehicleTypes: VEHICLE_TYPES.filter((type) => found.has(type)), unknown };
}

/**
 * Most descriptions in the export are a sentence generated from the other
 * fields ("Pet Transport service. Contract type: Independent Contractor.
 * Vehicles: Truck, Van"). They add nothing and would go stale when the fields
 * are corrected, so they are dropped; real prose is kept.
 */

function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * True when the description is the generator's template filled with this
 * company's own contract type and vehicles. The leading service label is
 * left free because the generator shortened it ("Food service" for
 * "Food Delivery").
 */
export function isTemplatedDescription(description: string, contractTypeRaw: string, vehiclesRaw: readonly string[]): boolean {
  const contract = escapeRegExp(contractTypeRaw);
  const vehicles = escapeRegExp(vehiclesRaw.join(", "));
  const template = new RegExp(`^(?:[^.]+ service|Service type: [^.]+)\\. Contract type: ${contract}(?:\\. Vehicles: ${vehicles})?\\.?$`);
  return template.test(description.trim());
}

export function normaliseDescription(description: string | null, contractTypeRaw: string, vehiclesRaw: readonly string[]): string | null {
  const value = description?.trim() ?? "";
  if (value === "" || isTemplatedDescription(value, contractTypeRaw, vehiclesRaw)) return null;
  return value;
}

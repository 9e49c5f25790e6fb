/**
 * The key under which a free-text raw value is looked up in a mapping table:
 * spellings that differ only in case or spacing are the same spelling.
 */
export function lookupKey(raw: string): string {
  return raw.trim().replace(/\s+/g, " ").toLowerCase();
}

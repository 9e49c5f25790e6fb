/**
 * Reads the committed dataset. The seed uses this; nothing at seed time
 * reads the raw export.
 */
import { readFileSync } from "node:fs";
import { COMMITTED_CATALOGUE_PATH } from "./paths";
import type { Catalogue } from "./schema";
import { verifiedCatalogue } from "./version";
import { errorMessage } from "../../lib/errors";

export function loadCatalogue(file: string = COMMITTED_CATALOGUE_PATH): Catalogue {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8")) as unknown;
  } catch (error) {
    throw new Error(`could not read the catalogue ${file}: ${errorMessage(error)}`);
  }
  return verifiedCatalogue(parsed, file);
}

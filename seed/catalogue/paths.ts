/** Where the catalogue's files live, resolved from this folder so any working directory works. */
import path from "node:path";

/** The committed, normalised dataset. */
export const COMMITTED_CATALOGUE_PATH = path.join(__dirname, "companies.json");

/** The raw export the committed dataset is built from (committed with it, so every clone can rebuild it: source/README.md). */
export const DEFAULT_RAW_CATALOGUE_PATH = path.join(__dirname, "source", "driver-opportunities.json");

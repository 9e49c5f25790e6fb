/** Where the catalogue's files live, resolved from this folder so any working directory works. */
import path from "node:path";

/** The committed, normalised dataset. */
export const COMMITTED_CATALOGUE_PATH = path.join(__dirname, "companies.json");

/** The raw export, in the shared data folder next to the repository. */
export const DEFAULT_RAW_CATALOGUE_PATH = path.resolve(__dirname, "../../../shared/data/driver-opportunities.json");

/**
 * `npm run catalogue [-- --input FILE] [--output FILE] [--check]`: rebuilds
 * `seed/catalogue/companies.json` from the raw export and prints a summary.
 * `--check` writes nothing and exits 1 when the committed file is stale.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { COMMITTED_CATALOGUE_PATH, DEFAULT_RAW_CATALOGUE_PATH } from "./paths";
import { buildCatalogueFile } from "./normalise";
import { formatSummary, formatWarnings } from "./summary";
import { errorMessage } from "../../lib/errors";
import { runMain } from "../../lib/run-main";

function main(): number {
  let options;
  try {
    options = parseArgs({
      options: {
        input: { type: "string", default: DEFAULT_RAW_CATALOGUE_PATH },
        output: { type: "string", default: COMMITTED_CATALOGUE_PATH },
        check: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    console.error(`catalogue: ${errorMessage(error)}`);
    return 2;
  }

  const { text, result } = buildCatalogueFile(readFileSync(options.input, "utf8"));
  for (const line of formatWarnings(result.warnings)) console.error(line);

  if (options.check) {
    const current = existsSync(options.output) ? readFileSync(options.output, "utf8") : "";
    if (current !== text) {
      console.error(`catalogue: ${options.output} is stale; run \`npm run catalogue\``);
      return 1;
    }
    console.log(`catalogue: ${options.output} is up to date (version ${result.catalogue.version})`);
    return 0;
  }

  writeFileSync(options.output, text);
  console.log(`wrote ${options.output}\n`);
  console.log(formatSummary(result.catalogue));
  return 0;
}

runMain(async () => main(), { prefix: "catalogue" });

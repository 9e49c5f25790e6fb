/**
 * `npm run seed:publish -- <version>`: freezes the checkout's catalogue
 * (seed/catalogue/companies.json, as `npm run catalogue` built it) and its
 * migrations (seed/migrations/) as seed release <version> in seed/releases/.
 * `npm run seed:publish -- --list` prints the published releases.
 * Nothing reaches a tenant until the stack's rollout targets the release.
 * Exit status: 0 done, 1 refused (reason printed), 2 bad usage.
 */
import { parseArgs } from "node:util";
import { listReleases, loadRelease, publishRelease, RELEASES_DIRECTORY } from "./releases";
import { errorMessage } from "../lib/errors";
import { runMain } from "../lib/run-main";

const USAGE = "usage: npm run seed:publish -- <version> | --list";

function list(): void {
  for (const version of listReleases()) {
    const release = loadRelease(version);
    const migrations = release.migrations.map((migration) => migration.name);
    console.log(
      `${version}  ${release.catalogue.companies.length} companies  catalogue ${release.catalogue.version.slice(0, 12)}  migrations ${migrations.at(-1) ?? "none"} (${migrations.length})`,
    );
  }
}

function main(argv: string[]): number {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { list: { type: "boolean", default: false } }, allowPositionals: true, strict: true });
  } catch (error) {
    console.error(`seed:publish: ${errorMessage(error)} (${USAGE})`);
    return 2;
  }
  const { values, positionals } = parsed;
  try {
    if (values.list && positionals.length === 0) {
      list();
      return 0;
    }
    if (positionals.length !== 1) {
      console.error(`seed:publish: give exactly one version (${USAGE})`);
      return 2;
    }
    const manifest = publishRelease(positionals[0]!);
    console.log(
      `published seed release ${manifest.version} in ${RELEASES_DIRECTORY}/${manifest.version}: ${manifest.companies} companies, ` +
        `${Object.keys(manifest.migrations).length} migrations. Commit it, then roll it out on every shard's stack ` +
        `(README, "Rolling out a new catalogue"); locally, for each of local-s001, ...:\n` +
        `  npm run pulumi -- config set --stack local-s001 --path drivergigspro:rollout.target ${manifest.version}\n` +
        `  npm run pulumi -- config set --stack local-s001 --path drivergigspro:rollout.promoted canary`,
    );
    return 0;
  } catch (error) {
    console.error(`seed:publish: ${errorMessage(error)}`);
    return 1;
  }
}

runMain(async () => main(process.argv.slice(2)), { prefix: "seed:publish" });

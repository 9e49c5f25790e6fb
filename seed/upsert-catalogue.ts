/**
 * Loads a catalogue into a migrated tenant database in one transaction:
 * COPY into a temporary staging table, one upsert keyed by slug that leaves
 * unchanged rows untouched, deactivation of companies no longer in the
 * catalogue (never deletion), and the version record.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { escapeIdentifier, type ClientBase } from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { z } from "zod";
import type { Catalogue, Company } from "./catalogue/schema";
import { COMPANY_COLUMNS } from "./company-columns";
import { copyTextRow } from "./copy-text";
import { withTransaction } from "../lib/transaction";

const STAGING_TABLE = escapeIdentifier("catalogue_staging");
const COMPANIES = escapeIdentifier("companies");
const COLUMNS = COMPANY_COLUMNS.map(({ column }) => escapeIdentifier(column));

const CREATE_STAGING = `CREATE TEMPORARY TABLE ${STAGING_TABLE} (${COMPANY_COLUMNS.map(({ column, sqlType }) => `${escapeIdentifier(column)} ${sqlType}`).join(
  ", ",
)}) ON COMMIT DROP`;

const COPY_INTO_STAGING = `COPY ${STAGING_TABLE} (${COLUMNS.join(", ")}) FROM STDIN (FORMAT text)`;

// The WHERE compares every column the seed owns (and is_active), so a row
// whose values already match is not rewritten: its xmin stays the same.
const UPSERT = `
  INSERT INTO ${COMPANIES} (${COLUMNS.join(", ")}, is_active)
  SELECT ${COLUMNS.join(", ")}, true FROM ${STAGING_TABLE}
  ON CONFLICT (slug) DO UPDATE SET
    ${COLUMNS.map((column) => `${column} = EXCLUDED.${column}`).join(",\n    ")},
    is_active = true,
    updated_at = now()
  WHERE (${COLUMNS.map((column) => `${COMPANIES}.${column}`).join(", ")}, ${COMPANIES}.is_active)
    IS DISTINCT FROM (${COLUMNS.map((column) => `EXCLUDED.${column}`).join(", ")}, EXCLUDED.is_active)
  RETURNING (xmax = 0) AS inserted`;

const DEACTIVATE_MISSING = `
  UPDATE ${COMPANIES} SET is_active = false, updated_at = now()
  WHERE is_active AND NOT EXISTS (SELECT 1 FROM ${STAGING_TABLE} staged WHERE staged.slug = ${COMPANIES}.slug)`;

const RECORD_VERSION = `
  INSERT INTO catalogue_version (singleton, version, company_count) VALUES (true, $1, $2)
  ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version, company_count = EXCLUDED.company_count, loaded_at = now()
  WHERE (catalogue_version.version, catalogue_version.company_count)
    IS DISTINCT FROM (EXCLUDED.version, EXCLUDED.company_count)`;

const UpsertedRow = z.object({ inserted: z.boolean() });
const VersionRow = z.object({ version: z.string() });

export interface CatalogueLoadCounts {
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly deactivated: number;
}

/** The catalogue version the database holds, or null before the first load. */
export async function recordedCatalogueVersion(client: ClientBase): Promise<string | null> {
  const result = await client.query("SELECT version FROM catalogue_version");
  const [row] = z.array(VersionRow).parse(result.rows);
  return row?.version ?? null;
}

function* copyRows(companies: readonly Company[]): Generator<Buffer> {
  for (const company of companies) {
    yield Buffer.from(copyTextRow(COMPANY_COLUMNS.map(({ value }) => value(company))), "utf8");
  }
}

async function copyIntoStaging(client: ClientBase, companies: readonly Company[]): Promise<void> {
  await pipeline(Readable.from(copyRows(companies)), client.query(copyFrom(COPY_INTO_STAGING)));
}

/** Runs the whole load in one transaction; on any error it rolls back and rethrows. */
export async function upsertCatalogue(client: ClientBase, catalogue: Catalogue): Promise<CatalogueLoadCounts> {
  return withTransaction(client, async () => {
    await client.query(CREATE_STAGING);
    await copyIntoStaging(client, catalogue.companies);
    const upserted = z.array(UpsertedRow).parse((await client.query(UPSERT)).rows);
    const deactivated = (await client.query(DEACTIVATE_MISSING)).rowCount ?? 0;
    await client.query(RECORD_VERSION, [catalogue.version, catalogue.companies.length]);
    const inserted = upserted.filter((row) => row.inserted).length;
    const updated = upserted.length - inserted;
    return { inserted, updated, unchanged: catalogue.companies.length - upserted.length, deactivated };
  });
}

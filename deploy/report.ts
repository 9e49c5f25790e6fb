/**
 * The `--json` document of `npm run deploy -- preview|up` and how CI gathers
 * them: each matrix job deploys one shard and keeps its document as an
 * artifact; the last job reads them all (`npm run deploy -- report`) into one
 * table, the pull request's preview comment or the deployment's job summary.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { ShardRun } from "./parallel";
import type { TenantChanges } from "./preview-summary";

export interface DeployReport {
  command: "preview" | "up";
  environment: string;
  /** Why these shards (`--changed-since`, `--shard`, every shard). */
  reason: string;
  parallel: number;
  /** Wall time of the whole run. */
  seconds: number;
  /** One per shard, in the manifest's order; `tenants`: a preview's changes in tenants (preview with --json or --comment-file). */
  shards: (ShardRun & { tenants?: TenantChanges })[];
}

const changedTenant = z.object({ username: z.string(), tenantId: z.string().optional(), changes: z.array(z.string()), dataAtRisk: z.boolean() });

const tenantsSchema = z.object({
  created: z.array(z.string()),
  resumed: z.array(changedTenant),
  suspended: z.array(changedTenant),
  changed: z.array(changedTenant),
  removed: z.array(z.object({ username: z.string(), tenantId: z.string().optional(), databaseKept: z.boolean(), roleKept: z.boolean() })),
  unchanged: z.number(),
  otherChanges: z.number(),
});

const reportSchema = z.object({
  command: z.enum(["preview", "up"]),
  environment: z.string(),
  shards: z.array(
    z.object({
      shard: z.string(),
      stack: z.string(),
      file: z.string(),
      result: z.enum(["ok", "failed"]),
      changes: z.record(z.string(), z.number()).optional(),
      seconds: z.number(),
      error: z.string().optional(),
      tenants: tenantsSchema.optional(),
    }),
  ),
});

export interface GatheredShard {
  command: "preview" | "up";
  run: ShardRun;
  tenants?: TenantChanges;
}

/**
 * The shards of every result file, sorted by name. A file that is not such a
 * document, or of another environment, is refused naming it. A shard in
 * `expected` that no file has (its job never got to write one) is a failed row.
 */
export function gatherReports(environment: string, files: readonly string[], expected: readonly string[]): GatheredShard[] {
  const shards = new Map<string, GatheredShard>();
  for (const file of files) {
    let parsed;
    try {
      parsed = reportSchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
    } catch (error) {
      throw new Error(`${file}: not a result of npm run deploy -- preview|up --json (${error instanceof Error ? error.message : String(error)})`);
    }
    if (!parsed.success)
      throw new Error(
        `${file}: not a result of npm run deploy -- preview|up --json: ${parsed.error.issues[0]?.path.join(".")}: ${parsed.error.issues[0]?.message}`,
      );
    if (parsed.data.environment !== environment) throw new Error(`${file}: a run of environment "${parsed.data.environment}", not "${environment}"`);
    for (const { tenants, ...run } of parsed.data.shards) shards.set(run.shard, { command: parsed.data.command, run, ...(tenants && { tenants }) });
  }
  const command = [...shards.values()][0]?.command ?? "up";
  for (const shard of expected.filter((name) => !shards.has(name))) {
    shards.set(shard, {
      command,
      run: {
        shard,
        stack: `${environment}-${shard}`,
        file: "",
        result: "failed",
        seconds: 0,
        error: "no result: its job ended before the deploy command wrote one (see that job's log)",
      },
    });
  }
  return [...shards.values()].sort((a, b) => a.run.shard.localeCompare(b.run.shard));
}

/**
 * Pure: recorded samples → one billing line per tenant for a calendar month
 * (UTC). Each tenant's figures come from its own samples only.
 *
 * - days active: UTC days of the period with at least one sample in which the
 *   tenant's database existed and its status was "active" (suspended days are
 *   not billed; a pooled tenant's samples are not billed at all: the last one
 *   before its claim is only the baseline of the first claimed one);
 * - average storage: mean of the samples' database sizes in the period (the
 *   samples are taken at a fixed interval, so this is the time average);
 *   peak storage and peak connections: the largest sample;
 * - transactions: commits between consecutive samples, starting from the
 *   last sample before the period (so consecutive months add up exactly).
 *   PostgreSQL's counter restarts when statistics are reset (stats_reset
 *   changes) or lost (a crash; the counter drops): such a sample starts a new
 *   epoch and counts its whole value. The sampler's own transactions in the
 *   tenant database (`ownTransactions` of the earlier sample) are subtracted.
 */

export interface UsageSample {
  tenantId: string;
  username: string;
  sampledAt: Date;
  status: string;
  exists: boolean;
  sizeBytes: number;
  connections: number;
  xactCommit: number;
  statsReset: Date | null;
  ownTransactions: number;
}

export interface Period {
  label: string;
  start: Date;
  /** Exclusive. */
  end: Date;
}

export interface BillingLine {
  tenantId: string;
  username: string;
  daysActive: number;
  averageStorageBytes: number;
  peakStorageBytes: number;
  peakConnections: number;
  transactions: number;
  samples: number;
}

export function parsePeriod(text: string): Period {
  const match = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(text);
  if (!match) throw new Error(`--period must be a month as YYYY-MM, e.g. 2026-11 (got "${text}")`);
  const year = Number(match[1]);
  const month = Number(match[2]);
  return { label: text, start: new Date(Date.UTC(year, month - 1, 1)), end: new Date(Date.UTC(year, month, 1)) };
}

/** Commits between two samples of one tenant, minus the earlier sample's own reads. */
export function transactionsBetween(earlier: UsageSample, later: UsageSample): number {
  if (!later.exists) return 0;
  if (!earlier.exists) return later.xactCommit;
  const sameEpoch = (earlier.statsReset?.getTime() ?? null) === (later.statsReset?.getTime() ?? null) && later.xactCommit >= earlier.xactCommit;
  if (!sameEpoch) return later.xactCommit;
  return Math.max(0, later.xactCommit - earlier.xactCommit - earlier.ownTransactions);
}

function lineFor(tenantId: string, samples: readonly UsageSample[], period: Period): BillingLine | undefined {
  const sorted = [...samples].sort((a, b) => a.sampledAt.getTime() - b.sampledAt.getTime());
  const during = sorted.filter((sample) => sample.sampledAt >= period.start && sample.sampledAt < period.end);
  // A pooled tenant belongs to no one: its samples are never billed, only used as the baseline of the first claimed one.
  const inside = during.filter((sample) => sample.status !== "pooled");
  if (inside.length === 0) return undefined;
  const baseline = sorted.filter((sample) => sample.sampledAt < inside[0]!.sampledAt).pop();
  const chain = baseline ? [baseline, ...inside] : inside;
  let transactions = 0;
  for (let i = 1; i < chain.length; i++) transactions += transactionsBetween(chain[i - 1]!, chain[i]!);
  const days = new Set(inside.filter((sample) => sample.exists && sample.status === "active").map((sample) => sample.sampledAt.toISOString().slice(0, 10)));
  const existing = inside.filter((sample) => sample.exists);
  const sizes = existing.map((sample) => sample.sizeBytes);
  return {
    tenantId,
    username: inside[inside.length - 1]!.username,
    daysActive: days.size,
    averageStorageBytes: sizes.length === 0 ? 0 : Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length),
    peakStorageBytes: sizes.length === 0 ? 0 : Math.max(...sizes),
    peakConnections: Math.max(0, ...existing.map((sample) => sample.connections)),
    transactions,
    samples: inside.length,
  };
}

/** One line per tenant with samples in the period, by tenant ID. Samples before the period serve as baselines only. */
export function billPeriod(samples: readonly UsageSample[], period: Period): BillingLine[] {
  const byTenant = new Map<string, UsageSample[]>();
  for (const sample of samples) {
    const own = byTenant.get(sample.tenantId);
    if (own) own.push(sample);
    else byTenant.set(sample.tenantId, [sample]);
  }
  return [...byTenant]
    .map(([tenantId, own]) => lineFor(tenantId, own, period))
    .filter((line): line is BillingLine => line !== undefined)
    .sort((a, b) => a.tenantId.localeCompare(b.tenantId));
}

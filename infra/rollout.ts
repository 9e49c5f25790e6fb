/**
 * Staged rollouts of seed releases: which release each tenant's seed hook
 * runs in this update. Pure: the caller gives the published releases, the
 * stack's rollout config, the tenants file and what the last update recorded.
 *
 * The rule, per active tenant (first match wins):
 * 1. `hold: true`: its deployed release, whatever the rollout says.
 * 2. its ring is a promoted wave (at or before `rollout.promoted`): the target.
 * 3. otherwise: its deployed release; a new tenant gets the stable release.
 * A suspended tenant keeps its deployed release (it cannot be seeded) and
 * moves when resumed. A tenant whose release does not change has no seed
 * change at all in the update, so nothing outside the promoted waves is touched,
 * and the preview shows an update of exactly the `<user>-catalogue` resources
 * that move.
 *
 * Stable: the newest release promoted to every wave. It is recorded in the
 * `seedRollout` stack output (it becomes the target when the last wave is
 * promoted); before any full rollout it is the newest release older than
 * the target. New tenants outside the promoted waves get it, not the target:
 * a release still on canaries (or abandoned there because its migration
 * failed) reaches no one else, new tenants included.
 */
import * as pulumi from "@pulumi/pulumi";
import path from "node:path";
import { listReleases } from "../seed/releases";
import type { TenantsProblem } from "../tenants/load";
import { isPooled, RINGS, type LocatedTenant } from "../tenants/schema";
import { StackConfigError, type FleetSettings, type RolloutSettings } from "./config";
import { projectRoot } from "./dynamic-module";
import type { LastUpdate } from "./last-update";

/** The `seedRollout` stack output: the rollout as this update applied it. */
export interface RolloutRecord {
  target: string;
  waves: string[];
  promoted: string;
  stable: string;
}

export interface RolloutInput {
  /** Published releases, oldest first (seed/releases.ts listReleases). */
  readonly releases: readonly string[];
  /** Where they are, for messages. */
  readonly releasesDirectory: string;
  readonly rollout: RolloutSettings | undefined;
  /** Tenants in the file that are not tombstones. */
  readonly tenants: readonly LocatedTenant[];
  /** Username → the release the last update recorded (absent: new, or deployed before releases were recorded). */
  readonly deployed: Readonly<Record<string, string | undefined>>;
  /** The last update's `seedRollout` output, if any. */
  readonly previous?: Partial<RolloutRecord>;
  /** The config namespace, for messages: "drivergigspro". */
  readonly namespace: string;
}

export interface RolloutPlan {
  readonly record: RolloutRecord;
  /** Username → release its seed runs. */
  readonly versions: Map<string, string>;
  /** Problems with the stack config, as "  key: message" lines (StackConfigError). */
  readonly configProblems: string[];
  /** Problems with tenants file entries (TenantsFileError). */
  readonly problems: TenantsProblem[];
}

/** Target, waves, promoted wave and stable release, or the config problems that prevent them. */
function resolveRecord(input: RolloutInput): { record?: RolloutRecord; configProblems: string[] } {
  const { releases, rollout, namespace } = input;
  const newest = releases[releases.length - 1];
  if (newest === undefined) {
    return {
      configProblems: [`  ${namespace}:seedReleases: no seed release is published in ${input.releasesDirectory}; publish one with: npm run seed:publish -- 1`],
    };
  }
  const target = rollout?.target ?? newest;
  if (!releases.includes(target)) {
    return {
      configProblems: [
        `  ${namespace}:rollout.target: seed release ${target} is not published in ${input.releasesDirectory} (published: ${releases.join(", ")}); ` +
          `publish it with: npm run seed:publish -- ${target}`,
      ],
    };
  }
  const waves = [...(rollout?.waves ?? RINGS)];
  const promoted = rollout?.promoted ?? waves[waves.length - 1]!;
  const older = releases.filter((release) => Number(release) < Number(target));
  const previousStable = input.previous?.stable;
  const stable =
    promoted === waves[waves.length - 1]
      ? target
      : previousStable !== undefined && releases.includes(previousStable)
        ? previousStable
        : (older[older.length - 1] ?? target);
  return { record: { target, waves, promoted, stable }, configProblems: [] };
}

export function planRollout(input: RolloutInput): RolloutPlan {
  const versions = new Map<string, string>();
  const problems: TenantsProblem[] = [];
  const { record, configProblems } = resolveRecord(input);
  if (record === undefined) return { record: { target: "", waves: [], promoted: "", stable: "" }, versions, configProblems, problems };
  const promotedIndex = record.waves.indexOf(record.promoted);
  const lastWave = record.waves[record.waves.length - 1]!;

  for (const tenant of input.tenants) {
    const problem = (message: string) => problems.push({ line: tenant.line, username: tenant.username, message });
    const ring = tenant.ring ?? lastWave;
    const wave = record.waves.indexOf(ring);
    const current = input.deployed[tenant.username];
    if (wave < 0) {
      problem(
        `ring "${ring}" is not one of the rollout waves in ${input.namespace}:rollout.waves (${record.waves.join(", ")}); add it there or change the ring`,
      );
      continue;
    }
    if (tenant.hold === true && current === undefined) {
      problem(
        "hold: true keeps a tenant at its deployed seed release, but no release is recorded for this tenant yet " +
          "(it is new, or was deployed before releases were recorded); remove hold until one pulumi up has deployed it",
      );
      continue;
    }
    // A pooled tenant follows the stable release (it is new to whoever claims it); it has no hold or ring.
    const version = isPooled(tenant)
      ? record.stable
      : tenant.hold === true || (tenant.status !== "active" && current !== undefined)
        ? current!
        : wave <= promotedIndex
          ? record.target
          : (current ?? record.stable);
    if (!input.releases.includes(version)) {
      problem(
        `runs seed release ${version}, which is no longer published in ${input.releasesDirectory}; restore it (a release is kept while any tenant runs it)`,
      );
      continue;
    }
    versions.set(tenant.username, version);
  }
  return { record, versions, configProblems, problems };
}

/**
 * One line for the update's log: who moves to which release, who is held or
 * waits (at most 20 named each). Undefined when every tenant is on the target
 * and stays there: a fleet at rest logs nothing.
 */
export function describeRollout(plan: RolloutPlan, deployed: Readonly<Record<string, string | undefined>>, held: ReadonlySet<string>): string | undefined {
  const moving: string[] = [];
  const waiting: string[] = [];
  for (const [username, version] of plan.versions) {
    const current = deployed[username];
    if (current !== undefined && current !== version) moving.push(`${username} ${current}->${version}`);
    else if (version !== plan.record.target) waiting.push(`${username}${held.has(username) ? " (held)" : ""} at ${version}`);
  }
  if (moving.length === 0 && waiting.length === 0) return undefined;
  const names = (list: string[]) => (list.length === 0 ? "" : ` (${list.slice(0, 20).join(", ")}${list.length > 20 ? ", ..." : ""})`);
  const { target, promoted, stable } = plan.record;
  return (
    `seed rollout: target release ${target}, promoted through wave "${promoted}", stable ${stable}; ` +
    `${moving.length} tenant(s) move${names(moving)}; ${waiting.length} not on the target${names(waiting)}`
  );
}

/**
 * The program's side: reads the published releases from the stack's
 * `seedReleases` folder, plans, logs the plan and throws on config problems.
 * Tenant problems are returned, for the caller to report with its own.
 */
export function planSeedRollout(
  settings: FleetSettings,
  tenants: readonly LocatedTenant[],
  deployed: LastUpdate,
  previous?: Partial<RolloutRecord>,
): RolloutPlan {
  const releasesDirectory = path.resolve(projectRoot(), settings.seedReleases);
  const versions = Object.fromEntries(Object.entries(deployed).map(([username, tenant]) => [username, tenant.seedVersion]));
  const plan = planRollout({
    releases: listReleases(releasesDirectory),
    releasesDirectory: settings.seedReleases,
    rollout: settings.rollout,
    tenants,
    deployed: versions,
    previous,
    namespace: pulumi.getProject(),
  });
  if (plan.configProblems.length > 0) throw new StackConfigError(plan.configProblems);
  const held = new Set(tenants.filter((tenant) => tenant.hold === true).map((tenant) => tenant.username));
  const line = plan.problems.length === 0 ? describeRollout(plan, versions, held) : undefined;
  if (line !== undefined) void pulumi.log.info(line);
  return plan;
}

/**
 * The rollout planner (infra/rollout.ts), pure: which tenant gets which seed
 * release, given the published releases, the rollout config, holds, rings
 * and what the last update deployed. Plus the config and tenants-file
 * validation of rollouts.
 */
import { describe, expect, it } from "vitest";
import { parseFleetSettings, type RolloutSettings } from "../infra/config";
import { describeRollout, planRollout, type RolloutInput } from "../infra/rollout";
import { tenantEntrySchema, type LocatedTenant } from "../tenants/schema";

const RELEASES = ["1", "2", "3"];

function tenant(username: string, extra: Partial<LocatedTenant> = {}, line = 1): LocatedTenant {
  return { username, status: "active", line, ...extra };
}

function rollout(value: Record<string, unknown>): RolloutSettings {
  return parseFleetSettings({ servers: [{ name: "local", host: "h", adminPassword: "pw" }], rollout: value }, "drivergigspro").rollout!;
}

function plan(input: Partial<RolloutInput> & Pick<RolloutInput, "tenants">) {
  return planRollout({ releases: RELEASES, releasesDirectory: "seed/releases", rollout: undefined, deployed: {}, namespace: "drivergigspro", ...input });
}

const fleet = [tenant("cat", { ring: "canary" }, 2), tenant("ear", { ring: "early" }, 3), tenant("def", {}, 4), tenant("old", { hold: true }, 5)];
const onTwo = { cat: "2", ear: "2", def: "2", old: "2" };
const versions = (result: ReturnType<typeof plan>) => Object.fromEntries(result.versions);

describe("which release each tenant gets", () => {
  it("without rollout config, everyone not held gets the newest release", () => {
    const result = plan({ tenants: fleet, deployed: { ...onTwo, old: "1" } });
    expect(versions(result)).toEqual({ cat: "3", ear: "3", def: "3", old: "1" });
    expect(result.record).toEqual({ target: "3", waves: ["canary", "early", "all"], promoted: "all", stable: "3" });
  });

  it("only the promoted waves move to the target; the others and held tenants stay where they are", () => {
    const canary = plan({ tenants: fleet, deployed: onTwo, rollout: rollout({ target: 3, promoted: "canary" }) });
    expect(versions(canary)).toEqual({ cat: "3", ear: "2", def: "2", old: "2" });
    const early = plan({ tenants: fleet, deployed: { ...onTwo, cat: "3" }, rollout: rollout({ target: "3", promoted: "early" }) });
    expect(versions(early)).toEqual({ cat: "3", ear: "3", def: "2", old: "2" });
    const all = plan({ tenants: fleet, deployed: { ...onTwo, cat: "3", ear: "3" }, rollout: rollout({ target: "3", promoted: "all" }) });
    expect(versions(all)).toEqual({ cat: "3", ear: "3", def: "3", old: "2" });
  });

  it("a hold never moves a tenant, not even backwards or when its wave is promoted", () => {
    const result = plan({
      tenants: [tenant("cat", { ring: "canary", hold: true })],
      deployed: { cat: "1" },
      rollout: rollout({ target: "3", promoted: "canary" }),
    });
    expect(versions(result)).toEqual({ cat: "1" });
  });

  it("new tenants get the target in a promoted wave, else the stable release: the last one promoted to all, never a canary-only one", () => {
    const tenants = [tenant("newcat", { ring: "canary" }), tenant("newdef")];
    // Release 3 was abandoned on canaries; 4 is now the target. Stable (recorded) is 2.
    const result = planRollout({
      releases: ["1", "2", "3", "4"],
      releasesDirectory: "seed/releases",
      rollout: rollout({ target: "4", promoted: "canary" }),
      tenants,
      deployed: {},
      previous: { stable: "2" },
      namespace: "drivergigspro",
    });
    expect(versions(result)).toEqual({ newcat: "4", newdef: "2" });
    expect(result.record.stable).toBe("2");
  });

  it("without a recorded stable release, stable is the newest release older than the target", () => {
    const result = plan({ tenants: [tenant("newdef")], rollout: rollout({ target: "3", promoted: "canary" }) });
    expect(versions(result)).toEqual({ newdef: "2" });
    const oldest = plan({ tenants: [tenant("newdef")], rollout: rollout({ target: "1", promoted: "canary" }) });
    expect(versions(oldest)).toEqual({ newdef: "1" });
  });

  it("promoting the last wave makes the target the stable release", () => {
    const result = plan({ tenants: [], rollout: rollout({ target: "3", promoted: "all" }), previous: { stable: "1" } });
    expect(result.record.stable).toBe("3");
  });

  it("a suspended tenant keeps its release until it is resumed; a deployed tenant without a recorded release is treated as new", () => {
    const result = plan({
      tenants: [tenant("sus", { ring: "canary", status: "suspended" }), tenant("legacy")],
      deployed: { sus: "1" },
      rollout: rollout({ target: "3", promoted: "canary" }),
      previous: { stable: "2" },
    });
    expect(versions(result)).toEqual({ sus: "1", legacy: "2" });
  });

  it("pooled tenants (warm pool) follow the stable release through a rollout, new or deployed; promoting all moves them; a claimed one is in the last wave", () => {
    const pooled = (tenantId: string): LocatedTenant => ({ username: tenantId, tenantId, status: "pooled", line: 6 });
    const tenants = [...fleet, pooled("0F0F0F0F"), pooled("0E0E0E0E"), pooled("0D0D0D0D")];
    // 0F0F0F0F was made on 2, 0D0D0D0D on 1 (before 2 became stable); 0E0E0E0E is new. Release 3 is on the canaries and the early wave.
    const deployed = { ...onTwo, "0F0F0F0F": "2", "0D0D0D0D": "1" };
    const midway = plan({ tenants, deployed, rollout: rollout({ target: "3", promoted: "early" }), previous: { stable: "2" } });
    // An unclaimed tenant is new to whoever claims it: it moves to the stable release, never to a canary's, and is never left behind.
    expect(versions(midway)).toMatchObject({ cat: "3", ear: "3", def: "2", "0F0F0F0F": "2", "0E0E0E0E": "2", "0D0D0D0D": "2" });
    expect(midway.record.stable).toBe("2");
    const done = plan({ tenants, deployed: { ...deployed, cat: "3", ear: "3" }, rollout: rollout({ target: "3", promoted: "all" }) });
    expect(versions(done)).toMatchObject({ "0F0F0F0F": "3", "0E0E0E0E": "3", "0D0D0D0D": "3" });
    // Claimed during the rollout: an active tenant of the last wave, kept on the release it was made on until that wave is promoted.
    const claimed = plan({
      tenants: [tenant("maria_k", { tenantId: "0F0F0F0F" })],
      deployed: { maria_k: "2" },
      rollout: rollout({ target: "3", promoted: "early" }),
      previous: { stable: "2" },
    });
    expect(versions(claimed)).toEqual({ maria_k: "2" });
  });

  it("custom waves: a tenant without a ring is in the last wave", () => {
    const result = plan({
      tenants: [tenant("cat", { ring: "canary" }), tenant("def")],
      deployed: { cat: "2", def: "2" },
      rollout: rollout({ target: "3", waves: "canary,all", promoted: "canary" }),
    });
    expect(versions(result)).toEqual({ cat: "3", def: "2" });
  });
});

describe("rollout validation", () => {
  it("a target that is not a published release names the config key and says how to publish", () => {
    const result = plan({ tenants: fleet, rollout: rollout({ target: "9" }) });
    expect(result.configProblems).toEqual([
      "  drivergigspro:rollout.target: seed release 9 is not published in seed/releases (published: 1, 2, 3); publish it with: npm run seed:publish -- 9",
    ]);
    expect(plan({ tenants: [], releases: [] }).configProblems[0]).toMatch(/drivergigspro:seedReleases: no seed release is published/);
  });

  it("waves naming unknown rings, duplicate waves and a promoted wave that is not a wave name the config key", () => {
    const check = (value: Record<string, unknown>) => () => rollout(value);
    expect(check({ waves: ["canary", "beta"] })).toThrow(/drivergigspro:rollout\.waves\[1\]: ring must be "canary", "early" or "all"/);
    expect(check({ waves: "canary,canary,all" })).toThrow(/drivergigspro:rollout\.waves\[1\]: wave "canary" is listed twice/);
    expect(check({ waves: ["canary", "all"], promoted: "early" })).toThrow(
      /drivergigspro:rollout\.promoted: promoted "early" is not one of the waves \(canary, all\)/,
    );
    expect(check({ target: "latest" })).toThrow(/drivergigspro:rollout\.target: a seed release version is a whole number/);
    expect(check({ promoted: "everyone" })).toThrow(/drivergigspro:rollout\.promoted: ring must be/);
  });

  it("an unknown ring in the tenants file is refused by the schema; a ring that is not a wave names the tenant, its line and the config key", () => {
    const parsed = tenantEntrySchema.safeParse({ username: "ann_driver", ring: "beta" });
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]!.message).toBe('ring must be "canary", "early" or "all"');
    expect(tenantEntrySchema.safeParse({ username: "ann_driver", hold: "yes" }).error!.issues[0]!.message).toBe("hold must be true or false");

    const result = plan({ tenants: [tenant("ear", { ring: "early" }, 7)], rollout: rollout({ waves: ["canary", "all"] }) });
    expect(result.problems).toEqual([
      {
        line: 7,
        username: "ear",
        message: 'ring "early" is not one of the rollout waves in drivergigspro:rollout.waves (canary, all); add it there or change the ring',
      },
    ]);
  });

  it("a hold on a tenant with no deployed release names the tenant and line", () => {
    const result = plan({ tenants: [tenant("fresh", { hold: true }, 9)] });
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatchObject({ line: 9, username: "fresh" });
    expect(result.problems[0]!.message).toMatch(/^hold: true keeps a tenant at its deployed seed release, but no release is recorded for this tenant yet/);
  });

  it("a tenant left on a release that is no longer published is named", () => {
    const result = plan({ tenants: [tenant("old", { hold: true }, 4)], deployed: { old: "0" } });
    expect(result.problems[0]).toMatchObject({ line: 4, username: "old" });
    expect(result.problems[0]!.message).toMatch(/runs seed release 0, which is no longer published in seed\/releases/);
  });
});

describe("the update's log line", () => {
  it("names who moves and who is not on the target; a fleet at rest logs nothing", () => {
    const result = plan({ tenants: fleet, deployed: onTwo, rollout: rollout({ target: 3, promoted: "canary" }) });
    expect(describeRollout(result, onTwo, new Set(["old"]))).toBe(
      'seed rollout: target release 3, promoted through wave "canary", stable 2; 1 tenant(s) move (cat 2->3); 3 not on the target (ear at 2, def at 2, old (held) at 2)',
    );
    const atRest = { cat: "3", ear: "3", def: "3", old: "3" };
    expect(describeRollout(plan({ tenants: fleet, deployed: atRest }), atRest, new Set(["old"]))).toBeUndefined();
  });
});

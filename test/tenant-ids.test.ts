/**
 * Tenant IDs allocated before the engine (tenants/ids.ts): unique against
 * every shard's entries, drawn again on a clash (forced here with an injected
 * generator), and refused, naming both tenants, files and lines, when a pinned
 * one belongs to a tenant of another shard. Real files, real locks.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LocalTenantsFile } from "../onboarding/tenants-repo";
import { allocateTenantIds, declaredTenantIds, TenantIdAllocationError, type TenantIdGenerator } from "../tenants/ids";
import { loadTenantsFile } from "../tenants/load";
import { crossShardProblems } from "../tenants/shards";

/** A generator that returns `ids` in order (then fails the test if asked again). */
function sequence(...ids: string[]): TenantIdGenerator & { draws: () => number } {
  let next = 0;
  const generate = () => {
    if (next >= ids.length) throw new Error("the generator was asked more often than the test expected");
    return ids[next++]!;
  };
  return Object.assign(generate, { draws: () => next });
}

/** A fleet of two shards: john_driver (A1B2C3D4) in s001, maria_k (0B0B0B0B) in s002. */
function twoShardFleet(): string {
  const dir = mkdtempSync(join(tmpdir(), "dgp-ids-"));
  mkdirSync(join(dir, "tenants"));
  writeFileSync(join(dir, "tenants/shards.yaml"), "shards:\n  - name: s001\n    file: tenants/tenants.yaml\n  - name: s002\n    file: tenants/s002.yaml\n");
  writeFileSync(join(dir, "tenants/tenants.yaml"), "tenants:\n  - username: john_driver\n    tenantId: A1B2C3D4\n");
  writeFileSync(join(dir, "tenants/s002.yaml"), "# shard two\ntenants:\n  - username: maria_k\n    tenantId: 0B0B0B0B\n");
  return dir;
}

describe("allocateTenantIds", () => {
  it("draws again when a generated ID is taken (a forced collision) and never hands out one twice", () => {
    const taken = new Set(["A1B2C3D4"]);
    const generate = sequence("A1B2C3D4", "0C0C0C0C", "0C0C0C0C", "0D0D0D0D");
    expect(allocateTenantIds(2, taken, generate)).toEqual(["0C0C0C0C", "0D0D0D0D"]);
    expect(generate.draws()).toBe(4);
    expect([...taken]).toEqual(["A1B2C3D4", "0C0C0C0C", "0D0D0D0D"]);
  });

  it("gives up, naming the ID, when the generator keeps giving taken ones; and refuses a malformed ID", () => {
    expect(() => allocateTenantIds(1, new Set(["A1B2C3D4"]), () => "A1B2C3D4")).toThrow(TenantIdAllocationError);
    expect(() => allocateTenantIds(1, new Set(["A1B2C3D4"]), () => "A1B2C3D4")).toThrow(
      /16 draws in a row were already taken \(last A1B2C3D4\); nothing was changed/,
    );
    expect(() => allocateTenantIds(1, new Set(), () => "a1b2c3d4")).toThrow(/not 8 upper-case hex digits/);
  });

  it("the default generator gives 8 upper-case hex digits", () => {
    const [id] = allocateTenantIds(1, new Set());
    expect(id).toMatch(/^[0-9A-F]{8}$/);
  });
});

describe("across shards", () => {
  it("collects every shard's pinned IDs with file and line", () => {
    const dir = twoShardFleet();
    const owners = declaredTenantIds(dir);
    expect(owners.get("A1B2C3D4")).toEqual({ tenantId: "A1B2C3D4", username: "john_driver", where: "tenants/tenants.yaml:2" });
    expect(owners.get("0B0B0B0B")).toEqual({ tenantId: "0B0B0B0B", username: "maria_k", where: "tenants/s002.yaml:3" });
  });

  it("refuses an entry whose ID belongs to a tenant of another shard, naming both tenants, files and lines", () => {
    const dir = twoShardFleet();
    const file = join(dir, "tenants/s002.yaml");
    writeFileSync(file, "tenants:\n  - username: maria_k\n    tenantId: 0B0B0B0B\n  - username: collider\n    tenantId: A1B2C3D4\n");
    const result = loadTenantsFile(file);
    if (!result.ok) throw new Error("the file is valid on its own");
    expect(crossShardProblems(dir, "tenants/s002.yaml", result.tenants)).toEqual([
      {
        line: 4,
        username: "collider",
        message: expect.stringMatching(
          /^tenantId A1B2C3D4 belongs to tenant "john_driver" \(tenants\/tenants\.yaml:2 \(shard s001\)\); tenant IDs are unique across every shard/,
        ),
      },
    ]);
  });
});

describe("the signup service allocates too (onboarding/tenants-repo.ts)", () => {
  it("gives each signup an ID no shard has, drawing again past a forced collision with another shard's tenant", async () => {
    const dir = twoShardFleet();
    const generate = sequence("A1B2C3D4", "0B0B0B0B", "0E0E0E0E");
    const store = new LocalTenantsFile(join(dir, "tenants/s002.yaml"), { fleetDir: dir, generate });
    const outcome = await store.addSignups([{ username: "new_driver", email: "new@example.com" }]);
    expect(outcome.added).toEqual(["new_driver"]);
    const result = loadTenantsFile(store.file);
    expect(result.ok && result.tenants.map((tenant) => [tenant.username, tenant.tenantId])).toEqual([
      ["maria_k", "0B0B0B0B"],
      ["new_driver", "0E0E0E0E"],
    ]);
  });

  it("fails the batch and leaves the file unchanged when no free ID can be drawn", async () => {
    const dir = twoShardFleet();
    const store = new LocalTenantsFile(join(dir, "tenants/s002.yaml"), { fleetDir: dir, generate: () => "A1B2C3D4" });
    const before = readFileSync(store.file);
    await expect(store.addSignups([{ username: "new_driver", email: "new@example.com" }])).rejects.toThrow(/could not allocate a tenant ID/);
    expect(readFileSync(store.file).equals(before)).toBe(true);
  });
});

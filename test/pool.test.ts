/**
 * The warm pool as data (tenants/pool.ts): pooled entries in a shard's file,
 * validated with the whole file; the pool size in tenants/shards.yaml; the
 * refill under the tenants-file locks; a claim's edit of the file.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { billPeriod, parsePeriod } from "../usage/billing";
import { claimPooledTenant } from "../tenants/edit";
import { validateTenantsText } from "../tenants/load";
import { poolShortfall, refillPools } from "../tenants/pool";
import { crossShardProblems, readShards, shardWithRoom } from "../tenants/shards";
import { cloneCheckout } from "../harness/checkout";
import { LocalTenantsFile } from "../onboarding/tenants-repo";
import { createPool, migrate } from "../onboarding/db";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { createControlDatabase } from "../harness/onboarding";

let dir: string;
const write = (path: string, text: string) => writeFileSync(join(dir, path), text);
const read = (path: string) => readFileSync(join(dir, path), "utf8");
const tenantsOf = (path: string) => {
  const result = validateTenantsText(read(path));
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.tenants;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dgp-pool-"));
  mkdirSync(join(dir, "tenants"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("pooled entries in a tenants file", () => {
  it("are keyed by their tenant ID, have no username or e-mail, and count toward the shard's size", () => {
    const result = validateTenantsText("tenants:\n  - username: john_driver\n  - tenantId: 0A1B2C3D\n    status: pooled\n");
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.tenants.map((tenant) => [tenant.username, tenant.status, tenant.tenantId, tenant.line])).toEqual([
      ["john_driver", "active", undefined, 2],
      ["0A1B2C3D", "pooled", "0A1B2C3D", 3],
    ]);
    write("tenants/s001.yaml", "tenants:\n  - username: aaa\n  - tenantId: 0A1B2C3D\n    status: pooled\n");
    const manifest = { maxTenants: 2, shards: [{ name: "s001", file: "tenants/s001.yaml" }] };
    expect(shardWithRoom(dir, manifest)).toBeUndefined();
  });

  it("reports every bad pooled entry of the file at once, each with its line, and refuses the file", () => {
    const result = validateTenantsText(
      [
        "tenants:",
        "  - status: pooled", // 2: no tenantId
        "  - tenantId: 0A1B2C3D", // 3
        "    status: pooled",
        "  - tenantId: 1A1B2C3D", // 5
        "    status: pooled",
        "    username: taken_name", // 7: a pooled entry has no username
        "    email: a@example.com", // 8: nor e-mail
        "  - email: b@example.com", // 9: an active entry needs a username
        "  - tenantId: 0A1B2C3D", // 10: the same ID twice
        "    status: pooled",
        "  - tenantId: abc", // 12: not an ID
        "    status: pooled",
        "",
      ].join("\n"),
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const shown = result.problems.map((problem) => `${problem.line}: ${problem.message}`);
    expect(shown).toEqual([
      expect.stringMatching(/^2: a pooled entry needs its tenantId/),
      expect.stringMatching(/^7: a pooled entry has no username/),
      expect.stringMatching(/^8: a pooled entry has no email/),
      expect.stringMatching(/^9: username is required \(only an entry with "status: pooled" has none\)/),
      expect.stringMatching(/^10: tenantId 0A1B2C3D is already pinned by "0A1B2C3D" on line 3/),
      expect.stringMatching(/^12: tenantId: tenantId must be exactly 8 upper-case hex digits/),
    ]);
  });

  it("never collide with a username of another shard by their key; an ID in two shards is refused", () => {
    write("tenants/shards.yaml", "maxTenants: 10\nshards:\n  - name: s001\n    file: tenants/s001.yaml\n  - name: s002\n    file: tenants/s002.yaml\n");
    write("tenants/s002.yaml", "tenants:\n  - tenantId: 0A1B2C3D\n    status: pooled\n");
    const mine = [{ username: "0A1B2C3D", tenantId: "0A1B2C3D", status: "pooled" as const, line: 2 }];
    expect(crossShardProblems(dir, "tenants/s001.yaml", mine).map((problem) => problem.message)).toEqual([
      expect.stringMatching(/^tenantId 0A1B2C3D belongs to tenant "0A1B2C3D" \(tenants\/s002.yaml:2 \(shard s002\)\)/),
    ]);
  });
});

describe("the pool size in tenants/shards.yaml", () => {
  it("defaults to 3, is set for all shards or per shard, and a bad value names the key", () => {
    write("tenants/shards.yaml", "maxTenants: 10\nshards:\n  - name: s001\n    file: tenants/s001.yaml\n");
    expect(readShards(dir).poolSize).toBe(3);
    write("tenants/shards.yaml", "maxTenants: 10\npoolSize: 5\nshards:\n  - name: s001\n    file: tenants/s001.yaml\n    poolSize: 0\n");
    expect(readShards(dir)).toMatchObject({ poolSize: 5, shards: [{ name: "s001", poolSize: 0 }] });
    write("tenants/shards.yaml", "maxTenants: 10\npoolSize: -1\nshards:\n  - name: s001\n    file: tenants/s001.yaml\n");
    expect(() => readShards(dir)).toThrow(/poolSize/);
  });

  it("a shard lacks what its pool size asks, within the room maxTenants leaves", () => {
    const tenants = tenantsOfText("tenants:\n  - username: aaa\n  - tenantId: 0A1B2C3D\n    status: pooled\n  - username: bbb\n    status: removed\n");
    expect(poolShortfall(tenants, 100, 3)).toBe(2);
    expect(poolShortfall(tenants, 3, 3)).toBe(1);
    expect(poolShortfall(tenants, 2, 3)).toBe(0);
    expect(poolShortfall(tenants, 100, 0)).toBe(0);
    // Signups placed on the shard and not in its file yet keep their room.
    expect(poolShortfall(tenants, 4, 3, 1)).toBe(1);
    expect(poolShortfall(tenants, 4, 3, 2)).toBe(0);
  });
});

function tenantsOfText(text: string) {
  const result = validateTenantsText(text);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.tenants;
}

describe("refillPools", () => {
  const manifest =
    "maxTenants: 4\npoolSize: 3\nshards:\n  - name: s001\n    file: tenants/s001.yaml\n  - name: s002\n    file: tenants/s002.yaml\n    poolSize: 1\n";

  it("tops each shard up to its pool size within its room, keeps comments, and a second refill adds nothing", async () => {
    write("tenants/shards.yaml", manifest);
    write("tenants/s001.yaml", "# people's comment\ntenants:\n  - username: aaa\n  - username: bbb\n");
    const first = await refillPools(dir);
    expect(first.map((shard) => [shard.shard, shard.added.length, shard.pooled, shard.problems])).toEqual([
      ["s001", 2, 2, []],
      ["s002", 1, 1, []],
    ]);
    const s001 = tenantsOf("tenants/s001.yaml");
    expect(read("tenants/s001.yaml")).toMatch(/^# people's comment\n/);
    expect(s001.filter((tenant) => tenant.status === "pooled").map((tenant) => tenant.tenantId)).toEqual(first[0]!.added);
    expect(tenantsOf("tenants/s002.yaml").map((tenant) => tenant.tenantId)).toEqual(first[1]!.added);
    expect((await refillPools(dir)).flatMap((shard) => shard.added)).toEqual([]);
  });

  it("never hands out an ID another shard, a tombstone or the given deployed IDs hold (forced collisions)", async () => {
    write("tenants/shards.yaml", manifest);
    write("tenants/s001.yaml", "tenants:\n  - username: aaa\n    tenantId: AAAAAAAA\n    status: removed\n");
    write("tenants/s002.yaml", "tenants:\n  - username: bbb\n    tenantId: BBBBBBBB\n    status: suspended\n");
    const draws = ["AAAAAAAA", "BBBBBBBB", "CCCCCCCC", "00000001", "00000001", "00000002", "00000003"];
    const refill = await refillPools(dir, { shards: ["s001"], takenIds: ["CCCCCCCC"], generate: () => draws.shift()! });
    expect(refill.map((shard) => shard.added)).toEqual([["00000001", "00000002", "00000003"]]);
  });

  it("leaves a shard with an invalid file as it is and names its problem; other shards are refilled", async () => {
    write("tenants/shards.yaml", manifest);
    write("tenants/s001.yaml", "tenants:\n  - username: Bad\n");
    const refill = await refillPools(dir);
    expect(refill[0]).toMatchObject({ shard: "s001", added: [], problems: [expect.stringMatching(/^tenants\/s001.yaml:2: .*lower case/)] });
    expect(read("tenants/s001.yaml")).toBe("tenants:\n  - username: Bad\n");
    expect(refill[1]!.added).toHaveLength(1);
  });

  it("the service's write and CLI refills, racing, leave the room of signups placed and not written yet: the shard never goes over maxTenants", async () => {
    write("tenants/shards.yaml", "maxTenants: 5\npoolSize: 3\nshards:\n  - name: s001\n    file: tenants/s001.yaml\n");
    write("tenants/s001.yaml", "tenants:\n  - username: aaa_driver\n");
    // bob_driver is in this batch; carl_driver was placed too but waits out a failed batch's backoff.
    const placedNames = ["bob_driver", "carl_driver"];
    const store = new LocalTenantsFile(join(dir, "tenants/s001.yaml"), { fleetDir: dir, shard: "s001" });
    const placed = () => Promise.resolve(placedNames);
    await Promise.all([
      store.addSignups([{ username: "bob_driver", email: "bob@example.com" }], { placed }),
      refillPools(dir, { placed: () => placedNames }),
      refillPools(dir, { placed: () => placedNames }),
    ]);
    // The placed signup's room is still free: 1 + bob + 2 pooled, not the 3 the pool size asks for.
    expect(tenantsOf("tenants/s001.yaml").filter((tenant) => tenant.status === "pooled")).toHaveLength(2);
    await store.addSignups([{ username: "carl_driver", email: "carl@example.com" }], { placed });
    const after = tenantsOf("tenants/s001.yaml");
    expect(after.map((tenant) => (tenant.status === "pooled" ? "pooled" : tenant.username)).sort()).toEqual(
      ["aaa_driver", "bob_driver", "carl_driver", "pooled", "pooled"].sort(),
    );
    expect((await refillPools(dir, { placed: () => placedNames }))[0]!.added).toEqual([]);
  });

  it("concurrent refills (locks) never overfill a pool or repeat an ID", async () => {
    write("tenants/shards.yaml", manifest);
    await Promise.all([refillPools(dir), refillPools(dir), refillPools(dir)]);
    const pooled = [...tenantsOf("tenants/s001.yaml"), ...tenantsOf("tenants/s002.yaml")].map((tenant) => tenant.tenantId);
    expect(pooled).toHaveLength(4);
    expect(new Set(pooled).size).toBe(4);
  });
});

describe("claimPooledTenant (a signup binds a username to a pooled entry)", () => {
  const text = "tenants:\n  - username: aaa\n  # warm pool\n  - tenantId: 0A1B2C3D\n    status: pooled\n";

  it("gives the entry the username and e-mail, and makes it active under the same tenant ID", () => {
    const claimed = claimPooledTenant(text, "0A1B2C3D", { username: "maria_k", email: "maria@example.com" });
    expect(claimed.ok).toBe(true);
    if (!claimed.ok) return;
    expect(claimed.text).toBe("tenants:\n  - username: aaa\n  # warm pool\n  - username: maria_k\n    email: maria@example.com\n    tenantId: 0A1B2C3D\n");
  });

  it("refuses an ID that no entry has, an entry already claimed, and a username the file has, changing nothing", () => {
    const once = claimPooledTenant(text, "0A1B2C3D", { username: "maria_k" });
    if (!once.ok) throw new Error("first claim refused");
    const twice = claimPooledTenant(once.text, "0A1B2C3D", { username: "sam" });
    expect(twice.ok ? "" : twice.problems[0]!.message).toMatch(/cannot claim pooled tenant 0A1B2C3D: its entry is not pooled any more \(username "maria_k"\)/);
    const none = claimPooledTenant(text, "FFFFFFFF", { username: "sam" });
    expect(none.ok ? "" : none.problems[0]!.message).toMatch(/no entry has it/);
    const taken = claimPooledTenant(text, "0A1B2C3D", { username: "aaa" });
    expect(taken.ok ? "" : taken.problems[0]!.message).toMatch(/listed twice/);
  });
});

describe("npm run tenants -- pool refill, as a person runs it (in a copy of the project)", () => {
  it("fills every shard's pool, prints a table, and list shows the pooled entries; an invalid shard file exits 1", () => {
    const checkout = cloneCheckout("pool-cli");
    try {
      const env = { ...process.env, PATH: "/usr/bin:/bin", DGP_TOOLCHAIN_CACHE: join(tmpdir(), "dgp-no-toolchain"), PULUMI_BACKEND_URL: undefined };
      const tenants = (...args: string[]) =>
        spawnSync(join(checkout, "node_modules", ".bin", "tsx"), [join(checkout, "cli", "tenants.ts"), ...args], { cwd: checkout, encoding: "utf8", env });
      const refill = tenants("pool", "refill");
      expect(refill.status).toBe(0);
      expect(refill.stdout).toMatch(/s001 .*tenants\/tenants\.yaml .*3 .*3 /);
      expect(refill.stdout).toMatch(/3 pooled tenant\(s\) added/);
      const outputs = join(checkout, "outputs.json");
      writeFileSync(outputs, JSON.stringify({ tenants: {} }));
      const list = tenants("list", "--json", "--outputs", outputs);
      const rows = JSON.parse(list.stdout) as { username: string; status: string; tenantId: string; domain: string }[];
      expect(rows.filter((row) => row.status === "pooled").map((row) => [row.username, row.domain, /^[0-9A-F]{8}$/.test(row.tenantId)])).toEqual([
        ["(pooled)", "", true],
        ["(pooled)", "", true],
        ["(pooled)", "", true],
      ]);
      writeFileSync(join(checkout, "tenants", "tenants.yaml"), "tenants:\n  - username: Bad\n");
      const broken = tenants("pool", "refill");
      expect(broken.status).toBe(1);
      expect(broken.stderr).toMatch(/error: tenants\/tenants\.yaml:2: .*lower case.*\(this shard's pool was not refilled\)/);
    } finally {
      rmSync(dirname(checkout), { recursive: true, force: true });
    }
  });
});

describe("npm run tenants -- resume of a pooled entry's tombstone, in a full shard", () => {
  it("is refused, naming the file, line and tenant ID (pooled entries count toward maxTenants); the file is unchanged", () => {
    const checkout = cloneCheckout("pool-resume");
    try {
      const text = "tenants:\n  - username: aaa_driver\n  - tenantId: 0A1B2C3D\n    status: pooled\n  - tenantId: 0B1B2C3D\n    status: removed\n";
      writeFileSync(join(checkout, "tenants", "shards.yaml"), "maxTenants: 2\nshards:\n  - name: s001\n    file: tenants/tenants.yaml\n");
      writeFileSync(join(checkout, "tenants", "tenants.yaml"), text);
      const env = { ...process.env, PATH: "/usr/bin:/bin", DGP_TOOLCHAIN_CACHE: join(tmpdir(), "dgp-no-toolchain"), PULUMI_BACKEND_URL: undefined };
      const resume = spawnSync(join(checkout, "node_modules", ".bin", "tsx"), [join(checkout, "cli", "tenants.ts"), "resume", "0b1b2c3d"], {
        cwd: checkout,
        encoding: "utf8",
        env,
      });
      expect(resume.status).toBe(1);
      expect(resume.stderr).toMatch(/tenants\/tenants\.yaml:5: tenant 0B1B2C3D: the shard is full \(2 of maxTenants 2, pooled entries included\)/);
      expect(readFileSync(join(checkout, "tenants", "tenants.yaml"), "utf8")).toBe(text);
    } finally {
      rmSync(dirname(checkout), { recursive: true, force: true });
    }
  }, 60_000);
});

describe("npm run tenants -- pool refill beside a signup service (DATABASE_URL: its control database, a real PostgreSQL)", () => {
  let postgres: LocalPostgres;
  beforeAll(async () => {
    postgres = await startLocalPostgres();
  }, 120_000);
  afterAll(async () => {
    await postgres?.stop();
  });

  it("leaves the room of signups the service placed on the shard and has not written yet; an unreadable DATABASE_URL refills nothing", async () => {
    const url = await createControlDatabase(postgres, "pool_refill_control");
    const control = createPool(url, 1);
    await migrate(control);
    // bob_driver is placed on local-s001 and not in its file yet; dora_driver is another environment's.
    await control.query(
      "INSERT INTO onboarding_signups (username, label, email, stack) VALUES ('bob_driver', 'bob-driver', 'b@example.com', 'local-s001'), ('dora_driver', 'dora-driver', 'd@example.com', 'prod-s001')",
    );
    await control.end();
    const checkout = cloneCheckout("pool-placed");
    try {
      writeFileSync(join(checkout, "tenants", "shards.yaml"), "maxTenants: 4\npoolSize: 3\nshards:\n  - name: s001\n    file: tenants/tenants.yaml\n");
      writeFileSync(join(checkout, "tenants", "tenants.yaml"), "tenants:\n  - username: aaa_driver\n");
      const env = { ...process.env, PATH: "/usr/bin:/bin", DGP_TOOLCHAIN_CACHE: join(tmpdir(), "dgp-no-toolchain"), PULUMI_BACKEND_URL: undefined };
      const refill = (databaseUrl: string) =>
        spawnSync(join(checkout, "node_modules", ".bin", "tsx"), [join(checkout, "cli", "tenants.ts"), "pool", "refill", "--json"], {
          cwd: checkout,
          encoding: "utf8",
          env: { ...env, DATABASE_URL: databaseUrl },
        });
      const unreadable = refill(url.replace(/\/[^/?]+(\?|$)/, "/no_such_database$1"));
      expect(unreadable.status).toBe(1);
      expect(unreadable.stderr).toMatch(/cannot read the signups placed by the service from DATABASE_URL .*nothing was refilled/);
      expect(readFileSync(join(checkout, "tenants", "tenants.yaml"), "utf8")).toBe("tenants:\n  - username: aaa_driver\n");
      const result = refill(url);
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
      // 4 places: aaa_driver, bob_driver's (placed), and 2 pooled (not the 3 the pool size asks for).
      expect((JSON.parse(result.stdout) as { added: string[] }[])[0]!.added).toHaveLength(2);
      const text = readFileSync(join(checkout, "tenants", "tenants.yaml"), "utf8");
      expect(text.match(/status: pooled/g)).toHaveLength(2);
    } finally {
      rmSync(dirname(checkout), { recursive: true, force: true });
    }
  }, 120_000);

  it("replaces a pooled entry a signup claimed whose binding is not committed yet (the claims outbox)", async () => {
    const url = await createControlDatabase(postgres, "pool_refill_claims");
    const control = createPool(url, 1);
    await migrate(control);
    // cara_driver claimed the pooled 0A0A0A0A and was answered ready; the claims committer has not written the binding yet.
    await control.query(
      "INSERT INTO onboarding_signups (username, label, email, stack, status, tenant_id) VALUES ('cara_driver', 'cara-driver', 'c@example.com', 'local-s001', 'ready', '0A0A0A0A')",
    );
    await control.query("INSERT INTO onboarding_pool (tenant_id, stack, claimed_by, claimed_at) VALUES ('0A0A0A0A', 'local-s001', 'cara_driver', now())");
    await control.end();
    const checkout = cloneCheckout("pool-claimed");
    try {
      writeFileSync(join(checkout, "tenants", "shards.yaml"), "maxTenants: 10\npoolSize: 3\nshards:\n  - name: s001\n    file: tenants/tenants.yaml\n");
      writeFileSync(join(checkout, "tenants", "tenants.yaml"), "tenants:\n  - username: aaa_driver\n  - tenantId: 0A0A0A0A\n    status: pooled\n");
      const result = spawnSync(join(checkout, "node_modules", ".bin", "tsx"), [join(checkout, "cli", "tenants.ts"), "pool", "refill", "--json"], {
        cwd: checkout,
        encoding: "utf8",
        env: {
          ...process.env,
          PATH: "/usr/bin:/bin",
          DGP_TOOLCHAIN_CACHE: join(tmpdir(), "dgp-no-toolchain"),
          PULUMI_BACKEND_URL: undefined,
          DATABASE_URL: url,
        },
      });
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
      // The claimed entry is about to be cara_driver's: 3 new pooled entries, not the 2 it would take were it counted as pooled.
      expect((JSON.parse(result.stdout) as { added: string[] }[])[0]!.added).toHaveLength(3);
      expect(readFileSync(join(checkout, "tenants", "tenants.yaml"), "utf8").match(/status: pooled/g)).toHaveLength(4);
    } finally {
      rmSync(dirname(checkout), { recursive: true, force: true });
    }
  }, 120_000);
});

describe("usage never bills a pooled tenant (usage/billing.ts)", () => {
  const sample = (at: string, status: string, xactCommit: number, sizeBytes = 1000) => ({
    tenantId: "0F0F0F0F",
    username: status === "pooled" ? "0F0F0F0F" : "maria_k",
    sampledAt: new Date(at),
    status,
    exists: true,
    sizeBytes,
    connections: 0,
    xactCommit,
    statsReset: null,
    ownTransactions: 0,
  });

  it("no line while pooled; once claimed, only the claimed samples, counted from the last pooled one (the seed's transactions not billed)", () => {
    const period = parsePeriod("2026-11");
    expect(billPeriod([sample("2026-11-01T00:00:00Z", "pooled", 500), sample("2026-11-02T00:00:00Z", "pooled", 900)], period)).toEqual([]);
    const lines = billPeriod(
      [
        sample("2026-11-01T00:00:00Z", "pooled", 500, 9_000_000),
        sample("2026-11-02T00:00:00Z", "pooled", 900, 9_000_000),
        sample("2026-11-03T00:00:00Z", "active", 950, 100),
        sample("2026-11-04T00:00:00Z", "active", 1000, 300),
      ],
      period,
    );
    expect(lines).toEqual([
      {
        tenantId: "0F0F0F0F",
        username: "maria_k",
        daysActive: 2,
        averageStorageBytes: 200,
        peakStorageBytes: 300,
        peakConnections: 0,
        transactions: 100,
        samples: 2,
      },
    ]);
  });
});

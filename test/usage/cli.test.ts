/** `npm run usage` as a person and cron run it: real PostgreSQL, real process, exit codes. */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configureLocalStack } from "../../local/stack";
import { findEngine, pulumi, pulumiContext } from "../../engine/pulumi";
import { PROJECT_DIR } from "../../engine/paths";
import { waitFor } from "../../harness/onboarding";
import { startUsageFleet, type UsageFleet } from "./support";

let fleet: UsageFleet;
let workDir: string;
let outputsFile: string;

beforeAll(async () => {
  fleet = await startUsageFleet(2, [{ plan: "pro", limits: { storageQuotaMb: 1, connectionLimit: 10 }, seedVersion: "3" }]);
  workDir = mkdtempSync(join(tmpdir(), "dgp-usage-cli-"));
  outputsFile = join(workDir, "outputs.json");
  writeFileSync(outputsFile, JSON.stringify(fleet.outputs));
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
  rmSync(workDir, { recursive: true, force: true });
});

function usage(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(join(PROJECT_DIR, "node_modules", ".bin", "tsx"), [join(PROJECT_DIR, "usage", "cli.ts"), ...args], {
    cwd: PROJECT_DIR,
    encoding: "utf8",
    env: { ...process.env, DATABASE_URL: "", USAGE_ADMIN_URLS: "", ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const admin = () => ["--outputs", outputsFile, "--admin-url", `local=${fleet.servers[0]!.url}`];

describe("npm run usage", () => {
  it("prints a table, JSON and CSV", () => {
    const [a, b] = fleet.usageTenants;
    const table = usage(admin());
    expect(table.stderr).toBe("");
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/^TENANT ID\s+USERNAME\s+PLAN\s+SERVER\s+SEED\s+SIZE MB/);
    expect(table.stdout).toMatch(new RegExp(`${a!.tenantId}\\s+driver_0\\s+pro\\s+local\\s+3\\s+[\\d.]+\\s+1\\s+-\\s+0/10\\s+\\d+.*OVER QUOTA`));
    expect(table.stdout).toMatch(new RegExp(`${b!.tenantId}\\s+driver_1\\s+-\\s+local\\s+-`));
    expect(table.stdout).toMatch(/2 tenant\(s\) on 1 server\(s\): 4 queries over 3 connections\./);

    const json = JSON.parse(usage([...admin(), "--json"]).stdout) as { queries: number; tenants: Record<string, unknown>[] };
    expect(json.queries).toBe(4);
    expect(json.tenants.map((row) => [row.tenantId, row.overQuota, row.users])).toEqual(
      [
        [a!.tenantId, true, 0],
        [b!.tenantId, false, 0],
      ].sort((x, y) => String(x[0]).localeCompare(String(y[0]))),
    );

    const csv = usage([...admin(), "--csv"], { USAGE_ADMIN_URLS: `local=${fleet.servers[0]!.url}` })
      .stdout.trim()
      .split("\n");
    expect(csv[0]).toMatch(/^tenantId,username,plan,server,status,seedVersion,sizeBytes,/);
    expect(csv).toHaveLength(3);
  }, 60_000);

  it("records samples for cron and bills a period from them", () => {
    const env = { DATABASE_URL: fleet.controlUrl };
    expect(usage([...admin(), "--record"], env).status).toBe(0);
    expect(usage([...admin(), "--record"], env).status).toBe(0);
    const month = new Date().toISOString().slice(0, 7);
    const bill = usage(["--period", month, "--csv"], env);
    expect(bill.stderr).toBe("");
    const lines = bill.stdout.trim().split("\n");
    expect(lines[0]).toBe("tenantId,username,daysActive,averageStorageBytes,peakStorageBytes,peakConnections,transactions,samples");
    // Nothing but the sampler touched the tenants between the two samples: nothing to bill.
    for (const tenant of fleet.usageTenants)
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${tenant.tenantId},driver_\\d,1,\\d+,\\d+,0,0,2$`)));
    expect(usage(["--period", "1999-01"], env).stdout).toMatch(/no samples in 1999-01/);
  }, 60_000);

  it("takes the admin connections from the stack config when no --admin-url is given", () => {
    const stack = `e2e-usage-${process.pid}`;
    const context = pulumiContext(findEngine({ mayBuild: true }), join(workDir, "state"));
    try {
      configureLocalStack(context, stack, fleet.postgres);
      const env = Object.fromEntries(Object.entries(context.env).filter((entry): entry is [string, string] => entry[1] !== undefined));
      const result = usage(["--outputs", outputsFile, "--stack", stack, "--json"], env);
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
      const rows = (JSON.parse(result.stdout) as { tenants: { tenantId: string; sizeBytes: number }[] }).tenants;
      expect(rows.map((row) => row.tenantId).sort()).toEqual(fleet.usageTenants.map((tenant) => tenant.tenantId).sort());
      expect(result.stdout).not.toMatch(/postgres(ql)?:\/\//); // no connection URL, so no password, in the output
    } finally {
      try {
        pulumi(context, ["stack", "rm", "--yes", "--force", stack]);
      } catch {
        // Nothing to remove when the stack was never made.
      }
      rmSync(join(PROJECT_DIR, `Pulumi.${stack}.yaml`), { force: true });
    }
  }, 180_000);

  it("--serve exports per-tenant metrics until stopped", async () => {
    // node itself (not the tsx wrapper, which relays a signal only if the child answers its query in time: flaky under load).
    const child = spawn(process.execPath, ["--import", "tsx", join(PROJECT_DIR, "usage", "cli.ts"), ...admin(), "--serve", "0", "--interval", "1"], {
      cwd: PROJECT_DIR,
      env: { ...process.env, USAGE_ADMIN_URLS: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += String(chunk)));
    child.stderr.on("data", (chunk) => (output += String(chunk)));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const url = await waitFor(`the exporter to listen (output: ${output})`, async () => /metrics on (http:\/\/\S+)\/metrics/.exec(output)?.[1], 30_000);
      const text = await (await fetch(`${url}/metrics`)).text();
      for (const tenant of fleet.usageTenants)
        expect(text).toContain(`drivergigspro_tenant_database_size_bytes{tenant_id="${tenant.tenantId}",server="local"}`);
      expect((await fetch(`${url}/other`)).status).toBe(404);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  }, 60_000);

  it("fails clearly: unreachable server (no password shown), missing database, bad flags", () => {
    const down = usage(["--outputs", outputsFile, "--admin-url", "local=postgresql://postgres:t0psecret@127.0.0.1:1/postgres?sslmode=disable"]);
    expect(down.status).toBe(1);
    expect(down.stderr).toMatch(/cannot reach server "local" \(127\.0\.0\.1:1\)/);
    expect(`${down.stdout}${down.stderr}`).not.toContain("t0psecret");

    const ghostFile = join(workDir, "ghost.json");
    const ghost = { tenantId: "0000BEEF", username: "ghost_driver", database: "drivergigspro_0000beef", server: "local", status: "active" };
    writeFileSync(ghostFile, JSON.stringify({ tenants: { ...fleet.outputs.tenants, ghost_driver: ghost } }));
    const missing = usage(["--outputs", ghostFile, "--admin-url", `local=${fleet.servers[0]!.url}`]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^error: tenant 0000BEEF \(ghost_driver\): database drivergigspro_0000beef does not exist on server "local"$/m);

    expect(usage(["--period", "2026-13"]).stderr).toMatch(/--period must be a month as YYYY-MM/);
    expect(usage(["--period", "2026-11"]).status).toBe(2);
    expect(usage([...admin(), "--json", "--csv"]).status).toBe(2);
    expect(usage(["--bogus"]).status).toBe(2);
  }, 60_000);
});

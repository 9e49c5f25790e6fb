/**
 * Telling a stale engine lock from a live one (engine/stale-lock.ts), on lock
 * files laid out as Pulumi's file backend writes them, and on lock rows of
 * its postgres backend in a real PostgreSQL.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startLocalPostgres, type LocalPostgres } from "../local/embedded-postgres";
import { ensureStateDatabase } from "../local/state-backend";
import { plantLock } from "./support/state-lock";
import { findStackLocks, removableStaleLocks } from "../engine/stale-lock";

let stateDir: string;
const lockDir = () => join(stateDir, ".pulumi", "locks", "organization", "drivergigspro", "dev");
const backendUrl = () => `${pathToFileURL(stateDir).href}?no_tmp_dir=true`;

function writeLock(name: string, content: unknown): void {
  mkdirSync(lockDir(), { recursive: true });
  writeFileSync(join(lockDir(), `${name}.json`), typeof content === "string" ? content : JSON.stringify(content));
}

/** The pid of a process that has certainly exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ["-e", ""]).pid!;
}

const lock = (pid: number, host = hostname()) => ({ pid, username: "ci", hostname: host, timestamp: "2026-11-24T06:43:53Z" });

beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), "dgp-locks-"));
});
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

describe("findStackLocks", () => {
  it("finds nothing when the stack has no lock", async () => {
    expect(await findStackLocks(backendUrl(), "drivergigspro", "dev")).toEqual({ stale: [], held: [] });
  });

  it("calls a lock stale when its process on this machine is gone", async () => {
    const pid = deadPid();
    writeLock("a", lock(pid));
    expect(await findStackLocks(backendUrl(), "drivergigspro", "dev")).toEqual({ stale: [lock(pid)], held: [] });
  });

  it("leaves a live process's lock, another machine's lock and an unreadable lock alone", async () => {
    writeLock("live", lock(process.pid));
    writeLock("remote", lock(deadPid(), "ci-runner-7"));
    writeLock("junk", "{not json");
    const locks = await findStackLocks(backendUrl(), "drivergigspro", "dev");
    expect(locks.stale).toEqual([]);
    expect(locks.held).toHaveLength(3);
    expect(locks.held).toContainEqual(expect.stringMatching(new RegExp(`^pid ${process.pid} on `)));
    expect(locks.held).toContainEqual(expect.stringMatching(/ on ci-runner-7 \(ci\)/));
    expect(locks.held).toContainEqual("junk.json: unreadable lock file");
  });

  it("only reads file backends, and only the stack asked about", async () => {
    writeLock("a", lock(deadPid()));
    expect(await findStackLocks("https://api.pulumi.com", "drivergigspro", "dev")).toEqual({ stale: [], held: [] });
    expect(await findStackLocks(backendUrl(), "drivergigspro", "prod")).toEqual({ stale: [], held: [] });
  });

  it("calls locks removable only when every one of them is stale", async () => {
    const pid = deadPid();
    writeLock("a", lock(pid));
    expect(await removableStaleLocks(backendUrl(), "drivergigspro", "dev")).toBe(`pid ${pid}, started 2026-11-24T06:43:53Z`);
    writeLock("live", lock(process.pid));
    expect(await removableStaleLocks(backendUrl(), "drivergigspro", "dev")).toBeUndefined();
    expect(await removableStaleLocks(backendUrl(), "drivergigspro", "prod")).toBeUndefined();
  });
});

describe("findStackLocks on a postgres:// state backend", () => {
  let server: LocalPostgres;
  let url: string;
  beforeAll(async () => {
    server = await startLocalPostgres();
    url = await ensureStateDatabase(server);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("reads the lock rows of that stack only, and tells a dead process's lock from a live one", async () => {
    expect(await findStackLocks(url, "drivergigspro", "pg")).toEqual({ stale: [], held: [] });
    await plantLock(url, "drivergigspro", "pg", lock(deadPid()), "dead");
    await plantLock(url, "drivergigspro", "other", lock(deadPid()), "elsewhere");
    const found = await findStackLocks(url, "drivergigspro", "pg");
    expect(found.held).toEqual([]);
    expect(found.stale).toHaveLength(1);
    expect(await removableStaleLocks(url, "drivergigspro", "pg")).toMatch(/^pid \d+, started 2026-11-24T06:43:53Z$/);

    await plantLock(url, "drivergigspro", "pg", lock(process.pid), "live");
    expect((await findStackLocks(url, "drivergigspro", "pg")).held).toEqual([expect.stringContaining(`pid ${process.pid}`)]);
    expect(await removableStaleLocks(url, "drivergigspro", "pg")).toBeUndefined();
  });

  it("keeps the state database closed to PUBLIC", async () => {
    const client = await server.connect();
    try {
      const { rows } = await client.query(
        `SELECT EXISTS (SELECT 1 FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
                 WHERE d.datname = 'pulumi_state' AND a.grantee = 0) AS public_has_any`,
      );
      expect(rows[0].public_has_any).toBe(false);
    } finally {
      await client.end();
    }
  });
});

/**
 * Telling a stale engine lock from a live one (local/stale-lock.ts), on lock
 * files laid out as Pulumi's file backend writes them.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { findStackLocks, removableStaleLocks } from "../local/stale-lock";

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
  it("finds nothing when the stack has no lock", () => {
    expect(findStackLocks(backendUrl(), "drivergigspro", "dev")).toEqual({ stale: [], held: [] });
  });

  it("calls a lock stale when its process on this machine is gone", () => {
    const pid = deadPid();
    writeLock("a", lock(pid));
    expect(findStackLocks(backendUrl(), "drivergigspro", "dev")).toEqual({ stale: [lock(pid)], held: [] });
  });

  it("leaves a live process's lock, another machine's lock and an unreadable lock alone", () => {
    writeLock("live", lock(process.pid));
    writeLock("remote", lock(deadPid(), "ci-runner-7"));
    writeLock("junk", "{not json");
    const locks = findStackLocks(backendUrl(), "drivergigspro", "dev");
    expect(locks.stale).toEqual([]);
    expect(locks.held).toHaveLength(3);
    expect(locks.held).toContainEqual(expect.stringMatching(new RegExp(`^pid ${process.pid} on `)));
    expect(locks.held).toContainEqual(expect.stringMatching(/ on ci-runner-7 \(ci\)/));
    expect(locks.held).toContainEqual("junk.json: unreadable lock file");
  });

  it("only reads file backends, and only the stack asked about", () => {
    writeLock("a", lock(deadPid()));
    expect(findStackLocks("https://api.pulumi.com", "drivergigspro", "dev")).toEqual({ stale: [], held: [] });
    expect(findStackLocks(backendUrl(), "drivergigspro", "prod")).toEqual({ stale: [], held: [] });
  });

  it("calls locks removable only when every one of them is stale", () => {
    const pid = deadPid();
    writeLock("a", lock(pid));
    expect(removableStaleLocks(backendUrl(), "drivergigspro", "dev")).toBe(`pid ${pid}, started 2026-11-24T06:43:53Z`);
    writeLock("live", lock(process.pid));
    expect(removableStaleLocks(backendUrl(), "drivergigspro", "dev")).toBeUndefined();
    expect(removableStaleLocks(backendUrl(), "drivergigspro", "prod")).toBeUndefined();
  });
});

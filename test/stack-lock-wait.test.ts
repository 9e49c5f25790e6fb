/**
 * withStackLockWait (engine/stack-lock-wait.ts) on locks laid out as Pulumi's
 * file backend writes them: which failures it waits on, what it says, when it
 * removes a lock and when it gives up. The engine runs are in
 * test/deploy/lock-wait.e2e.test.ts.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isStackLockedError, withStackLockWait } from "../engine/stack-lock-wait";
import { plantLock } from "./support/state-lock";

let stateDir: string;
let lines: string[];
let cancels: number;
const options = (extra: { timeoutMs?: number } = {}) => ({
  backendUrl: pathToFileURL(stateDir).href,
  project: "drivergigspro",
  stack: "prod-s001",
  cancel: async () => void cancels++,
  log: (line: string) => void lines.push(line),
  initialDelayMs: 1,
  maxDelayMs: 2,
  ...extra,
});
const lock = (pid: number) => ({ pid, username: "onboarding", hostname: hostname(), timestamp: "2026-11-25T15:00:00Z" });
const locked = () =>
  new Error("error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.");

beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), "dgp-lock-wait-"));
  lines = [];
  cancels = 0;
});
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

describe("withStackLockWait", () => {
  it("knows a locked stack from the CLI's, the Automation API's and Pulumi Cloud's words, and nothing else", () => {
    expect(isStackLockedError(locked())).toBe(true);
    expect(isStackLockedError(Object.assign(new Error("stderr: ..."), { name: "ConcurrentUpdateError" }))).toBe(true);
    expect(isStackLockedError(new Error("conflict: Another update is currently in progress."))).toBe(true);
    expect(isStackLockedError(new Error('tenants/tenants.yaml line 3: write "john_driver"'))).toBe(false);
  });

  it("runs again after a locked attempt, saying who holds the stack", async () => {
    await plantLock(options().backendUrl, "drivergigspro", "prod-s001", lock(process.pid), "live");
    let attempts = 0;
    const result = await withStackLockWait(async () => {
      if (++attempts < 3) throw locked();
      return "deployed";
    }, options());
    expect(result).toBe("deployed");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      new RegExp(
        `^stack prod-s001 is locked by another deployment \\(pid ${process.pid} on .* \\(onboarding\\) since 2026-11-25T15:00:00Z\\); waiting 0 s before trying again$`,
      ),
    );
    expect(cancels).toBe(0);
  });

  it("removes a lock whose process on this machine is gone before running", async () => {
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    await plantLock(options().backendUrl, "drivergigspro", "prod-s001", lock(dead), "killed");
    expect(await withStackLockWait(async () => "deployed", options())).toBe("deployed");
    expect(cancels).toBe(1);
    expect(lines).toEqual([`stack prod-s001: removing the lock left by an interrupted pulumi up (pid ${dead}, started 2026-11-25T15:00:00Z)`]);
  });

  it("gives up after the timeout naming the holder, and passes any other failure on at once", async () => {
    await plantLock(options().backendUrl, "drivergigspro", "prod-s001", lock(process.pid), "live");
    await expect(withStackLockWait(async () => Promise.reject(locked()), options({ timeoutMs: 0 }))).rejects.toThrow(
      new RegExp(`^stack prod-s001 is still locked after 0 s by pid ${process.pid} on .*; if that deployment is gone, run: pulumi cancel --stack prod-s001$`),
    );
    let attempts = 0;
    await expect(withStackLockWait(async () => Promise.reject(new Error(`seed failed ${++attempts}`)), options())).rejects.toThrow("seed failed 1");
    expect(attempts).toBe(1);
  });
});

/** lib/: the one error-message helper and the one exit wrapper of every command-line entry point. */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { errorMessage } from "../lib/errors";

describe("errorMessage", () => {
  it("gives an Error's message", () => {
    expect(errorMessage(new Error("disk full"))).toBe("disk full");
    expect(errorMessage(new TypeError("x is undefined"))).toBe("x is undefined");
  });

  it("gives the text of anything else thrown", () => {
    expect(errorMessage("a plain string")).toBe("a plain string");
    expect(errorMessage(42)).toBe("42");
    expect(errorMessage(undefined)).toBe("undefined");
    expect(errorMessage(null)).toBe("null");
  });

  it("adds the stack trace when asked, for failures nobody anticipated", () => {
    const error = new Error("bug");
    expect(errorMessage(error, { withStack: true })).toBe(error.stack);
    expect(errorMessage(error, { withStack: true })).toMatch(/^Error: bug\n\s+at /);
    expect(errorMessage("no stack", { withStack: true })).toBe("no stack");
    const stackless = new Error("no stack either");
    stackless.stack = undefined;
    expect(errorMessage(stackless, { withStack: true })).toBe("no stack either");
  });
});

describe("runMain", () => {
  const TSX = join(__dirname, "..", "node_modules", ".bin", "tsx");
  const FIXTURE = join(__dirname, "fixtures", "run-main.ts");
  const run = (...args: string[]) => {
    const result = spawnSync(TSX, [FIXTURE, ...args], { encoding: "utf8" });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  };

  it("exits 0 when main succeeds and prints nothing on stderr", () => {
    expect(run("ok")).toEqual({ status: 0, stdout: "done\n", stderr: "" });
  });

  it("exits with the status main returns", () => {
    expect(run("returns 2")).toMatchObject({ status: 2, stderr: "" });
  });

  it("prints an expected error as one line, prefix and message, and exits 1", () => {
    expect(run("expected")).toMatchObject({ status: 1, stderr: "fixture: the tenants file is invalid\n" });
    expect(run("expected", "seed:publish").stderr).toBe("seed:publish: the tenants file is invalid\n");
    expect(run("expected", "").stderr).toBe("the tenants file is invalid\n");
  });

  it("prints an unexpected error with its stack trace, and exits 1", () => {
    const result = run("unexpected");
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^fixture: TypeError: cannot read properties of undefined\n\s+at /);
  });

  it("exits 2 on a usage error", () => {
    expect(run("usage")).toMatchObject({ status: 2, stderr: "fixture: unknown option --colour\n" });
  });

  it("prints what was thrown when it is not an Error", () => {
    expect(run("not an error")).toMatchObject({ status: 1, stderr: "fixture: a plain string\n" });
  });

  it("redacts the printed line", () => {
    const result = run("secret");
    expect(result.status).toBe(1);
    expect(result.stderr).toBe("fixture: cannot connect to postgres://admin:***@db.example.com/x\n");
    expect(result.stderr).not.toContain("hunter2");
  });
});

/** The tenants file's schema: every naming rule, cross-entry rules, malformed YAML. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatProblem, loadTenantsFile, requireValidTenants, validateTenantsText } from "../tenants/load";
import { usernameProblems } from "../tenants/schema";

function problemsOf(text: string) {
  const result = validateTenantsText(text);
  return result.ok ? [] : result.problems;
}

function fileWith(...entries: string[]): string {
  return `# a comment\ntenants:\n${entries.map((entry) => `  - ${entry}\n`).join("")}`;
}

describe("usernames", () => {
  it.each(["abc", "john_driver", "sam-courier", "a1_b2-c3", "x".repeat(40)])("accepts %j", (name) => {
    expect(usernameProblems(name)).toEqual([]);
  });

  it.each([
    ["", /empty/],
    ["ab", /3 to 40 characters long; it has 2/],
    ["x".repeat(41), /it has 41/],
    ["x".repeat(200), /it has 200/],
    ["1driver", /must start with a letter/],
    ["_driver", /must start with a letter/],
    ["driver_", /must not end with "_" or "-"/],
    ["driver-", /must not end with "_" or "-"/],
    ["john.driver", /only contain a-z, 0-9, _ and -; found "\." \(U\+002E\)/],
    ["john driver", /found " " \(U\+0020\)/],
    ["admin", /"admin" is reserved/],
    ["postgres", /reserved/],
    ["template1", /reserved/],
    ["xn__abc", /3rd and 4th characters/],
    ["robert'); drop table tenants;--", /found "'" \(U\+0027\), "\)" \(U\+0029\), ";" \(U\+003B\), " " \(U\+0020\)/],
    ['john"driver', /found "\\"" \(U\+0022\)|found """ \(U\+0022\)/],
    ["$(rm -rf /)", /found "\$"/],
    // Cyrillic "а" and "о" look exactly like Latin a and o.
    ["jоhn_drivеr", /found "о" \(U\+043E\), "е" \(U\+0435\)/],
    ["jöhn", /"ö" \(U\+00F6\)/],
    ["john\u200bdriver", /U\+200B/],
  ])("rejects %j", (name, message) => {
    expect(usernameProblems(name).join("; ")).toMatch(message);
  });

  it("rejects upper case and shows the lower-case form without changing it", () => {
    expect(usernameProblems("John_Driver")).toEqual(['username must be lower case; write "john_driver"']);
  });
});

describe("the tenants file", () => {
  it("accepts the committed example file", async () => {
    const { readFileSync } = await import("node:fs");
    const result = validateTenantsText(readFileSync("tenants/tenants.yaml", "utf8"));
    expect(result.ok).toBe(true);
  });

  it("applies defaults and records each entry's line", () => {
    const result = validateTenantsText(fileWith("username: john_driver", "username: maria_k\n    status: suspended\n    tenantId: A1B2C3D4"));
    expect(result).toEqual({
      ok: true,
      tenants: [
        { username: "john_driver", status: "active", line: 3 },
        { username: "maria_k", status: "suspended", tenantId: "A1B2C3D4", line: 4 },
      ],
    });
  });

  it("reports every problem at once, each with its line and tenant", () => {
    const text = fileWith(
      "username: good_one",
      "username: Bad_One",
      "username: ok_two\n    email: not-an-email",
      "username: ok_three\n    tenantId: a1b2c3d4",
      "username: ok_four\n    status: deleted",
      "username: ok_five\n    colour: blue",
      "username: good-one",
    );
    const problems = problemsOf(text).map((problem) => `${problem.line} ${problem.username} ${problem.message}`);
    expect(problems).toEqual([
      '4 Bad_One username must be lower case; write "bad_one"',
      '6 ok_two email: email must be a valid e-mail address (got "not-an-email")',
      '8 ok_three tenantId: tenantId must be exactly 8 upper-case hex digits, e.g. A1B2C3D4 (got "a1b2c3d4")',
      '10 ok_four status: status must be "active", "suspended", "removed" or "pooled" (got "deleted")',
      '11 ok_five unknown key "colour"; allowed: username, email, tenantId, server, status',
      '13 good-one collides with "good_one" on line 3: both become the DNS label "good-one"; rename one of them',
    ]);
  });

  it("rejects the same username twice and the same pinned ID twice", () => {
    const problems = problemsOf(
      fileWith("username: john_driver\n    tenantId: A1B2C3D4", "username: john_driver", "username: maria_k\n    tenantId: A1B2C3D4"),
    ).map((problem) => problem.message);
    expect(problems).toEqual([
      "is listed twice (lines 3 and 5); remove one entry",
      'tenantId A1B2C3D4 is already pinned by "john_driver" on line 3; tenant IDs are unique',
    ]);
  });

  it("rejects entries without a username and non-mapping entries", () => {
    const problems = problemsOf(fileWith("email: a@b.co", "just-a-string"));
    expect(problems.map((problem) => problem.line)).toEqual([3, 4]);
    expect(problems[1]!.message).toMatch(/must be a mapping with a username/);
  });

  it.each([
    ["tenants: [\n  - username: x", /not valid YAML/],
    ["tenants:\n  - username: a\n  username: b", /not valid YAML/],
    ["tenants:\n  - {username: abc, username: abd}", /not valid YAML: Map keys must be unique/],
    ["- username: john_driver", /top level must be a mapping/],
    ["", /must have a "tenants:" list/],
    ["tennants: []", /unknown top-level key "tennants"/],
    ["tenants: john_driver", /must be a list/],
  ])("rejects malformed file %j", (text, message) => {
    expect(
      problemsOf(text)
        .map((problem) => problem.message)
        .join("\n"),
    ).toMatch(message);
  });

  it("accepts an empty list in either spelling", () => {
    expect(validateTenantsText("tenants: []\n")).toEqual({ ok: true, tenants: [] });
    expect(validateTenantsText("tenants:\n")).toEqual({ ok: true, tenants: [] });
  });
});

describe("limits on hostile input", () => {
  const oneLine = (problems: { message: string }[]) => {
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).not.toContain("\n");
    return problems[0]!.message;
  };

  it("refuses a 5 MB file before parsing it, in one line, also when read from disk", () => {
    const text = `tenants:\n${"  - username: user_abc\n".repeat(230_000)}`;
    expect(Buffer.byteLength(text)).toBeGreaterThan(5_000_000);
    expect(oneLine(problemsOf(text))).toMatch(
      /^the file is 5\.\d MiB \(\d+ bytes\); a tenants file may be at most 2 MiB \(10,000 entries\): split the fleet into shards/,
    );

    const dir = mkdtempSync(join(tmpdir(), "dgp-big-tenants-"));
    try {
      writeFileSync(join(dir, "tenants.yaml"), text);
      const result = loadTenantsFile(join(dir, "tenants.yaml"));
      expect(result.ok).toBe(false);
      if (!result.ok) expect(formatProblem(join(dir, "tenants.yaml"), result.problems[0]!)).toMatch(/tenants\.yaml: the file is 5\.\d MiB/);
      expect(() => requireValidTenants(join(dir, "tenants.yaml"))).toThrow(/has 1 problem;[^\n]*\n[^\n]*the file is 5\.\d MiB[^\n]*$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a 5 MB single invalid value in one short line", () => {
    const text = `tenants:\n  - username: ${"X".repeat(5_000_000)}\n`;
    expect(oneLine(problemsOf(text)).length).toBeLessThan(200);
  });

  it("cuts values echoed in errors to 60 characters and says how long they were", () => {
    const huge = "Y".repeat(1_000_000);
    const problems = problemsOf(
      fileWith(`username: ${huge}`, `username: ok_one\n    email: ${"e".repeat(500_000)}`, `username: ok_two\n    ${"k".repeat(1_000)}: 1`),
    );
    const lines = problems.map((problem) => formatProblem("tenants.yaml", problem));
    for (const line of lines) expect(line.length).toBeLessThan(300);
    expect(lines[0]).toBe(
      `tenants.yaml:3: tenant "${"Y".repeat(60)}... (1000000 characters)": username must be lower case; write "${"y".repeat(60)}... (1000000 characters)"`,
    );
    expect(lines).toContain(`tenants.yaml:5: tenant "ok_one": email: email must be a valid e-mail address (got "${"e".repeat(59)}... (500002 characters))`);
    expect(lines).toContain(
      `tenants.yaml:6: tenant "ok_two": unknown key "${"k".repeat(60)}... (1000 characters)"; allowed: username, email, tenantId, server, status`,
    );
    expect(usernameProblems("Z".repeat(5_000_000)).join("; ")).toMatch(
      /^username must be lower case; write "z{60}\.\.\. \(5000000 characters\)"; username must be 3 to 40 characters long; it has 5000000$/,
    );
  });

  it("refuses more than 10,000 entries, and more than 100,000 lines or flow items, before validating them", () => {
    const entries = `tenants:\n${Array.from({ length: 10_001 }, (_, i) => `  - username: u${i.toString(36)}xx\n`).join("")}`;
    expect(oneLine(problemsOf(entries))).toBe(
      "the file has 10001 entries; a tenants file may have at most 10,000: split the fleet into shards, one tenants file per stack (stack config tenantsFile)",
    );
    const flow = `tenants: [${"a,".repeat(400_000)}]`;
    expect(oneLine(problemsOf(flow))).toMatch(/^the file has 400001 lines and flow items; a tenants file may have at most 100000 \(10,000 entries\)/);
    const lines = `tenants:\n${"  - a\n".repeat(150_000)}`;
    expect(oneLine(problemsOf(lines))).toMatch(/^the file has 150001 lines and flow items/);
  });

  it("accepts 10,000 entries", () => {
    const text = `tenants:\n${Array.from({ length: 10_000 }, (_, i) => `  - username: u${i.toString(36)}xx\n    email: u${i}@example.com\n`).join("")}`;
    const result = validateTenantsText(text);
    expect(result.ok && result.tenants.length).toBe(10_000);
  });
});

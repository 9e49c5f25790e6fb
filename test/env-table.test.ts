/**
 * The README's "Environment variables" table against the code: every variable
 * the project's non-test TypeScript reads is in the table, and every variable
 * in the table is named somewhere in the non-test code (TypeScript or the
 * toolchain's shell scripts), so the table neither misses one nor keeps a
 * variable no code reads any more.
 *
 * "Reads" is what the code spells out: `env.NAME` / `process.env.NAME`,
 * `env["NAME"]`, a `..._ENV = "NAME"` or `..._VARIABLE = "NAME"` constant
 * (read as `env[CONSTANT]`), and the keys of the onboarding service's
 * environment schema (onboarding/config.ts, parsed whole by zod).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PROJECT_DIR } from "../engine/paths";

const trackedFiles = (pattern: string): string[] =>
  execFileSync("git", ["-C", PROJECT_DIR, "ls-files", "-z", "--cached", "--others", "--exclude-standard", pattern], { encoding: "utf8" })
    .split("\0")
    .filter((file) => file !== "" && !file.startsWith("test/") && !file.startsWith("node_modules"));

const READS = [/\benv\??\.([A-Z][A-Z0-9_]+)\b/g, /\benv\[\s*"([A-Z][A-Z0-9_]+)"\s*\]/g, /_(?:ENV|VARIABLE)\s*=\s*"([A-Z][A-Z0-9_]+)"/g];

function variablesRead(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of trackedFiles("*.ts")) {
    const text = readFileSync(join(PROJECT_DIR, file), "utf8");
    for (const pattern of READS) for (const match of text.matchAll(pattern)) if (!found.has(match[1]!)) found.set(match[1]!, file);
  }
  const schema = readFileSync(join(PROJECT_DIR, "onboarding", "config.ts"), "utf8");
  for (const match of schema.matchAll(/^\s+([A-Z][A-Z0-9_]+): (?:z\.|int\(|secret\()/gm))
    if (!found.has(match[1]!)) found.set(match[1]!, "onboarding/config.ts");
  return found;
}

function tableVariables(): string[] {
  const readme = readFileSync(join(PROJECT_DIR, "README.md"), "utf8");
  const start = readme.indexOf("\n## Environment variables\n");
  expect(start).toBeGreaterThan(0);
  const section = readme.slice(start + 1, readme.indexOf("\n## ", start + 1));
  return section
    .split("\n")
    .filter((line) => line.startsWith("| `"))
    .flatMap((line) => [...line.split(" | ")[0]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((match) => match[1]!));
}

describe("the README's environment variables table", () => {
  it("lists every variable the code reads", () => {
    const read = variablesRead();
    // The patterns find what they should (so an empty result cannot pass by accident).
    for (const name of ["PULUMI_BACKEND_URL", "DGP_LOCAL_PG_PORT", "DGP_ADOPT_PENDING", "WEBHOOK_SECRET", "DATABASE_URL"])
      expect(read.has(name), name).toBe(true);
    const listed = new Set(tableVariables());
    const missing = [...read].filter(([name]) => !listed.has(name)).map(([name, file]) => `${name} (read in ${file})`);
    expect(missing).toEqual([]);
  });

  it("lists no variable that no code names", () => {
    const code = [...trackedFiles("*.ts"), ...trackedFiles("*.sh")].map((file) => readFileSync(join(PROJECT_DIR, file), "utf8")).join("\n");
    const stale = tableVariables().filter((name) => !new RegExp(`\\b${name}\\b`).test(code));
    expect(stale).toEqual([]);
  });
});

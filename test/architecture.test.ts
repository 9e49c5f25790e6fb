/**
 * The folders show the architecture: production code (the Pulumi program,
 * the CLIs, the onboarding service, `npm run deploy`, the engine runner) never
 * imports a dev-only module (local/, harness/, test/, bench/, `npm start`'s
 * scripts/local-up.ts), directly or through another module; and the
 * benchmarks (bench/) and the set-ups they share with the tests (harness/)
 * never import test code (test/). Read from the
 * source with the TypeScript compiler's own import scanner (imports, exports
 * from, require() and import()).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = resolve(__dirname, "..");

/** What ships: every .ts file under these folders, and these files. */
export const PRODUCTION_FOLDERS = ["cli", "deploy", "engine", "infra", "lib", "onboarding", "seed", "tenants", "usage", "verify"];
export const PRODUCTION_FILES = ["index.ts", "scripts/deploy.ts"];
/** Development only: `npm start`, the local servers, the set-ups tests and benchmarks share, the tests and the benchmarks. */
export const DEV_ONLY = ["local/", "harness/", "test/", "bench/", "scripts/local-up.ts"];
/** Dev-only code that is not a test, so may not import one: the benchmarks and the shared set-ups. */
export const NOT_TESTS = ["bench", "harness", "local"];

function tsFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : tsFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

/** The project files `file` (relative to the root) imports: relative specifiers resolved the way Node and tsx do. */
export function localImports(file: string, text = readFileSync(join(ROOT, file), "utf8")): string[] {
  const { importedFiles } = ts.preProcessFile(text, true, true);
  return importedFiles
    .map((imported) => imported.fileName)
    .filter((specifier) => specifier.startsWith("."))
    .map((specifier) => {
      const base = resolve(ROOT, dirname(file), specifier);
      const candidates = [base, `${base}.ts`, join(base, "index.ts")];
      const found = candidates.find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
      return relative(ROOT, found ?? (base.endsWith(".ts") ? base : `${base}.ts`))
        .split("\\")
        .join("/");
    });
}

const isDevOnly = (file: string) => DEV_ONLY.some((prefix) => (prefix.endsWith("/") ? file.startsWith(prefix) : file === prefix));
const isTest = (file: string) => file.startsWith("test/");

/** Every chain from a production file into a dev-only module ("a.ts -> b.ts -> local/x.ts"), following project imports. */
export function devOnlyImportChains(
  files: readonly string[],
  importsOf: (file: string) => string[] = localImports,
  forbidden: (file: string) => boolean = isDevOnly,
): string[] {
  const chains: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string, path: string[]) => {
    for (const target of importsOf(file)) {
      if (forbidden(target)) {
        chains.push([...path, target].join(" -> "));
      } else if (!seen.has(target) && target.endsWith(".ts")) {
        seen.add(target);
        visit(target, [...path, target]);
      }
    }
  };
  for (const file of files) {
    seen.add(file);
    visit(file, [file]);
  }
  return chains;
}

const productionFiles = () => [...PRODUCTION_FOLDERS.flatMap(tsFiles), ...PRODUCTION_FILES];
const nonTestDevFiles = () => [...NOT_TESTS.flatMap(tsFiles), "scripts/local-up.ts"];

describe("the import graph", () => {
  it("reads every production file", () => {
    const files = productionFiles();
    expect(files).toContain("onboarding/main.ts");
    expect(files).toContain("engine/pulumi.ts");
    expect(files.length).toBeGreaterThan(50);
  });

  it("has no production module that imports a dev-only one (local/, test/, bench/, scripts/local-up.ts)", () => {
    expect(devOnlyImportChains(productionFiles())).toEqual([]);
  });

  it("would catch one: a direct import, an export-from, a require and one through another production module", () => {
    const fake: Record<string, string> = {
      "onboarding/a.ts": `import { freePort } from "../local/embedded-postgres";`,
      "cli/b.ts": `export { x } from "../test/support/checkout";`,
      "usage/c.ts": `const y = require("../bench/index");`,
      "verify/d.ts": `import { z } from "./e";`,
      "verify/e.ts": `import "../scripts/local-up";`,
      "infra/f.ts": `import { PROJECT_DIR } from "../engine/paths";\nimport type { T } from "../tenants/schema";`,
    };
    const importsOf = (file: string) => (file in fake ? localImports(file, fake[file]) : []);
    expect(devOnlyImportChains(Object.keys(fake), importsOf).sort()).toEqual([
      "cli/b.ts -> test/support/checkout.ts",
      "onboarding/a.ts -> local/embedded-postgres.ts",
      "usage/c.ts -> bench/index.ts",
      "verify/d.ts -> verify/e.ts -> scripts/local-up.ts",
      "verify/e.ts -> scripts/local-up.ts",
    ]);
  });

  it("has no benchmark or shared set-up (bench/, harness/, local/, npm start) that imports test code", () => {
    const files = nonTestDevFiles();
    expect(files).toContain("bench/signup-fleet.ts");
    expect(files).toContain("harness/engine-stack.ts");
    expect(devOnlyImportChains(files, localImports, isTest)).toEqual([]);
  });

  it("would catch a benchmark importing a test helper, directly or through a shared set-up", () => {
    const fake: Record<string, string> = {
      "bench/a.ts": `import { signup } from "../test/onboarding/support";`,
      "bench/b.ts": `import { x } from "../harness/c";`,
      "harness/c.ts": `import { y } from "../test/support/bind";\nimport { z } from "../local/stack";`,
    };
    const importsOf = (file: string) => (file in fake ? localImports(file, fake[file]) : []);
    expect(devOnlyImportChains(Object.keys(fake), importsOf, isTest).sort()).toEqual([
      "bench/a.ts -> test/onboarding/support.ts",
      "bench/b.ts -> harness/c.ts -> test/support/bind.ts",
      "harness/c.ts -> test/support/bind.ts",
    ]);
  });
});

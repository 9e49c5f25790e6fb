import { defineConfig } from "vitest/config";
import base from "./vitest.config.mts";

/**
 * `npm run test:unit`: the tests that need no engine, no PostgreSQL and no
 * other server, which the pull-request workflow (.github/workflows/tenants.yml)
 * runs before its preview. `npm test` runs these and every other test.
 * test/workflow.test.ts checks that each file here starts no engine or server.
 */
export const UNIT_TEST_FILES = [
  "test/program.test.ts",
  "test/catalogue.test.ts",
  "test/tenants-file.test.ts",
  "test/tenants-cli.test.ts",
  "test/tenants-lock.test.ts",
  "test/usage/report.test.ts",
  "test/deploy/preview-summary.test.ts",
  "test/deploy/select.test.ts",
  "test/toolchain-version.test.ts",
  "test/workflow.test.ts",
];

// Not mergeConfig: it would add these to the base include list instead of replacing it.
export default defineConfig({ ...base, test: { ...base.test, include: UNIT_TEST_FILES } });

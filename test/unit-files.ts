/**
 * `npm run test:unit`: the tests that need no engine, no PostgreSQL and no
 * other server, which the pull-request workflow (.github/workflows/tenants.yml)
 * runs before its preview. `npm test` runs these and every other test.
 * test/workflow.test.ts checks that each file here starts no engine or server.
 */
export const UNIT_TEST_FILES: readonly string[] = [
  "test/program.test.ts",
  "test/catalogue.test.ts",
  "test/tenants-file.test.ts",
  "test/tenants-cli.test.ts",
  "test/lib.test.ts",
  "test/env-table.test.ts",
  "test/tenants-lock.test.ts",
  "test/usage/report.test.ts",
  "test/deploy/preview-summary.test.ts",
  "test/deploy/select.test.ts",
  "test/deploy/parallel.test.ts",
  "test/toolchain-version.test.ts",
  "test/stack-lock-wait.test.ts",
  "test/workflow.test.ts",
  "test/shards-room.test.ts",
  "test/lib/polling-loop.test.ts",
  "test/lib/transaction.test.ts",
  "test/architecture.test.ts",
  "test/rollout.test.ts",
  "test/rollout-program.test.ts",
  "test/onboarding/engine-env.test.ts",
  "test/toolchain-lock.test.ts",
  "test/find-engine.test.ts",
  "test/fleet-access.test.ts",
];

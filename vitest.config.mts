import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // CLI and PostgreSQL tests start real processes; a loaded 2-core CI
    // machine needs more than the default 5 s. No test asserts on time.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // One file at a time: the end-to-end files each run the real engine and
    // a PostgreSQL, and two cores are better used by one of them at a time
    // than by several fighting over them (the interrupt test depends on timing).
    fileParallelism: false,
  },
});

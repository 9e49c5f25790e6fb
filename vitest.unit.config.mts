import { defineConfig } from "vitest/config";
import base from "./vitest.config.mts";

// `npm run test:unit`: the files listed in test/unit-files.ts (tests that need no engine and no server).
import { UNIT_TEST_FILES } from "./test/unit-files";

// Not mergeConfig: it would add these to the base include list instead of replacing it.
export default defineConfig({ ...base, test: { ...base.test, include: [...UNIT_TEST_FILES] } });

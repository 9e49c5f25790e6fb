// The end-to-end suite (engine-suite.ts) on the embedded PostgreSQL, or on the major E2E_POSTGRES names.
import { postgresKindFromEnv } from "../support/test-postgres";
import { defineEngineSuite } from "./engine-suite";

defineEngineSuite(postgresKindFromEnv());

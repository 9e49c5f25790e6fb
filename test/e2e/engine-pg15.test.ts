// The end-to-end suite (engine-suite.ts) on Debian's PostgreSQL 15 (/usr/lib/postgresql/15/bin).
import { defineEngineSuite } from "./engine-suite";

defineEngineSuite("15");

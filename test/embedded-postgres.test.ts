/** The embedded PostgreSQL that `npm start` keeps in .data/postgres. */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bundledPostgresMajor, startLocalPostgres } from "../local/embedded-postgres";

describe("startLocalPostgres with a kept data folder", () => {
  it("refuses a folder from another PostgreSQL major, says what to do, and touches nothing", async () => {
    const root = mkdtempSync(join(tmpdir(), "dgp-old-pg-"));
    const dataDir = join(root, "postgres");
    mkdirSync(dataDir);
    const older = String(Number(bundledPostgresMajor()) - 1);
    writeFileSync(join(dataDir, "PG_VERSION"), `${older}\n`);
    try {
      await expect(startLocalPostgres({ dataDir })).rejects.toThrow(
        new RegExp(`was made by PostgreSQL ${older}, but the embedded server is PostgreSQL ${bundledPostgresMajor()}.*delete .* and \\.state/`),
      );
      expect(readdirSync(dataDir)).toEqual(["PG_VERSION"]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("keeps data across a stop and a start in the same folder", async () => {
    const root = mkdtempSync(join(tmpdir(), "dgp-kept-pg-"));
    chmodSync(root, 0o755); // the unprivileged server user must be able to enter it
    const dataDir = join(root, "postgres");
    try {
      const first = await startLocalPostgres({ dataDir });
      const client = await first.connect();
      await client.query("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here')");
      await client.end();
      await first.stop();

      const second = await startLocalPostgres({ dataDir });
      const again = await second.connect();
      expect((await again.query("SELECT note FROM kept")).rows).toEqual([{ note: "still here" }]);
      await again.end();
      await second.stop();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

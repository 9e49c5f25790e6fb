/** local/system-postgres.ts: a throw-away PostgreSQL 15 from Debian's binaries, as the tests on that major use it. */
import { execFileSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { Client } from "pg";
import { describe, expect, it } from "vitest";
import { DEBIAN_POSTGRES_15, startSystemPostgres } from "../local/system-postgres";
import { canLogIn } from "./support/can-log-in";

describe("startSystemPostgres", () => {
  it("runs PostgreSQL 15 as an unprivileged user on loopback, SCRAM with a random password, and removes everything on stop", async () => {
    const server = await startSystemPostgres({ binDir: DEBIAN_POSTGRES_15 });
    const home = dirname(server.dataDir);
    try {
      const admin = await server.connect();
      try {
        const { rows } = await admin.query(
          `SELECT current_setting('server_version_num')::int / 10000 AS major, current_setting('listen_addresses') AS listen,
                  current_setting('fsync') AS fsync, current_setting('password_encryption') AS encryption,
                  (SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = current_user) AS scram`,
        );
        expect(rows).toEqual([{ major: 15, listen: "127.0.0.1", fsync: "off", encryption: "scram-sha-256", scram: true }]);
      } finally {
        await admin.end();
      }
      // Not root's: PostgreSQL refuses to run as root; as root the module runs it as the postgres user.
      const expectedOwner = process.getuid!() === 0 ? Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" })) : process.getuid!();
      expect(statSync(server.dataDir).uid).toBe(expectedOwner);
      expect(expectedOwner).not.toBe(0);
      expect(server.adminPassword).toMatch(/^[A-Za-z0-9_-]{32}$/);
      expect(await canLogIn({ host: server.host, port: server.port, user: server.adminUser, password: "postgres", database: "postgres" })).toMatch(
        /password authentication failed/,
      );
      expect(server.serverLog()).toMatch(/database system is ready to accept connections/);
    } finally {
      await server.stop();
    }
    expect(existsSync(home)).toBe(false);
    const after = new Client({ host: server.host, port: server.port, user: server.adminUser, password: server.adminPassword, database: "postgres" });
    await expect(after.connect()).rejects.toThrow(/ECONNREFUSED/);
  });

  it("says which package to install when the binaries are missing", async () => {
    await expect(startSystemPostgres({ binDir: "/nonexistent/postgresql/15/bin" })).rejects.toThrow(
      /no PostgreSQL server binaries in \/nonexistent\/postgresql\/15\/bin \(initdb is missing\); .*apt-get install -y postgresql-15/,
    );
  });
});

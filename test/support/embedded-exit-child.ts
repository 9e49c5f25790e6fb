/**
 * Run by test/embedded-postgres.test.ts as its own process: starts and stops
 * the embedded PostgreSQL, then ends the way argv[2] says ("exit-code-3":
 * process.exitCode = 3; "throw": a rejected promise nobody handles).
 */
import { startLocalPostgres } from "../../local/embedded-postgres";

async function main(): Promise<void> {
  const server = await startLocalPostgres();
  const client = await server.connect();
  await client.query("SELECT 1");
  await client.end();
  await server.stop();
}

const mode = process.argv[2];
void main().then(() => {
  if (mode === "throw") throw new Error("failed after the server stopped");
  process.exitCode = 3;
});

/**
 * Plants an engine lock the way Pulumi's DIY backend writes one
 * (pkg/backend/diy/lock.go): a JSON blob under
 * `.pulumi/locks/organization/<project>/<stack>/<id>.json`, a file in a
 * `file://` backend, a `{"data": base64}` row of the state table in a
 * `postgres://` one (keyed `<database>/.pulumi/...`, as seen in a real one). Used to stand in for a runner that was killed outright.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "pg";

export interface PlantedLock {
  pid: number;
  username: string;
  hostname: string;
  timestamp: string;
}

export async function plantLock(backendUrl: string, project: string, stack: string, lock: PlantedLock, id = "killed-runner"): Promise<void> {
  const key = `.pulumi/locks/organization/${project}/${stack}/${id}.json`;
  const body = JSON.stringify(lock);
  if (backendUrl.startsWith("file://")) {
    const path = join(fileURLToPath(backendUrl.split("?")[0]!), key);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, body);
    return;
  }
  // The postgres bucket prefixes every key with the URL's path, the database name.
  const row = `${new URL(backendUrl).pathname.slice(1)}/${key}`;
  const client = new Client({ connectionString: backendUrl.replace(/^postgres:/, "postgresql:") });
  await client.connect();
  try {
    await client.query("CREATE TABLE IF NOT EXISTS pulumi_state (key TEXT PRIMARY KEY, data JSON NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())");
    await client.query("INSERT INTO pulumi_state (key, data) VALUES ($1, $2)", [row, JSON.stringify({ data: Buffer.from(body).toString("base64") })]);
  } finally {
    await client.end();
  }
}

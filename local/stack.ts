/**
 * A local stack: one pointed at a PostgreSQL server on this machine (the
 * embedded one of `npm start`, or a test's). Development setup only; the
 * engine runner it uses is engine/pulumi.ts.
 */
import { LOCAL_DNS_ZONE } from "../infra/config";
import { projectName } from "../engine/paths";
import { hasPostgresqlPlugin, pulumi, setStackConfig, type PulumiContext } from "../engine/pulumi";

export interface StackServer {
  host: string;
  port: number;
  adminPassword: string;
}

/**
 * Creates (or selects) a stack pointed at one PostgreSQL server. Used by
 * `npm start`, the benchmarks and the end-to-end tests.
 * What a stack keeps for life is written only when the stack is new: the
 * database provider (the one the engine can load; the program refuses a later
 * change) and the DNS settings (so a stack someone pointed at a real DNS
 * server keeps them). The server's address and password are refreshed on
 * every call, since a local server may move.
 */
export function configureLocalStack(
  context: PulumiContext,
  stack: string,
  server: StackServer,
  extra: Record<string, string> = {},
): { databaseProvider: "postgresql" | "builtin" } {
  const stacks = JSON.parse(pulumi(context, ["stack", "ls", "--json"])) as { name: string }[];
  const isNew = !stacks.some((existing) => existing.name === stack);
  if (isNew) pulumi(context, ["stack", "init", stack]);
  const config = JSON.parse(pulumi(context, ["config", "--json", "--stack", stack])) as Record<string, { value?: unknown }>;
  const kept = config[`${projectName()}:databaseProvider`]?.value;
  // Offline toolchains cannot build the postgresql plugin (toolchain/README.md).
  const databaseProvider = kept === "postgresql" || kept === "builtin" ? kept : hasPostgresqlPlugin(context) ? "postgresql" : "builtin";
  const firstTime: Record<string, string> = kept === undefined ? { databaseProvider } : {};
  if (config[`${projectName()}:dns`] === undefined) Object.assign(firstTime, { "dns.provider": "none", "dns.zone": LOCAL_DNS_ZONE });
  setStackConfig(context, stack, {
    "servers[0].name": "local",
    "servers[0].host": server.host,
    "servers[0].port": String(server.port),
    "servers[0].sslmode": "disable",
    ...firstTime,
    ...extra,
  });
  setStackConfig(context, stack, { "servers[0].adminPassword": server.adminPassword }, { secret: true });
  return { databaseProvider };
}

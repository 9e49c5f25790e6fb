/**
 * `npm run tenants -- <command>`: the safe way to edit the tenants file.
 * Every command validates the whole resulting file before writing it, and a
 * rejected command leaves the file byte-for-byte unchanged.
 */
import { execFileSync } from "node:child_process";
import { randomInt } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { z } from "zod";
import { databaseName, dnsLabel } from "../infra/naming";
import { findBuiltToolchain, LOCAL_STACK, LOCAL_STATE_DIR, onPath, pulumiContext } from "../local/pulumi";
import { addTenants, removeTenant, setStatus, withTenantsFileLock, writeFileAtomic, type EditResult, type NewTenant } from "../tenants/edit";
import { formatProblem, loadTenantsFile, type TenantsProblem } from "../tenants/load";
import { tenantIdSchema, usernameProblems, type LocatedTenant } from "../tenants/schema";
import { printTable } from "./table";

const USAGE = `usage: npm run tenants -- <command> [options]

commands:
  add <username> [--email E] [--server S] [--tenant-id ID]   append one tenant
  add --count N [--server S]                                  append N generated tenants and print them
  list [--json]                                               every tenant, as a table
  show <username | tenant ID> [--json]                        what support needs to find a tenant
  suspend <username>                                          role cannot log in, DNS removed, data kept
  resume <username>                                           undo suspend
  remove <username>                                           drop the entry (the data is kept by default)

options:
  --file PATH      the tenants file (default: tenants/tenants.yaml)
  --stack NAME     the stack whose outputs list and show read (default: the selected stack, or npm start's "local")
  --outputs FILE   the stack's outputs as JSON ("pulumi stack output --json") instead of asking pulumi
  --json           machine-readable output (list, show)
  -h, --help       this text`;

/** Wrong command line: exit status 2, like most Unix tools. */
class UsageError extends Error {}
/** The file or the request is invalid: exit status 1, one line per problem. */
class ProblemsError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join("\n"));
  }
}

const OPTIONS = {
  file: { type: "string", default: "tenants/tenants.yaml" },
  outputs: { type: "string" },
  stack: { type: "string" },
  email: { type: "string" },
  server: { type: "string" },
  "tenant-id": { type: "string" },
  count: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

type Options = ReturnType<typeof parseCommandLine>["values"];

function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split("\n")[0]}; see "npm run tenants -- --help"`);
  }
}

/** The summary the Pulumi program exports per tenant (stack output `tenants`). */
const deployedSchema = z.record(
  z.string(),
  z.object({
    tenantId: z.string(),
    database: z.string(),
    role: z.string(),
    domain: z.string(),
    server: z.string(),
    status: z.string(),
  }),
);
type Deployed = z.infer<typeof deployedSchema>;

/**
 * What the last `pulumi up` recorded, so `list` and `show` can print tenant IDs
 * and domains. Optional: before the first deployment there is nothing to show.
 */
function readDeployed(options: Options): Deployed {
  let json: unknown;
  if (options.outputs !== undefined) {
    try {
      json = JSON.parse(readFileSync(options.outputs, "utf8"));
    } catch (error) {
      throw new ProblemsError([`${options.outputs}: cannot read stack outputs (${(error as Error).message}); pass "pulumi stack output --json" saved to a file`]);
    }
  } else {
    const engine = findEngine(options.stack);
    if (engine === undefined) return {};
    try {
      const args = ["stack", "output", "--json", ...(engine.stack ? ["--stack", engine.stack] : [])];
      json = JSON.parse(execFileSync("pulumi", args, { env: engine.env, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 30_000 }));
    } catch {
      return {};
    }
  }
  const tenants = (json as { tenants?: unknown } | null)?.tenants ?? {};
  const parsed = deployedSchema.safeParse(tenants);
  return parsed.success ? parsed.data : {};
}

/**
 * Which `pulumi` to ask, and about which stack: one on PATH with its selected
 * stack (as in CI), else the offline toolchain if it is built, on the backend
 * in PULUMI_BACKEND_URL or else the one `npm start` keeps in .state/, and its
 * stack "local". Never builds anything.
 */
function findEngine(stack: string | undefined): { env: NodeJS.ProcessEnv; stack?: string } | undefined {
  if (onPath("pulumi")) return { env: process.env, stack };
  const bin = findBuiltToolchain();
  if (bin === undefined) return undefined;
  if (process.env.PULUMI_BACKEND_URL !== undefined) return { env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` }, stack };
  if (!existsSync(LOCAL_STATE_DIR)) return undefined;
  return { env: pulumiContext(bin, LOCAL_STATE_DIR).env, stack: stack ?? LOCAL_STACK };
}

function loadValid(file: string): { text: string; tenants: LocatedTenant[] } {
  if (!existsSync(file)) throw new ProblemsError([`${file}: file not found; create it with "tenants: []" or pass --file`]);
  const result = loadTenantsFile(file);
  if (!result.ok) throw new ProblemsError(result.problems.map((problem) => formatProblem(file, problem)));
  return { text: readFileSync(file, "utf8"), tenants: result.tenants };
}

function apply(file: string, before: string, result: EditResult): LocatedTenant[] {
  if (!result.ok) {
    // Lines past the end of the current file belong to entries this command
    // would have appended: name them as new entries, not as lines of the file.
    const lineCount = before.split("\n").length - (before.endsWith("\n") ? 1 : 0);
    const located = (problem: TenantsProblem): TenantsProblem => (problem.line > lineCount ? { ...problem, line: 0 } : problem);
    throw new ProblemsError(result.problems.map((problem) => formatProblem(file, located(problem)).replace(`${file}: tenant`, `${file}: new tenant`)));
  }
  writeFileAtomic(file, result.text);
  return result.tenants;
}

function onePositional(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected exactly one ${what}, got ${positionals.length}; see "npm run tenants -- --help"`);
  return positionals[0]!;
}

/** Usernames like `driver_k3x9qa` that pass every rule and collide with nothing. */
function generateUsernames(count: number, taken: Set<string>): string[] {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const names: string[] = [];
  while (names.length < count) {
    const name = `driver_${Array.from({ length: 6 }, () => alphabet[randomInt(alphabet.length)]).join("")}`;
    const label = name.replace(/_/g, "-");
    if (usernameProblems(name).length === 0 && !taken.has(label)) {
      taken.add(label);
      names.push(name);
    }
  }
  return names;
}

function commandAdd(positionals: string[], options: Options): void {
  const { text, tenants } = loadValid(options.file);
  const additions: NewTenant[] = [];
  if (options.count !== undefined) {
    if (positionals.length > 0) throw new UsageError("give either a username or --count N, not both");
    if (!/^[1-9][0-9]{0,4}$/.test(options.count) || Number(options.count) > 10_000) {
      throw new UsageError(`--count must be a whole number from 1 to 10000, got "${options.count}"`);
    }
    const taken = new Set(tenants.map((tenant) => tenant.username.replace(/_/g, "-")));
    for (const username of generateUsernames(Number(options.count), taken)) additions.push({ username, server: options.server });
  } else {
    const username = onePositional(positionals, "username");
    additions.push({ username, email: options.email, server: options.server, tenantId: options["tenant-id"] });
  }
  const after = apply(options.file, text, addTenants(text, additions));
  for (const addition of additions) {
    const line = after.find((tenant) => tenant.username === addition.username)?.line;
    console.log(`added ${addition.username} (${options.file}:${line}); "pulumi up" creates it`);
  }
}

function commandStatus(positionals: string[], options: Options, status: "active" | "suspended"): void {
  const username = onePositional(positionals, "username");
  const { text } = loadValid(options.file);
  apply(options.file, text, setStatus(text, username, status));
  console.log(
    status === "suspended"
      ? `suspended ${username}: on the next "pulumi up" its role cannot log in and its DNS record is removed; its data is kept`
      : `resumed ${username}: on the next "pulumi up" its role can log in again and its DNS record returns`,
  );
}

function commandRemove(positionals: string[], options: Options): void {
  const username = onePositional(positionals, "username");
  const { text } = loadValid(options.file);
  const deployed = readDeployed(options)[username];
  apply(options.file, text, removeTenant(text, username));
  const id = deployed?.tenantId;
  console.log(`removed ${username} from ${options.file}.`);
  console.log(`On the next "pulumi up":`);
  console.log(`  - its DNS record, tenant ID record and secrets leave the stack;`);
  console.log(
    `  - its database${deployed ? ` ${deployed.database}` : ""} and role are KEPT with all data,` +
      ` unless the stack config sets allowPurge: true (then they are dropped);`,
  );
  if (id !== undefined) {
    console.log(`To bring it back with its data: npm run tenants -- add ${username} --tenant-id ${id}`);
  } else {
    console.log(`To bring it back with its data later, add it again with --tenant-id <its tenant ID>.`);
  }
}

interface Row {
  username: string;
  tenantId: string;
  status: string;
  server: string;
  database: string;
  domain: string;
  email: string;
  line: number;
}

function rows(tenants: LocatedTenant[], deployed: Deployed): Row[] {
  return tenants.map((tenant) => {
    const live = deployed[tenant.username];
    const tenantId = tenant.tenantId ?? live?.tenantId ?? "";
    return {
      username: tenant.username,
      tenantId: tenantId || "(next up)",
      status: tenant.status,
      server: tenant.server ?? live?.server ?? "(default)",
      database: live?.database ?? (tenantId ? databaseName("drivergigspro", tenantId) : ""),
      domain: live?.domain ?? `${dnsLabel("{user}-{app}", "drivergigspro", tenant.username)}.<zone>`,
      email: tenant.email ?? "",
      line: tenant.line,
    };
  });
}

function commandList(options: Options): void {
  const { tenants } = loadValid(options.file);
  const table = rows(tenants, readDeployed(options));
  if (options.json) {
    console.log(JSON.stringify(table, null, 2));
    return;
  }
  printTable(["username", "tenant ID", "status", "server", "database", "domain"], table.map((row) => [row.username, row.tenantId, row.status, row.server, row.database, row.domain]));
  console.log(`${table.length} tenant(s) in ${options.file}`);
}

function commandShow(positionals: string[], options: Options): void {
  const key = onePositional(positionals, "username or tenant ID");
  const { tenants } = loadValid(options.file);
  const byId = tenantIdSchema.safeParse(key.toUpperCase()).success ? key.toUpperCase() : undefined;
  const row = rows(tenants, readDeployed(options)).find((candidate) => candidate.username === key || candidate.tenantId === byId);
  if (row === undefined) throw new ProblemsError([`no tenant with username or tenant ID "${key}" in ${options.file}`]);
  if (options.json) {
    console.log(JSON.stringify(row, null, 2));
    return;
  }
  printTable(["field", "value"], Object.entries({ ...row, line: `${options.file}:${row.line}` }).map(([field, value]) => [field, String(value)]));
}

export async function main(argv: string[]): Promise<number> {
  try {
    const { values: options, positionals } = parseCommandLine(argv);
    const [command, ...rest] = positionals;
    if (options.help || command === undefined || command === "help") {
      console.log(USAGE);
      return command === undefined && !options.help ? 2 : 0;
    }
    switch (command) {
      case "add":
        await withTenantsFileLock(options.file, () => commandAdd(rest, options));
        break;
      case "list":
        commandList(options);
        break;
      case "show":
        commandShow(rest, options);
        break;
      case "suspend":
        await withTenantsFileLock(options.file, () => commandStatus(rest, options, "suspended"));
        break;
      case "resume":
        await withTenantsFileLock(options.file, () => commandStatus(rest, options, "active"));
        break;
      case "remove":
        await withTenantsFileLock(options.file, () => commandRemove(rest, options));
        break;
      default:
        throw new UsageError(`unknown command "${command}"; commands: add, list, show, suspend, resume, remove`);
    }
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`error: ${error.message}`);
      return 2;
    }
    if (error instanceof ProblemsError) {
      for (const line of error.lines) console.error(`error: ${line}`);
      return 1;
    }
    throw error;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    },
  );
}

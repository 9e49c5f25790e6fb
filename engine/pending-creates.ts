/**
 * A `pulumi up` killed outright can leave a role or database created on the
 * server but not recorded in the state: the engine notes a "pending create"
 * before it asks the provider, and the kill comes before the answer. The
 * builtin provider adopts such objects in its own create; the upstream
 * `@pulumi/postgresql` provider would fail with "already exists". So before
 * an update every deployment path resolves them the way Pulumi documents,
 * `pulumi refresh --import-pending-creates URN ID`, for the postgresql
 * provider's roles and databases whose object exists and passes the same
 * ownership check as any adoption (infra/adoption.ts). Everything else
 * pending is left to the update, which clears it and creates it again.
 */
import { inspectExisting } from "../infra/adoption";
import { databaseUrl } from "../infra/naming";
import { pulumi, type PulumiContext } from "./pulumi";

/** The upstream provider's types whose ID is the object's name. */
const ADOPTABLE_TYPES = new Set(["postgresql:index/role:Role", "postgresql:index/database:Database"]);

interface StateResource {
  urn: string;
  type: string;
  id?: string;
  inputs?: Record<string, unknown>;
  provider?: string;
}

interface Deployment {
  resources?: StateResource[];
  pending_operations?: { type: string; resource: StateResource }[];
}

export class PendingCreateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PendingCreateError";
  }
}

/** Imports what a killed update created but never recorded; returns a line per import, for the log. */
export async function importPendingCreates(context: PulumiContext, stack: string): Promise<string[]> {
  const exported = JSON.parse(pulumi(context, ["stack", "export", "--show-secrets", "--stack", stack])) as { deployment?: Deployment };
  const deployment = exported.deployment ?? {};
  const pending = (deployment.pending_operations ?? []).filter((op) => op.type === "creating" && ADOPTABLE_TYPES.has(op.resource.type));
  const imports: [string, string][] = [];
  for (const { resource } of pending) {
    const name = plain(resource.inputs?.name);
    if (name === undefined) continue;
    const admin = providerAdmin(deployment, resource);
    const found = await inspectExisting(admin.url, admin.user, name);
    if (found.problem !== undefined) {
      throw new PendingCreateError(`stack ${stack}: an interrupted update was creating ${resource.urn}; ${found.problem}`);
    }
    const exists = resource.type.endsWith("Role") ? found.role : found.database;
    if (exists) imports.push([resource.urn, name]);
  }
  if (imports.length === 0) return [];
  pulumi(context, [
    "refresh",
    "--yes",
    "--skip-preview",
    "--non-interactive",
    "--stack",
    stack,
    // The whole stack: a pending create is not in the state yet, so it cannot be a --target.
    ...imports.flatMap(([urn, id]) => ["--import-pending-creates", urn, "--import-pending-creates", id]),
  ]);
  return imports.map(([urn, id]) => `imported ${id} (${urn.split("::").pop()}), created by an interrupted update but not recorded`);
}

/** The admin connection of the provider instance that was creating `resource`, from its recorded inputs. */
function providerAdmin(deployment: Deployment, resource: StateResource): { url: string; user: string } {
  const providerUrn = resource.provider?.split("::").slice(0, -1).join("::");
  const provider = deployment.resources?.find((candidate) => candidate.urn === providerUrn);
  const inputs = provider?.inputs ?? {};
  const [host, user, password] = [plain(inputs.host), plain(inputs.username), plain(inputs.password)];
  if (host === undefined || user === undefined || password === undefined) {
    throw new PendingCreateError(
      `${resource.urn}: its provider ${providerUrn ?? "(none)"} has no recorded host, username and password; run pulumi refresh and answer its questions about pending creates`,
    );
  }
  const port = Number(plain(inputs.port) ?? 5432);
  const url = databaseUrl({ user, password, host, port, database: plain(inputs.database) ?? "postgres", sslmode: plain(inputs.sslmode) ?? "prefer" });
  return { url, user };
}

/** A recorded input as text: secrets in an export with --show-secrets are `{ <sig>, plaintext: "<JSON>" }`. */
function plain(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  if (value !== null && typeof value === "object" && "plaintext" in value && typeof value.plaintext === "string") {
    return plain(JSON.parse(value.plaintext) as unknown);
  }
  return undefined;
}

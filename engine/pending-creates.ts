/**
 * A `pulumi up` killed outright can leave a role or database created on the
 * server but not recorded in the state: the engine notes a "pending create"
 * before it asks the provider, and the kill comes before the answer. The
 * builtin provider adopts such objects in its own create; the upstream
 * `@pulumi/postgresql` provider would fail with "already exists". So before
 * an update every deployment path reads the stack's pending creates of the
 * postgresql provider's roles and databases, checks that the object exists
 * and passes the same ownership check as any adoption (infra/adoption.ts),
 * and hands them to the update, which imports them with Pulumi's `import`
 * option. (`pulumi refresh --import-pending-creates URN ID`, tried first,
 * cleared the pending operation of Pulumi 3.259 without recording the
 * resource.) Everything else pending is left to the update, which drops it
 * and creates it again.
 */
import { inspectExisting } from "../infra/adoption";
import { databaseUrl } from "../infra/naming";
import { pulumi, type PulumiContext } from "./pulumi";

/** The upstream provider's types whose ID is the object's name. */
const ADOPTABLE_TYPES = new Set(["postgresql:index/role:Role", "postgresql:index/database:Database"]);

interface StateResource {
  urn: string;
  type: string;
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

/**
 * What a killed update was creating on the server and never recorded: per
 * username, the name of its role or database where that object exists and
 * passes the ownership check. The next update adopts them (PENDING_ADOPTIONS_VARIABLE,
 * infra/adoption.ts); the engine itself drops the pending operations.
 */
export interface PendingAdoptions {
  /** Username to the name of the object to adopt. */
  readonly adoptions: Record<string, string>;
  /** The pending creates' URNs (they are in the state once the update has adopted them). */
  readonly urns: string[];
}

export async function pendingAdoptions(context: PulumiContext, stack: string): Promise<PendingAdoptions> {
  const exported = JSON.parse(pulumi(context, ["stack", "export", "--show-secrets", "--stack", stack])) as { deployment?: Deployment };
  const deployment = exported.deployment ?? {};
  const pending = (deployment.pending_operations ?? []).filter((op) => op.type === "creating" && ADOPTABLE_TYPES.has(op.resource.type));
  const adoptions: Record<string, string> = {};
  const urns: string[] = [];
  for (const { resource } of pending) {
    const name = plain(resource.inputs?.name);
    const username = resource.urn
      .split("::")
      .pop()!
      .replace(/-(role|database)$/, "");
    if (name === undefined) continue;
    const admin = providerAdmin(deployment, resource);
    const found = await inspectExisting(admin.url, admin.user, name);
    if (found.problem !== undefined) {
      throw new PendingCreateError(`stack ${stack}: an interrupted update was creating ${resource.urn}; ${found.problem}`);
    }
    if (found.role || found.database) {
      adoptions[username] = name;
      urns.push(resource.urn);
    }
  }
  return { adoptions, urns };
}

/**
 * Once an update has adopted them, the engine still carries the killed run's
 * pending creates (Pulumi 3.259 keeps them until a refresh clears them), so
 * every later update would hand them over again: clear them, with a refresh
 * of just the adopted resources.
 */
export function clearPendingCreates(context: PulumiContext, stack: string, urns: readonly string[]): void {
  pulumi(context, [
    "refresh",
    "--yes",
    "--skip-preview",
    "--non-interactive",
    "--clear-pending-creates",
    "--stack",
    stack,
    ...urns.flatMap((urn) => ["--target", urn]),
  ]);
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

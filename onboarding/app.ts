/**
 * The HTTP API, as a factory so tests start it on a real port:
 *
 *   POST /v1/signups            the signup webhook (HMAC signature)
 *   GET  /v1/tenants/:username  status (signature or Bearer API token)
 *   GET  /healthz               liveness and control-database reachability
 *   GET  /metrics               Prometheus text
 *
 * No route ever answers with a secret: signups and statuses come from the
 * control database, which holds no database URL, password or session secret.
 * A ready tenant's answer carries its connection details (host, port,
 * database, role); the app reads the password from the stack's secret
 * `connections` output, never from this API.
 * The routes only orchestrate: the control database's SQL is in registry.ts.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import type { Pool } from "pg";
import { z } from "zod";
import type { Registry } from "prom-client";
import { errorMessage } from "../lib/errors";
import { usernameSchema } from "../tenants/schema";
import { ping, type SignupRow } from "./db";
import { PlacementConflict, type Fleet } from "./fleet";
import { ServiceMetrics } from "./metrics";
import { completeClaim, type ClaimDeps } from "./claim";
import { claimPooled, type PoolClaim, controlFigures, registerSignup, REPLAYED, signatureSeen, signupByUsername, SignupRefused } from "./registry";
import { verifySignature, tokenMatches, DEFAULT_TOLERANCE_SECONDS } from "./signature";

export interface AppDeps {
  pool: Pool;
  /** The stacks new signups are placed on; their tenants files are read (never written) to refuse usernames a person already added. */
  fleet: Fleet;
  webhookSecret: string;
  apiToken: string;
  /** Base of the status URL in answers; default: the request's own host. */
  publicUrl?: string;
  metrics?: ServiceMetrics;
  /** More registries on /metrics after the service's own (the per-tenant usage metrics). */
  extraRegistries?: readonly Registry[];
  /** Called after a new signup is stored (wakes the deployment scheduler). */
  onSignup?: () => void;
  toleranceSeconds?: number;
  logger?: boolean;
  /** Extra health facts (scheduler busy, ...). */
  health?: () => Record<string, unknown>;
  /** Instant signups: claim a pooled tenant when one is free (claim.ts); without it every signup waits for an update. */
  claims?: ClaimDeps;
  /** Called after a claim was answered (wakes the claims committer, claim-committer.ts). */
  onClaim?: () => void;
}

export const MAX_BODY_BYTES = 16 * 1024;

/** Placements in progress at once per process (they run one at a time behind the routing lock anyway); the pool has 10 connections. */
const PLACEMENTS_AT_ONCE = 4;

export const signupBodySchema = z.strictObject(
  {
    username: z
      .string({ error: "username is required and must be a string" })
      .max(64, {
        error: "username is too long: at most 40 characters",
      })
      .pipe(usernameSchema),
    email: z
      .string({ error: "email is required and must be a string" })
      .max(254, { error: "email is too long: at most 254 characters" })
      .pipe(z.email({ error: "email must be a valid e-mail address" })),
    source: z.string({ error: "source must be a string" }).max(100, { error: "source is too long: at most 100 characters" }).optional(),
  },
  {
    error: (issue) =>
      issue.code === "unrecognized_keys" ? `unknown field(s): ${issue.keys.join(", ")}; allowed: username, email, source` : "the body must be a JSON object",
  },
);

const statusSchema = z.enum(["queued", "provisioning", "ready", "failed", "suspended"]);

/** Where a ready tenant's app connects; never the password (the stack's secret `connections` output has it). */
const connectionSchema = z.object({ host: z.string(), port: z.number(), database: z.string(), role: z.string() });

const tenantStatusSchema = z.object({
  username: z.string(),
  status: statusSchema,
  reason: z.string().optional(),
  tenantId: z.string().nullable(),
  domain: z.string().nullable(),
  appUrl: z.string().nullable(),
  connection: connectionSchema.nullable(),
  attempts: z.number(),
  createdAt: z.string(),
  updatedAt: z.string(),
  readyAt: z.string().nullable(),
});

const signupAnswerSchema = z.object({
  username: z.string(),
  status: statusSchema,
  statusUrl: z.string(),
  tenantId: z.string().nullable(),
  domain: z.string().nullable(),
  connection: connectionSchema.nullable(),
});

const errorSchema = z.object({ error: z.string(), problems: z.array(z.string()).optional() });

declare module "fastify" {
  interface FastifyRequest {
    rawBody?: string;
    signatureDigest?: string;
  }
}

class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly problems?: string[],
  ) {
    super(message);
  }
}

/** The connection details of a ready (or suspended) tenant, when the control database has them. */
function connectionOf(row: SignupRow): z.output<typeof connectionSchema> | null {
  if (row.status !== "ready" && row.status !== "suspended") return null;
  if (row.db_host === null || row.db_port === null || row.db_name === null || row.db_role === null) return null;
  return { host: row.db_host, port: row.db_port, database: row.db_name, role: row.db_role };
}

function statusOf(row: SignupRow): z.output<typeof tenantStatusSchema> {
  return {
    username: row.username,
    status: row.status,
    ...(row.status === "failed" && row.last_error ? { reason: row.last_error } : {}),
    tenantId: row.tenant_id,
    domain: row.domain,
    appUrl: row.domain ? `https://${row.domain}` : null,
    connection: connectionOf(row),
    attempts: row.attempts,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    readyAt: row.ready_at?.toISOString() ?? null,
  };
}

/** What every route uses: the dependencies, with the defaults filled in. */
type RouteContext = AppDeps & { metrics: ServiceMetrics; tolerance: number; placements: ReturnType<typeof limited> };

type App = ReturnType<typeof createServer>;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const metrics = deps.metrics ?? new ServiceMetrics();
  const context: RouteContext = { ...deps, metrics, tolerance: deps.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS, placements: limited(PLACEMENTS_AT_ONCE) };
  const app = createServer(context);
  signupRoute(app, context);
  statusRoute(app, context);
  healthRoute(app, context);
  metricsRoute(app, context);
  return app;
}

/** Fastify with zod schemas, the raw body kept for signatures, request metrics, and one error format. */
function createServer(context: RouteContext) {
  const { metrics } = context;
  const app = Fastify({ logger: context.logger ?? false, bodyLimit: MAX_BODY_BYTES }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // Keep the body as text: the signature covers the exact bytes. JSON is parsed after the signature check.
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    request.rawBody = body as string;
    done(null, body);
  });

  app.addHook("onResponse", async (request, reply) => {
    metrics.http.observe({ route: request.routeOptions.url ?? "unmatched", code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((error, request, reply) => {
    const { status, body } = errorAnswer(error, request, metrics);
    if (status === 500) request.log.error(error);
    return reply.code(status).send(body);
  });
  return app;
}

/** The answer to a failed request: 400 with every schema problem, the HttpError's status, or 500. */
function errorAnswer(error: unknown, request: FastifyRequest, metrics: ServiceMetrics): { status: number; body: z.output<typeof errorSchema> } {
  const signup = request.routeOptions.url === "/v1/signups";
  if (hasZodFastifySchemaValidationErrors(error)) {
    if (signup) metrics.signups.inc({ result: "invalid" });
    const problems = error.validation.map((issue) => {
      const field = issue.instancePath.replace(/^\//, "").replace(/\//g, ".");
      const message = issue.message ?? "invalid value";
      return field && !message.startsWith(field) ? `${field}: ${message}` : message;
    });
    return { status: 400, body: { error: `invalid request: ${problems.join("; ")}`, problems } };
  }
  if (error instanceof HttpError) {
    return { status: error.statusCode, body: { error: error.message, ...(error.problems ? { problems: error.problems } : {}) } };
  }
  const status = (error as { statusCode?: number }).statusCode ?? 500;
  if (status >= 400 && status < 500) {
    if (status === 400 && signup) metrics.signups.inc({ result: "invalid" });
    const message = status === 413 ? `the body is too large (at most ${MAX_BODY_BYTES} bytes)` : errorMessage(error);
    return { status, body: { error: message } };
  }
  return { status: 500, body: { error: "internal error; the request may be retried" } };
}

const unauthorized = (context: RouteContext, reason: string, result = "unauthorized") => {
  context.metrics.signups.inc({ result });
  return new HttpError(401, reason);
};

/** POST /v1/signups: signature, then the body, then the registration (registry.ts). */
function signupRoute(app: App, context: RouteContext): void {
  app.post(
    "/v1/signups",
    {
      schema: { body: signupBodySchema, response: { 202: signupAnswerSchema, 400: errorSchema, 401: errorSchema, 409: errorSchema } },
      preValidation: (request) => verifySignedBody(request, context),
    },
    async (request, reply) => {
      const { username } = request.body;
      const outcome = await register(context, request.body, request.signatureDigest!);
      context.metrics.signups.inc({ result: outcome.created ? "accepted" : "duplicate" });
      if (outcome.created) context.onSignup?.();
      const url = `${context.publicUrl ?? `${request.protocol}://${request.host}`}/v1/tenants/${encodeURIComponent(username)}`;
      return reply
        .code(202)
        .header("location", url)
        .send({
          username,
          status: outcome.row.status,
          statusUrl: url,
          tenantId: outcome.row.tenant_id,
          domain: outcome.row.domain,
          connection: connectionOf(outcome.row),
        });
    },
  );
}

/** Before the schema sees the body: its signature, not a replay, then its JSON. */
async function verifySignedBody(request: FastifyRequest, context: RouteContext): Promise<void> {
  const raw = request.rawBody;
  if (raw === undefined) throw new HttpError(415, 'send the body as JSON with "Content-Type: application/json"');
  const check = verifySignature(context.webhookSecret, request.headers, raw, { toleranceSeconds: context.tolerance });
  if (!check.ok) throw unauthorized(context, check.reason);
  if (await signatureSeen(context.pool, check.digest)) throw unauthorized(context, REPLAYED, "replay");
  request.signatureDigest = check.digest;
  try {
    (request as { body: unknown }).body = JSON.parse(raw) as unknown;
  } catch (error) {
    context.metrics.signups.inc({ result: "invalid" });
    throw new HttpError(400, `malformed JSON body: ${errorMessage(error)}`);
  }
}

/** The pool was empty: the signup is registered again, through placement. */
class NoPooledTenant extends Error {}

/**
 * Runs at most `limit` of the given functions at once, the others waiting in
 * order (a few lines; not worth a dependency): pool-empty signups' placements
 * wait here rather than on control-database connections (each placement holds
 * one while it waits for the fleet's routing lock and the tenants file's lock),
 * so a burst of them leaves connections for the claims.
 */
function limited(limit: number): <T>(run: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (run) => {
    if (running >= limit) await new Promise<void>((resume) => waiting.push(resume));
    running += 1;
    try {
      return await run();
    } finally {
      running -= 1;
      waiting.shift()?.();
    }
  };
}

/**
 * Stores the signup: with claims, first a short transaction that claims a
 * free pooled tenant (it never waits for a tenants file); when the pool is
 * empty, the transaction that places it on a shard (fleet.ts), a few at a
 * time in this process. A replay is a 401, a taken name a 409.
 */
async function register(context: RouteContext, body: z.output<typeof signupBodySchema>, digest: string) {
  const { username, email } = body;
  // The digest is remembered until the signature could no longer pass the timestamp check anyway.
  const request = { ...body, digest, rememberSeconds: 2 * context.tolerance + 60 };
  let claimed: PoolClaim | undefined;
  const started = performance.now();
  try {
    let outcome: Awaited<ReturnType<typeof registerSignup>> | undefined;
    if (context.claims) {
      try {
        outcome = await registerSignup(context.pool, request, async (client) => {
          // A free pooled tenant, claimed in this transaction (claim.ts): the signup lives on its stack.
          context.fleet.checkName({ username });
          claimed = await claimPooled(client, context.fleet.stackPattern, username);
          if (!claimed) throw new NoPooledTenant();
          return { stack: claimed.stack };
        });
      } catch (error) {
        if (!(error instanceof NoPooledTenant)) throw error;
      }
    }
    // The shard, chosen once (fleet.ts); a person may have added the name to a tenants file by hand.
    outcome ??= await context.placements(() => registerSignup(context.pool, request, (client) => context.fleet.place(client, { username, email })));
    if (!outcome.created || claimed === undefined || context.claims === undefined) return outcome;
    try {
      return { ...outcome, row: await completeClaim(context.pool, context.claims, outcome.row, claimed, performance.now() - started) };
    } finally {
      // The claim is in the outbox whatever happened: its binding is committed off the answer's path.
      context.onClaim?.();
    }
  } catch (error) {
    if (error instanceof SignupRefused && error.kind === "replay") throw unauthorized(context, error.message, "replay");
    if (error instanceof SignupRefused || error instanceof PlacementConflict) {
      context.metrics.signups.inc({ result: "conflict" });
      throw new HttpError(409, error.message);
    }
    throw error;
  }
}

/** GET /v1/tenants/:username: with the API token, or signed (payload "GET <path>"). */
function statusRoute(app: App, context: RouteContext): void {
  app.get(
    "/v1/tenants/:username",
    {
      schema: {
        params: z.object({ username: z.string().max(64) }),
        response: { 200: tenantStatusSchema, 401: errorSchema, 404: errorSchema },
      },
      onRequest: async (request) => {
        if (tokenMatches(context.apiToken, request.headers.authorization)) return;
        const path = request.url.split("?")[0]!;
        const check = verifySignature(context.webhookSecret, request.headers, `GET ${path}`, { toleranceSeconds: context.tolerance });
        if (!check.ok) {
          throw new HttpError(401, request.headers.authorization ? "wrong API token" : `${check.reason} (or send Authorization: Bearer <API token>)`);
        }
      },
    },
    async (request) => {
      const row = await signupByUsername(context.pool, request.params.username);
      if (!row) throw new HttpError(404, `no signup for "${request.params.username}"`);
      return statusOf(row);
    },
  );
}

function healthRoute(app: App, context: RouteContext): void {
  app.get("/healthz", async (_request, reply) => {
    try {
      await ping(context.pool);
      return { ok: true, controlDatabase: "reachable", ...context.health?.() };
    } catch (error) {
      return reply.code(503).send({ ok: false, controlDatabase: errorMessage(error) });
    }
  });
}

/** GET /metrics: the service's figures (control-database ones read at each scrape), then the extra registries. */
function metricsRoute(app: App, context: RouteContext): void {
  app.get("/metrics", async (_request, reply) => {
    const { metrics } = context;
    metrics.setFromControlDatabase(await controlFigures(context.pool, context.fleet.stackPattern));
    const registries = [metrics.registry, ...(context.extraRegistries ?? [])];
    const text = (await Promise.all(registries.map((registry) => registry.metrics()))).join("");
    return reply.type(metrics.registry.contentType).send(text);
  });
}

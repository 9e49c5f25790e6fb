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
 */
import { createHash } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import type { Pool } from "pg";
import { z } from "zod";
import { usernameSchema, usernameToLabel } from "../tenants/schema";
import { PlacementConflict, type Fleet } from "./fleet";
import { SIGNUP_LOCK_CLASS, transaction, type SignupRow } from "./db";
import type { Registry } from "prom-client";
import { ServiceMetrics } from "./metrics";
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
}

export const MAX_BODY_BYTES = 16 * 1024;

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

const tenantStatusSchema = z.object({
  username: z.string(),
  status: statusSchema,
  reason: z.string().optional(),
  tenantId: z.string().nullable(),
  domain: z.string().nullable(),
  appUrl: z.string().nullable(),
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

function statusOf(row: SignupRow): z.output<typeof tenantStatusSchema> {
  return {
    username: row.username,
    status: row.status,
    ...(row.status === "failed" && row.last_error ? { reason: row.last_error } : {}),
    tenantId: row.tenant_id,
    domain: row.domain,
    appUrl: row.domain ? `https://${row.domain}` : null,
    attempts: row.attempts,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    readyAt: row.ready_at?.toISOString() ?? null,
  };
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const metrics = deps.metrics ?? new ServiceMetrics();
  const tolerance = deps.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const app = Fastify({ logger: deps.logger ?? false, bodyLimit: MAX_BODY_BYTES }).withTypeProvider<ZodTypeProvider>();
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
    if (hasZodFastifySchemaValidationErrors(error)) {
      if (request.routeOptions.url === "/v1/signups") metrics.signups.inc({ result: "invalid" });
      const problems = error.validation.map((issue) => {
        const field = issue.instancePath.replace(/^\//, "").replace(/\//g, ".");
        const message = issue.message ?? "invalid value";
        return field && !message.startsWith(field) ? `${field}: ${message}` : message;
      });
      return reply.code(400).send({ error: `invalid request: ${problems.join("; ")}`, problems });
    }
    if (error instanceof HttpError) {
      return reply.code(error.statusCode).send({ error: error.message, ...(error.problems ? { problems: error.problems } : {}) });
    }
    const status = (error as { statusCode?: number }).statusCode ?? 500;
    if (status >= 400 && status < 500) {
      if (status === 400 && request.routeOptions.url === "/v1/signups") metrics.signups.inc({ result: "invalid" });
      const message = status === 413 ? `the body is too large (at most ${MAX_BODY_BYTES} bytes)` : (error as Error).message;
      return reply.code(status).send({ error: message });
    }
    request.log.error(error);
    return reply.code(500).send({ error: "internal error; the request may be retried" });
  });

  const unauthorized = (reason: string, result = "unauthorized") => {
    metrics.signups.inc({ result });
    return new HttpError(401, reason);
  };

  const statusUrl = (request: FastifyRequest, username: string) =>
    `${deps.publicUrl ?? `${request.protocol}://${request.host}`}/v1/tenants/${encodeURIComponent(username)}`;

  app.post(
    "/v1/signups",
    {
      schema: { body: signupBodySchema, response: { 202: signupAnswerSchema, 400: errorSchema, 401: errorSchema, 409: errorSchema } },
      preValidation: async (request) => {
        const raw = request.rawBody;
        if (raw === undefined) throw new HttpError(415, 'send the body as JSON with "Content-Type: application/json"');
        const check = verifySignature(deps.webhookSecret, request.headers, raw, { toleranceSeconds: tolerance });
        if (!check.ok) throw unauthorized(check.reason);
        const seen = await deps.pool.query("SELECT 1 FROM onboarding_seen_signatures WHERE digest = $1", [check.digest]);
        if (seen.rows.length > 0) throw unauthorized("replayed request: this signature was already used; sign each request anew", "replay");
        request.signatureDigest = check.digest;
        try {
          (request as { body: unknown }).body = JSON.parse(raw) as unknown;
        } catch (error) {
          metrics.signups.inc({ result: "invalid" });
          throw new HttpError(400, `malformed JSON body: ${(error as Error).message}`);
        }
      },
    },
    async (request, reply) => {
      const { username, email, source } = request.body;
      const digest = request.signatureDigest!;
      const outcome = await transaction(deps.pool, async (client) => {
        // Remembered until the signature could no longer pass the timestamp check anyway.
        const fresh = await client.query(
          "INSERT INTO onboarding_seen_signatures (digest, expires_at) VALUES ($1, now() + make_interval(secs => $2)) ON CONFLICT DO NOTHING",
          [digest, 2 * tolerance + 60],
        );
        if (fresh.rowCount === 0) throw unauthorized("replayed request: this signature was already used; sign each request anew", "replay");
        await client.query("DELETE FROM onboarding_seen_signatures WHERE expires_at < now()");

        // Concurrent signups for one web address wait here for each other, so the
        // second sees the first one's committed row and answers as a duplicate (202)
        // or a clash (409) instead of losing the INSERT race below. The same
        // username always gives the same label, so this also covers exact repeats.
        const label = usernameToLabel(username);
        await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [SIGNUP_LOCK_CLASS, label]);
        const existing = await client.query<SignupRow>("SELECT * FROM onboarding_signups WHERE username = $1 FOR UPDATE", [username]);
        if (existing.rows[0]) {
          const row = existing.rows[0];
          if (row.email.toLowerCase() !== email.toLowerCase()) {
            throw new HttpError(409, `username "${username}" is already taken; choose another`);
          }
          return { row, created: false };
        }
        const clash = await client.query<{ username: string }>("SELECT username FROM onboarding_signups WHERE label = $1", [label]);
        if (clash.rows[0]) {
          throw new HttpError(409, `username "${username}" is taken: it gives the same web address as "${clash.rows[0].username}"; choose another`);
        }
        // The shard, chosen once (fleet.ts); a person may have added the name to a tenants file by hand.
        const shard = await deps.fleet.place(client, { username, email }).catch((error: unknown) => {
          throw error instanceof PlacementConflict ? new HttpError(409, error.message) : error;
        });
        const inserted = await client.query<SignupRow>(
          `INSERT INTO onboarding_signups (username, label, email, source, stack) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT DO NOTHING RETURNING *`,
          [username, label, email, source ?? null, shard.stack],
        );
        if (!inserted.rows[0]) throw new HttpError(409, `username "${username}" was just taken; choose another`);
        return { row: inserted.rows[0], created: true };
      }).catch((error) => {
        if (error instanceof HttpError && error.statusCode === 409) metrics.signups.inc({ result: "conflict" });
        throw error;
      });
      metrics.signups.inc({ result: outcome.created ? "accepted" : "duplicate" });
      if (outcome.created) deps.onSignup?.();
      const url = statusUrl(request, username);
      return reply
        .code(202)
        .header("location", url)
        .send({ username, status: outcome.row.status, statusUrl: url, tenantId: outcome.row.tenant_id, domain: outcome.row.domain });
    },
  );

  app.get(
    "/v1/tenants/:username",
    {
      schema: {
        params: z.object({ username: z.string().max(64) }),
        response: { 200: tenantStatusSchema, 401: errorSchema, 404: errorSchema },
      },
      onRequest: async (request) => {
        if (tokenMatches(deps.apiToken, request.headers.authorization)) return;
        const path = request.url.split("?")[0]!;
        const check = verifySignature(deps.webhookSecret, request.headers, `GET ${path}`, { toleranceSeconds: tolerance });
        if (!check.ok) {
          throw new HttpError(401, request.headers.authorization ? "wrong API token" : `${check.reason} (or send Authorization: Bearer <API token>)`);
        }
      },
    },
    async (request) => {
      const { rows } = await deps.pool.query<SignupRow>("SELECT * FROM onboarding_signups WHERE username = $1", [request.params.username]);
      if (!rows[0]) throw new HttpError(404, `no signup for "${request.params.username}"`);
      return statusOf(rows[0]);
    },
  );

  app.get("/healthz", async (_request, reply) => {
    try {
      await deps.pool.query("SELECT 1");
      return { ok: true, controlDatabase: "reachable", ...deps.health?.() };
    } catch (error) {
      return reply.code(503).send({ ok: false, controlDatabase: (error as Error).message });
    }
  });

  app.get("/metrics", async (_request, reply) => {
    const [statuses, deployments, durations, outbox] = await Promise.all([
      deps.pool.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM onboarding_signups WHERE stack LIKE $1 GROUP BY status", [
        deps.fleet.stackPattern,
      ]),
      deps.pool.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM onboarding_deployments WHERE stack LIKE $1 GROUP BY status", [
        deps.fleet.stackPattern,
      ]),
      deps.pool.query<{ seconds: number }>(
        "SELECT extract(epoch FROM finished_at - started_at)::float8 AS seconds FROM onboarding_deployments WHERE stack LIKE $1 AND finished_at IS NOT NULL AND status IN ('succeeded', 'failed')",
        [deps.fleet.stackPattern],
      ),
      deps.pool.query<{ pending: string; sent: string }>(
        "SELECT count(*) FILTER (WHERE sent_at IS NULL) AS pending, count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent FROM onboarding_outbox",
      ),
    ]);
    const counts = (rows: { status: string; n: string }[]) => Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
    metrics.setFromControlDatabase({
      signups: counts(statuses.rows),
      deployments: counts(deployments.rows),
      deploymentSeconds: durations.rows.map((row) => row.seconds),
      emailsPending: Number(outbox.rows[0]?.pending ?? 0),
      emailsSent: Number(outbox.rows[0]?.sent ?? 0),
    });
    const registries = [metrics.registry, ...(deps.extraRegistries ?? [])];
    const text = (await Promise.all(registries.map((registry) => registry.metrics()))).join("");
    return reply.type(metrics.registry.contentType).send(text);
  });

  return app;
}

/** The sha256 a stored signature digest is made of, for tests. */
export const signatureDigest = (signatureHex: string) => createHash("sha256").update(signatureHex).digest("hex");

/**
 * The service's settings, from environment variables, validated by zod.
 * Every problem names its variable, all at once.
 */
import { isAbsolute, join, normalize, resolve } from "node:path";
import { z } from "zod";
import { LOCAL_STATE_DIR, PROJECT_DIR } from "../engine/paths";
import { DEFAULT_TENANTS_FILE } from "../tenants/paths";
import { SHARDS_MANIFEST } from "../tenants/shards";
import { DEFAULT_BACKOFF, type Backoff } from "./backoff";
import type { ServiceOptions } from "./service";
import type { GitTenantsRepoOptions } from "./tenants-repo";

const int = (name: string, fallback: number, min = 0) =>
  z.coerce
    .number({ error: `${name} must be a number` })
    .int({ error: `${name} must be a whole number` })
    .min(min, { error: `${name} must be at least ${min}` })
    .default(fallback);

const secret = (name: string) =>
  z.string({ error: `${name} is required` }).min(16, { error: `${name} must be at least 16 characters (e.g. openssl rand -hex 32)` });

const backoffShape = {
  RETRY_BASE_MS: int("RETRY_BASE_MS", DEFAULT_BACKOFF.baseMs),
  RETRY_CAP_MS: int("RETRY_CAP_MS", DEFAULT_BACKOFF.capMs),
  RETRY_MAX_ATTEMPTS: int("RETRY_MAX_ATTEMPTS", DEFAULT_BACKOFF.maxAttempts, 1),
};

const DEFAULT_AUTHOR = "DriverGigsPro signup service <signup-service@drivergigspro.com>";

/** The tenants file inside the repository: relative, no way out of the clone. */
const repoPath = z
  .string()
  .default(DEFAULT_TENANTS_FILE)
  .refine((path) => !isAbsolute(path) && !normalize(path).split(/[\\/]/).includes("..") && !path.startsWith("-"), {
    error: 'TENANTS_GIT_PATH must be a path inside the repository, e.g. "tenants/tenants.yaml"',
  });

const gitShape = {
  TENANTS_GIT_URL: z.string().min(1).optional(),
  TENANTS_GIT_BRANCH: z
    .string()
    .regex(/^(?!-)(?!.*\.\.)(?!.*\/\/)[A-Za-z0-9._/-]+(?<![./])$/, { error: 'TENANTS_GIT_BRANCH must be a branch name such as "main"' })
    .default("main"),
  TENANTS_GIT_DIR: z.string().min(1).optional(),
  TENANTS_GIT_PATH: repoPath,
  TENANTS_GIT_AUTHOR: z
    .string()
    .regex(/^[^<>\n]+ <[^<>\s@]+@[^<>\s]+>$/, { error: 'TENANTS_GIT_AUTHOR must look like "Name <email@example.com>"' })
    .default(DEFAULT_AUTHOR),
  TENANTS_GIT_PUSH_ATTEMPTS: int("TENANTS_GIT_PUSH_ATTEMPTS", 5, 1),
};

/** Checks across variables of the runner's (and so the service's) settings. */
function runnerCrossProblems(env: NodeJS.ProcessEnv): string[] {
  const problems =
    env.TENANTS_FILE && env.TENANTS_GIT_URL
      ? ["TENANTS_FILE and TENANTS_GIT_URL are both set: use one (with TENANTS_GIT_URL the file is TENANTS_GIT_PATH in the service's clone)"]
      : [];
  if (!env.PULUMI_STACK && !env.FLEET_ENV) {
    problems.push(
      "PULUMI_STACK or FLEET_ENV is required: the one stack new tenants go to, or the environment whose shards (tenants/shards.yaml) they are spread over",
    );
  }
  if (env.PULUMI_STACK && env.FLEET_ENV) problems.push("PULUMI_STACK and FLEET_ENV are both set: use one (FLEET_ENV serves every shard's stack <env>-<shard>)");
  if (env.FLEET_ENV && env.TENANTS_FILE) problems.push("TENANTS_FILE cannot be used with FLEET_ENV: each shard's file is the one tenants/shards.yaml lists");
  if (env.FLEET_ENV && env.TENANTS_GIT_PATH) {
    problems.push("TENANTS_GIT_PATH cannot be used with FLEET_ENV: the shards' files are those tenants/shards.yaml in the repository lists");
  }
  return problems;
}

const runnerShape = {
  DATABASE_URL: z.string({ error: "DATABASE_URL is required (the control database), or run npm run serve:local" }).regex(/^postgres(ql)?:\/\//, {
    error: "DATABASE_URL must be a postgresql:// URL",
  }),
  PULUMI_STACK: z.string().min(1).optional(),
  FLEET_ENV: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,30}$/, { error: 'FLEET_ENV must be an environment name such as "prod" (a-z, 0-9, -; stacks are <env>-<shard>)' })
    .optional(),
  /** Runner only (set by the service in fleet mode): the shard's stack this runner deploys. */
  DEPLOY_STACK: z.string().min(1).optional(),
  PULUMI_WORKDIR: z.string().default(PROJECT_DIR),
  TENANTS_FILE: z.string().min(1).optional(),
  ...gitShape,
  ...backoffShape,
};

const serviceSchema = z.object({
  ...runnerShape,
  WEBHOOK_SECRET: secret("WEBHOOK_SECRET"),
  API_TOKEN: secret("API_TOKEN"),
  SMTP_URL: z.url({ error: "SMTP_URL must be a URL such as smtp://user:pass@host:587" }).optional(),
  SMTP_HOST: z.string().min(1).optional(),
  SMTP_PORT: int("SMTP_PORT", 587, 1),
  SMTP_USER: z.string().optional(),
  SMTP_PASS: z.string().optional(),
  SMTP_SECURE: z.enum(["true", "false"], { error: "SMTP_SECURE must be true or false" }).default("false"),
  MAIL_FROM: z.string({ error: 'MAIL_FROM is required, e.g. "DriverGigsPro <welcome@drivergigspro.com>"' }).regex(/@/, {
    error: "MAIL_FROM must contain an e-mail address",
  }),
  HOST: z.string().default("127.0.0.1"),
  PORT: int("PORT", 8080),
  PUBLIC_URL: z.url({ error: "PUBLIC_URL must be a URL" }).optional(),
  DEPLOY_MODE: z.enum(["child", "inprocess"], { error: "DEPLOY_MODE must be child or inprocess" }).default("child"),
  DEBOUNCE_MS: int("DEBOUNCE_MS", 500),
  POLL_MS: int("POLL_MS", 2000, 50),
  RUNNER_LOG: z.string().optional(),
  PULUMI_STATE_DIR: z.string().optional(),
  USAGE_INTERVAL_S: int("USAGE_INTERVAL_S", 0),
});

/** Checks across variables; reported together with the schema's problems. */
function crossProblems(env: NodeJS.ProcessEnv): string[] {
  return [...(env.SMTP_URL || env.SMTP_HOST ? [] : ["SMTP_URL or SMTP_HOST is required (where welcome e-mails go)"]), ...runnerCrossProblems(env)];
}

export class ConfigError extends Error {
  constructor(problems: string[]) {
    super(`the onboarding service is not configured; fix these environment variables:\n${problems.map((p) => `  ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

function parse<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv, extra: string[] = []): z.output<T> {
  // Empty variables count as unset, as they do in most shells' intent.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ""));
  const result = schema.safeParse(cleaned);
  if (result.success && extra.length === 0) return result.data as z.output<T>;
  throw new ConfigError([
    ...(result.error?.issues ?? []).map((issue) => {
      const name = issue.path.join(".");
      return issue.message.startsWith(name) ? issue.message : `${name}: ${issue.message}`;
    }),
    ...extra,
  ]);
}

/**
 * Git mode: the tenants file lives in a repository; the service commits and
 * pushes signups there. `dir` is absolute; `path` is, in fleet mode, the
 * shard manifest (tenants/shards.yaml).
 */
export type TenantsGitConfig = Pick<GitTenantsRepoOptions, "url" | "branch" | "dir" | "path" | "author" | "pushAttempts">;

export interface RunnerConfig {
  databaseUrl: string;
  /** Single-stack mode (PULUMI_STACK): the one stack, a fleet of one shard without a size limit. */
  stack?: string;
  /** Fleet mode (FLEET_ENV): the environment; its shards are those of tenants/shards.yaml. */
  fleetEnv?: string;
  /** Runner in fleet mode: the stack to deploy. */
  deployStack?: string;
  workDir: string;
  /** File mode: overrides the stack config `drivergigspro:tenantsFile`. */
  tenantsFile?: string;
  /** Git mode (TENANTS_GIT_URL set). */
  git?: TenantsGitConfig;
  backoff: Backoff;
}

export function readRunnerConfig(env: NodeJS.ProcessEnv): RunnerConfig {
  const value = parse(z.object(runnerShape), env, runnerCrossProblems(env));
  const author = /^(.+) <(.+)>$/.exec(value.TENANTS_GIT_AUTHOR)!;
  return {
    databaseUrl: value.DATABASE_URL,
    stack: value.PULUMI_STACK,
    fleetEnv: value.FLEET_ENV,
    deployStack: value.DEPLOY_STACK,
    workDir: value.PULUMI_WORKDIR,
    tenantsFile: value.TENANTS_FILE,
    git:
      value.TENANTS_GIT_URL === undefined
        ? undefined
        : {
            url: value.TENANTS_GIT_URL,
            branch: value.TENANTS_GIT_BRANCH,
            dir: resolve(value.TENANTS_GIT_DIR ?? join(LOCAL_STATE_DIR, "tenants-git", (value.PULUMI_STACK ?? value.FLEET_ENV)!)),
            path: value.FLEET_ENV ? SHARDS_MANIFEST : normalize(value.TENANTS_GIT_PATH),
            author: { name: author[1]!, email: author[2]! },
            pushAttempts: value.TENANTS_GIT_PUSH_ATTEMPTS,
          },
    backoff: { baseMs: value.RETRY_BASE_MS, capMs: value.RETRY_CAP_MS, maxAttempts: value.RETRY_MAX_ATTEMPTS },
  };
}

/** The service's settings: those it hands to startService are typed as ServiceOptions declares them. */
export interface ServiceConfig
  extends
    RunnerConfig,
    Required<Pick<ServiceOptions, "webhookSecret" | "apiToken" | "mailFrom" | "host" | "port" | "debounceMs" | "pollMs">>,
    Pick<ServiceOptions, "publicUrl"> {
  smtp: string | { host: string; port: number; secure: boolean; auth?: { user: string; pass: string } };
  deployMode: "child" | "inprocess";
  runnerLog?: string;
  pulumiStateDir?: string;
  /** Sample tenants' usage into the control database every this many seconds; 0: off. */
  usageIntervalSeconds: number;
}

export function readServiceConfig(env: NodeJS.ProcessEnv): ServiceConfig {
  const value = parse(serviceSchema, env, crossProblems(env));
  return {
    ...readRunnerConfig(env),
    webhookSecret: value.WEBHOOK_SECRET,
    apiToken: value.API_TOKEN,
    smtp: value.SMTP_URL ?? {
      host: value.SMTP_HOST!,
      port: value.SMTP_PORT,
      secure: value.SMTP_SECURE === "true",
      auth: value.SMTP_USER ? { user: value.SMTP_USER, pass: value.SMTP_PASS ?? "" } : undefined,
    },
    mailFrom: value.MAIL_FROM,
    host: value.HOST,
    port: value.PORT,
    publicUrl: value.PUBLIC_URL,
    deployMode: value.DEPLOY_MODE,
    debounceMs: value.DEBOUNCE_MS,
    pollMs: value.POLL_MS,
    runnerLog: value.RUNNER_LOG,
    pulumiStateDir: value.PULUMI_STATE_DIR,
    usageIntervalSeconds: value.USAGE_INTERVAL_S,
  };
}

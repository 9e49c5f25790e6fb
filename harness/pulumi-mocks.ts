/**
 * Pulumi's own mocks (`pulumi.runtime.setMocks`), recording every resource
 * the program declares. They prove the program's shape: which resources,
 * with which inputs. Nothing here talks to PostgreSQL.
 */
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";

export interface DeclaredResource {
  type: string;
  name: string;
  inputs: Record<string, any>;
  provider?: string;
  /** Options as sent to the engine in the RegisterResource request. */
  retainOnDelete?: boolean;
  protect?: boolean;
  /** The `import` option: the ID of an existing object to adopt ("" when absent). */
  importId?: string;
  ignoreChanges?: string[];
  /** URNs of `dependsOn` (and input) dependencies. */
  dependencies?: string[];
  /** The `aliases` option: each alias's name (an alias spec) or URN. */
  aliases?: string[];
}

/** Deterministic fake outputs for the random provider, so names can be asserted. */
function fakeState(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
  const digest = createHash("sha256").update(name).digest("hex");
  switch (type) {
    case "random:index/randomId:RandomId":
      return { ...inputs, hex: digest.slice(0, 2 * inputs.byteLength) };
    case "random:index/randomPassword:RandomPassword":
      return { ...inputs, result: digest.slice(0, inputs.length) };
    default:
      return inputs;
  }
}

export interface MockOptions {
  /** What a StackReference (e.g. to this stack's last update) reads; default: a stack never deployed. */
  stackOutputs?: Record<string, unknown>;
}

export function installMocks(config: Record<string, unknown> = {}, options: MockOptions = {}): DeclaredResource[] {
  const declared: DeclaredResource[] = [];
  pulumi.runtime.setAllConfig(
    Object.fromEntries(Object.entries(config).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)])),
  );
  void pulumi.runtime.setMocks(
    {
      newResource(args) {
        declared.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider });
        if (args.type === "pulumi:pulumi:StackReference") {
          return { id: args.inputs.name, state: { name: args.inputs.name, outputs: options.stackOutputs ?? {}, secretOutputNames: [] } };
        }
        return { id: `${args.name}-id`, state: fakeState(args.type, args.name, args.inputs) };
      },
      call(args) {
        return args.inputs;
      },
    },
    "drivergigspro",
    "test",
    false,
    "organization", // what a file backend calls every stack's organization
  );
  // Resource options never reach `newResource`; read them off the request the
  // SDK sends to the (mock) engine, which is exactly what a real engine sees.
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource: (req: any, cb: any) => void };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    const options = {
      retainOnDelete: req.getRetainondelete?.(),
      protect: req.getProtect?.(),
      importId: req.getImportid?.(),
      ignoreChanges: req.getIgnorechangesList?.(),
      dependencies: req.getDependenciesList?.(),
      aliases: [...(req.getAliasesList?.() ?? []).map((alias: any) => alias.getSpec?.()?.getName?.() || alias.getUrn?.()), ...(req.getAliasurnsList?.() ?? [])],
    };
    register(req, (err: unknown, resp: unknown) => {
      const entry = [...declared].reverse().find((resource) => resource.name === req.getName());
      if (entry) Object.assign(entry, options);
      callback(err, resp);
    });
  };
  return declared;
}

/** The value inside an Output (mocks resolve every Output). */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}

/** Whether an Output is marked secret, i.e. would be encrypted in state and masked in logs. */
export function isSecret(output: pulumi.Output<unknown>): Promise<boolean> {
  return (output as unknown as { isSecret: Promise<boolean> }).isSecret;
}

/** Lets the mocked engine finish registering everything declared so far. */
export async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

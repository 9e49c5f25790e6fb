/**
 * How this project's dynamic providers reach their code.
 *
 * Pulumi serializes a dynamic provider's object into the state with every
 * value it captures, and runs that stored copy for delete
 * (pulumi/pulumi#4805). A provider that captured an absolute path would tie
 * the stack to the folder it was first deployed from, and a run from another
 * clone would rewrite every dynamic resource's provider. So what is
 * serialized is only a stub: the implementing module's path *inside the
 * project* and an export name. At run time the stub loads that module from
 * the checkout the engine runs in: the provider process's working directory,
 * which the engine sets to the project folder (DGP_PROJECT_DIR
 * overrides). The stored state is then the same from every folder, and about
 * 300 bytes per resource instead of kilobytes of captured code.
 */
import type * as pulumi from "@pulumi/pulumi";

/** The checkout the engine runs in: where project-relative paths (modules, seed releases) are resolved. */
export function projectRoot(): string {
  return process.env.DGP_PROJECT_DIR || process.cwd();
}

/**
 * Loads one of our TypeScript modules inside a dynamic-provider process (plain
 * `node`, no ts-node) by registering tsx first. It captures nothing, so the
 * "registered once per process" flag lives on globalThis.
 */
function loadProjectModule(relativeModule: string): any {
  const modulePath = `${projectRoot()}/${relativeModule}`;
  const flags = globalThis as { __drivergigsproTsx?: boolean };
  if (!flags.__drivergigsproTsx) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(require.resolve("tsx/cjs/api", { paths: [modulePath] })).register();
    flags.__drivergigsproTsx = true;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(modulePath);
}

/**
 * A provider whose every call is forwarded to `exportName` of the module at
 * `relativeModule` (a path from the project root, e.g.
 * "infra/builtin-postgres/providers.ts"). Only the methods that module's
 * provider implements are forwarded; `read` among them makes `pulumi refresh`
 * see drift.
 */
export function forwardingProvider(
  relativeModule: string,
  exportName: string,
  methods: readonly ("create" | "diff" | "update" | "delete" | "read")[],
): pulumi.dynamic.ResourceProvider {
  const target = () => loadProjectModule(relativeModule)[exportName] as Required<pulumi.dynamic.ResourceProvider>;
  const provider: pulumi.dynamic.ResourceProvider = {
    create: (inputs) => target().create(inputs),
  };
  if (methods.includes("diff")) provider.diff = (id, olds, news) => target().diff(id, olds, news);
  if (methods.includes("update")) provider.update = (id, olds, news) => target().update(id, olds, news);
  if (methods.includes("delete")) provider.delete = (id, props) => target().delete(id, props);
  if (methods.includes("read")) provider.read = (id, props) => target().read(id, props);
  return provider;
}

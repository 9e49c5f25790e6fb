/**
 * Dynamic providers run in a plain `node` process (no ts-node), from code
 * Pulumi serializes into the state. This loads one of our TypeScript modules
 * there by registering tsx first. It must capture nothing but its argument,
 * so the "registered once per process" flag lives on globalThis: every
 * register() would otherwise add another set of require hooks.
 */
export function loadTypeScriptModule(modulePath: string): any {
  const flags = globalThis as { __drivergigsproTsx?: boolean };
  if (!flags.__drivergigsproTsx) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(require.resolve("tsx/cjs/api", { paths: [modulePath] })).register();
    flags.__drivergigsproTsx = true;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(modulePath);
}

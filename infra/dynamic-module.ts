/**
 * Dynamic providers run in a plain `node` process (no ts-node), from code
 * Pulumi serializes into the state. This loads one of our TypeScript modules
 * there by registering tsx first. It must capture nothing but its argument.
 */
export function loadTypeScriptModule(modulePath: string): any {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require(require.resolve("tsx/cjs/api", { paths: [modulePath] })).register();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(modulePath);
}

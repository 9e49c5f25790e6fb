/**
 * Where the fleet's files are, relative to the project folder: the one place
 * these paths are written (the program's config default, the CLI, the signup
 * service and the shard manifest all import them).
 */
export const SHARDS_MANIFEST = "tenants/shards.yaml";
export const DEFAULT_TENANTS_FILE = "tenants/tenants.yaml";

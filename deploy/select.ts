/**
 * Which shards a deployment covers: one named shard, every shard, or the
 * shards a change touched since a git ref (`--changed-since`), which is how
 * CI previews a pull request and deploys a merge. A shard is touched when
 * its tenants file or its stack's config file (`Pulumi.<env>-<shard>.yaml`)
 * changed, or when tenants/shards.yaml gained it; a change to the program
 * itself (index.ts, infra/, seed/, ...) touches every shard.
 */
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { parse } from "yaml";
import { SHARDS_MANIFEST, shardsManifestSchema, type Shard, type ShardsManifest } from "../tenants/shards";
import { errorMessage } from "../lib/errors";

/** Files (relative to the project folder) whose change can change what every stack deploys. */
const PROGRAM_FILES = [/^index\.ts$/, /^Pulumi\.yaml$/, /^package(-lock)?\.json$/, /^tsconfig\.json$/, /^infra\//, /^seed\//, /^tenants\/[^/]+\.ts$/];

export interface Selection {
  shards: Shard[];
  /** One line for people: why these shards. */
  reason: string;
}

function git(projectDir: string, args: string[]): string {
  try {
    return execFileSync("git", args, { cwd: projectDir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new Error(`git ${args.join(" ")} failed: ${stderr.trim() || String(error)}`);
  }
}

/** Files changed between the merge base of `ref` and HEAD and the working tree, relative to the project folder. */
function changedFiles(projectDir: string, ref: string): { base: string; files: string[] } {
  let base: string;
  try {
    base = git(projectDir, ["merge-base", ref, "HEAD"]).trim();
  } catch (error) {
    throw new Error(
      `cannot compare with "${ref}": ${errorMessage(error).split("\n")[0]}; fetch it first (git fetch origin <branch>; in GitHub Actions, actions/checkout with fetch-depth: 0)`,
    );
  }
  const files = git(projectDir, ["diff", "--name-only", "--relative", "--no-renames", base, "--"]).split("\n").filter(Boolean);
  return { base, files };
}

/** The shards a change since `ref` touched (see the module comment). A ref of zeros (a new branch) means every shard. */
export function shardsChangedSince(projectDir: string, manifest: ShardsManifest, environment: string, ref: string): Selection {
  if (/^0*$/.test(ref)) return { shards: manifest.shards, reason: `no earlier commit to compare with ("${ref}"): every shard` };
  const { base, files } = changedFiles(projectDir, ref);
  const program = files.find((file) => PROGRAM_FILES.some((pattern) => pattern.test(file)));
  if (program !== undefined) return { shards: manifest.shards, reason: `the program changed since ${ref} (${program}): every shard` };
  const changed = new Set(files.map((file) => resolve(projectDir, file)));
  const added = files.includes(SHARDS_MANIFEST) ? shardsAddedSince(projectDir, manifest, base) : new Set<string>();
  const shards = manifest.shards.filter(
    (shard) =>
      changed.has(resolve(projectDir, shard.file)) || changed.has(resolve(projectDir, `Pulumi.${environment}-${shard.name}.yaml`)) || added.has(shard.name),
  );
  return { shards, reason: `${shards.length} shard(s) changed since ${ref} (${files.length} file(s) changed)` };
}

/** Shards (by name) that the manifest at `base` did not have, or had with another file. */
function shardsAddedSince(projectDir: string, manifest: ShardsManifest, base: string): Set<string> {
  let before: ShardsManifest | undefined;
  try {
    before = shardsManifestSchema.parse(parse(git(projectDir, ["show", `${base}:./${SHARDS_MANIFEST}`])));
  } catch {
    before = undefined; // no manifest (or an invalid one) then: every shard is new
  }
  const old = new Map((before?.shards ?? []).map((shard) => [shard.name, resolve(projectDir, shard.file)]));
  return new Set(manifest.shards.filter((shard) => old.get(shard.name) !== resolve(projectDir, shard.file)).map((shard) => shard.name));
}

/** `--shard NAME` (repeatable), or every shard. */
export function namedShards(manifest: ShardsManifest, names: readonly string[]): Selection {
  if (names.length === 0) return { shards: manifest.shards, reason: "every shard" };
  const unknown = names.filter((name) => !manifest.shards.some((shard) => shard.name === name));
  if (unknown.length > 0) {
    throw new Error(
      `no shard ${unknown.map((name) => `"${name}"`).join(", ")} in ${SHARDS_MANIFEST} (shards: ${manifest.shards.map((shard) => shard.name).join(", ")})`,
    );
  }
  return { shards: manifest.shards.filter((shard) => names.includes(shard.name)), reason: "the named shard(s)" };
}

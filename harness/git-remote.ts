/**
 * A tenants repository for tests of git mode: a bare repository as the
 * remote, and a person's clone of it that pushed the first commit, as a
 * team's repository would start. Real git, configured per call (no global
 * identity or signing needed).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** `git ARGS` in `dir` as "A Person", without commit signing; returns its output. */
export function git(dir: string, ...args: string[]): string {
  return execFileSync("git", ["-c", "user.name=A Person", "-c", "user.email=person@example.com", "-c", "commit.gpgsign=false", ...args], {
    cwd: dir,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

export interface TenantsRemote {
  /** The bare repository (branch main). */
  remote: string;
  /** The person's clone, which pushed the first commit. */
  person: string;
}

/**
 * `root/remote.git` and `root/person`; the person commits `files` (path in
 * the repository: text) with `message` and pushes them to main.
 */
export function createTenantsRemote(root: string, files: Record<string, string>, message: string): TenantsRemote {
  const remote = join(root, "remote.git");
  const person = join(root, "person");
  mkdirSync(remote);
  git(remote, "init", "--quiet", "--bare", "--initial-branch=main");
  git(root, "clone", "--quiet", remote, person);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(person, path)), { recursive: true });
    writeFileSync(join(person, path), text);
  }
  git(person, "add", ".");
  git(person, "commit", "--quiet", "-m", message);
  git(person, "push", "--quiet", "origin", "HEAD:main");
  return { remote, person };
}

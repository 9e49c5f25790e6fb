/**
 * A second checkout of this project in another folder, as CI's workspace or
 * the signup service's clone would be: every file git knows (as it is in the
 * working tree), `node_modules` shared by a link, and the stack's config file
 * copied, since `Pulumi.<stack>.yaml` lives beside the program.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PROJECT_DIR } from "../engine/paths";

export function cloneCheckout(name: string): string {
  const parent = mkdtempSync(join(tmpdir(), `dgp-clone-${name}-`));
  // mkdtemp makes it 0700; the embedded PostgreSQL runs as another user and must reach .data/ inside.
  chmodSync(parent, 0o755);
  const target = join(parent, "checkout");
  const files = execFileSync("git", ["-C", PROJECT_DIR, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], { encoding: "utf8" })
    .split("\0")
    .filter((file) => file !== "" && existsSync(join(PROJECT_DIR, file)) && file !== "node_modules");
  for (const file of files) {
    mkdirSync(dirname(join(target, file)), { recursive: true });
    copyFileSync(join(PROJECT_DIR, file), join(target, file));
  }
  symlinkSync(join(PROJECT_DIR, "node_modules"), join(target, "node_modules"));
  copyStackConfig(name, target);
  return target;
}

/** Copies `Pulumi.<stack>.yaml` (the stack's config, secrets encrypted) into another checkout. */
export function copyStackConfig(stack: string, checkout: string): void {
  const file = `Pulumi.${stack}.yaml`;
  if (existsSync(join(PROJECT_DIR, file))) copyFileSync(join(PROJECT_DIR, file), join(checkout, file));
}

/**
 * toolchain/build.sh run for real with fakes standing in for the compiler
 * (and for an installed `pulumi`), so nothing is really built (the real build
 * takes 15 minutes): the fake `go`, the environment the script runs in, and
 * what the fake compiled.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export const BUILD = join(__dirname, "..", "..", "toolchain", "build.sh");

/**
 * A fake `go`: answers `go env` and `go build -o OUT`; OUT is a script that
 * prints `prints`, and each OUT is logged to $FAKE_GO_LOG. A build waits for
 * $FAKE_GO_BARRIER to exist when that is set, so a test can hold it
 * mid-build, and fails when $FAKE_GO_FAIL is set.
 */
export function fakeGo(prints: string): string {
  return `#!/bin/sh
case "$1" in
  env) case "$2" in GOVERSION) echo go1.99-fake ;; GOOS) echo linux ;; GOARCH) echo amd64 ;; esac ;;
  build)
    out=""
    while [ $# -gt 0 ]; do [ "$1" = "-o" ] && out="$2"; shift; done
    echo "$out" >> "$FAKE_GO_LOG"
    while [ -n "$FAKE_GO_BARRIER" ] && [ ! -e "$FAKE_GO_BARRIER" ]; do sleep 0.05; done
    [ -n "$FAKE_GO_FAIL" ] && { echo "fake compile error" >&2; exit 1; }
    printf '#!/bin/sh\\necho ${prints}\\n' > "$out"
    chmod 755 "$out" ;;
esac
`;
}

/** Writes an executable script, making its folder. */
export function executable(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, 0o755);
}

/** build.sh's environment: `binDirs` first on PATH, then node and the system; HOME, the toolchain cache and the fake go's log in `root`. */
export function buildEnv(root: string, binDirs: string[], extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: `${binDirs.join(":")}:${dirname(process.execPath)}:/usr/bin:/bin`,
    HOME: root,
    DGP_TOOLCHAIN_CACHE: join(root, "cache"),
    FAKE_GO_LOG: join(root, "go.log"),
    ...extra,
  };
}

/** Every OUT the fake go has built in this environment, in order. */
export function goBuilds(env: NodeJS.ProcessEnv): string[] {
  return existsSync(env.FAKE_GO_LOG!) ? readFileSync(env.FAKE_GO_LOG!, "utf8").trim().split("\n") : [];
}

#!/usr/bin/env bash
# Builds (or reuses) actionlint, the GitHub Actions workflow linter, from the
# Go module proxy, the way build.sh builds the Pulumi CLI: once per version and
# Go toolchain, into the toolchain cache, under a build lock.
#
#   ACTIONLINT=$(bash toolchain/actionlint.sh | tail -1); "$ACTIONLINT" .github/workflows/*.yml
#
# Progress goes to stderr; the last line of stdout is the binary's absolute path.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ACTIONLINT_VERSION="v1.7.12"        # github.com/rhysd/actionlint

# shellcheck source=toolchain/lock.sh
. "$HERE/lock.sh"

log() { printf '[actionlint] %s\n' "$*" >&2; }
die() { printf '[actionlint] ERROR: %s\n' "$*" >&2; exit 1; }

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "go not found on PATH (need Go >= 1.25; e.g. export PATH=/usr/local/go/bin:\$PATH)"

key="actionlint-${ACTIONLINT_VERSION}_$(go env GOVERSION)_$(go env GOOS)-$(go env GOARCH)"
cache_root="${DGP_TOOLCHAIN_CACHE:-$HOME/.cache/drivergigspro-toolchain}"
bindir="$cache_root/$key/bin"

install_actionlint() {
  if [ -x "$bindir/actionlint" ]; then
    log "cached: $bindir/actionlint"
    return
  fi
  log "building github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
  local t0=$SECONDS tmp
  mkdir -p "$bindir"
  # go install into a folder of its own, then one atomic mv into place.
  tmp="$(mktemp -d "$bindir/.actionlint.XXXXXX")"
  GOBIN="$tmp" GOFLAGS="${GOFLAGS:-}" CGO_ENABLED=0 go install -trimpath "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" \
    || { rm -rf "$tmp"; die "go install of actionlint $ACTIONLINT_VERSION failed"; }
  mv "$tmp/actionlint" "$bindir/actionlint"
  rmdir "$tmp"
  log "built in $((SECONDS - t0))s"
}

with_exclusive_lock "$cache_root/$key/build.lock" install_actionlint
printf '%s\n' "$bindir/actionlint"

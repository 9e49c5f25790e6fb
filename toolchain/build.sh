#!/usr/bin/env bash
# Builds (or reuses) the offline Pulumi toolchain from Go modules.
#
#   BIN=$(bash toolchain/build.sh | tail -1); export PATH="$BIN:$PATH"
#   bash toolchain/build.sh --cached-only   # the bin dir if already built, else exit 3
#
# Progress goes to stderr; the last line of stdout is the absolute bin dir.
# See toolchain/README.md for what is built and why.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_DIR="${DGP_PROJECT_DIR:-$(cd "$HERE/.." && pwd)}"

# Keep these in step with package.json (@pulumi/pulumi) and the go.mod files.
PULUMI_VERSION="v3.259.0"           # CLI: github.com/pulumi/pulumi/pkg/v3
LANGHOST_VERSION="v3.68.0"          # Node.js language host: see README (newer ones are not served)
RANDOM_VERSION="4.21.2"             # plugin version @pulumi/random asks for (package.json "pulumi" block)

CACHED_ONLY=false
case "${1:-}" in
  "") ;;
  --cached-only) CACHED_ONLY=true ;;
  *) printf 'usage: bash toolchain/build.sh [--cached-only]\n' >&2; exit 2 ;;
esac

# shellcheck source=toolchain/lock.sh
. "$HERE/lock.sh"

log() { printf '[toolchain] %s\n' "$*" >&2; }
die() { printf '[toolchain] ERROR: %s\n' "$*" >&2; exit 1; }

# version_at_least HAVE WANT: HAVE (e.g. v3.260.1) is a release of WANT or newer.
# Pre-releases and builds (v3.260.0-alpha.1, +dirty) count as their release.
version_at_least() {
  local have="${1#v}" want="${2#v}"
  have="${have%%[-+]*}"
  [[ "$have" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || return 1
  [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -n1)" = "$want" ]
}

# 1. A pulumi on PATH of $PULUMI_VERSION or newer wins (e.g. an official
#    install): used as is. Of what an engine run needs besides it, only what
#    that install lacks is built: an official install ships the Node.js
#    language host and the dynamic-provider script next to the binary; the
#    random plugin is found on PATH or in PULUMI_HOME (`pulumi plugin install
#    resource random <version>`), else the engine would try to download it.
ONPATH_DIR=""
ONPATH_MISSING=()
if command -v pulumi >/dev/null 2>&1; then
  have="$(pulumi version 2>/dev/null || true)"
  if version_at_least "$have" "$PULUMI_VERSION"; then
    ONPATH_DIR="$(cd "$(dirname "$(command -v pulumi)")" && pwd)"
    for plugin in pulumi-language-nodejs pulumi-resource-pulumi-nodejs pulumi-resource-random; do
      [ -x "$ONPATH_DIR/$plugin" ] || command -v "$plugin" >/dev/null 2>&1 && continue
      [ "$plugin" = pulumi-resource-random ] && [ -e "${PULUMI_HOME:-$HOME/.pulumi}/plugins/resource-random-v${RANDOM_VERSION}/pulumi-resource-random" ] && continue
      ONPATH_MISSING+=("$plugin")
    done
    if [ ${#ONPATH_MISSING[@]} -eq 0 ]; then
      log "using pulumi $have already on PATH ($ONPATH_DIR)"
      printf '%s\n' "$ONPATH_DIR"
      exit 0
    fi
    log "using pulumi $have already on PATH ($ONPATH_DIR); it lacks ${ONPATH_MISSING[*]}: adding our own"
  else
    log "pulumi on PATH is '${have:-unknown}', older than $PULUMI_VERSION (or unreadable): building our own"
  fi
fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "go not found on PATH (need Go >= 1.25; e.g. export PATH=/usr/local/go/bin:\$PATH)"
command -v node >/dev/null 2>&1 || die "node not found on PATH (the language host and the dynamic provider run node)"

gover="$(go env GOVERSION)"
platform="${gover}_$(go env GOOS)-$(go env GOARCH)"
if [ -n "$ONPATH_DIR" ]; then
  key="plugins_langhost-${LANGHOST_VERSION}_random-${RANDOM_VERSION}_${platform}"
else
  key="pulumi-${PULUMI_VERSION}_langhost-${LANGHOST_VERSION}_random-${RANDOM_VERSION}_${platform}"
fi
cache_root="${DGP_TOOLCHAIN_CACHE:-$HOME/.cache/drivergigspro-toolchain}"
bindir="$cache_root/$key/bin"
if $CACHED_ONLY && [ ! -d "$bindir" ]; then
  log "not built yet; run: npm run toolchain"
  exit 3
fi
mkdir -p "$bindir"
bindir="$(cd "$bindir" && pwd)"

# The go.mod/go.sum files are complete and pin everything: -mod=readonly makes
# a build fail rather than quietly edit them. Missing modules are still
# downloaded from the proxy into the default module cache.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly"
export CGO_ENABLED="${CGO_ENABLED:-0}"

build() { # build MODULE_DIR PACKAGE OUTPUT VERSION_LDFLAG
  local dir="$1" pkg="$2" out="$3" ldx="$4"
  if [ -x "$bindir/$out" ]; then
    log "$out: cached"
    return
  fi
  if $CACHED_ONLY; then
    log "$out: not built yet; run: npm run toolchain"
    exit 3
  fi
  log "$out: building $pkg (cold builds take minutes)"
  local t0=$SECONDS tmp
  # A folder of its own next to the target: the final mv is an atomic rename,
  # and no other build uses the same name.
  tmp="$(mktemp -d "$bindir/.$out.XXXXXX")"
  ( cd "$HERE/$dir" && go build -trimpath -ldflags "-s -w -X $ldx" -o "$tmp/$out" "$pkg" ) \
    || { rm -rf "$tmp"; die "go build of $pkg failed (module dir toolchain/$dir)"; }
  mv "$tmp/$out" "$bindir/$out"
  rmdir "$tmp"
  log "$out: built in $((SECONDS - t0))s"
}

build_all() {
  build pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi pulumi \
    "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"
  build language-nodejs github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs pulumi-language-nodejs \
    "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGHOST_VERSION"
  build provider-random drivergigspro.local/toolchain/provider-random pulumi-resource-random \
    "main.version=$RANDOM_VERSION"
  write_dynamic_provider
}

# The dynamic-provider plugin is a script in the official distribution; ours
# resolves @pulumi/pulumi from the program's directory (the engine's working
# directory), falling back to this project's node_modules.
write_dynamic_provider() {
  local dyn="$bindir/pulumi-resource-pulumi-nodejs" tmp
  tmp="$(mktemp "$dyn.XXXXXX")"
  cat > "$tmp" <<EOF
#!/bin/sh
# Generated by toolchain/build.sh: runs @pulumi/pulumi's dynamic provider.
set -e
mod=\$(node -e 'process.stdout.write(require.resolve("@pulumi/pulumi/cmd/dynamic-provider", {paths: [process.cwd(), process.argv[1]]}))' "$PROJECT_DIR") || {
  echo "pulumi-resource-pulumi-nodejs: @pulumi/pulumi not found from \$PWD or $PROJECT_DIR (run npm ci)" >&2
  exit 1
}
exec node "\$mod" "\$@"
EOF
  chmod 755 "$tmp"
  mv "$tmp" "$dyn"
}

# The pulumi on PATH plus what it lacks (step 1): the missing plugins are
# built into a folder of their own (keyed like a full build, without the CLI),
# and a folder of links puts them next to that pulumi on one PATH entry.
link() { # link TARGET NAME: an atomic rename, so a concurrent run never sees it missing
  local tmp="$2.$$.tmp"
  ln -sfn "$1" "$tmp" && mv -fT "$tmp" "$2"
}

use_onpath_pulumi() {
  local overlay plugin
  for plugin in "${ONPATH_MISSING[@]}"; do
    case "$plugin" in
      pulumi-language-nodejs) build language-nodejs github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs pulumi-language-nodejs \
        "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGHOST_VERSION" ;;
      pulumi-resource-random) build provider-random drivergigspro.local/toolchain/provider-random pulumi-resource-random "main.version=$RANDOM_VERSION" ;;
      pulumi-resource-pulumi-nodejs) write_dynamic_provider ;;
    esac
  done
  overlay="$cache_root/onpath-$(printf '%s %s' "$ONPATH_DIR" "$have" | sha256sum | cut -c1-16)/bin"
  mkdir -p "$overlay"
  link "$ONPATH_DIR/pulumi" "$overlay/pulumi"
  for plugin in "${ONPATH_MISSING[@]}"; do link "$bindir/$plugin" "$overlay/$plugin"; done
  log "ready: $overlay (pulumi $have from $ONPATH_DIR, with our ${ONPATH_MISSING[*]})"
  printf '%s\n' "$overlay"
}

if [ -n "$ONPATH_DIR" ]; then
  if $CACHED_ONLY; then
    use_onpath_pulumi
  else
    with_exclusive_lock "$cache_root/$key/build.lock" use_onpath_pulumi
  fi
  exit 0
fi

if $CACHED_ONLY; then
  build_all
else
  # Two checkouts (or terminals) building at once: the second waits, then finds everything cached.
  with_exclusive_lock "$cache_root/$key/build.lock" build_all
fi

got="$("$bindir/pulumi" version)"
[ "$got" = "$PULUMI_VERSION" ] || die "built pulumi reports '$got', expected $PULUMI_VERSION"
log "ready: $bindir (pulumi $got)"
printf '%s\n' "$bindir"

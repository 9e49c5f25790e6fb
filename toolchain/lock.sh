# Sourced by toolchain/build.sh (and its test): one build per toolchain
# folder at a time, so two checkouts building at once do not break each other.
#
#   with_exclusive_lock LOCK_FILE COMMAND [ARG...]
#
# Takes an exclusive flock(1) on LOCK_FILE (made if missing), waiting with a
# message on stderr while another process holds it, runs COMMAND, and lets go.
# The kernel drops the lock when the holder exits, however it exits, so a
# killed build never leaves a stale lock behind.

with_exclusive_lock() {
  local lock="$1" fd status
  shift
  command -v flock >/dev/null 2>&1 || { printf '[toolchain] ERROR: flock not found (util-linux)\n' >&2; return 1; }
  mkdir -p "$(dirname "$lock")"
  exec {fd}>>"$lock"
  if ! flock --nonblock "$fd"; then
    printf '[toolchain] another toolchain build is running (lock %s); waiting for it to finish\n' "$lock" >&2
    flock "$fd"
  fi
  # Not "cmd || status=$?": that would switch off the caller's set -e inside COMMAND.
  "$@"
  status=$?
  flock --unlock "$fd"
  exec {fd}>&-
  return "$status"
}

#!/usr/bin/env bash
# Installs the Node packages of the interop tests (tests/interop/package.json,
# pinned by its package-lock.json: many-level 2.0.0, abstract-level 1.0.4,
# memory-level, classic-level, tape) into tests/interop/node_modules with
# `npm ci`. Idempotent: skipped when node_modules/.lock-hash matches the
# lock file's hash, so a second run needs no network.
#
#   scripts/install-node-packages.sh [--force]
#
# Exit status: 0 installed or up to date; 77 node or npm is missing (CTest
# treats 77 as "skipped"); anything else, the install failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$here/tests/interop"
force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-node-packages: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-node-packages: '$tool' not found on PATH; install Node.js (scripts/install-deps.sh does) to run the interop tests" >&2
    exit 77
  fi
done

lock="$dir/package-lock.json"
if [[ ! -f $lock ]]; then
  echo "install-node-packages: $lock is missing" >&2
  exit 1
fi

# The lock file decides what is installed; the Node version decides the
# binary classic-level picks, so both go into the hash.
hash_of() {
  { cat "$lock" "$dir/package.json"; node --version; } | sha256sum | cut -d' ' -f1
}
want="$(hash_of)"
stamp="$dir/node_modules/.lock-hash"

# One install at a time (CTest may start several fixtures' users at once).
# (The lock file lives outside the tree: npm ci empties node_modules.)
lockfile="${TMPDIR:-/tmp}/many-level-node-packages-$(printf '%s' "$dir" | sha256sum | cut -c1-16).lock"
exec 9>"$lockfile"
if command -v flock >/dev/null 2>&1; then
  flock -w 600 9 || { echo "install-node-packages: timed out waiting for another install" >&2; exit 1; }
fi

if [[ $force -eq 0 && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
  echo "install-node-packages: tests/interop/node_modules is up to date ($(node --version), npm $(npm --version))"
  exit 0
fi

echo "install-node-packages: npm ci in tests/interop ($(node --version), npm $(npm --version))"
cd "$dir"
# npm ci deletes node_modules first, stamp included, so a failed install
# never looks up to date.
npm ci --no-audit --no-fund --loglevel=error
# The packages must load: classic-level needs its prebuilt binary for this
# platform (shipped inside the npm package; nothing is downloaded).
node -e "require('many-level'); require('memory-level'); require('classic-level'); require('abstract-level/test'); require('tape')"
echo "$want" > "$stamp"
echo "install-node-packages: done"

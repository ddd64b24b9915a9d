#!/usr/bin/env bash
# The many-level program against the Node reference host (many-level 2.0.0,
# tests/interop/node-host.js): the guest commands work as they do against
# our host, and the extension's commands say clearly that this host has no
# change feed and no statistics (exit 1). Skipped (77) without node or the
# interop packages.
#
#   node_host.sh /path/to/many-level
source "$(dirname "$0")/lib.sh"

INTEROP=$(cd "$(dirname "$0")/../interop" && pwd)
if ! command -v node >/dev/null || [[ ! -f $INTEROP/node_modules/many-level/package.json ]]; then
  echo "SKIP: node or tests/interop/node_modules is not installed"
  exit 77
fi

# The Node host prints "listening ADDR" on stdout; it exits when its stdin
# (a FIFO held open here) closes, so it cannot outlive this script.
mkfifo "$TMP/node.stdin"
node "$INTEROP/node-host.js" --listen tcp://127.0.0.1:0 --exit-on-stdin-eof \
  <"$TMP/node.stdin" >"$TMP/node.out" 2>"$TMP/node.log" &
PIDS+=("$!")
exec 3>"$TMP/node.stdin"
deadline=$((SECONDS + 60))
until grep -q '^listening ' "$TMP/node.out"; do
  ((SECONDS < deadline)) || fail "the Node host did not listen within 60 s"
  sleep 0.1
done
C=(--connect "$(sed -n 's/^listening //p' "$TMP/node.out" | head -1)")

# The base protocol, as ever.
expect_ok put a 1 "${C[@]}"
expect_ok put b 2 "${C[@]}"
expect_out 1 get a "${C[@]}"
expect_out $'a\t1\nb\t2' ls "${C[@]}"
expect_ok del a "${C[@]}"

# The extension's commands: a clear no, not a hang.
expect_status 1 "the host has no change feed (a Node many-level host?)" watch "${C[@]}"
expect_status 1 "the host has no change feed (a Node many-level host?)" watch --json --prefix users "${C[@]}"
expect_status 1 "the host has no statistics (a Node many-level host?)" stats "${C[@]}"
expect_status 1 "the host has no statistics (a Node many-level host?)" stats --json "${C[@]}"
expect_out $'b\t2' ls "${C[@]}"
echo "node_host: ok"

#!/usr/bin/env bash
# The main job: install what is missing, build, then serve a SQLite database
# (./many-level.db) with `many-level serve` and let guests use it: the
# quickstart program and a few command-line guest commands.
# MANY_LEVEL_DB and MANY_LEVEL_ADDR override the defaults below.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/build.sh many-level quickstart

db=${MANY_LEVEL_DB:-./many-level.db}
address=${MANY_LEVEL_ADDR:-tcp://127.0.0.1:9000}
many_level=build/examples/many-level/many-level

"$many_level" serve --db "$db" --listen "$address" 2> >(sed -u 's/^/[host] /' >&2) &
host=$!
trap 'kill -TERM "$host" 2>/dev/null || true; wait "$host" 2>/dev/null || true' EXIT

# Ready once a guest command gets an answer (found, 0, or not found, 3).
for _ in $(seq 100); do
  status=0
  "$many_level" get __ready__ --connect "$address" >/dev/null 2>&1 || status=$?
  if [[ $status -eq 0 || $status -eq 3 ]]; then break; fi
  if ! kill -0 "$host" 2>/dev/null; then echo "run-main: the host did not start" >&2; exit 1; fi
  sleep 0.1
done

echo "== a C++ guest program (examples/quickstart) =="
build/examples/quickstart/quickstart --connect "$address"

echo "== guest commands of the many-level program =="
set -x
"$many_level" put visits "$(date -u +%FT%TZ)" --connect "$address"
"$many_level" get visits --connect "$address"
printf '%s\n' '{"type":"put","key":"color:sky","value":"blue"}' '{"type":"put","key":"color:grass","value":"green"}' |
  "$many_level" batch --connect "$address"
"$many_level" ls --gte color: --lt 'color;' --connect "$address"
"$many_level" ls --keys --connect "$address"
set +x
echo "== done: the data stays in $db; stop the host =="

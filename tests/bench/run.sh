#!/usr/bin/env bash
# Side-by-side benchmark of many-level for C++ against the Node reference
# (many-level 2.0.0), in one run, on loopback. See docs/BENCHMARKS.md.
#
#   tests/bench/run.sh [--scale S] [--repeat R] [--out DIR] [--many-level PATH]
#                      [--idle-guests N] [--chart PNG] [--no-chart]
#                      [--node-ref classic|memory|best] [--timeout SECS]
#
# For each round (--repeat, default 1) it runs, each pair against a fresh
# host on a fresh database in a temporary directory:
#   loopback                      many-level bench --ping-pong (the floor)
#   sqlite-in-process             many-level bench --sqlite (no protocol)
#   node-guest/node-host-memory   node-bench.js  x node-host.js --backend memory
#   node-guest/node-host-classic  node-bench.js  x node-host.js --backend classic
#   cpp-guest/cpp-host-sqlite     many-level bench x many-level serve --db
#   cpp-guest/cpp-host-sqlite-tls the same over tls:// (certificates made by
#                                 openssl for the run; skipped without it)
#   node-guest/cpp-host-sqlite    node-bench.js  x many-level serve --db
#   cpp-guest/node-host-classic   many-level bench x node-host.js --backend classic
# Every host's peak RSS (VmHWM of /proc/PID/status) is read just before it is
# stopped. In the first round, after its workloads, the C++ host also gets
# --idle-guests guests (default 1000) connected at once (idle-guests.js), and
# its RSS is read while they are connected.
#
# All JSON lines (workloads, host memory, load average before each step, the
# machine) go to DIR/results.jsonl; report.py prints the table of ratios with
# PASS/FAIL per target and writes the chart (DIR/benchmarks.png unless
# --chart/--no-chart). With R > 1 the report takes each pair's best round.
#
# Exit status: 0 when every expected line was produced (targets missed are
# reported, never an error), 1 when a step failed, 2 on bad usage, 77 when
# node or the Node packages are missing. Every process it starts is stopped
# on exit (the hosts run in process groups of their own) and every step is
# bounded by --timeout (default 900 s).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

scale=1
repeat=1
out=""
many_level="${MANY_LEVEL:-}"
idle_guests=1000
chart=""
no_chart=0
node_ref=classic
step_timeout=900

usage() { # usage STATUS: the synopsis, on stdout for --help, else stderr
  if [[ $1 -eq 0 ]]; then
    sed -n '5,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  else
    sed -n '5,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  fi
  exit "$1"
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --scale) scale="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --many-level) many_level="$2"; shift 2 ;;
    --idle-guests) idle_guests="$2"; shift 2 ;;
    --chart) chart="$2"; shift 2 ;;
    --no-chart) no_chart=1; shift ;;
    --node-ref) node_ref="$2"; shift 2 ;;
    --timeout) step_timeout="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage 2 ;;
  esac
done
[[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --repeat needs a positive integer" >&2; exit 2; }
[[ $idle_guests =~ ^[0-9]+$ ]] || { echo "run.sh: --idle-guests needs a number" >&2; exit 2; }

# ---- What it needs -----------------------------------------------------------

if ! command -v node >/dev/null 2>&1; then
  echo "run.sh: SKIP: node not found on PATH"
  exit 77
fi
if [[ ! -d $repo/tests/interop/node_modules/many-level ]]; then
  echo "run.sh: SKIP: tests/interop/node_modules is missing (run scripts/install-node-packages.sh)"
  exit 77
fi
if [[ -z $many_level ]]; then
  for candidate in "$repo"/build-bench/examples/many-level/many-level "$repo"/build/examples/many-level/many-level; do
    if [[ -x $candidate ]]; then many_level=$candidate; break; fi
  done
fi
if [[ -z $many_level || ! -x $many_level ]]; then
  echo "run.sh: no many-level program: build it (cmake --build BUILD --target many-level) and pass --many-level PATH" >&2
  exit 1
fi

if [[ -z $out ]]; then
  out="$(mktemp -d "${TMPDIR:-/tmp}/many-level-bench.XXXXXX")"
fi
mkdir -p "$out"
results="$out/results.jsonl"
: >"$results"
[[ $no_chart -eq 1 ]] && chart="" || chart="${chart:-$out/benchmarks.png}"

# 1000 guests need 1000 descriptors in the host and in idle-guests.js.
want_fds=$((idle_guests + 512))
if (($(ulimit -n) < want_fds)); then
  ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if (($(ulimit -n) < want_fds)); then
    echo "run.sh: warning: ulimit -n is $(ulimit -n), fewer than the $want_fds descriptors $idle_guests idle guests need" >&2
  fi
fi

# ---- Processes: every host in a process group of its own, always stopped ----

tmp="$(mktemp -d "${TMPDIR:-/tmp}/many-level-bench-tmp.XXXXXX")"

# The TLS pair's certificates: a CA and a host certificate for 127.0.0.1.
tls=0
if command -v openssl >/dev/null 2>&1; then
  CERTS=$tmp/certs
  mkdir -p "$CERTS"
  source "$repo/tests/tls_certs.sh"
  if make_ca ca && make_cert host ca 127.0.0.1 "IP:127.0.0.1"; then tls=1; fi
fi
[[ $tls -eq 1 ]] || echo "run.sh: no openssl (or it failed): the TLS pair is skipped" >&2
host_pid=""
host_name=""
host_addr=""
step_pid=""
host_idle=0  # idle guests the current host has had (for its RSS line)
failed=0

alive() { # alive PID: running, not a zombie waiting to be reaped
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

kill_group() { # kill_group PID: TERM its group, KILL after 5 s; reaps it
  local pid=$1 i
  if alive "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      echo "run.sh: pid $pid ignored SIGTERM for 5 s: SIGKILL" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
  fi
  wait "$pid" 2>/dev/null || true
  kill -KILL -- "-$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  if [[ -n $step_pid ]]; then kill_group "$step_pid"; step_pid=""; fi
  if [[ -n $host_pid ]]; then kill_group "$host_pid"; host_pid=""; fi
  { exec 8>&-; } 2>/dev/null || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

status_kb() { # status_kb PID FIELD: a kB field of /proc/PID/status
  sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null
}

note() { echo "run.sh: $*" >&2; }

record_load() { # record_load STEP: the load average before a step
  printf '{"metric":"load","step":"%s","loadavg":"%s"}\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$results"
  note "$1 (load $(cut -d' ' -f1-3 /proc/loadavg))"
}

# start_host NAME CMD...: starts a host, waits for "listening ADDR".
start_host() {
  host_name=$1
  shift
  local log="$tmp/$host_name"
  rm -f "$log.out" "$log.err" "$tmp/host.stdin"
  mkfifo "$tmp/host.stdin"
  # stdin on a FIFO held open by this script: node-host.js --exit-on-stdin-eof
  # dies with us even if we are killed.
  setsid "$@" <"$tmp/host.stdin" >"$log.out" 2>"$log.err" &
  host_pid=$!
  exec 8>"$tmp/host.stdin"
  local deadline=$((SECONDS + 30))
  host_addr=""
  while :; do
    host_addr=$(cat "$log.out" "$log.err" 2>/dev/null |
      grep -m1 -oE '(^|[[:space:]:])listening[[:space:]]+((tcp|tls)://[^[:space:]]+|unix:[^[:space:]]+)' |
      sed -E 's/.*listening[[:space:]]+//') || true
    [[ -n $host_addr ]] && return 0
    if ! alive "$host_pid"; then
      note "host $host_name exited before listening:"
      tail -n 20 "$log.err" >&2
      wait "$host_pid" 2>/dev/null
      host_pid=""
      return 1
    fi
    if ((SECONDS >= deadline)); then
      note "host $host_name did not listen within 30 s"
      tail -n 20 "$log.err" >&2
      kill_group "$host_pid"
      host_pid=""
      return 1
    fi
    sleep 0.05
  done
}

# stop_host: records the host's peak RSS, then stops it.
stop_host() {
  [[ -n $host_pid ]] || return 0
  local hwm rss ok=1
  hwm=$(status_kb "$host_pid" VmHWM)
  rss=$(status_kb "$host_pid" VmRSS)
  if ! alive "$host_pid"; then
    note "host $host_name died during its run:"
    tail -n 20 "$tmp/$host_name.err" >&2
    ok=0
  fi
  if [[ -n $hwm ]]; then
    printf '{"impl":"%s","metric":"host peak rss","vmhwm_kb":%s,"vmrss_kb":%s,"idle_guests":%s}\n' \
      "$host_name" "$hwm" "${rss:-null}" "$host_idle" >>"$results"
  fi
  kill_group "$host_pid"
  host_pid=""
  { exec 8>&-; } 2>/dev/null || true
  [[ $ok -eq 1 ]]
}

# run_step NAME CMD...: a bounded command whose JSON lines go to the results.
run_step() {
  local name=$1
  shift
  local rc=0
  # In the background and waited for, so that a signal to this script is
  # handled at once (its trap stops the step's process group: timeout's).
  timeout -k 10 "$step_timeout" "$@" </dev/null >"$tmp/step.out" 2>"$tmp/step.err" 8>&- &
  step_pid=$!
  wait "$step_pid" || rc=$?
  step_pid=""
  cat "$tmp/step.out" >>"$results"
  sed 's/^/    /' "$tmp/step.out" >&2
  if [[ $rc -ne 0 ]]; then
    if [[ $rc -eq 124 ]]; then
      note "step $name timed out after ${step_timeout}s:"
    else
      note "step $name failed (status $rc):"
    fi
    tail -n 20 "$tmp/step.err" >&2
    failed=1
  fi
  return $rc
}

# pair GUEST HOST: one guest program against one fresh host.
pair() {
  local guest=$1 host=$2 round=$3
  local impl="$guest/$host" dir="$tmp/db-$guest-$host"
  rm -rf "$dir"
  mkdir -p "$dir"
  record_load "$impl"
  case "$host" in
    node-host-memory) start_host "$host" node "$repo/tests/interop/node-host.js" --exit-on-stdin-eof \
                        --listen tcp://127.0.0.1:0 --backend memory || { failed=1; return; } ;;
    node-host-classic) start_host "$host" node "$repo/tests/interop/node-host.js" --exit-on-stdin-eof \
                         --listen tcp://127.0.0.1:0 --backend classic --path "$dir/classic" || { failed=1; return; } ;;
    cpp-host-sqlite) start_host "$host" "$many_level" serve --db "$dir/bench.db" \
                       --listen tcp://127.0.0.1:0 || { failed=1; return; } ;;
    cpp-host-sqlite-tls) start_host "$host" "$many_level" serve --db "$dir/bench.db" --listen tls://127.0.0.1:0 \
                           --tls-cert "$CERTS/host.pem" --tls-key "$CERTS/host.key" || { failed=1; return; } ;;
  esac
  local tls_options=()
  [[ $host == *-tls ]] && tls_options=(--tls-ca "$CERTS/ca.pem")
  host_name=$impl  # the RSS line names the pair it served
  host_idle=0
  case "$guest" in
    node-guest) run_step "$impl" node "$here/node-bench.js" --connect "$host_addr" --scale "$scale" \
                  --impl "$impl" --timeout "$step_timeout" ;;
    cpp-guest) run_step "$impl" "$many_level" bench --connect "$host_addr" "${tls_options[@]}" --scale "$scale" \
                 --impl "$impl" ;;
  esac
  if [[ $host == cpp-host-sqlite && $guest == cpp-guest && $round -eq 1 && $idle_guests -gt 0 ]]; then
    # The peak of the workloads first, then the same host with idle guests.
    local hwm
    hwm=$(status_kb "$host_pid" VmHWM)
    [[ -n $hwm ]] && printf '{"impl":"%s","metric":"host peak rss before idle guests","vmhwm_kb":%s}\n' \
      "$impl" "$hwm" >>"$results"
    record_load "$idle_guests idle guests on $host"
    host_idle=$idle_guests
    run_step "idle guests" node "$here/idle-guests.js" --connect "$host_addr" --pid "$host_pid" \
      --guests "$idle_guests" --impl "$host" --timeout 120
  fi
  stop_host || failed=1
  rm -rf "$dir"
}

# ---- The machine -----------------------------------------------------------

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
mem_kb=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/meminfo)
gxx=$( (g++ --version 2>/dev/null || echo unknown) | head -n1)
sqlite_version=$(dpkg-query -W -f='${Version}' libsqlite3-0 2>/dev/null ||
  python3 -c 'import sqlite3; print(sqlite3.sqlite_version)' 2>/dev/null || echo unknown)
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $commit != unknown && -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit="$commit+changes"
fi
python3 - "$results" <<EOF
import json, sys
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"metric": "machine", "nproc": int("$(nproc)"), "cpu": """$cpu""",
        "mem_kb": int("${mem_kb:-0}"), "kernel": "$(uname -sr)", "gxx": """$gxx""",
        "node": "$(node --version)", "sqlite": "$sqlite_version", "scale": float("$scale"),
        "repeat": int("$repeat"), "idle_guests": int("$idle_guests"),
        "many_level": "$many_level", "commit": "$commit", "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"}) + "\n")
EOF

note "scale $scale, $repeat round(s), results in $results"

# ---- The runs ----------------------------------------------------------------

for ((round = 1; round <= repeat; round++)); do
  [[ $repeat -gt 1 ]] && note "round $round of $repeat"
  record_load loopback
  run_step loopback "$many_level" bench --ping-pong --scale "$scale" --impl loopback
  record_load sqlite-in-process
  rm -f "$tmp/in-process.db"*
  run_step sqlite-in-process "$many_level" bench --sqlite "$tmp/in-process.db" --scale "$scale" --impl sqlite-in-process
  rm -f "$tmp/in-process.db"*
  pair node-guest node-host-memory "$round"
  pair node-guest node-host-classic "$round"
  pair cpp-guest cpp-host-sqlite "$round"
  [[ $tls -eq 1 ]] && pair cpp-guest cpp-host-sqlite-tls "$round"
  pair node-guest cpp-host-sqlite "$round"
  pair cpp-guest node-host-classic "$round"
done

# ---- The report ------------------------------------------------------------

report_args=(--results "$results" --node-ref "$node_ref" --check-complete)
[[ $idle_guests -gt 0 ]] && report_args+=(--expect-idle)
[[ $tls -eq 1 ]] && report_args+=(--expect-tls)
[[ -n $chart ]] && report_args+=(--chart "$chart")
# The chart wants matplotlib: Debian's python3-matplotlib sits in /usr/bin's
# python3, which a python3 of pyenv or a venv earlier on PATH does not see.
python=python3
if [[ -n $chart ]] && ! python3 -c 'import matplotlib' 2>/dev/null &&
  /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  python=/usr/bin/python3
fi
"$python" "$here/report.py" "${report_args[@]}"
report_rc=$?
note "results: $results${chart:+, chart: $chart}"
if [[ $failed -ne 0 ]]; then
  note "some steps failed (see above)"
  exit 1
fi
exit $report_rc

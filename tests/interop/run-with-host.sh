#!/usr/bin/env bash
# Runs a test command against a host started for it, and always stops the host.
#
#   run-with-host.sh [options] <host command...> -- <test command...>
#   run-with-host.sh [options] --no-host <test command...>
#
# The host command must print a line "listening ADDR" (ADDR being
# tcp://HOST:PORT or unix:PATH) on stdout or stderr once it accepts
# connections; a prefix such as "many-level: " before "listening" is fine.
# In the test command, @ADDR@ is replaced by that address. In both commands
# @TMPDIR@ is replaced by a fresh temporary directory (unix sockets, database
# files), removed at the end.
#
# Options:
#   --ready-timeout SECS  how long the host may take to listen (default 30)
#   --timeout SECS        how long the test may run (default 300)
#   --require PROG        exit 77 (CTest: skipped) if PROG is not on PATH;
#                         may be repeated
#   --check-host-exit     fail unless the host exits with status 0 on SIGTERM
#   --no-host             start no host: just the checks, tokens and timeout
#                         (for a test that starts its own host, e.g. over stdio)
#
# The host runs in a session (process group) of its own with stdin on a FIFO
# held open by this script, so that a host able to notice stdin closing (such
# as node-host.js --exit-on-stdin-eof) dies with this script even if it is
# killed. On any exit, the host's group gets SIGTERM, then SIGKILL after 5 s.
# Exit status: the test's (124 on timeout), or 1 if the host did not come up
# (or, with --check-host-exit, did not exit cleanly), or 77 when skipped.
set -uo pipefail

ready_timeout=30
test_timeout=300
check_host_exit=0
no_host=0
required=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --ready-timeout) ready_timeout="$2"; shift 2 ;;
    --timeout) test_timeout="$2"; shift 2 ;;
    --require) required+=("$2"); shift 2 ;;
    --check-host-exit) check_host_exit=1; shift ;;
    --no-host) no_host=1; shift; break ;;
    --) echo "run-with-host: missing host command" >&2; exit 2 ;;
    -*) echo "run-with-host: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done

host_cmd=()
if [[ $no_host -eq 0 ]]; then
  while [[ $# -gt 0 && $1 != -- ]]; do host_cmd+=("$1"); shift; done
  if [[ $# -eq 0 || ${#host_cmd[@]} -eq 0 ]]; then
    echo "usage: run-with-host.sh [options] <host command...> -- <test command...>" >&2
    exit 2
  fi
  shift
fi
test_cmd=("$@")
if [[ ${#test_cmd[@]} -eq 0 ]]; then
  echo "run-with-host: missing test command after --" >&2
  exit 2
fi

for prog in "${required[@]+"${required[@]}"}"; do
  if ! command -v "$prog" >/dev/null 2>&1; then
    echo "run-with-host: SKIP: '$prog' not found on PATH"
    exit 77
  fi
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/many-level-interop.XXXXXX")"
host_pid=""
host_status=""

alive() { # alive PID: running, not a zombie waiting to be reaped
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

stop_host() {
  [[ -n $host_pid ]] || return 0
  local pid=$host_pid
  host_pid=""
  if alive "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    local i
    for ((i = 0; i < 50; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      echo "run-with-host: host (pid $pid) ignored SIGTERM for 5 s: SIGKILL" >&2
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
      host_status="killed"
    fi
  fi
  # Reap it (it is our child) and learn its status.
  local status=0
  wait "$pid" 2>/dev/null || status=$?
  [[ -n $host_status ]] || host_status=$status
  # Anything else left in its group (it may have started children).
  kill -KILL -- "-$pid" 2>/dev/null || true
}

show_host_log() {
  local lines=${1:-40}
  for f in "$tmp/host.out" "$tmp/host.err"; do
    if [[ -s $f ]]; then
      echo "---- last $lines lines of the host's ${f##*.} ----"
      tail -n "$lines" "$f"
    fi
  done
}

cleanup() {
  local rc=$?
  stop_host
  { exec 8>&-; } 2>/dev/null || true
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

subst() { # subst VALUE: replace the tokens
  local v=${1//@TMPDIR@/$tmp}
  printf '%s' "${v//@ADDR@/$addr}"
}

addr=""
if [[ $no_host -eq 1 ]]; then
  for i in "${!test_cmd[@]}"; do test_cmd[$i]=$(subst "${test_cmd[$i]}"); done
  echo "run-with-host: running (no host): ${test_cmd[*]}"
  timeout -k 10 "$test_timeout" "${test_cmd[@]}" </dev/null
  rc=$?
  [[ $rc -eq 124 ]] && echo "run-with-host: the test timed out after ${test_timeout}s" >&2
  exit "$rc"
fi

for i in "${!host_cmd[@]}"; do host_cmd[$i]=$(subst "${host_cmd[$i]}"); done

mkfifo "$tmp/host.stdin"
if command -v setsid >/dev/null 2>&1; then
  setsid "${host_cmd[@]}" <"$tmp/host.stdin" >"$tmp/host.out" 2>"$tmp/host.err" &
else
  set -m
  "${host_cmd[@]}" <"$tmp/host.stdin" >"$tmp/host.out" 2>"$tmp/host.err" &
  set +m
fi
host_pid=$!
exec 8>"$tmp/host.stdin"
echo "run-with-host: started host (pid $host_pid): ${host_cmd[*]}"

deadline=$((SECONDS + ready_timeout))
while :; do
  addr=$(cat "$tmp/host.out" "$tmp/host.err" 2>/dev/null |
    grep -m1 -oE '(^|[[:space:]:])listening[[:space:]]+(tcp://[^[:space:]]+|unix:[^[:space:]]+)' |
    sed -E 's/.*listening[[:space:]]+//') || true
  [[ -n $addr ]] && break
  if ! alive "$host_pid"; then
    wait "$host_pid" 2>/dev/null; st=$?
    host_pid=""
    echo "run-with-host: the host exited (status $st) before listening" >&2
    show_host_log >&2
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    echo "run-with-host: the host did not print 'listening ADDR' within ${ready_timeout}s" >&2
    show_host_log >&2
    exit 1
  fi
  sleep 0.1
done
echo "run-with-host: host listening at $addr"

for i in "${!test_cmd[@]}"; do test_cmd[$i]=$(subst "${test_cmd[$i]}"); done
echo "run-with-host: running: ${test_cmd[*]}"
timeout -k 10 "$test_timeout" "${test_cmd[@]}" </dev/null 8>&-
rc=$?
if [[ $rc -eq 124 ]]; then
  echo "run-with-host: the test timed out after ${test_timeout}s" >&2
fi

if ! alive "$host_pid"; then
  echo "run-with-host: the host died during the test" >&2
  [[ $rc -eq 0 ]] && rc=1
fi
stop_host
echo "run-with-host: host stopped (status $host_status)"
if [[ $check_host_exit -eq 1 && $host_status != 0 ]]; then
  echo "run-with-host: the host did not exit cleanly on SIGTERM (status $host_status)" >&2
  [[ $rc -eq 0 ]] && rc=1
fi
if [[ $rc -ne 0 && $rc -ne 77 ]]; then
  show_host_log >&2
fi
exit "$rc"

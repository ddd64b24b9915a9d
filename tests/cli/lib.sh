# Shared by the tests in this folder (sourced, not run): a temporary
# directory, the processes a test starts (all stopped on exit, whatever
# happens), hosts started and waited for until they print their address, and
# assertions on exact output and exit statuses.
#
#   source lib.sh /path/to/many-level
#
# Every guest command runs under `timeout`, so a hang fails the test with
# status 124 instead of stalling CTest. KEEP_LOGS=1 keeps the temporary
# directory (hosts' logs, databases) of a failed run.

set -euo pipefail

if [[ $# -lt 1 || ! -x $1 ]]; then
  echo "usage: $0 /path/to/many-level" >&2
  exit 2
fi
ML=$1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/many-level-cli.XXXXXX")
PIDS=()          # every process started in the background, hosts and guests
GUEST_TIMEOUT=30 # seconds a guest command may take

# Stops everything this test started: SIGTERM, then SIGKILL for what is left
# after 5 s, then removes the temporary directory.
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid alive=()
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      alive+=("$pid")
    fi
  done
  local deadline=$((SECONDS + 5))
  for pid in "${alive[@]+"${alive[@]}"}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $status -ne 0 && -n ${KEEP_LOGS:-} ]]; then echo "logs kept in $TMP" >&2; else rm -rf "$TMP"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "FAIL: $*" >&2
  local log
  for log in "$TMP"/*.log; do
    [[ -e $log ]] || continue
    echo "---- $(basename "$log")" >&2
    tail -n 30 "$log" >&2
  done
  exit 1
}

# start_host NAME SERVE-ARGS...: runs `many-level serve SERVE-ARGS` in the
# background, its stderr in $TMP/NAME.log, and waits until it logs
# "listening ADDR"; then HOST_PID and HOST_ADDR are set (the address actually
# bound, e.g. the port chosen for tcp://127.0.0.1:0). Returns 1 (without
# failing the test) if the host exits before listening.
start_host() {
  local name=$1
  shift
  local log=$TMP/$name.log
  : >"$log"
  "$ML" serve "$@" </dev/null >>"$TMP/$name.out" 2>>"$log" &
  HOST_PID=$!
  PIDS+=("$HOST_PID")
  local deadline=$((SECONDS + 30)) line
  while ((SECONDS < deadline)); do
    # Only lines written since this start (the log is emptied above).
    line=$(grep -m1 -o 'listening [^ ]*' "$log" || true)
    if [[ -n $line ]]; then
      HOST_ADDR=${line#listening }
      return 0
    fi
    if ! kill -0 "$HOST_PID" 2>/dev/null; then
      wait "$HOST_PID" 2>/dev/null || true
      return 1
    fi
    sleep 0.05
  done
  fail "host $name did not listen within 30 s"
}

# stop_host PID: SIGTERM, and the host must exit with status 0 within 10 s.
stop_host() {
  local pid=$1 status=0 deadline=$((SECONDS + 10))
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && fail "host $pid did not exit within 10 s of SIGTERM"
  wait "$pid" || status=$?
  [[ $status -eq 0 ]] || fail "host $pid exited with status $status after SIGTERM"
}

# wait_for_log NAME PATTERN [COUNT]: waits (30 s at most) until $TMP/NAME.log
# has COUNT (default 1) lines matching the extended regex PATTERN.
wait_for_log() {
  local log=$TMP/$1.log pattern=$2 count=${3:-1} deadline=$((SECONDS + 30))
  while (($(grep -cE "$pattern" "$log" || true) < count)); do
    ((SECONDS < deadline)) || fail "$1 did not log /$pattern/ $count time(s) within 30 s"
    sleep 0.05
  done
}

# ml ARGS...: a guest command, bounded by GUEST_TIMEOUT.
ml() { timeout "$GUEST_TIMEOUT" "$ML" "$@"; }

# run_ml ARGS...: runs a guest command; sets OUT (stdout), ERR (stderr) and
# STATUS without failing the test.
run_ml() {
  STATUS=0
  ml "$@" >"$TMP/stdout" 2>"$TMP/stderr" || STATUS=$?
  OUT=$(cat "$TMP/stdout")
  ERR=$(cat "$TMP/stderr")
}

# expect_out EXPECTED ARGS...: the command exits 0 and prints exactly
# EXPECTED (trailing newlines aside).
expect_out() {
  local expected=$1
  shift
  run_ml "$@"
  [[ $STATUS -eq 0 ]] || fail "many-level $* exited $STATUS (stderr: $ERR)"
  [[ $OUT == "$expected" ]] || fail "many-level $*: expected output
$(printf '%q' "$expected")
got
$(printf '%q' "$OUT")"
}

# expect_ok ARGS...: exits 0 and prints nothing on stdout.
expect_ok() { expect_out "" "$@"; }

# expect_status STATUS STDERR-SUBSTRING ARGS...: exits with STATUS, prints
# nothing on stdout, and says STDERR-SUBSTRING on stderr.
expect_status() {
  local expected=$1 message=$2
  shift 2
  run_ml "$@"
  [[ $STATUS -eq $expected ]] || fail "many-level $*: expected status $expected, got $STATUS (stderr: $ERR)"
  [[ -z $OUT ]] || fail "many-level $*: expected no output, got $(printf '%q' "$OUT")"
  [[ $ERR == *"$message"* ]] || fail "many-level $*: expected stderr to contain '$message', got: $ERR"
}

# start_bg NAME ARGS...: a guest command in the background (its own PID is
# BG_PID: `timeout`, which passes SIGTERM on to the command); its stdout and
# stderr go to $TMP/NAME.{stdout,stderr}.
start_bg() {
  local name=$1
  shift
  timeout "$GUEST_TIMEOUT" "$ML" "$@" >"$TMP/$name.stdout" 2>"$TMP/$name.stderr" &
  BG_PID=$!
  PIDS+=("$BG_PID")
}

# finish_bg NAME PID: waits for a start_bg command; sets STATUS, OUT, ERR.
finish_bg() {
  STATUS=0
  wait "$2" || STATUS=$?
  OUT=$(cat "$TMP/$1.stdout")
  ERR=$(cat "$TMP/$1.stderr")
}

#!/usr/bin/env bash
# A relay through upstream outages: the upstream host U (SQLite) is stopped
# and restarted on the same address and database file under a relay.
#
# With --retry (R), the relay's own guests must not notice: keys written
# before the outage read back after it, a put and a get issued while U is
# down wait and succeed once U is back, and a get already sent to U when U
# dies is sent again to the new U. Their stderr stays empty.
#
# Without --retry (N), a request in flight when U dies fails at once with
# LEVEL_CONNECTION_LOST and exit status 1 (not a hang). A request issued
# while U is down waits for U to come back, then succeeds: a guest's requests
# made while no stream is attached wait for one (src/many_level/guest/guest.hpp,
# as many-level's guest buffers them), and the relay keeps reconnecting.
#
# Last, a relay stopped (SIGTERM) while a request waits for a down upstream
# exits at once with status 0, its guest told (the database closed, or the
# connection lost).
#
# U listens on a fixed TCP port below the ephemeral range (so that no
# outgoing connection can take it while U is down). "In flight" is made
# exact by freezing U (SIGSTOP), waiting until the request's bytes are queued
# on U's socket (/proc/net/tcp), then killing U (SIGKILL).
#
#   relay_outage.sh /path/to/many-level
source "$(dirname "$0")/lib.sh"

DB=$TMP/u.db

# A port below the ephemeral range, free now (U proves it by listening).
read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range
if ((ephemeral_low > 5000)); then port_low=$((ephemeral_low - 3000)); else port_low=20000; fi
PORT=""
for _ in $(seq 20); do
  candidate=$((port_low + RANDOM % 2900))
  if start_host u1 --db "$DB" --listen "tcp://127.0.0.1:$candidate"; then
    PORT=$candidate
    break
  fi
done
[[ -n $PORT ]] || fail "no free port found for the upstream host"
UPSTREAM=tcp://127.0.0.1:$PORT
[[ $HOST_ADDR == "$UPSTREAM" ]] || fail "upstream listens on $HOST_ADDR, not $UPSTREAM"
u_pid=$HOST_PID
restarts=1

# restart_upstream: U again, on the same address and database file.
restart_upstream() {
  restarts=$((restarts + 1))
  start_host "u$restarts" --db "$DB" --listen "$UPSTREAM" || fail "the upstream host did not restart on $UPSTREAM"
  u_pid=$HOST_PID
}

# kill_upstream_in_flight: once a request has reached U's socket (U frozen,
# so unread), kills U.
kill_upstream_in_flight() {
  local hex_port deadline=$((SECONDS + 30))
  hex_port=$(printf '%04X' "$PORT")
  until awk -v port="$hex_port" 'NR > 1 {
          split($2, local_address, ":"); split($5, queues, ":")
          if (local_address[2] == port && $4 == "01" && queues[2] != "00000000") found = 1
        } END { exit !found }' /proc/net/tcp; do
    ((SECONDS < deadline)) || fail "no request reached the frozen upstream within 30 s"
    sleep 0.05
  done
  kill -KILL "$u_pid"
  wait "$u_pid" 2>/dev/null || true
}

# count_log NAME PATTERN: how many lines of $TMP/NAME.log match.
count_log() { grep -cE "$2" "$TMP/$1.log" || true; }

# expect_waiting NAME PID...: the relay NAME has failed to reach U once more
# since now, and every PID is still running (waiting, not failed).
expect_waiting() {
  local name=$1 pid
  shift
  wait_for_log "$name" "upstream unreachable: $UPSTREAM" $(($(count_log "$name" "upstream unreachable") + 1))
  for pid in "$@"; do kill -0 "$pid" 2>/dev/null || fail "a request through $name ended while the upstream was down"; done
}

# ---- with --retry ------------------------------------------------------------------
start_host relay --upstream "$UPSTREAM" --retry --listen "unix:$TMP/r.sock" || fail "the retrying relay did not start"
relay_pid=$HOST_PID
R=(--connect "$HOST_ADDR")
U=(--connect "$UPSTREAM")
expect_ok put a 1 "${R[@]}"
expect_ok put b 2 "${R[@]}"

# U stops cleanly; requests issued meanwhile wait for the new U.
stop_host "$u_pid"
wait_for_log relay "upstream lost: $UPSTREAM"
start_bg put_c put c 3 "${R[@]}"
put_c=$BG_PID
start_bg get_a get a "${R[@]}"
get_a=$BG_PID
expect_waiting relay "$put_c" "$get_a"
restart_upstream
wait_for_log relay "upstream connected: $UPSTREAM \(connection 2\)"
finish_bg put_c "$put_c"
[[ $STATUS -eq 0 && -z $OUT && -z $ERR ]] || fail "put during the outage: status $STATUS, stdout '$OUT', stderr '$ERR'"
finish_bg get_a "$get_a"
[[ $STATUS -eq 0 && $OUT == 1 && -z $ERR ]] || fail "get during the outage: status $STATUS, stdout '$OUT', stderr '$ERR'"
expect_out 3 get c "${U[@]}"
expect_out 2 get b "${R[@]}"
expect_ok put d 4 "${R[@]}"
expect_out $'a\t1\nb\t2\nc\t3\nd\t4' ls "${U[@]}"

# U dies with a get of R's guest unanswered: R sends it again to the new U.
kill -STOP "$u_pid"
start_bg get_c get c "${R[@]}"
get_c=$BG_PID
kill_upstream_in_flight
wait_for_log relay "upstream lost: $UPSTREAM" 2
restart_upstream
finish_bg get_c "$get_c"
[[ $STATUS -eq 0 && $OUT == 3 && -z $ERR ]] || fail "get in flight at the crash: status $STATUS, stdout '$OUT', stderr '$ERR'"
expect_out $'a\t1\nb\t2\nc\t3\nd\t4' ls "${R[@]}"

# ---- without --retry -------------------------------------------------------------------
start_host norelay --upstream "$UPSTREAM" --listen "unix:$TMP/n.sock" || fail "the plain relay did not start"
norelay_pid=$HOST_PID
N=(--connect "$HOST_ADDR")
expect_out 4 get d "${N[@]}"

# In flight when U dies: a clear error, at once.
kill -STOP "$u_pid"
start_bg get_d get d "${N[@]}"
get_d=$BG_PID
kill_upstream_in_flight
finish_bg get_d "$get_d"
[[ $STATUS -eq 1 && -z $OUT && $ERR == "many-level get: LEVEL_CONNECTION_LOST: "* ]] ||
  fail "get in flight through the plain relay: status $STATUS, stdout '$OUT', stderr '$ERR'"

# Issued while U is down: waits for U (see the header), then succeeds.
wait_for_log norelay "upstream lost: $UPSTREAM"
start_bg put_e put e 5 "${N[@]}"
put_e=$BG_PID
expect_waiting norelay "$put_e"
restart_upstream
finish_bg put_e "$put_e"
[[ $STATUS -eq 0 && -z $OUT && -z $ERR ]] || fail "put through the plain relay after the outage: status $STATUS, stderr '$ERR'"
expect_out 5 get e "${U[@]}"
expect_out $'a\t1\nb\t2\nc\t3\nd\t4\ne\t5' ls "${N[@]}"
expect_out $'a\t1\nb\t2\nc\t3\nd\t4\ne\t5' ls "${R[@]}"

# A relay stops on SIGTERM even while a guest's request waits for a
# down upstream: the wait is aborted, the guest told, the relay exits 0.
stop_host "$u_pid"
wait_for_log relay "upstream lost: $UPSTREAM"
start_bg get_stuck get a "${R[@]}"
get_stuck=$BG_PID
expect_waiting relay "$get_stuck"
stop_host "$relay_pid"
finish_bg get_stuck "$get_stuck"
# The relay's answer (its database closed) or the end of its connection,
# whichever reaches the guest first.
[[ $STATUS -eq 1 && -z $OUT && ($ERR == *LEVEL_DATABASE_NOT_OPEN* || $ERR == *LEVEL_CONNECTION_LOST*) ]] ||
  fail "a get waiting in a relay that stopped: status $STATUS, stdout '$OUT', stderr '$ERR'"
stop_host "$norelay_pid"
echo "relay_outage: ok"

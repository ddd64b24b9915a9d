#!/usr/bin/env bash
# many-level stats and many-level watch against `many-level serve`: the
# host's statistics as a table and as JSON (what it counts: connections,
# the commit sequence, a watcher's connection); watchers in the background
# printing the puts, dels, batches and clears that other many-level commands
# make (everything, a sublevel with --prefix, a range, hex and JSON output,
# binary keys), stopped by SIGINT and SIGTERM with status 0; --since
# resuming and refused when the history does not reach; the serve options
# that bound watches and history; usage errors.
#
#   stats_watch.sh /path/to/many-level
source "$(dirname "$0")/lib.sh"

json() { python3 -c "import json, sys; data = json.load(sys.stdin); print($1)"; }

# wait_lines NAME COUNT: waits (30 s at most) until $TMP/NAME.stdout has COUNT lines.
wait_lines() {
  local file=$TMP/$1.stdout count=$2 deadline=$((SECONDS + 30))
  while (($(wc -l <"$file") < count)); do
    ((SECONDS < deadline)) || fail "$1 printed $(wc -l <"$file") of $count lines within 30 s: $(cat "$file")"
    sleep 0.05
  done
}

# stop_bg NAME PID SIGNAL: the watcher must exit 0 on SIGNAL; sets OUT.
stop_bg() {
  kill "-$3" "$2"
  finish_bg "$1" "$2"
  [[ $STATUS -eq 0 ]] || fail "watch $1 exited $STATUS on SIG$3 (stderr: $ERR)"
}

# expect_same NAME EXPECTED: OUT is exactly EXPECTED.
expect_same() {
  [[ $OUT == "$2" ]] || fail "$1: expected
$(printf '%q' "$2")
got
$(printf '%q' "$OUT")"
}

start_host host --memory --listen tcp://127.0.0.1:0 || fail "the host did not start"
C=(--connect "$HOST_ADDR")
VERSION=$("$ML" --version | awk '{print $2}')

# ---- stats ------------------------------------------------------------------
# First thing: this command's own connection is the only one there is.
run_ml stats "${C[@]}"
[[ $STATUS -eq 0 ]] || fail "stats exited $STATUS: $ERR"
grep -qx "host         many-level $VERSION, up .*" <<<"$OUT" || fail "stats: no host line in: $OUT"
grep -qE "^database     memory(, .*)?$" <<<"$OUT" || fail "stats: no database line in: $OUT"
grep -qx "sequence     0" <<<"$OUT" || fail "stats: no sequence line in: $OUT"
grep -qx "connections  1 open, 1 accepted since start" <<<"$OUT" || fail "stats: no connections line in: $OUT"
grep -qE "^ADDRESS +SINCE +REQUESTS +BYTES IN +BYTES OUT +ITERATORS +WATCHES +SNAPSHOTS +PENDING +GUEST$" <<<"$OUT" ||
  fail "stats: no table header in: $OUT"
grep -qE "^tcp://127\.0\.0\.1:[0-9]+ +20[0-9-]+T[0-9:]+Z +[0-9]+ +[0-9.]+ (B|KiB) +[0-9.]+ (B|KiB) +0 +0 +0 +[0-9]+ +C\+\+$" <<<"$OUT" ||
  fail "stats: no row for this connection in: $OUT"

expect_ok put a 1 "${C[@]}"
expect_ok put b 2 "${C[@]}"
run_ml stats --json "${C[@]}"
[[ $STATUS -eq 0 ]] || fail "stats --json exited $STATUS: $ERR"
STATS=$OUT
[[ $(json 'data["version"]' <<<"$STATS") == "$VERSION" ]] || fail "stats --json: version: $STATS"
[[ $(json 'data["seq"]' <<<"$STATS") == 2 ]] || fail "stats --json: seq after two puts: $STATS"
[[ $(json 'data["database_kind"]' <<<"$STATS") == memory ]] || fail "stats --json: kind: $STATS"
[[ $(json 'data["connections_total"]' <<<"$STATS") == 4 ]] || fail "stats --json: connections_total: $STATS"
[[ $(json 'len(data["connections"])' <<<"$STATS") == 1 ]] || fail "stats --json: connections: $STATS"
[[ $(json 'data["connections"][0]["extended"]' <<<"$STATS") == True ]] || fail "stats --json: extended: $STATS"
[[ $(json 'data["connections"][0]["address"].startswith("tcp://127.0.0.1:")' <<<"$STATS") == True ]] ||
  fail "stats --json: address: $STATS"
[[ $(json 'data["uptime_ms"] > 0 and data["connections"][0]["since_ms"] > 1600000000000' <<<"$STATS") == True ]] ||
  fail "stats --json: times: $STATS"
expect_status 2 "unknown option --bogus" stats --bogus "${C[@]}"
expect_status 2 "stats takes no argument 'x'" stats x "${C[@]}"

# ---- watch: everything, a sublevel, a range, hex ------------------------------
SINCE=$(ml stats --json "${C[@]}" | json 'data["seq"]')
start_bg all watch --since "$SINCE" "${C[@]}"
all_pid=$BG_PID
start_bg users watch --json --prefix users --since "$SINCE" "${C[@]}"
users_pid=$BG_PID
start_bg range watch --gte b --lt d --since "$SINCE" "${C[@]}"
range_pid=$BG_PID
start_bg hex watch --key-encoding hex --value-encoding hex --gte 61 --lte 61 --since "$SINCE" "${C[@]}"
hex_pid=$BG_PID

# The host counts the watchers' connections and their watches.
deadline=$((SECONDS + 30))
until [[ $(ml stats --json "${C[@]}" | json 'sum(c["watches"] for c in data["connections"])') == 4 ]]; do
  ((SECONDS < deadline)) || fail "the host never showed 4 watches: $(ml stats "${C[@]}")"
  sleep 0.1
done
run_ml stats "${C[@]}"
grep -qx "connections  5 open, .* accepted since start" <<<"$OUT" || fail "stats with watchers: $OUT"

s=$SINCE
expect_ok put a 1 "${C[@]}"                                             # s+1
expect_ok put ada '{"born":1815}' --prefix users "${C[@]}"              # s+2
expect_ok put d 4 "${C[@]}"                                             # s+3
run_ml batch "${C[@]}" <<<'[{"type":"put","key":"b","value":"2"},{"type":"put","key":"c","value":"3"},{"type":"del","key":"d"}]'
[[ $STATUS -eq 0 ]] || fail "batch: $ERR"                               # s+4, one commit
expect_ok del a "${C[@]}"                                               # s+5
expect_ok clear --gte b --lt c "${C[@]}"                                # s+6: deletes b
expect_ok put bob x --prefix users "${C[@]}"                            # s+7
expect_ok del ada --prefix users "${C[@]}"                              # s+8
expect_ok clear "${C[@]}"                                               # s+9: !users!bob and c
expect_out "" ls "${C[@]}"                                              # nothing left

wait_lines all 12
stop_bg all "$all_pid" INT
expect_same "watch (everything)" "$((s + 1))	put	a	1
$((s + 2))	put	!users!ada	{\"born\":1815}
$((s + 3))	put	d	4
$((s + 4))	put	b	2
$((s + 4))	put	c	3
$((s + 4))	del	d
$((s + 5))	del	a
$((s + 6))	del	b
$((s + 7))	put	!users!bob	x
$((s + 8))	del	!users!ada
$((s + 9))	del	!users!bob
$((s + 9))	del	c"
wait_lines users 4
stop_bg users "$users_pid" TERM
expect_same "watch --json --prefix users" "{\"seq\":$((s + 2)),\"type\":\"put\",\"key\":\"ada\",\"value\":\"{\\\"born\\\":1815}\"}
{\"seq\":$((s + 7)),\"type\":\"put\",\"key\":\"bob\",\"value\":\"x\"}
{\"seq\":$((s + 8)),\"type\":\"del\",\"key\":\"ada\"}
{\"seq\":$((s + 9)),\"type\":\"del\",\"key\":\"bob\"}"
wait_lines range 4
stop_bg range "$range_pid" TERM
expect_same "watch --gte b --lt d" "$((s + 4))	put	b	2
$((s + 4))	put	c	3
$((s + 6))	del	b
$((s + 9))	del	c"
wait_lines hex 2
stop_bg hex "$hex_pid" INT
expect_same "watch hex" "$((s + 1))	put	61	31
$((s + 5))	del	61"

# Resuming: a watch started after the fact with --since gets the same commits.
run_ml stats --json "${C[@]}"
[[ $(json 'data["seq"]' <<<"$OUT") == $((s + 9)) ]] || fail "the sequence after the writes: $OUT"
start_bg late watch --prefix users --since "$s" "${C[@]}"
late_pid=$BG_PID
wait_lines late 4
stop_bg late "$late_pid" TERM
expect_same "watch --since (late)" "$((s + 2))	put	ada	{\"born\":1815}
$((s + 7))	put	bob	x
$((s + 8))	del	ada
$((s + 9))	del	bob"

# ---- binary keys: raw bytes in text, key_hex in JSON --------------------------
s=$((s + 9))
start_bg binary watch --since "$s" "${C[@]}"
binary_pid=$BG_PID
start_bg binary_json watch --json --since "$s" "${C[@]}"
binary_json_pid=$BG_PID
expect_ok put ff01 76 --key-encoding hex --value-encoding hex "${C[@]}"   # key 0xff 0x01, value "v"
wait_lines binary 1
wait_lines binary_json 1
stop_bg binary "$binary_pid" INT
printf '%s\tput\t\xff\x01\tv\n' "$((s + 1))" >"$TMP/binary.expected"
cmp -s "$TMP/binary.stdout" "$TMP/binary.expected" || fail "watch (binary key): $(od -c <"$TMP/binary.stdout")"
stop_bg binary_json "$binary_json_pid" INT
expect_same "watch --json (binary key)" "{\"seq\":$((s + 1)),\"type\":\"put\",\"key_hex\":\"ff01\",\"value\":\"v\"}"

# ---- errors -------------------------------------------------------------------
expect_status 1 "LEVEL_WATCH_TOO_OLD" watch --since 999999 "${C[@]}"
expect_status 2 "--since must be 0 or more" watch --since -1 "${C[@]}"
expect_status 2 "--since takes a whole number, got 'soon'" watch --since soon "${C[@]}"
expect_status 2 "watch takes no argument 'x'" watch x "${C[@]}"
expect_status 2 "unknown option --limit" watch --limit 3 "${C[@]}"
expect_status 2 "--key-encoding must be utf8, hex, base64 or json" watch --key-encoding latin1 "${C[@]}"
expect_status 1 "cannot connect to unix:$TMP/nobody.sock" watch --connect "unix:$TMP/nobody.sock"
expect_status 1 "cannot connect to unix:$TMP/nobody.sock" stats --connect "unix:$TMP/nobody.sock"
# A relay speaks the extension but its database (a guest) keeps no feed.
main_pid=$HOST_PID
start_host relay --upstream "$HOST_ADDR" --listen tcp://127.0.0.1:0 || fail "the relay did not start"
expect_status 1 "the host has no change feed: its database keeps none (a relay, serve --upstream?)" \
  watch --connect "$HOST_ADDR"
stop_host "$HOST_PID"
stop_host "$main_pid"

# ---- serve's limits: history and watches --------------------------------------
# A history of 2 commits: a watcher that asks for older ones is told to reload.
start_host small --memory --history-commits 2 --listen tcp://127.0.0.1:0 || fail "the small host did not start"
C=(--connect "$HOST_ADDR")
start_bg keeper watch "${C[@]}"     # history is kept from the first watch on
keeper_pid=$BG_PID
deadline=$((SECONDS + 30))
until [[ $(ml stats --json "${C[@]}" | json 'sum(c["watches"] for c in data["connections"])') == 1 ]]; do
  ((SECONDS < deadline)) || fail "the keeper's watch never showed"
  sleep 0.1
done
for key in k1 k2 k3 k4 k5; do expect_ok put "$key" v "${C[@]}"; done
expect_status 1 "does not hold the commits after seq 1 (LEVEL_WATCH_TOO_OLD)" watch --since 1 "${C[@]}"
start_bg recent watch --since 3 "${C[@]}"   # 4 and 5 are still there
recent_pid=$BG_PID
wait_lines recent 2
stop_bg recent "$recent_pid" INT
expect_same "watch --since 3 (history of 2)" $'4\tput\tk4\tv\n5\tput\tk5\tv'
# The host goes away under a watcher: it says where to resume, and fails.
wait_lines keeper 5
stop_host "$HOST_PID"
finish_bg keeper "$keeper_pid"
[[ $STATUS -eq 1 ]] || fail "a watcher whose host stopped exited $STATUS (stderr: $ERR)"
[[ $ERR == *"lost the connection to the host (LEVEL_CONNECTION_LOST); resume with --since 5"* ]] ||
  fail "a watcher whose host stopped said: $ERR"
expect_same "the keeper's watch" $'1\tput\tk1\tv\n2\tput\tk2\tv\n3\tput\tk3\tv\n4\tput\tk4\tv\n5\tput\tk5\tv'

start_host nowatch --memory --max-watches 0 --listen tcp://127.0.0.1:0 || fail "the --max-watches 0 host did not start"
expect_status 1 "LEVEL_LIMIT_REACHED" watch --connect "$HOST_ADDR"
stop_host "$HOST_PID"

run_ml serve --memory --history-commits 0
[[ $STATUS -eq 2 && $ERR == *"--history-commits must be at least 1"* ]] || fail "serve --history-commits 0: $STATUS $ERR"
run_ml serve --upstream tcp://127.0.0.1:1 --history-bytes 1000
[[ $STATUS -eq 2 && $ERR == *"not to --upstream"* ]] || fail "serve --upstream --history-bytes: $STATUS $ERR"
run_ml serve --memory --max-snapshots many
[[ $STATUS -eq 2 && $ERR == *"--max-snapshots takes a whole number"* ]] || fail "serve --max-snapshots many: $STATUS $ERR"
HELP=$("$ML" --help)
grep -q -- "--max-watches N" <<<"$HELP" || fail "--help does not document --max-watches"
grep -q -- "many-level watch" <<<"$HELP" || fail "--help does not document watch"
grep -q -- "many-level stats" <<<"$HELP" || fail "--help does not document stats"
echo "stats_watch: ok"

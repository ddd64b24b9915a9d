#!/usr/bin/env bash
# The relay: `many-level serve --upstream ADDR [--prefix NAME]`, a host whose
# database is a guest of the host at ADDR. Checks that one database is seen
# through both hosts (writes through the relay are visible upstream and vice
# versa, with ls, del and clear), and that with --prefix the relay exposes
# exactly the sublevel NAME: its keys are stored upstream under abstract-
# level's "!NAME!" prefix (checked as raw bytes) and nothing outside it shows
# through the relay or is touched by it.
#
#   relay.sh /path/to/many-level
source "$(dirname "$0")/lib.sh"

start_host upstream --db "$TMP/u.db" --listen tcp://127.0.0.1:0 || fail "the upstream host did not start"
U=(--connect "$HOST_ADDR")
upstream_addr=$HOST_ADDR
start_host relay --upstream "$upstream_addr" --listen tcp://127.0.0.1:0 || fail "the relay did not start"
R=(--connect "$HOST_ADDR")
relay_pid=$HOST_PID
grep -q "upstream connected: $upstream_addr (connection 1)" "$TMP/relay.log" || fail "the relay did not log its upstream"
grep -q "(relay of $upstream_addr)" "$TMP/relay.log" || fail "the relay did not describe itself"

# ---- one database through both hosts ------------------------------------------
expect_ok put k1 "through the relay" "${R[@]}"
expect_out "through the relay" get k1 "${U[@]}"
expect_ok put k2 upstream "${U[@]}"
expect_out upstream get k2 "${R[@]}"
expect_ok batch "${R[@]}" <<<'[{"type":"put","key":"k3","value":"b3"},{"type":"put","key":"k4","value":"b4"}]'
expect_out $'k1\tthrough the relay\nk2\tupstream\nk3\tb3\nk4\tb4' ls "${U[@]}"
expect_out $'k1\tthrough the relay\nk2\tupstream\nk3\tb3\nk4\tb4' ls "${R[@]}"
expect_out $'k4\nk3' ls --keys --reverse --limit 2 "${R[@]}"
expect_ok del k1 "${R[@]}"
expect_status 3 "key not found: k1" get k1 "${U[@]}"
expect_ok clear --gte k3 "${R[@]}"
expect_out k2 ls --keys "${U[@]}"
expect_ok put bin 0001ff --value-encoding hex "${R[@]}"
expect_out 0001ff get bin --value-encoding hex "${U[@]}"
expect_ok del bin "${U[@]}"

# ---- a relay of a sublevel ------------------------------------------------------
start_host sub --upstream "$upstream_addr" --prefix users --listen tcp://127.0.0.1:0 || fail "the sublevel relay did not start"
S=(--connect "$HOST_ADDR")
grep -q "(relay of $upstream_addr, sublevel !users!)" "$TMP/sub.log" || fail "the sublevel relay did not describe itself"
# Neighbours of the sublevel upstream, which must stay out of sight.
expect_ok put '!users' below "${U[@]}"
expect_ok put '!users"' "upper bound" "${U[@]}"
expect_ok put '!usersx!k' sibling "${U[@]}"

expect_ok put ada 1815 "${S[@]}"
expect_ok put alan 1912 "${S[@]}"
expect_out $'!users!ada\t1815\n!users!alan\t1912' ls --gte '!users!' --lt '!users"' "${U[@]}"
# The raw bytes of the stored key: '!' 'users' '!' 'ada' (the range is "!users!" up to "!users"").
expect_out $'21757365727321616461\t31383135\n21757365727321616c616e\t31393132' ls --gte 2175736572732161 --lt 2175736572732162 \
  --key-encoding hex --value-encoding hex "${U[@]}"
expect_out 1815 get '!users!ada' "${U[@]}"
# Through the sublevel relay: its keys only, without the prefix.
expect_out $'ada\t1815\nalan\t1912' ls "${S[@]}"
expect_out $'alan\nada' ls --keys --reverse "${S[@]}"
expect_out 616461 ls --keys --lt 616c616e --key-encoding hex "${S[@]}"
expect_status 3 "key not found: k2" get k2 "${S[@]}"
# A write upstream under the prefix appears in the sublevel.
expect_ok put '!users!grace' 1906 "${U[@]}"
expect_out 1906 get grace "${S[@]}"
# clear through the sublevel relay empties the sublevel and nothing else.
expect_ok clear "${S[@]}"
expect_out "" ls "${S[@]}"
expect_out $'!users\tbelow\n!users"\tupper bound\n!usersx!k\tsibling\nk2\tupstream' ls "${U[@]}"
# The plain relay still sees the whole database.
expect_out $'!users\n!users"\n!usersx!k\nk2' ls --keys "${R[@]}"

# ---- serve's usage errors for relays ----------------------------------------------
expect_status 2 "--retry goes with --upstream" serve --retry --listen tcp://127.0.0.1:0
expect_status 2 "--db, --memory and --upstream exclude each other" serve --memory --upstream "$upstream_addr"

# Relays exit cleanly on SIGTERM, their upstream still up.
stop_host "$relay_pid"
stop_host "$HOST_PID"
grep -q "database closed" "$TMP/relay.log" || fail "the relay did not close its database"
expect_out upstream get k2 "${U[@]}"
echo "relay: ok"

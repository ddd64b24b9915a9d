#!/usr/bin/env bash
# Tokens and grants through the many-level program: `many-level token`
# (create, hash), `serve --auth FILE` with --allow-anonymous on one listener,
# guests with --token-file and MANY_LEVEL_TOKEN; a writer, a reader whose
# writes are refused and change nothing, a tenant confined to a sublevel,
# guests with a wrong or no token refused with no data; usage errors.
#
#   auth.sh /path/to/many-level
source "$(dirname "$0")/lib.sh"

# ---- making tokens ------------------------------------------------------------
expect_status 2 "needs --out FILE" token create
"$ML" token create --out "$TMP/writer.token" >"$TMP/auth" 2>"$TMP/create.err" || fail "token create failed: $(cat "$TMP/create.err")"
"$ML" token create --out "$TMP/reader.token" --read-only >>"$TMP/auth" 2>/dev/null || fail "token create --read-only failed"
"$ML" token create --out "$TMP/tenant.token" --prefix tenant >>"$TMP/auth" 2>/dev/null || fail "token create --prefix failed"
grep -q "add this line to the host's --auth file" "$TMP/create.err" || fail "token create said: $(cat "$TMP/create.err")"
[[ $(stat -c %a "$TMP/writer.token") == 600 ]] || fail "the token file's mode is $(stat -c %a "$TMP/writer.token")"
WRITER=$(cat "$TMP/writer.token")
[[ $WRITER =~ ^[0-9a-f]{64}$ ]] || fail "a token is 64 hex digits, got '$WRITER'"
grep -q "$WRITER" "$TMP/auth" && fail "the token itself reached the auth file"
mapfile -t LINES <"$TMP/auth"
[[ ${LINES[0]} =~ ^[0-9a-f]{64}\ read-write$ ]] || fail "writer line: '${LINES[0]}'"
[[ ${LINES[1]} =~ ^[0-9a-f]{64}\ read-only$ ]] || fail "reader line: '${LINES[1]}'"
[[ ${LINES[2]} =~ ^[0-9a-f]{64}\ read-write\ tenant$ ]] || fail "tenant line: '${LINES[2]}'"
# The line is the token's SHA-256, as sha256sum computes it.
[[ ${LINES[0]%% *} == $(printf '%s' "$WRITER" | sha256sum | cut -d' ' -f1) ]] || fail "the hash is not SHA-256 of the token"
[[ $("$ML" token hash <"$TMP/writer.token") == "${LINES[0]}" ]] || fail "token hash does not reproduce the writer's line"
[[ $("$ML" token hash --read-only --prefix p <"$TMP/writer.token") == "${LINES[0]%% *} read-only p" ]] ||
  fail "token hash --read-only --prefix"
expect_status 1 "tokens are never overwritten" token create --out "$TMP/writer.token"
[[ $(cat "$TMP/writer.token") == "$WRITER" ]] || fail "a token file was overwritten"
expect_status 2 "LEVEL_INVALID_PREFIX" token create --out "$TMP/bad.token" --prefix $'\x01'
chmod 600 "$TMP/auth"

# ---- usage errors of serve ----------------------------------------------------------
run_ml serve --memory --allow-anonymous read-only
[[ $STATUS -eq 2 && $ERR == *"--allow-anonymous goes with --auth"* ]] || fail "anonymous without --auth: $STATUS $ERR"
run_ml serve --memory --auth "$TMP/none.auth"
[[ $STATUS -eq 2 && $ERR == *"cannot read the token file"* ]] || fail "missing auth file: $STATUS $ERR"
run_ml serve --memory --auth "$TMP/auth" --allow-anonymous everything
[[ $STATUS -eq 2 && $ERR == *"read-only or read-write"* ]] || fail "bad anonymous grant: $STATUS $ERR"
run_ml serve --memory --auth "$TMP/auth" --listen tcp://127.0.0.1:0 --allow-anonymous read-only@tcp://127.0.0.1:1
[[ $STATUS -eq 2 && $ERR == *"no --listen tcp://127.0.0.1:1"* ]] || fail "anonymous on no listener: $STATUS $ERR"
cp "$TMP/auth" "$TMP/open.auth" && chmod 666 "$TMP/open.auth"
run_ml serve --memory --auth "$TMP/open.auth"
[[ $STATUS -eq 2 && $ERR == *"may be written by others"* ]] || fail "world-writable auth file: $STATUS $ERR"
printf 'abc read-write\n' >"$TMP/bad.auth" && chmod 600 "$TMP/bad.auth"
run_ml serve --memory --auth "$TMP/bad.auth"
[[ $STATUS -eq 2 && $ERR == *"bad.auth:1: a token hash is 64 hex digits"* ]] || fail "bad auth line: $STATUS $ERR"

# ---- a host with tokens: TCP for tokens, a unix socket for anonymous readers ------------
SOCK=unix:$TMP/db.sock
start_host host --memory --auth "$TMP/auth" --listen tcp://127.0.0.1:0 --listen "$SOCK" \
  --allow-anonymous "read-only@$SOCK" || fail "the host did not start"
TCP=(--connect "$HOST_ADDR")
wait_for_log host "listening unix:"

# The writer.
expect_ok put a 1 "${TCP[@]}" --token-file "$TMP/writer.token"
expect_out 1 get a "${TCP[@]}" --token-file "$TMP/writer.token"
# The reader, from the environment: reads, and every write is refused.
export MANY_LEVEL_TOKEN
MANY_LEVEL_TOKEN=$(cat "$TMP/reader.token")
expect_out 1 get a "${TCP[@]}"
expect_out $'a\t1' ls "${TCP[@]}"
expect_status 1 "LEVEL_READONLY" put a changed "${TCP[@]}"
expect_status 1 "read-only" del a "${TCP[@]}"
expect_status 1 "LEVEL_READONLY" clear "${TCP[@]}"
run_ml batch "${TCP[@]}" <<<'[{"type":"put","key":"b","value":"2"},{"type":"del","key":"a"}]'
[[ $STATUS -eq 1 && $ERR == *LEVEL_READONLY* ]] || fail "reader's batch: $STATUS $ERR"
expect_out $'a\t1' ls "${TCP[@]}"  # nothing of it was written
# A token file wins over the environment.
expect_ok put w 1 "${TCP[@]}" --token-file "$TMP/writer.token"
unset MANY_LEVEL_TOKEN
# No token, a wrong token, an empty token file: no data.
expect_status 1 "LEVEL_UNAUTHENTICATED" get a "${TCP[@]}"
echo wrong >"$TMP/wrong.token"
expect_status 1 "LEVEL_UNAUTHENTICATED" get a "${TCP[@]}" --token-file "$TMP/wrong.token"
expect_status 1 "LEVEL_UNAUTHENTICATED" ls "${TCP[@]}" --token-file "$TMP/wrong.token"
expect_status 1 "LEVEL_UNAUTHENTICATED" put a stolen "${TCP[@]}" --token-file "$TMP/wrong.token"
: >"$TMP/empty.token"
expect_status 2 "holds no token" get a "${TCP[@]}" --token-file "$TMP/empty.token"
expect_status 2 "cannot read" get a "${TCP[@]}" --token-file "$TMP/missing.token"
wait_for_log host "refusing a guest.*its token is not accepted"
wait_for_log host "refusing a guest.*presented no token"
# The unix socket lets guests without a token in, read-only.
expect_out 1 get a --connect "$SOCK"
expect_status 1 "LEVEL_READONLY" put a anonymous --connect "$SOCK"
# A wrong token is refused there too, not taken for anonymous.
expect_status 1 "LEVEL_UNAUTHENTICATED" get a --connect "$SOCK" --token-file "$TMP/wrong.token"

# A real Node many-level guest (it cannot send a token): refused on TCP,
# read-only on the socket. Without node and the interop packages this part
# is skipped, and says so.
INTEROP=$(cd "$(dirname "$0")/../interop" && pwd)
if command -v node >/dev/null && [[ -f $INTEROP/node_modules/many-level/package.json ]]; then
  node "$INTEROP/node-guest-access.js" --connect "$HOST_ADDR" --expect refused >"$TMP/node1.out" 2>&1 ||
    fail "the Node guest on TCP: $(cat "$TMP/node1.out")"
  grep -qx "5 passed, 0 failed" "$TMP/node1.out" || fail "the Node guest on TCP: $(cat "$TMP/node1.out")"
  node "$INTEROP/node-guest-access.js" --connect "$SOCK" --expect read-only --key a --value 1 >"$TMP/node2.out" 2>&1 ||
    fail "the Node guest on the socket: $(cat "$TMP/node2.out")"
  grep -qx "7 passed, 0 failed" "$TMP/node2.out" || fail "the Node guest on the socket: $(cat "$TMP/node2.out")"
  wait_for_log host "refusing a guest.*said no hello with a token"
else
  echo "note: node or tests/interop/node_modules missing: the Node guest part was skipped" >&2
fi

# The tenant sees its sublevel as the whole database.
T=("${TCP[@]}" --token-file "$TMP/tenant.token")
expect_ok put x 1 "${T[@]}"
expect_ok put '!a' 2 "${T[@]}"
expect_out $'!a\t2\nx\t1' ls "${T[@]}"
expect_status 3 "" get a "${T[@]}"
expect_ok clear "${T[@]}" --gte '' --lte $'\x7f\x7f'
expect_out "" ls "${T[@]}"
expect_status 1 "LEVEL_ACCESS_DENIED" stats "${T[@]}"
expect_status 1 "it is confined to a sublevel" stats "${T[@]}"
# The writer sees everything, the tenant's keys under its prefix.
expect_out $'a\t1\nw\t1' ls "${TCP[@]}" --token-file "$TMP/writer.token"
expect_ok put y 3 "${T[@]}"
expect_out 3 get '!tenant!y' "${TCP[@]}" --token-file "$TMP/writer.token"

stop_host "$HOST_PID"
echo "auth: all passed"

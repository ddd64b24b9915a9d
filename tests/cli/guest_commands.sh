#!/usr/bin/env bash
# The guest commands of the many-level program (get, put, del, ls, batch,
# clear) against `many-level serve --memory` on loopback TCP: what each prints
# and its exit status, the range flags of ls and clear, batches on stdin, the
# key and value encodings, --prefix (a sublevel), and the errors a user
# meets (a missing key, an unreachable host, an unknown option, a bad
# encoding name). These commands are the program's user interface, so every
# check is on exact output.
#
#   guest_commands.sh /path/to/many-level
source "$(dirname "$0")/lib.sh"

start_host host --memory --listen tcp://127.0.0.1:0 || fail "the host did not start"
[[ $HOST_ADDR =~ ^tcp://127\.0\.0\.1:[0-9]+$ ]] || fail "unexpected listening address '$HOST_ADDR'"
C=(--connect "$HOST_ADDR")
host_pid=$HOST_PID

# ---- put, get, del ------------------------------------------------------------
expect_status 3 "many-level: key not found: a" get a "${C[@]}"
expect_ok put a 1 "${C[@]}"
expect_out 1 get a "${C[@]}"
expect_ok put a "one, again" "${C[@]}"
expect_out "one, again" get a "${C[@]}"
expect_ok put s - "${C[@]}" <<<$'from\nstdin'          # '-' reads the value from stdin (all of it)
expect_out 66726f6d0a737464696e0a get s --value-encoding hex "${C[@]}"  # every byte, the last newline too
expect_ok del s "${C[@]}"
expect_status 3 "many-level: key not found: s" get s "${C[@]}"
expect_ok del never-there "${C[@]}"                   # deleting a missing key is no error

# ---- ls and its flags ---------------------------------------------------------
for key in b c d e; do expect_ok put "$key" "v$key" "${C[@]}"; done
all=$'a\tone, again\nb\tvb\nc\tvc\nd\tvd\ne\tve'
expect_out "$all" ls "${C[@]}"
expect_out $'b\tvb\nc\tvc' ls --gt a --lt d "${C[@]}"
expect_out $'a\tone, again\nb\tvb\nc\tvc\nd\tvd' ls --gte a --lte d "${C[@]}"
expect_out $'c\tvc\nd\tvd' ls --gte=c --lte=d "${C[@]}"   # --name=value works too
expect_out $'a\tone, again\nb\tvb' ls --limit 2 "${C[@]}"
expect_out $'e\tve\nd\tvd' ls --reverse --limit 2 "${C[@]}"
expect_out $'d\tvd\nc\tvc' ls --reverse --lt e --gt b "${C[@]}"
expect_out $'a\nb\nc\nd\ne' ls --keys "${C[@]}"
expect_out $'one, again\nvb\nvc\nvd\nve' ls --values "${C[@]}"
expect_out "" ls --gt e "${C[@]}"
expect_status 2 "--keys and --values exclude each other" ls --keys --values "${C[@]}"
expect_status 2 "--limit takes a whole number, got 'ten'" ls --limit ten "${C[@]}"

# ---- batch from stdin ---------------------------------------------------------
# A JSON array...
run_ml batch "${C[@]}" <<<'[{"type":"put","key":"f","value":"vf"},{"type":"put","key":"g","value":"vg"},{"type":"del","key":"a"}]'
[[ $STATUS -eq 0 && -z $OUT && $ERR == "many-level: wrote 3 operations" ]] || fail "batch (array): $STATUS '$OUT' '$ERR'"
# ... or one operation a line (blank lines skipped); with --value-encoding
# json a value may be any JSON value, stored as its JSON text.
run_ml batch --value-encoding json "${C[@]}" <<<$'{"type":"put","key":"h","value":{"n":[1,2]}}\n\n{"type":"del","key":"b"}'
[[ $STATUS -eq 0 && $ERR == "many-level: wrote 2 operations" ]] || fail "batch (lines): $STATUS '$OUT' '$ERR'"
expect_out $'c\tvc\nd\tvd\ne\tve\nf\tvf\ng\tvg\nh\t{"n":[1,2]}' ls "${C[@]}"
# A batch is all or nothing: a bad operation is a usage error and nothing is written.
run_ml batch "${C[@]}" <<<'[{"type":"put","key":"x","value":"1"},{"type":"frob","key":"y"}]'
[[ $STATUS -eq 2 && $ERR == *"an operation's type is put or del, got 'frob'"* ]] || fail "bad batch: $STATUS '$ERR'"
run_ml batch "${C[@]}" <<<'not json'
[[ $STATUS -eq 2 && $ERR == *"not a JSON operation: not json"* ]] || fail "unparsable batch: $STATUS '$ERR'"
expect_status 3 "key not found: x" get x "${C[@]}"

# ---- clear with a range -------------------------------------------------------
expect_ok clear --gte d --lt f "${C[@]}"
expect_out $'c\nf\ng\nh' ls --keys "${C[@]}"
expect_ok clear --reverse --limit 1 "${C[@]}"        # the last key only
expect_out $'c\nf\ng' ls --keys "${C[@]}"
expect_ok clear --gt c "${C[@]}"
expect_out $'c\tvc' ls "${C[@]}"
expect_ok clear "${C[@]}"
expect_out "" ls "${C[@]}"

# ---- encodings ----------------------------------------------------------------
# hex: arbitrary bytes both ways, including NUL and 0xff.
expect_ok put 00ff01 deadbeef00 --key-encoding hex --value-encoding hex "${C[@]}"
expect_out deadbeef00 get 00ff01 --key-encoding hex --value-encoding hex "${C[@]}"
expect_out $'00ff01\t3q2+7wA=' ls --key-encoding hex --value-encoding base64 "${C[@]}"
# base64 in, hex out: the same bytes.
expect_ok put AAE= aGk= --key-encoding base64 --value-encoding base64 "${C[@]}"   # 0x00 0x01 -> "hi"
expect_out hi get 0001 --key-encoding hex "${C[@]}"
expect_out $'0001\t6869\n00ff01\tdeadbeef00' ls --key-encoding hex --value-encoding hex "${C[@]}"
expect_out $'AAE=\nAP8B' ls --keys --key-encoding base64 "${C[@]}"
expect_ok del AAE= --key-encoding base64 "${C[@]}"
expect_ok del 00ff01 --key-encoding hex "${C[@]}"
# json: keys and values are JSON texts, stored as such.
expect_ok put '{"id":7}' '[1,"two",{"three":3}]' --key-encoding json --value-encoding json "${C[@]}"
expect_out '[1,"two",{"three":3}]' get '{"id":7}' --key-encoding json --value-encoding json "${C[@]}"
expect_out $'{"id":7}\t[1,"two",{"three":3}]' ls "${C[@]}"       # the stored bytes, as utf8
expect_out '7b226964223a377d' ls --keys --key-encoding hex "${C[@]}"
expect_status 1 "LEVEL_INVALID_KEY" put '{not json' v --key-encoding json "${C[@]}"
expect_status 1 "LEVEL_INVALID_VALUE: hex text has an odd number of digits" put k abc --value-encoding hex "${C[@]}"
expect_status 3 "key not found" get k "${C[@]}"                  # nothing was written
# Reading stored bytes that are not JSON with the json encoding fails cleanly.
expect_ok put plain 'not json' "${C[@]}"
run_ml get plain --value-encoding json "${C[@]}"
[[ $STATUS -eq 1 && $ERR == *LEVEL_DECODE_ERROR* ]] || fail "decoding non-JSON: status $STATUS, stderr: $ERR"

# ---- --prefix: a sublevel, as serve --prefix exposes one -----------------------
expect_ok put ada 1815 --prefix users "${C[@]}"
expect_ok put bob 1990 --prefix users "${C[@]}"
expect_out 1815 get ada --prefix users "${C[@]}"
expect_out $'!users!ada\t1815\n!users!bob\t1990' ls --gte '!users!' --lt '!users"' "${C[@]}"  # the stored keys
expect_out $'bob\t1990' ls --gt ada --prefix users "${C[@]}"  # ranges inside the sublevel
run_ml batch --prefix users "${C[@]}" <<<'[{"type":"put","key":"cy","value":"2001"},{"type":"del","key":"ada"}]'
[[ $STATUS -eq 0 ]] || fail "batch --prefix: $STATUS '$ERR'"
expect_out $'bob\ncy' ls --keys --prefix users "${C[@]}"
expect_ok clear --prefix users "${C[@]}"
expect_out "" ls --prefix users "${C[@]}"
expect_status 1 "LEVEL_INVALID_PREFIX" ls --prefix 'bad name' "${C[@]}"

# ---- errors -------------------------------------------------------------------
expect_status 2 "unknown option --bogus" get a --bogus "${C[@]}"
expect_status 2 "--key-encoding must be utf8, hex, base64 or json, got 'latin1'" get a --key-encoding latin1 "${C[@]}"
expect_status 2 "--value-encoding must be utf8, hex, base64 or json, got 'utf16'" put a b --value-encoding utf16 "${C[@]}"
expect_status 2 "expected put KEY VALUE" put only-a-key "${C[@]}"
expect_status 2 "unknown command 'frob'" frob "${C[@]}"
expect_status 1 "cannot connect to unix:$TMP/nobody.sock: No such file or directory" get a --connect "unix:$TMP/nobody.sock"
# The command line is checked before connecting: a usage error is one (2)
# even when no host is there.
expect_status 2 "expected put KEY VALUE" put only-a-key --connect "unix:$TMP/nobody.sock"
expect_status 2 "--limit takes a whole number, got 'abc'" ls --limit abc --connect "unix:$TMP/nobody.sock"
expect_status 2 "expected del KEY" del --connect "unix:$TMP/nobody.sock"
run_ml get a --connect foo
[[ $STATUS -eq 2 && -z $OUT && $ERR == *"foo"* ]] || fail "a malformed --connect: status $STATUS, stderr '$ERR'"

# A TCP address nobody listens on: this host's, once it has exited cleanly.
stop_host "$host_pid"
expect_status 1 "cannot connect to $HOST_ADDR: Connection refused" get a "${C[@]}"
expect_status 1 "cannot connect to $HOST_ADDR" ls "${C[@]}"
echo "guest_commands: ok"

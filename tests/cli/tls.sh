#!/usr/bin/env bash
# TLS in the many-level program: `serve --listen tls://` with --tls-cert,
# --tls-key and --tls-client-ca; the guest commands (get/put/ls, stats, watch)
# with --connect tls:// and --tls-ca, --tls-cert/--tls-key, --tls-insecure;
# a relay (`serve --upstream tls://`) on plain TCP; `openssl s_client`
# against serve. The certificates (a CA, a host certificate for 127.0.0.1 and
# localhost, client certificates, and a second CA nobody trusts) are made
# here with the openssl command. Skipped (77) without openssl or in a build
# without TLS.
#
#   tls.sh /path/to/many-level
source "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || { echo "SKIP: no openssl command"; exit 77; }
run_ml serve --memory --listen tls://127.0.0.1:0
if [[ $ERR == *"this build has no TLS"* ]]; then echo "SKIP: many-level built without TLS"; exit 77; fi

# ---- certificates -------------------------------------------------------------
C=$TMP/certs
mkdir -p "$C"
CERTS=$C
source "$(dirname "$0")/../tls_certs.sh"
{
  make_ca ca && make_ca other &&
    make_cert host ca 127.0.0.1 "IP:127.0.0.1,DNS:localhost" &&
    make_cert elsewhere ca db.example.com "DNS:db.example.com" &&  # a good chain for another name
    make_cert client ca guest &&
    make_cert stranger other guest  # a client certificate from the CA the host does not trust
} || fail "openssl could not make the test certificates"

# ---- usage errors (exit 2, before anything is opened) --------------------------
T=(--tls-cert "$C/host.pem" --tls-key "$C/host.key")
expect_status 2 "a tls:// --listen needs --tls-cert and --tls-key" serve --memory --listen tls://127.0.0.1:0
expect_status 2 "--tls-cert and --tls-key go together" serve --memory --listen tls://127.0.0.1:0 --tls-cert "$C/host.pem"
expect_status 2 "--tls-cert and --tls-key need a tls:// --listen (or a tls:// --upstream)" \
  serve --memory --listen tcp://127.0.0.1:0 "${T[@]}"
expect_status 2 "--tls-client-ca needs a tls:// --listen" serve --memory --listen tcp://127.0.0.1:0 --tls-client-ca "$C/ca.pem"
expect_status 2 "--tls-ca and --tls-insecure need a tls:// --upstream" \
  serve --memory --listen tls://127.0.0.1:0 "${T[@]}" --tls-ca "$C/ca.pem"
expect_status 2 "--tls-ca and --tls-insecure need a tls:// --upstream" serve --memory --tls-insecure
expect_status 2 "--tls-ca, --tls-cert, --tls-key and --tls-insecure need a tls:// --connect" \
  get a --connect tcp://127.0.0.1:1 --tls-ca "$C/ca.pem"
expect_status 2 "--tls-ca, --tls-cert, --tls-key and --tls-insecure need a tls:// --connect" stats --tls-insecure
expect_status 2 "--tls-cert and --tls-key go together" put a b --connect tls://127.0.0.1:1 --tls-key "$C/client.key"
expect_status 2 "--tls-insecure and --tls-ca exclude each other" \
  watch --connect tls://127.0.0.1:1 --tls-insecure --tls-ca "$C/ca.pem"

# ---- files that cannot be used: a clear error, exit 1 --------------------------
expect_status 1 "cannot load the TLS certificate chain $C/missing.pem" \
  serve --memory --listen tls://127.0.0.1:0 --tls-cert "$C/missing.pem" --tls-key "$C/host.key"
expect_status 1 "cannot load the TLS private key $C/client.key: key values mismatch" \
  serve --memory --listen tls://127.0.0.1:0 --tls-cert "$C/host.pem" --tls-key "$C/client.key"
expect_status 1 "cannot load the client CA file $C/missing.pem" \
  serve --memory --listen tls://127.0.0.1:0 "${T[@]}" --tls-client-ca "$C/missing.pem"
expect_status 1 "many-level: cannot load the CA file $C/host.key" get a --connect tls://127.0.0.1:1 --tls-ca "$C/host.key"

# ---- a TLS host: guests that trust its CA --------------------------------------
start_host tls --memory --listen tls://127.0.0.1:0 "${T[@]}" || fail "the TLS host did not start"
tls_pid=$HOST_PID
tls_addr=$HOST_ADDR
[[ $tls_addr == tls://127.0.0.1:* ]] || fail "the TLS host said it listens on $tls_addr"
port=${tls_addr##*:}
G=(--connect "$tls_addr" --tls-ca "$C/ca.pem")
expect_ok put k1 "over tls" "${G[@]}"
expect_ok batch "${G[@]}" <<<'[{"type":"put","key":"k2","value":"v2"}]'
expect_out "over tls" get k1 "${G[@]}"
expect_out $'k1\tover tls\nk2\tv2' ls "${G[@]}"
expect_out "v2" get k2 --connect "tls://localhost:$port" --tls-ca "$C/ca.pem"  # the certificate's DNS name
run_ml stats --json "${G[@]}"
[[ $STATUS -eq 0 && $OUT == *'"database_kind":"memory"'* && $OUT == *'"seq":2,'* ]] ||
  fail "stats over TLS: status $STATUS, output $OUT (stderr: $ERR)"
start_bg watch watch --json "${G[@]}"
watch_pid=$BG_PID
deadline=$((SECONDS + 10))
until run_ml stats --json "${G[@]}" && [[ $OUT == *'"watches":1,'* ]]; do  # the watch is on the host
  ((SECONDS < deadline)) || fail "the watch over TLS did not start: $(cat "$TMP/watch.stderr")"
  sleep 0.05
done
expect_ok put k3 watched "${G[@]}"
deadline=$((SECONDS + 10))
until grep -q '"key":"k3"' "$TMP/watch.stdout"; do
  ((SECONDS < deadline)) || fail "watch over TLS printed nothing for k3: $(cat "$TMP/watch.stdout" "$TMP/watch.stderr")"
  sleep 0.05
done
kill -TERM "$watch_pid"
finish_bg watch "$watch_pid"
[[ $STATUS -eq 0 && $OUT == '{"seq":3,"type":"put","key":"k3","value":"watched"}' ]] ||
  fail "watch over TLS: status $STATUS, output $OUT (stderr: $ERR)"

# ---- guests that do not trust it: refused, with the certificate's reason -----
unverified="many-level: $tls_addr: TLS handshake failed: certificate verify failed: unable to get local issuer certificate"
expect_status 1 "$unverified" get k1 --connect "$tls_addr"  # the system's CAs: not ours
[[ $ERR != *LEVEL_* ]] || fail "a refused certificate also said: $ERR"
expect_status 1 "$unverified" get k1 --connect "$tls_addr" --tls-ca "$C/other.pem"
expect_status 1 "$unverified" stats --connect "$tls_addr" --tls-ca "$C/other.pem"
expect_status 1 "$unverified" watch --connect "$tls_addr" --tls-ca "$C/other.pem"
expect_status 1 "$unverified" put k9 never --connect "$tls_addr"
expect_out $'k1\nk2\nk3' ls --keys "${G[@]}"  # nothing written by the refused ones
# A plain TCP guest on a TLS port: it fails, it does not hang.
expect_status 1 "LEVEL_CONNECTION_LOST" get k1 --connect "tcp://127.0.0.1:$port"
wait_for_log tls "TLS handshake failed: wrong version number \(the peer does not seem to speak TLS\)"

# ---- --tls-insecure: works, and warns every time -------------------------------
insecure_warning="many-level: --tls-insecure: the host's certificate is NOT verified"
for _ in 1 2; do
  expect_out "over tls" get k1 --connect "$tls_addr" --tls-insecure
  [[ $ERR == *"$insecure_warning"* ]] || fail "--tls-insecure did not warn: $ERR"
done
expect_out "over tls" get k1 "${G[@]}"
[[ -z $ERR ]] || fail "a verified guest printed on stderr: $ERR"

# ---- a host with a good chain for another name: the name is checked -------------
start_host named --memory --listen tls://127.0.0.1:0 --tls-cert "$C/elsewhere.pem" --tls-key "$C/elsewhere.key" ||
  fail "the host with another name did not start"
expect_status 1 "many-level: $HOST_ADDR: TLS handshake failed: certificate verify failed: IP address mismatch" \
  get k1 --connect "$HOST_ADDR" --tls-ca "$C/ca.pem"
stop_host "$HOST_PID"

# ---- client certificates (--tls-client-ca) -------------------------------------
start_host mutual --memory --listen tls://127.0.0.1:0 "${T[@]}" --tls-client-ca "$C/ca.pem" ||
  fail "the host requiring client certificates did not start"
mutual_addr=$HOST_ADDR
mutual_pid=$HOST_PID
M=(--connect "$mutual_addr" --tls-ca "$C/ca.pem")
# The host's alert may be cut off by the connection's end (a reset): what the
# guest says for sure is that the host asked for a certificate it had none of.
expect_status 1 "(the host asked for a client certificate, and this guest has none: --tls-cert, --tls-key)" \
  put m1 refused "${M[@]}"
[[ $ERR == "many-level: $mutual_addr: "* ]] || fail "a refused guest did not name the host first: $ERR"
expect_status 1 "many-level: $mutual_addr: " put m1 refused "${M[@]}" --tls-cert "$C/stranger.pem" --tls-key "$C/stranger.key"
[[ $ERR != *"asked for a client certificate"* ]] || fail "a guest with a certificate was told it had none: $ERR"
wait_for_log mutual "TLS handshake failed: peer did not return a certificate"
wait_for_log mutual "TLS handshake failed: certificate verify failed: unable to get local issuer certificate"
CC=("${M[@]}" --tls-cert "$C/client.pem" --tls-key "$C/client.key")
expect_ok put m1 accepted "${CC[@]}"
expect_out "m1" ls --keys "${CC[@]}"  # the refused puts wrote nothing

# ---- relays on plain TCP to TLS hosts -----------------------------------------
start_host relay --upstream "$tls_addr" --tls-ca "$C/ca.pem" --listen tcp://127.0.0.1:0 || fail "the relay did not start"
relay_pid=$HOST_PID
grep -q "upstream connected: $tls_addr (connection 1)" "$TMP/relay.log" || fail "the relay did not connect upstream"
expect_ok put r1 "through the relay" --connect "$HOST_ADDR"
expect_out "through the relay" get r1 "${G[@]}"
expect_out "over tls" get k1 --connect "$HOST_ADDR"
stop_host "$relay_pid"

start_host relay_mutual --upstream "$mutual_addr" --tls-ca "$C/ca.pem" --tls-cert "$C/client.pem" \
  --tls-key "$C/client.key" --listen tcp://127.0.0.1:0 || fail "the relay with a client certificate did not start"
expect_ok put r2 relayed --connect "$HOST_ADDR"
expect_out $'m1\taccepted\nr2\trelayed' ls "${CC[@]}"
stop_host "$HOST_PID"

# A relay that refuses its upstream's certificate says why, never that it is
# connected, and waits longer after each failed handshake (50, 100, 200 ms...)
# instead of calling the host again and again.
start_host relay_refusing --upstream "$tls_addr" --tls-ca "$C/other.pem" --listen tcp://127.0.0.1:0 ||
  fail "the relay refusing its upstream did not start"
wait_for_log relay_refusing "upstream unreachable: $tls_addr: session failed: TLS handshake failed: certificate verify failed: unable to get local issuer certificate; retrying in 50 ms"
wait_for_log relay_refusing "certificate verify failed: unable to get local issuer certificate; retrying in 200 ms"
! grep -q "upstream connected" "$TMP/relay_refusing.log" || fail "a relay that refused the certificate said it connected"
stop_host "$HOST_PID"

start_host relay_insecure --upstream "$tls_addr" --tls-insecure --listen tcp://127.0.0.1:0 ||
  fail "the relay with --tls-insecure did not start"
grep -q "$insecure_warning" "$TMP/relay_insecure.log" || fail "serve --tls-insecure did not warn"
expect_out "through the relay" get r1 --connect "$HOST_ADDR"
stop_host "$HOST_PID"

# ---- openssl s_client completes a handshake and verifies the chain -----------
s_client() { timeout 20 openssl s_client -connect "127.0.0.1:$port" -verify_ip 127.0.0.1 "$@" </dev/null 2>&1 || true; }
out=$(s_client -CAfile "$C/ca.pem")
[[ $out == *"Verify return code: 0 (ok)"* ]] || fail "openssl s_client -CAfile ca.pem did not verify: $out"
[[ $out == *"subject=CN = 127.0.0.1"* ]] || fail "openssl s_client did not see the host certificate: $out"
out=$(s_client -CAfile "$C/other.pem")
[[ $out == *"Verify return code: 21 (unable to verify the first certificate)"* ]] ||
  fail "openssl s_client trusting another CA: $out"

stop_host "$mutual_pid"
stop_host "$tls_pid"

HELP=$("$ML" --help)
for option in "tls://HOST:PORT" "--tls-cert FILE --tls-key FILE" "--tls-client-ca FILE" "--tls-ca FILE" "--tls-insecure"; do
  grep -q -- "$option" <<<"$HELP" || fail "--help does not document $option"
done
echo "cli.tls: ok"

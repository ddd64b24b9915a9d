#!/usr/bin/env bash
# A host for run-with-host.sh that puts TLS in the path of a Node guest:
#
#   tls-relay-host.sh MANY_LEVEL DIR [HOST OPTIONS...]
#
# makes a CA and a host certificate (for 127.0.0.1) in DIR, starts
# `many-level serve --listen tls://127.0.0.1:0` with the certificate and
# HOST OPTIONS (the database: --memory, --db FILE), waits for it, then
# becomes a relay `many-level serve --upstream tls://... --tls-ca ca.pem
# --listen tcp://127.0.0.1:0`, which prints the "listening tcp://..." line
# run-with-host.sh waits for. Node guests (which speak no TLS) use the relay;
# every frame between relay and host crosses TLS, with the host's certificate
# verified. Both processes are in run-with-host.sh's process group and stop
# with it; the TLS host's log is DIR/tls-host.log.
# CMake registers it only in a build with TLS; run-with-host.sh's --require
# openssl skips it without the openssl command.
set -euo pipefail
many_level=$1
dir=$2
shift 2

CERTS=$dir/certs
mkdir -p "$CERTS"
source "$(dirname "$0")/../tls_certs.sh"
make_ca ca && make_cert host ca 127.0.0.1 "IP:127.0.0.1"

log=$dir/tls-host.log
"$many_level" serve "$@" --listen tls://127.0.0.1:0 --tls-cert "$CERTS/host.pem" --tls-key "$CERTS/host.key" \
  </dev/null 2>"$log" &
host=$!
for ((i = 0; i < 300; i++)); do
  upstream=$(grep -m1 -oE 'listening tls://[^[:space:]]+' "$log" | sed 's/^listening //') || true
  [[ -n $upstream ]] && break
  if ! kill -0 "$host" 2>/dev/null; then
    echo "tls-relay-host: the TLS host exited before listening:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
[[ -n $upstream ]] || { echo "tls-relay-host: the TLS host did not listen within 30 s" >&2; exit 1; }
echo "tls-relay-host: TLS host at $upstream (pid $host)" >&2
exec "$many_level" serve --upstream "$upstream" --tls-ca "$CERTS/ca.pem" --listen tcp://127.0.0.1:0

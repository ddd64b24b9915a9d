# Test certificates made with the openssl command, for the shell tests that
# need TLS (tests/cli/tls.sh, tests/interop/tls-relay-host.sh). Source it,
# set CERTS to a directory, then:
#
#   make_ca NAME                  $CERTS/NAME.pem, $CERTS/NAME.key: a CA
#   make_cert NAME CA CN [SAN]    $CERTS/NAME.pem, $CERTS/NAME.key, signed by CA
#
# Both return non-zero, with openssl's output on stderr, when openssl fails.
# P-256 keys: quick to make, so every run makes its own. Valid for two days.

make_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$CERTS/$1.key" -out "$CERTS/$1.pem" -subj "/CN=many-level test $1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>"$CERTS/$1.err" ||
    { cat "$CERTS/$1.err" >&2; return 1; }
}

make_cert() {
  local name=$1 ca=$2 cn=$3 san=${4:-}
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CERTS/$name.key" \
    -out "$CERTS/$name.csr" -subj "/CN=$cn" 2>"$CERTS/$name.err" || { cat "$CERTS/$name.err" >&2; return 1; }
  : >"$CERTS/$name.ext"
  [[ -z $san ]] || echo "subjectAltName=$san" >"$CERTS/$name.ext"
  openssl x509 -req -in "$CERTS/$name.csr" -CA "$CERTS/$ca.pem" -CAkey "$CERTS/$ca.key" -CAcreateserial -days 2 \
    -extfile "$CERTS/$name.ext" -out "$CERTS/$name.pem" 2>"$CERTS/$name.err" ||
    { cat "$CERTS/$name.err" >&2; return 1; }
}

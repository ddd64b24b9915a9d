// The help text of the many-level program: the one place its commands,
// options and exit statuses are described.
#pragma once

#include "many_level.hpp"

namespace cli {

inline constexpr const char* usage_text = R"(many-level: share one key-value database between processes and machines.
Speaks the wire protocol of Node's many-level 2.0.0: Node and C++ guests and hosts mix freely.

Usage:
  many-level serve [--db PATH | --memory | --upstream ADDR [--retry]]
                   [--listen ADDR]... [--stdio] [--readonly] [--prefix NAME]
                   [--max-frame BYTES] [--max-snapshots N] [--max-watches N]
                   [--history-commits N] [--history-bytes BYTES]
                   [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
                   [--tls-ca FILE | --tls-insecure]   (with --upstream tls://)
                   [--auth FILE [--allow-anonymous GRANT[@ADDR]]...]
  many-level get KEY            [guest options]
  many-level put KEY VALUE      [guest options]   (VALUE '-' reads stdin)
  many-level del KEY            [guest options]
  many-level ls  [range options] [--limit N] [--reverse] [--keys | --values] [guest options]
  many-level batch              [guest options]   (operations on stdin, see below)
  many-level clear [range options] [--limit N] [--reverse] [guest options]
  many-level watch [range options] [--since SEQ] [--json] [guest options]
  many-level stats [--json] [--connect ADDR] [--token-file FILE] [TLS options]
  many-level token create --out FILE [--read-only] [--prefix NAME]
  many-level token hash [--read-only] [--prefix NAME]   (the token on stdin)
  many-level bench [--connect ADDR [TLS options] | --sqlite PATH | --memory | --ping-pong]
                   [--scale S] [--only W1,W2,...] [--impl NAME]
  many-level --version | --help

ADDR is tcp://HOST:PORT, tls://HOST:PORT (TCP with TLS) or unix:PATH.

serve: a host. Each connection is one guest; the host logs connections and
disconnections to stderr. SIGINT and SIGTERM close the database cleanly.
  --db PATH          SQLite database file (default ./many-level.db; created if missing)
  --memory           an in-memory database instead, gone when the host exits
  --upstream ADDR    relay: the database is itself a guest of the host at ADDR
  --retry            with --upstream: ride through upstream reconnects, so this
                     host's guests do not notice them
  --listen ADDR      where guests connect (default tcp://127.0.0.1:9000); repeatable;
                     a tls:// one needs --tls-cert and --tls-key
  --stdio            serve exactly one guest on stdin/stdout and exit at end of input
                     (without --listen, nothing else is served)
  --readonly         refuse put, del, batch and clear with LEVEL_READONLY
  --prefix NAME      expose only the sublevel NAME (abstract-level's !NAME! prefix)
  --max-frame BYTES  close a connection that sends a longer frame (default 67108864)
  --max-snapshots N  open snapshots per connection; one more is refused with
                     LEVEL_LIMIT_REACHED (default 64)
  --max-watches N    open watches per connection, likewise (default 64)
  --history-commits N, --history-bytes BYTES
                     the change history kept for watchers that resume or fall
                     behind: the last N commits, at most BYTES of them
                     (defaults 100000 and 67108864); not with --upstream, whose
                     history is the upstream host's
  --tls-cert FILE, --tls-key FILE
                     this host's certificate (PEM, the chain after it) and its
                     unencrypted key: shown to guests on tls:// listeners, and
                     offered to a tls:// --upstream that asks for one
  --tls-client-ca FILE
                     tls:// listeners refuse guests without a certificate
                     signed by a CA in FILE (PEM)
  --tls-ca FILE, --tls-insecure
                     with --upstream tls://: as for the guests, below
  --auth FILE        guests must present a token whose SHA-256 is in FILE; each
                     line: HASH read-write|read-only [PREFIX] (a guest with a
                     prefix sees only that sublevel, as its whole database).
                     A guest without one (any Node guest) is refused with
                     LEVEL_UNAUTHENTICATED, unless:
  --allow-anonymous GRANT[@ADDR]
                     with --auth: guests without a token get GRANT (read-only
                     or read-write) on every listener, or only on the --listen
                     ADDR named (stdio for --stdio); repeatable

Guest options (get, put, del, ls, batch, clear, watch; stats takes --connect,
--token-file and the TLS options below):
  --connect ADDR         the host (default tcp://127.0.0.1:9000)
  --token-file FILE      the token for a host that authenticates (serve --auth):
                         its first line. Else the MANY_LEVEL_TOKEN variable.
                         Never on the command line, where others can read it
  --key-encoding ENC     utf8 (default), hex, base64 or json
  --value-encoding ENC   utf8 (default), hex, base64 or json
  --prefix NAME          work in the sublevel NAME (abstract-level's !NAME! prefix):
                         keys and ranges are the sublevel's, without the prefix

TLS options (guest commands, stats, and serve --upstream), with a tls:// ADDR:
  --tls-ca FILE          the CAs (PEM) that may sign the host's certificate;
                         without it, the system's. The certificate's chain and
                         name (ADDR's host, DNS name or IP) are always checked
  --tls-cert FILE --tls-key FILE
                         a client certificate, for a host that asks for one
  --tls-insecure         do NOT check the host's certificate (tests only: anyone
                         on the path can pose as the host); warns on stderr
A certificate that fails the check ends the command with exit 1 and the
reason ("TLS handshake failed: certificate verify failed: ...").

Range options (ls, clear, watch): --gt KEY --gte KEY --lt KEY --lte KEY (in the key encoding).
ls prints one entry a line: KEY<TAB>VALUE, or only keys (--keys) or values (--values).
batch reads a JSON array of operations, or one JSON operation a line, from stdin:
  {"type": "put", "key": "a", "value": "1"}    {"type": "del", "key": "b"}
(with --value-encoding json, "value" may be any JSON value).

watch: prints every change in the range as its commit reaches the host, one
line an operation, until SIGINT or SIGTERM (exit 0):
  SEQ<TAB>put<TAB>KEY<TAB>VALUE    SEQ<TAB>del<TAB>KEY
SEQ is the host's commit sequence (a batch is one commit; a clear appears as
the deletes it did). --json prints an object a line instead:
  {"seq":7,"type":"put","key":"a","value":"1"}
(a key or value that is not UTF-8 text comes as "key_hex" / "value_hex").
--since SEQ resumes after commit SEQ, from the host's history. A C++ host
serving its own database only: a Node host or a relay (serve --upstream) has
no change feed (exit 1).

stats: the host's uptime, connections accepted, database (kind, file, size),
commit sequence and version, then its open connections (address, since when,
requests, bytes in and out, iterators, watches, snapshots, pending requests,
C++ or Node guest). --json prints the same as one JSON object. A C++ host
only (exit 1 against a Node host).

token: tokens for serve --auth. create writes a new random token to FILE
(mode 0600, never over an existing file) and prints the --auth line for it;
hash prints that line for a token read from stdin. Tokens are never printed.

bench: the workloads of docs/BENCHMARKS.md (N = 200000*S, M = 20000*S, 100-byte
values), against a host (--connect, clears it first!) or in process (--sqlite,
--memory); one JSON line each. --ping-pong measures the loopback floor.

Exit status: 0 success, 1 failure (connection, database or host error,
a host without the extension), 2 usage error, 3 key not found (get).
)";

}  // namespace cli

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
  many-level get KEY            [guest options]
  many-level put KEY VALUE      [guest options]   (VALUE '-' reads stdin)
  many-level del KEY            [guest options]
  many-level ls  [range options] [--limit N] [--reverse] [--keys | --values] [guest options]
  many-level batch              [guest options]   (operations on stdin, see below)
  many-level clear [range options] [--limit N] [--reverse] [guest options]
  many-level watch [range options] [--since SEQ] [--json] [guest options]
  many-level stats [--json] [--connect ADDR]
  many-level bench [--connect ADDR | --sqlite PATH | --memory | --ping-pong]
                   [--scale S] [--only W1,W2,...] [--impl NAME]
  many-level --version | --help

ADDR is tcp://HOST:PORT or unix:PATH.

serve: a host. Each connection is one guest; the host logs connections and
disconnections to stderr. SIGINT and SIGTERM close the database cleanly.
  --db PATH          SQLite database file (default ./many-level.db; created if missing)
  --memory           an in-memory database instead, gone when the host exits
  --upstream ADDR    relay: the database is itself a guest of the host at ADDR
  --retry            with --upstream: ride through upstream reconnects, so this
                     host's guests do not notice them
  --listen ADDR      where guests connect (default tcp://127.0.0.1:9000); repeatable
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

Guest options (get, put, del, ls, batch, clear, watch):
  --connect ADDR         the host (default tcp://127.0.0.1:9000)
  --key-encoding ENC     utf8 (default), hex, base64 or json
  --value-encoding ENC   utf8 (default), hex, base64 or json
  --prefix NAME          work in the sublevel NAME (abstract-level's !NAME! prefix):
                         keys and ranges are the sublevel's, without the prefix

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

bench: the workloads of docs/BENCHMARKS.md (N = 200000*S, M = 20000*S, 100-byte
values), against a host (--connect, clears it first!) or in process (--sqlite,
--memory); one JSON line each. --ping-pong measures the loopback floor.

Exit status: 0 success, 1 failure (connection, database or host error,
a host without the extension), 2 usage error, 3 key not found (get).
)";

}  // namespace cli

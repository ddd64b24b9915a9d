// many-level for C++: share one key-value database between processes and
// machines over any byte stream, speaking the wire protocol of the Node
// package many-level 2.0.0. This is the one header users include.
//
// Optional parts: define MANY_LEVEL_NO_SQLITE before including to leave out
// SqliteDatabase (and the need for SQLite's headers and library), and
// MANY_LEVEL_NO_OPENSSL to leave out TLS (and OpenSSL's).
#pragma once

#include "many_level/version.hpp"
#include "many_level/error.hpp"
#include "many_level/options.hpp"
#include "many_level/range.hpp"
#include "many_level/encoding.hpp"
#include "many_level/iterator.hpp"
#include "many_level/database.hpp"
#include "many_level/chained_batch.hpp"
#include "many_level/sublevel.hpp"
#include "many_level/memory_database.hpp"
#include "many_level/host_stats.hpp"

#include "many_level/protocol/protocol.hpp"
#include "many_level/transport/session.hpp"
#include "many_level/transport/address.hpp"
#include "many_level/transport/event_loop.hpp"
#include "many_level/transport/fd_transport.hpp"
#include "many_level/transport/iostream_transport.hpp"
#include "many_level/transport/memory_pair.hpp"
#include "many_level/host/host.hpp"
#include "many_level/guest/guest.hpp"
#include "many_level/guest/connector.hpp"
#ifndef MANY_LEVEL_NO_OPENSSL
#include "many_level/transport/tls.hpp"
#endif
#ifndef MANY_LEVEL_NO_SQLITE
#include "many_level/sqlite_database.hpp"
#endif

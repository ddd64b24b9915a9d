// A host's statistics, as Host::stats() reports them in process and a guest
// receives them over the wire (the extension's HostStatsReply): the message
// structs themselves, so the two can never drift apart.
#pragma once

#include "protocol/messages.hpp"
#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// uptime, connections accepted since start, the database (kind, file, size,
// commit sequence), the host's version, and every open connection.
using HostStats = protocol::HostStatsMessage;
// One open connection: address, since when, requests, bytes and frames in
// and out, open iterators, watches, snapshots, pending requests, and whether
// it negotiated the extension.
using HostConnectionStats = protocol::HostConnectionStats;

MANY_LEVEL_NAMESPACE_END

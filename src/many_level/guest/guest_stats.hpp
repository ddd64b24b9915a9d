// What a guest reports about itself (Guest::stats()), for monitoring and the
// Inspector: its stream, the requests waiting for replies, its iterators, and
// the extension: the host's answer, its watches and its snapshots.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../version.hpp"
#include "guest_snapshot.hpp"
#include "guest_watch.hpp"
#include "negotiation.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

struct PendingRequestInfo {
  uint32_t id = 0;
  const char* operation = "";
  std::string key;
  std::chrono::steady_clock::duration age{};
};

struct GuestIteratorInfo {
  uint32_t id = 0;
  uint32_t seq = 0;
  uint64_t consumed = 0;
  size_t buffered_entries = 0;
  size_t unacknowledged_frames = 0;
  bool ended = false;
  bool errored = false;
  bool reverse = false;
  int64_t limit = -1;
};

struct GuestStats {
  bool connected = false;
  uint64_t connects = 0;
  uint64_t disconnects = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  std::vector<PendingRequestInfo> pending;
  std::vector<GuestIteratorInfo> iterators;
  // The extension, for the current stream (or the last one).
  HostExtension extension = HostExtension::unknown;
  std::vector<std::string> features;  // what the host offered; empty unless available
  std::vector<GuestWatchInfo> watches;
  std::vector<GuestSnapshotInfo> snapshots;
};

MANY_LEVEL_NAMESPACE_END

// What a host lets its guests do, and the limits that keep one guest from
// hurting the host or the others. The reference host has readonly and the
// three hooks; the limits are ours.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

#include "../database.hpp"
#include "../options.hpp"
#include "../version.hpp"
#include "access.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

struct HostOptions {
  // Refuse put, del, batch and clear with LEVEL_READONLY.
  bool readonly = false;

  // Who may connect and what each may do (tokens and grants, access.hpp);
  // open to everyone by default. Host::create_session takes one per listener.
  HostAccess access = HostAccess::open();

  // Hooks run before an operation reaches the database; one that throws
  // rejects the operation, and the guest gets the thrown Error's LEVEL_* code
  // (any other exception: LEVEL_REMOTE_ERROR). They run on worker threads.
  std::function<void(std::string_view key, std::string_view value)> preput;
  std::function<void(std::string_view key)> predel;
  std::function<void(const std::vector<BatchOperation>& operations)> prebatch;
  // The reference runs no hook on clear, so a guest could delete what predel
  // refuses. Here clear runs preclear; with predel or prebatch set and no
  // preclear, clear is refused (LEVEL_NOT_SUPPORTED) rather than let through.
  std::function<void(const RangeOptions& range)> preclear;

  // A frame longer than this closes the connection before anything is
  // allocated for it (the reference has no limit).
  size_t max_frame_length = size_t{64} << 20;

  // Replies waiting to be sent, per connection. Iterators read ahead only into
  // the room left below it, and input pauses while it is full.
  size_t output_high_water = size_t{1} << 20;

  // The most an iterator's data frame holds, in bytes (estimated) and in
  // entries. Bigger frames help a C++ guest little and hurt a Node guest a
  // lot (it consumes a frame with Array#shift, slow on large arrays).
  size_t iterator_frame_bytes = size_t{64} << 10;
  size_t iterator_frame_entries = 1000;

  // Requests of one connection that may be in flight at once; past it, the
  // host stops reading that connection until some are answered.
  size_t max_pending_requests = 4096;

  // Open iterators per connection; one more is answered with an error.
  size_t max_iterators = 1024;

  // The extension. Explicit snapshots one connection may hold open; one more
  // is refused with LEVEL_LIMIT_REACHED. Each holds what the store needs to
  // read the past (a SQLite read transaction keeps the WAL from shrinking).
  size_t max_snapshots = 64;

  // Watches per connection; one more is refused (WatchError LEVEL_LIMIT_REACHED).
  size_t max_watches = 64;

  // The most a WatchData frame holds, in bytes of keys and values and in
  // commits; a single commit bigger than that still goes, alone. A watch has
  // at most two frames unacknowledged, so these bound what it can hold up.
  size_t watch_frame_bytes = size_t{64} << 10;
  size_t watch_frame_commits = 1000;

  // Frames that fail to decode are ignored as the reference does, but a
  // connection that sends this many is closed: it is not a many-level guest.
  size_t max_malformed_frames = 100;

  // Where the host reports connection events and protocol failures; none by default.
  std::function<void(std::string_view line)> log;
};

MANY_LEVEL_NAMESPACE_END

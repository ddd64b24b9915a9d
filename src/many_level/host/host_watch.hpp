// The host's side of one watch (the extension's WatchRequest): the guest's
// range, a cursor into the database's change feed, and the frames the guest
// has not acknowledged yet; and how the next WatchData frame is read from the
// feed. Flow control is the iterators': nothing more is read for a watch with
// two frames unacknowledged, so a watcher that never reads costs two frames
// and a cursor, and is told LEVEL_WATCH_TOO_OLD once the history has moved
// past its cursor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string_view>
#include <vector>

#include "../change_feed.hpp"
#include "../range.hpp"
#include "../version.hpp"
#include "../protocol/messages.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

struct HostWatch {
  // Unacknowledged frames past which nothing more is read (as for iterators).
  static constexpr size_t max_unacknowledged = 2;

  uint32_t id = 0;
  KeyRange range;
  // Every commit up to here was sent or did not touch the range. Only the
  // session's pump moves it, one pump at a time.
  uint64_t cursor = 0;
  // The seq of each unacknowledged frame's last commit, oldest first.
  std::deque<uint64_t> unacknowledged;
  bool ended = false;  // closed, failed, or its stream ended

  bool may_send() const { return unacknowledged.size() < max_unacknowledged; }

  // One WatchAck{seq}: releases the oldest frame if the ack covers it. An ack
  // of something never sent (or of an earlier watch with the same id) does not.
  bool acknowledge(uint64_t seq) {
    if (unacknowledged.empty() || seq < unacknowledged.front()) return false;
    unacknowledged.pop_front();
    return true;
  }
};

inline KeyRange watch_key_range(const protocol::WatchRange& wire) {
  RangeOptions range;
  range.gt = wire.gt;
  range.gte = wire.gte;
  range.lt = wire.lt;
  range.lte = wire.lte;
  return KeyRange::from(range);
}

// How much one WatchData frame holds: keys and values in bytes, and commits.
// The first commit goes in whatever its size, so a huge one is never stuck.
struct WatchFrameLimits {
  size_t max_bytes = size_t{64} << 10;
  size_t max_commits = 1000;
};

struct WatchFrame {
  std::vector<protocol::Commit> commits;  // in range only; may be empty
  uint64_t cursor = 0;                    // where the next frame starts reading
};

// Reads, after `after`, the commits of one frame: each commit with only its
// operations under `prefix` and in `range` (keys without the prefix), those
// with none skipped. The cursor passes skipped commits too, so a watch of a
// quiet range keeps up with a busy feed. too_old: commits after `after` have
// left the history.
inline ChangeFeed::ReadStatus read_watch_frame(const ChangeFeed& feed, std::string_view prefix,
                                               const KeyRange& range, uint64_t after,
                                               const WatchFrameLimits& limits, WatchFrame& frame) {
  frame.cursor = after;
  size_t bytes = 0;
  std::vector<std::shared_ptr<const Commit>> commits;
  while (frame.commits.size() < limits.max_commits && bytes < limits.max_bytes) {
    commits.clear();
    if (feed.read(frame.cursor, limits.max_commits, limits.max_bytes, commits) == ChangeFeed::ReadStatus::too_old) {
      return ChangeFeed::ReadStatus::too_old;
    }
    if (commits.empty()) break;  // caught up
    for (const auto& commit : commits) {
      auto operations = operations_in(*commit, prefix, range);
      if (!operations.empty()) {
        size_t weight = 0;
        for (const auto& op : operations) weight += op.key.size() + op.value.size() + 8;
        // It opens the next frame instead; the cursor stays before it.
        if (!frame.commits.empty() && (bytes + weight > limits.max_bytes || frame.commits.size() >= limits.max_commits)) {
          return ChangeFeed::ReadStatus::ok;
        }
        bytes += weight;
        protocol::Commit wire;
        wire.seq = commit->seq;
        wire.ops.reserve(operations.size());
        for (auto& op : operations) {
          bool put = op.type == BatchOperation::Type::put;
          wire.ops.push_back({put ? protocol::BatchOp::Type::put : protocol::BatchOp::Type::del, std::move(op.key),
                              put ? std::optional<std::string>(std::move(op.value)) : std::nullopt});
        }
        frame.commits.push_back(std::move(wire));
      }
      frame.cursor = commit->seq;
    }
  }
  return ChangeFeed::ReadStatus::ok;
}

MANY_LEVEL_NAMESPACE_END

// The host's side of one remote iterator: its state in the reference's flow
// control (seq, consumed, unacknowledged frames, read-ahead) and how a
// retrying guest's bookmark becomes a range to resume from.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "../database.hpp"
#include "../iterator.hpp"
#include "../range.hpp"
#include "../version.hpp"
#include "../protocol/messages.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

struct HostIterator {
  uint32_t id = 0;
  uint32_t seq = 0;
  protocol::IteratorOptions options;
  std::unique_ptr<Iterator> iterator;  // null until created in request order
  // The guest's snapshot it reads at (extension), kept to recreate the store
  // iterator when a seek leaves a range cut at a bookmark.
  std::shared_ptr<Snapshot> snapshot;

  int64_t limit = -1;      // the guest's limit, counted here (the store's iterator has none)
  uint64_t consumed = 0;   // what the guest says it consumed
  uint64_t sent = 0;       // consumed plus what was sent since, in this seq
  unsigned pending_acks = 0;
  size_t max_item_length = 1;  // bytes per entry seen so far, to size read-ahead

  bool busy = true;  // a worker holds `iterator` (creating, reading or seeking)
  bool ended = false;
  bool closed = false;
  bool read_ahead = false;
  bool narrowed = false;  // range cut at a bookmark; a seek needs the whole range back
  std::optional<std::pair<std::string, uint32_t>> pending_seek;

  // Entries the guest may still receive, by its limit.
  uint64_t budget() const {
    if (limit < 0) return UINT64_MAX;
    return static_cast<uint64_t>(limit) > sent ? static_cast<uint64_t>(limit) - sent : 0;
  }
};

// The store iterator's options for a guest's request: raw bytes, no limit
// (the host counts it, because it reads ahead and can seek), and, after a
// reconnect, the range cut just past the bookmark. Cutting the range rather
// than seeking to a computed key is what makes reverse resumption exact: the
// reference seeks to the bookmark with its last byte decremented, which skips
// keys (PROTOCOL.md, "Known weak spots").
inline IteratorOptions store_iterator_options(const protocol::IteratorOptions& wire,
                                              const std::optional<std::string>& bookmark) {
  IteratorOptions options;
  options.keys = wire.keys;
  options.values = wire.values;
  options.gt = wire.gt;
  options.gte = wire.gte;
  options.lt = wire.lt;
  options.lte = wire.lte;
  options.reverse = wire.reverse;
  options.limit = -1;
  options.key_encoding = "buffer";
  options.value_encoding = "buffer";
  if (bookmark) {
    KeyRange range = KeyRange::from(options);
    if (!wire.reverse && (!range.lower || compare_keys(*bookmark, range.lower->key) >= 0)) {
      options.gte.reset();
      options.gt = *bookmark;
    } else if (wire.reverse && (!range.upper || compare_keys(*bookmark, range.upper->key) <= 0)) {
      options.lte.reset();
      options.lt = *bookmark;
    }
  }
  return options;
}

MANY_LEVEL_NAMESPACE_END

// The reads the key browser makes, as plain functions over any Database (a
// Guest in the Inspector, a MemoryDatabase in unit tests). Every one reads a
// bounded amount, so a browser over a million keys never holds them all:
//   read_range         one page of entries (keys and values) in [from, upper)
//   read_keys          the same without values, to check a page's row count
//   index_range        counts keys (keys only) and notes every page_size-th
//                      one as a page anchor: the index that makes a scroll
//                      bar possible without keeping the keys
//   discover_sublevels the `!name!` prefixes under a prefix, one seek a name
// Qt-free.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "many_level/database.hpp"
#include "many_level/iterator.hpp"

namespace inspector {

// A half-open key range [gte, lt); absent bounds are open.
struct KeyBounds {
  std::optional<std::string> gte;
  std::optional<std::string> lt;

  bool empty() const { return gte && lt && !(*gte < *lt); }
  bool contains(const std::string& key) const { return (!gte || !(key < *gte)) && (!lt || key < *lt); }
  bool operator==(const KeyBounds& other) const { return gte == other.gte && lt == other.lt; }
};

// The smallest key above every key that starts with `prefix`, or nullopt when
// there is none (an empty prefix, or one of 0xff bytes only).
inline std::optional<std::string> prefix_upper_bound(std::string prefix) {
  while (!prefix.empty() && static_cast<unsigned char>(prefix.back()) == 0xff) prefix.pop_back();
  if (prefix.empty()) return std::nullopt;
  prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
  return prefix;
}

inline KeyBounds prefix_bounds(const std::string& prefix) {
  KeyBounds bounds;
  if (!prefix.empty()) bounds.gte = prefix;
  bounds.lt = prefix_upper_bound(prefix);
  return bounds;
}

inline KeyBounds intersect(const KeyBounds& a, const KeyBounds& b) {
  KeyBounds out;
  out.gte = !a.gte ? b.gte : !b.gte ? a.gte : std::max(*a.gte, *b.gte);
  out.lt = !a.lt ? b.lt : !b.lt ? a.lt : std::min(*a.lt, *b.lt);
  return out;
}

// Lets the caller see each iterator as it opens (the Inspector labels them,
// so its iterators view can say what each one is for).
struct QueryHooks {
  std::function<void(many_level::Iterator& iterator, const many_level::IteratorOptions& options,
                     const std::string& purpose)>
      opened;
};

inline std::unique_ptr<many_level::Iterator> open_iterator(many_level::Database& db,
                                                           const many_level::IteratorOptions& options,
                                                           const QueryHooks& hooks, const std::string& purpose) {
  auto iterator = db.iterator(options);
  if (hooks.opened) hooks.opened(*iterator, options, purpose);
  return iterator;
}

// Bounds as raw bytes. An empty `from` is the smallest key: no bound is sent.
inline many_level::IteratorOptions raw_options(const std::string& from, const std::optional<std::string>& upper) {
  many_level::IteratorOptions options;
  if (!from.empty()) options.gte = from;
  options.lt = upper;
  options.key_encoding = "buffer";
  options.value_encoding = "buffer";
  return options;
}

// Entries in [from, upper), at most `limit` + 1: an extra one tells the
// caller that the range holds more than `limit`.
inline std::vector<many_level::Entry> read_range(many_level::Database& db, const std::string& from,
                                                 const std::optional<std::string>& upper, size_t limit,
                                                 const QueryHooks& hooks = {}) {
  auto options = raw_options(from, upper);
  options.limit = static_cast<int64_t>(limit) + 1;
  auto iterator = open_iterator(db, options, hooks, "key browser: page");
  std::vector<many_level::Entry> entries;
  while (entries.size() <= limit) {
    auto batch = iterator->nextv(limit + 1 - entries.size());
    if (batch.empty()) break;
    for (auto& entry : batch) entries.push_back(std::move(entry));
  }
  iterator->close();
  return entries;
}

// The keys (no values) in [from, upper), at most `limit` + 1, as read_range:
// what a page's row count is checked against.
inline std::vector<std::string> read_keys(many_level::Database& db, const std::string& from,
                                          const std::optional<std::string>& upper, size_t limit,
                                          const QueryHooks& hooks = {}) {
  auto options = raw_options(from, upper);
  options.values = false;
  options.limit = static_cast<int64_t>(limit) + 1;
  auto iterator = open_iterator(db, options, hooks, "key browser: recount");
  std::vector<std::string> keys;
  while (keys.size() <= limit) {
    auto batch = iterator->nextv(limit + 1 - keys.size());
    if (batch.empty()) break;
    for (auto& entry : batch) keys.push_back(std::move(entry.key));
  }
  iterator->close();
  return keys;
}

struct CountedPage {
  std::string anchor;  // the smallest key the page may hold
  size_t size = 0;
};

struct IndexChunk {
  std::vector<CountedPage> pages;     // the first is anchored at `from`
  std::optional<std::string> next;    // the first key not counted; none: the range is done
};

// Counts the keys of [from, upper), at most `max_keys` of them, cutting them
// into pages of `page_size`. Only the page anchors are kept.
inline IndexChunk index_range(many_level::Database& db, const std::string& from,
                              const std::optional<std::string>& upper, size_t page_size, size_t max_keys,
                              const QueryHooks& hooks = {}) {
  page_size = std::max<size_t>(1, page_size);
  auto options = raw_options(from, upper);
  options.values = false;
  options.limit = static_cast<int64_t>(max_keys) + 1;
  auto iterator = open_iterator(db, options, hooks, "key browser: count");
  IndexChunk chunk;
  chunk.pages.push_back({from, 0});
  size_t total = 0;
  for (bool done = false; !done;) {
    auto batch = iterator->nextv(std::min<size_t>(1000, max_keys + 1 - total));
    if (batch.empty()) break;
    for (auto& entry : batch) {
      if (total == max_keys) {
        chunk.next = std::move(entry.key);
        done = true;
        break;
      }
      if (chunk.pages.back().size == page_size) chunk.pages.push_back({std::move(entry.key), 0});
      ++chunk.pages.back().size;
      ++total;
    }
  }
  iterator->close();
  return chunk;
}

// Whether `name` may be an abstract-level sublevel name: bytes above '"'
// (one byte above the separator is reserved for the upper bound) and below 127.
inline bool valid_sublevel_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte > '"' && byte < 127;
  });
}

struct SublevelScan {
  std::vector<std::string> names;     // in key order
  std::optional<std::string> resume;  // where to go on; none: all found
};

// The sublevels directly under `prefix` ("" for the database, "!a!" for
// sublevel a): keys "<prefix>!<name>!...". A skip scan: each name found costs
// one seek past everything under it, so a sublevel with a million keys costs
// what an empty one does. Stops after `max_steps` reads, telling where to resume.
inline SublevelScan discover_sublevels(many_level::Database& db, const std::string& prefix,
                                       const std::optional<std::string>& resume, size_t max_steps,
                                       const QueryHooks& hooks = {}) {
  const std::string lower = prefix + "!";
  many_level::IteratorOptions options = raw_options(resume.value_or(lower), prefix + "\"");
  options.values = false;
  auto iterator = open_iterator(db, options, hooks, "sublevel scan");
  SublevelScan scan;
  for (size_t step = 0;; ++step) {
    if (step == max_steps) {
      // Resume at the next key, which the iterator would have read.
      auto entry = iterator->next();
      if (entry) scan.resume = std::move(entry->key);
      break;
    }
    auto entry = iterator->next();
    if (!entry) break;
    std::string_view rest = std::string_view(entry->key).substr(lower.size());
    size_t end = rest.find('!');
    if (end == std::string_view::npos || !valid_sublevel_name(rest.substr(0, end))) continue;
    std::string name(rest.substr(0, end));
    // '"' is '!' + 1: the first key after every key under "<prefix>!name!".
    iterator->seek(lower + name + "\"");
    scan.names.push_back(std::move(name));
  }
  iterator->close();
  return scan;
}

}  // namespace inspector

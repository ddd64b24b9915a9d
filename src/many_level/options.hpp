// Option structs of the public API, named and defaulted as abstract-level's
// options are. An empty encoding name means "the database's default".
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

class Snapshot;

// A key range as abstract-level has it. When both gte and gt (or lte and lt)
// are set, the inclusive one wins, as abstract-level's sublevels decide it.
struct RangeOptions {
  std::optional<std::string> gt;
  std::optional<std::string> gte;
  std::optional<std::string> lt;
  std::optional<std::string> lte;
  int64_t limit = -1;  // -1 (or any negative) means no limit
  bool reverse = false;
};

struct IteratorOptions : RangeOptions {
  bool keys = true;
  bool values = true;
  std::string key_encoding;
  std::string value_encoding;
  // Read from this explicit snapshot (Database::snapshot()) instead of the
  // database as it is when the iterator is created.
  std::shared_ptr<Snapshot> snapshot = nullptr;
};

struct ClearOptions : RangeOptions {
  std::string key_encoding;
};

struct ReadOptions {
  std::string key_encoding;
  std::string value_encoding;
  // Read from this explicit snapshot (Database::snapshot()).
  std::shared_ptr<Snapshot> snapshot = nullptr;
};

struct WriteOptions {
  std::string key_encoding;
  std::string value_encoding;
};

struct SeekOptions {
  std::string key_encoding;
};

// Raw bytes in and out: how a sublevel, a host or a guest calls the database
// beneath it, whose own encodings must not apply twice.
inline const ReadOptions raw_read{"buffer", "buffer"};
inline const WriteOptions raw_write{"buffer", "buffer"};

// A watch's range and where it starts. limit and reverse do not apply to a
// watch: leave them as they are.
struct WatchOptions : RangeOptions {
  // Resume: deliver the commits after this sequence (Watch::seq() of an
  // earlier watch). Absent: the commits after the watch starts.
  std::optional<uint64_t> since;
  std::string key_encoding;
  std::string value_encoding;
};

// How much of its change feed a database keeps for watchers that resume
// (see change_feed.hpp): the last commits, bounded in number and in bytes.
struct ChangeHistoryOptions {
  size_t max_commits = 100000;
  size_t max_bytes = size_t{64} << 20;
};

struct DatabaseOptions {
  // A constructor rather than an aggregate, so DatabaseOptions{"utf8", "json"}
  // names the encodings and leaves the rest at their defaults.
  DatabaseOptions() = default;
  DatabaseOptions(std::string key_encoding, std::string value_encoding)
      : key_encoding(std::move(key_encoding)), value_encoding(std::move(value_encoding)) {}

  std::string key_encoding = "utf8";
  std::string value_encoding = "utf8";
  // Stores with a change feed (memory, SQLite) keep this much history.
  ChangeHistoryOptions change_history;
};

MANY_LEVEL_NAMESPACE_END

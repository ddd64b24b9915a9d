// An explicit snapshot, as abstract-level 2/3's db.snapshot(): reads that
// name it (ReadOptions::snapshot, IteratorOptions::snapshot) see the database
// as it was when the snapshot was made, however many writes come after.
//
// Each store makes its own kind (a copy-on-write map, a SQLite read
// transaction, a slot on a remote host); the Database that made it routes
// reads to it, so users only ever call snapshot() and close().
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "encoding.hpp"
#include "error.hpp"
#include "iterator.hpp"
#include "options.hpp"
#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

class Database;

class Snapshot {
 public:
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  virtual ~Snapshot() = default;

  // Releases what holds the snapshot. Later reads that name it fail with
  // LEVEL_SNAPSHOT_NOT_OPEN; iterators already made from it go on to their
  // end. Idempotent and thread-safe; the database's close() closes it too.
  void close() {
    if (open_.exchange(false)) do_close();
  }

  bool is_open() const { return open_.load(); }

 protected:
  Snapshot() = default;

  // Reads over raw bytes, called by the Database that made the snapshot,
  // possibly from several threads at once, only while it is open.
  virtual std::optional<std::string> do_get(std::string_view key) = 0;
  virtual std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) {
    std::vector<std::optional<std::string>> values;
    values.reserve(keys.size());
    for (const auto& key : keys) values.push_back(do_get(key));
    return values;
  }
  virtual std::vector<bool> do_has_many(const std::vector<std::string>& keys) {
    std::vector<bool> found;
    found.reserve(keys.size());
    for (auto& value : do_get_many(keys)) found.push_back(value.has_value());
    return found;
  }
  // As Database::do_iterator: bounds are raw bytes, the encodings go to the
  // Iterator. The iterator must stay valid after the snapshot is closed.
  virtual std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                                std::shared_ptr<const Encoding> key_encoding,
                                                std::shared_ptr<const Encoding> value_encoding) = 0;
  virtual void do_close() = 0;

 private:
  friend class Database;
  const Database* owner_ = nullptr;  // set by Database::snapshot()
  std::atomic<bool> open_{true};
};

MANY_LEVEL_NAMESPACE_END

// abstract-level's chained batch: collect put/del/clear, then write() them as
// one atomic batch. Keys and values are encoded as they are added, so a bad
// one fails at the call that added it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "database.hpp"
#include "error.hpp"
#include "options.hpp"
#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

class ChainedBatch {
 public:
  explicit ChainedBatch(Database& db) : db_(db) {}

  ChainedBatch& put(std::string_view key, std::string_view value, const WriteOptions& options = {}) {
    check_open("put");
    auto codecs = db_.resolve(options.key_encoding, options.value_encoding);
    operations_.push_back(BatchOperation::put(codecs.key_bytes(key), codecs.value_bytes(value)));
    return *this;
  }

  ChainedBatch& del(std::string_view key, const WriteOptions& options = {}) {
    check_open("del");
    auto codecs = db_.resolve(options.key_encoding, options.value_encoding);
    operations_.push_back(BatchOperation::del(codecs.key_bytes(key)));
    return *this;
  }

  // Forgets the operations added so far (not the database's data).
  ChainedBatch& clear() {
    check_open("clear");
    operations_.clear();
    return *this;
  }

  size_t length() const { return operations_.size(); }

  // Writes every operation atomically; the batch is closed afterwards, even
  // when the write fails, as in abstract-level.
  void write() {
    check_open("write");
    closed_ = true;
    auto operations = std::move(operations_);
    operations_.clear();
    db_.batch(operations, raw_write);  // encoded as they were added
  }

  void close() {
    closed_ = true;
    operations_.clear();
  }

  bool is_open() const { return !closed_; }

 private:
  void check_open(const char* method) const {
    if (closed_) {
      throw Error(codes::batch_not_open,
                  std::string("Batch is not open: cannot call ") + method + "() after write() or close()");
    }
  }

  Database& db_;
  std::vector<BatchOperation> operations_;
  bool closed_ = false;
};

inline ChainedBatch Database::batch() {
  if (status() == Status::closed || status() == Status::closing) {
    throw Error(codes::database_not_open, "Database is not open: cannot create a batch");
  }
  return ChainedBatch(*this);
}

MANY_LEVEL_NAMESPACE_END

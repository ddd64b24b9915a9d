// Iterators over a database, with abstract-level's semantics: next, nextv,
// all, seek and close, a limit counted here so stores need not, and keys and
// values decoded through the iterator's encodings.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "encoding.hpp"
#include "error.hpp"
#include "options.hpp"
#include "range.hpp"
#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// One entry of an iterator. With keys=false (or values=false) that half is empty.
struct Entry {
  std::string key;
  std::string value;

  bool operator==(const Entry& other) const { return key == other.key && value == other.value; }
};

class Iterator;

namespace detail {

// The open iterators of one database. Shared by the database and its
// iterators, so an iterator that outlives its database is still safe to use
// (it is closed) and to destroy.
class IteratorRegistry {
 public:
  void add(Iterator* iterator) {
    std::lock_guard<std::mutex> lock(mutex_);
    open_.insert(iterator);
  }
  void remove(Iterator* iterator) {
    std::lock_guard<std::mutex> lock(mutex_);
    open_.erase(iterator);
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return open_.size();
  }
  // Closes every open iterator. Holding the lock keeps each one alive meanwhile:
  // an iterator's destructor removes itself under the same lock first.
  inline void close_all();

 private:
  mutable std::mutex mutex_;
  std::unordered_set<Iterator*> open_;
};

}  // namespace detail

// The public face of every iterator. Stores subclass it and implement the
// do_* hooks over raw bytes; this class enforces state, limit and encodings.
// An iterator is thread-safe: calls from several threads are serialized.
class Iterator {
 public:
  Iterator(const Iterator&) = delete;
  Iterator& operator=(const Iterator&) = delete;

  virtual ~Iterator() {
    if (registry_) registry_->remove(this);
    // Not close(): the subclass is already destroyed. Every store's iterator
    // calls close() in its own destructor, which also takes it out of the
    // registry before a concurrent Database::close() could reach it.
  }

  // The next entry, or nullopt at the end of the range (or of the limit).
  std::optional<Entry> next() {
    std::lock_guard<std::mutex> lock(mutex_);
    check_open("next");
    if (limit_reached() || sought_outside_) return std::nullopt;
    Entry entry;
    if (!do_next(entry)) return std::nullopt;
    ++count_;
    decode(entry);
    return entry;
  }

  // Up to `size` entries (at least 1 is asked for); empty at the end.
  std::vector<Entry> nextv(size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    check_open("nextv");
    std::vector<Entry> entries;
    nextv_locked(size, entries);
    return entries;
  }

  // Every remaining entry; closes the iterator, as abstract-level's all() does.
  std::vector<Entry> all() {
    std::vector<Entry> entries;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      check_open("all");
      while (nextv_locked(1000, entries) > 0) {
      }
    }
    close();
    return entries;
  }

  // Moves to the first key at or after target (at or before, in reverse). A
  // target outside the range ends the iteration until the next seek, as in
  // abstract-level's stores. Ignored once closed, as in abstract-level.
  void seek(std::string_view target, const SeekOptions& options = {}) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    auto encoding = options.key_encoding.empty() ? key_encoding_ : find_encoding(options.key_encoding);
    std::string encoded = encoding->identity() ? std::string() : encode_key(*encoding, target);
    std::string_view bytes = encoding->identity() ? target : std::string_view(encoded);
    sought_outside_ = !range_.contains(bytes);
    if (!sought_outside_) do_seek(bytes);
  }

  void close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      close_locked();
    }
    if (registry_) registry_->remove(this);
  }

  bool is_open() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return !closed_;
  }

  // How many entries this iterator has yielded (abstract-level's `count`).
  uint64_t count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return count_;
  }

  // The limit, or -1 for none.
  int64_t limit() const { return limit_; }

 protected:
  // Stores call this with the options as the user gave them; bounds in
  // `options` reaching the store are already encoded to bytes.
  explicit Iterator(const IteratorOptions& options,
                    std::shared_ptr<const Encoding> key_encoding,
                    std::shared_ptr<const Encoding> value_encoding)
      : key_encoding_(std::move(key_encoding)),
        value_encoding_(std::move(value_encoding)),
        range_(KeyRange::from(options)),
        limit_(options.limit < 0 ? -1 : options.limit),
        keys_(options.keys),
        values_(options.values) {}

  // Fills `entry` with raw bytes and returns true, or returns false at the end.
  virtual bool do_next(Entry& entry) = 0;
  // Appends up to `size` raw entries; stores override it to batch their reads.
  virtual void do_nextv(size_t size, std::vector<Entry>& entries) {
    for (size_t i = 0; i < size; ++i) {
      Entry entry;
      if (!do_next(entry)) break;
      entries.push_back(std::move(entry));
    }
  }
  virtual void do_seek(std::string_view target) = 0;
  // Releases what the store holds; called once, with the iterator's lock held.
  virtual void do_close() {}

  bool wants_keys() const { return keys_; }
  bool wants_values() const { return values_; }

 private:
  friend class Database;
  friend class detail::IteratorRegistry;

  void attach(std::shared_ptr<detail::IteratorRegistry> registry) {
    registry_ = std::move(registry);
    registry_->add(this);
  }

  void close_locked() {
    if (closed_) return;
    closed_ = true;
    do_close();
  }

  // Called by the database's close() with the registry lock held.
  void close_from_database() {
    std::lock_guard<std::mutex> lock(mutex_);
    close_locked();
  }

  void check_open(const char* method) const {
    if (closed_) {
      throw Error(codes::iterator_not_open,
                  std::string("Iterator is not open: cannot call ") + method + "() after close()");
    }
  }

  bool limit_reached() const { return limit_ >= 0 && count_ >= static_cast<uint64_t>(limit_); }

  size_t nextv_locked(size_t size, std::vector<Entry>& entries) {
    if (size < 1) size = 1;
    if (limit_ >= 0) {
      uint64_t left = static_cast<uint64_t>(limit_) - std::min<uint64_t>(count_, limit_);
      if (left < size) size = static_cast<size_t>(left);
    }
    if (size == 0 || sought_outside_) return 0;
    size_t before = entries.size();
    do_nextv(size, entries);
    size_t got = entries.size() - before;
    count_ += got;
    for (size_t i = before; i < entries.size(); ++i) decode(entries[i]);
    return got;
  }

  static std::string encode_key(const Encoding& encoding, std::string_view key) {
    return detail::transcode(encoding, key, codes::invalid_key, &Encoding::encode);
  }

  void decode(Entry& entry) const {
    if (keys_ && !key_encoding_->identity()) {
      entry.key = detail::transcode(*key_encoding_, entry.key, codes::decode_error, &Encoding::decode);
    }
    if (values_ && !value_encoding_->identity()) {
      entry.value = detail::transcode(*value_encoding_, entry.value, codes::decode_error, &Encoding::decode);
    }
  }

  mutable std::mutex mutex_;
  std::shared_ptr<detail::IteratorRegistry> registry_;
  std::shared_ptr<const Encoding> key_encoding_;
  std::shared_ptr<const Encoding> value_encoding_;
  KeyRange range_;  // in bytes, to tell a seek outside it
  bool sought_outside_ = false;
  int64_t limit_;
  bool keys_;
  bool values_;
  bool closed_ = false;
  uint64_t count_ = 0;
};

inline void detail::IteratorRegistry::close_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Iterator* iterator : open_) iterator->close_from_database();
  open_.clear();
}

// keys() and values() of abstract-level: the same iterator, yielding one half.
template <bool Keys>
class HalfIterator {
 public:
  explicit HalfIterator(std::unique_ptr<Iterator> iterator) : iterator_(std::move(iterator)) {}

  std::optional<std::string> next() {
    auto entry = iterator_->next();
    if (!entry) return std::nullopt;
    return pick(*entry);
  }
  std::vector<std::string> nextv(size_t size) { return pick_all(iterator_->nextv(size)); }
  std::vector<std::string> all() { return pick_all(iterator_->all()); }
  void seek(std::string_view target, const SeekOptions& options = {}) { iterator_->seek(target, options); }
  void close() { iterator_->close(); }
  bool is_open() const { return iterator_->is_open(); }
  uint64_t count() const { return iterator_->count(); }

 private:
  static std::string pick(Entry& entry) { return Keys ? std::move(entry.key) : std::move(entry.value); }
  static std::vector<std::string> pick_all(std::vector<Entry> entries) {
    std::vector<std::string> out;
    out.reserve(entries.size());
    for (auto& entry : entries) out.push_back(pick(entry));
    return out;
  }

  std::unique_ptr<Iterator> iterator_;
};

using KeyIterator = HalfIterator<true>;
using ValueIterator = HalfIterator<false>;

MANY_LEVEL_NAMESPACE_END

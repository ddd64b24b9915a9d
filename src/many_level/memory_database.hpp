// An in-memory store: an ordered map with copy-on-write snapshots, for tests
// and embedded use. An iterator shares the map it was created on; the next
// write copies it once, so iterators see a snapshot and cost O(1) to open.
// Explicit snapshots (snapshot()) share the map the same way.
//
// Every commit is published to the database's change feed (watch()), in
// commit order: a put or del as itself (a del even of a missing key, as
// abstract-level emits it), a batch as its operations, a clear as the deletes
// it did (none: no commit).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "database.hpp"
#include "iterator.hpp"
#include "range.hpp"
#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

namespace detail {

// The first key of the range in `map` (where a forward scan starts).
template <typename Map>
auto first_in_range(Map& map, const KeyRange& range) -> decltype(map.begin()) {
  if (!range.lower) return map.begin();
  return range.lower->inclusive ? map.lower_bound(range.lower->key) : map.upper_bound(range.lower->key);
}

// Just past the last key of the range in `map` (where a reverse scan starts).
template <typename Map>
auto past_range(Map& map, const KeyRange& range) -> decltype(map.begin()) {
  if (!range.upper) return map.end();
  return range.upper->inclusive ? map.upper_bound(range.upper->key) : map.lower_bound(range.upper->key);
}

}  // namespace detail

class MemoryDatabase final : public Database {
 public:
  // std::less<> over std::string compares bytes as unsigned, as LevelDB does.
  using Map = std::map<std::string, std::string, std::less<>>;

  explicit MemoryDatabase(DatabaseOptions options = {}) : Database(manifest(), options) {
    enable_change_feed(options.change_history);
  }
  ~MemoryDatabase() override {
    try {
      close();
    } catch (...) {
    }
  }

  // Bytes of keys and values plus a rough per-entry overhead of the map,
  // counted as writes go (a host's statistics ask often).
  StorageInfo storage_info() const override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return {"memory", "", bytes_};
  }

 protected:
  std::optional<std::string> do_get(std::string_view key) override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    auto it = data_->find(key);
    if (it == data_->end()) return std::nullopt;
    return it->second;
  }

  bool do_has(std::string_view key) override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return data_->find(key) != data_->end();
  }

  // Each write records its commit under the write lock (so the feed's order
  // is the map's), and notifies watchers once the lock is released.
  void do_put(std::string_view key, std::string_view value) override {
    {
      std::unique_lock<std::shared_mutex> lock(mutex_);
      set(writable(), key, value);
      feed()->record_with([&] {
        return std::vector<BatchOperation>{BatchOperation::put(std::string(key), std::string(value))};
      });
    }
    feed()->notify();
  }

  void do_del(std::string_view key) override {
    {
      std::unique_lock<std::shared_mutex> lock(mutex_);
      auto& map = writable();
      auto it = map.find(key);
      if (it != map.end()) erase(map, it);
      feed()->record_with([&] { return std::vector<BatchOperation>{BatchOperation::del(std::string(key))}; });
    }
    feed()->notify();
  }

  void do_batch(const std::vector<BatchOperation>& operations) override {
    if (operations.empty()) return;
    {
      std::unique_lock<std::shared_mutex> lock(mutex_);
      auto& map = writable();
      for (const auto& op : operations) {
        if (op.type == BatchOperation::Type::put) {
          set(map, op.key, op.value);
        } else {
          auto it = map.find(op.key);
          if (it != map.end()) erase(map, it);
        }
      }
      feed()->record_with([&] { return operations; });
    }
    feed()->notify();
  }

  void do_clear(const RangeOptions& options) override {
    KeyRange range = KeyRange::from(options);
    if (range.empty()) return;
    {
      std::unique_lock<std::shared_mutex> lock(mutex_);
      auto& map = writable();
      // The deleted keys are moved out of the map's nodes, not copied: the
      // feed gets them if it records, and they are dropped otherwise.
      std::vector<BatchOperation> deleted;
      auto take = [&](Map::iterator victim) {
        auto next = std::next(victim);
        bytes_ -= entry_bytes(victim->first, victim->second);
        deleted.push_back(BatchOperation::del(std::move(map.extract(victim).key())));
        return next;
      };
      uint64_t left = options.limit < 0 ? UINT64_MAX : static_cast<uint64_t>(options.limit);
      if (!options.reverse) {
        for (auto it = detail::first_in_range(map, range); it != map.end() && left > 0; --left) {
          if (!range.below_upper(it->first)) break;
          it = take(it);
        }
      } else {
        for (auto it = detail::past_range(map, range); it != map.begin() && left > 0; --left) {
          auto victim = std::prev(it);
          if (!range.above_lower(victim->first)) break;
          it = take(victim);
        }
      }
      if (deleted.empty()) return;
      feed()->record_with([&] { return std::move(deleted); });
    }
    feed()->notify();
  }

  std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                        std::shared_ptr<const Encoding> key_encoding,
                                        std::shared_ptr<const Encoding> value_encoding) override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return std::make_unique<MapIterator>(data_, options, std::move(key_encoding), std::move(value_encoding));
  }

  std::shared_ptr<Snapshot> do_snapshot() override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return std::make_shared<MapSnapshot>(data_);
  }

  void do_close() override {
    // Like memory-level, data lives as long as the object: reopening keeps it.
  }

 private:
  // What a map node costs beyond its key and value (the tree's pointers and
  // colour, two string headers, the allocator's rounding): an estimate.
  static constexpr uint64_t kEntryOverhead = 96;

  static Supports manifest() {
    Supports supports;
    supports.permanence = false;
    supports.snapshots = true;
    supports.explicit_snapshots = true;
    return supports;
  }

  static uint64_t entry_bytes(std::string_view key, std::string_view value) {
    return key.size() + value.size() + kEntryOverhead;
  }

  // Writes to `map` (writable()'s), keeping bytes_ up to date.
  void set(Map& map, std::string_view key, std::string_view value) {
    auto it = map.lower_bound(key);
    if (it != map.end() && it->first == key) {
      bytes_ -= it->second.size();
      it->second.assign(value.data(), value.size());
      bytes_ += value.size();
    } else {
      map.emplace_hint(it, std::string(key), std::string(value));
      bytes_ += entry_bytes(key, value);
    }
  }

  void erase(Map& map, Map::iterator it) {
    bytes_ -= entry_bytes(it->first, it->second);
    map.erase(it);
  }

  // The map to write to, copied first if an iterator still shares it.
  Map& writable() {
    if (data_.use_count() > 1) data_ = std::make_shared<Map>(*data_);
    return *data_;
  }

  class MapIterator final : public Iterator {
   public:
    MapIterator(std::shared_ptr<const Map> snapshot, const IteratorOptions& options,
                std::shared_ptr<const Encoding> key_encoding, std::shared_ptr<const Encoding> value_encoding)
        : Iterator(options, std::move(key_encoding), std::move(value_encoding)),
          snapshot_(std::move(snapshot)),
          range_(KeyRange::from(options)),
          reverse_(options.reverse) {
      position_ = reverse_ ? detail::past_range(*snapshot_, range_) : detail::first_in_range(*snapshot_, range_);
    }

    // Closed here, while do_close() can still run: a database closing at the
    // same moment must not reach a half-destroyed iterator.
    ~MapIterator() override { close(); }

   protected:
    bool do_next(Entry& entry) override {
      if (!snapshot_ || range_.empty()) return false;
      Map::const_iterator found;
      if (!reverse_) {
        if (position_ == snapshot_->end() || !range_.below_upper(position_->first)) return false;
        found = position_++;
      } else {
        if (position_ == snapshot_->begin()) return false;
        found = std::prev(position_);
        if (!range_.above_lower(found->first)) return false;
        position_ = found;
      }
      if (wants_keys()) entry.key = found->first;
      if (wants_values()) entry.value = found->second;
      return true;
    }

    void do_seek(std::string_view target) override {
      if (!snapshot_) return;
      if (!reverse_) {
        auto start = detail::first_in_range(*snapshot_, range_);
        auto at = snapshot_->lower_bound(target);
        bool past_all = at == snapshot_->end() || start == snapshot_->end();
        position_ = past_all ? snapshot_->end() : (at->first > start->first ? at : start);
      } else {
        auto stop = detail::past_range(*snapshot_, range_);
        auto at = snapshot_->upper_bound(target);
        position_ = (stop == snapshot_->end() || (at != snapshot_->end() && at->first < stop->first)) ? at : stop;
      }
    }

    void do_close() override { snapshot_.reset(); }

   private:
    std::shared_ptr<const Map> snapshot_;
    KeyRange range_;
    bool reverse_;
    Map::const_iterator position_;
  };

  // An explicit snapshot: the map as it was, shared until the next write
  // copies it (as an iterator shares it). Closing lets the map go; iterators
  // made from the snapshot hold it themselves.
  class MapSnapshot final : public Snapshot {
   public:
    explicit MapSnapshot(std::shared_ptr<const Map> map) : map_(std::move(map)) {}

   protected:
    std::optional<std::string> do_get(std::string_view key) override {
      auto map = held();
      auto it = map->find(key);
      if (it == map->end()) return std::nullopt;
      return it->second;
    }

    std::vector<bool> do_has_many(const std::vector<std::string>& keys) override {
      auto map = held();
      std::vector<bool> found;
      found.reserve(keys.size());
      for (const auto& key : keys) found.push_back(map->find(key) != map->end());
      return found;
    }

    std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                          std::shared_ptr<const Encoding> key_encoding,
                                          std::shared_ptr<const Encoding> value_encoding) override {
      return std::make_unique<MapIterator>(held(), options, std::move(key_encoding), std::move(value_encoding));
    }

    void do_close() override {
      std::lock_guard<std::mutex> lock(mutex_);
      map_.reset();
    }

   private:
    // The map, kept by the caller for its read: a close() on another thread
    // meanwhile only drops the snapshot's own reference.
    std::shared_ptr<const Map> held() {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!map_) throw Error(codes::snapshot_not_open, "Snapshot is not open");
      return map_;
    }

    std::mutex mutex_;
    std::shared_ptr<const Map> map_;
  };

  mutable std::shared_mutex mutex_;
  std::shared_ptr<Map> data_ = std::make_shared<Map>();
  uint64_t bytes_ = 0;  // storage_info()'s estimate of data_; guarded by mutex_
};

MANY_LEVEL_NAMESPACE_END

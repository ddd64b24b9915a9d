// A sublevel: a prefixed view of any database, with abstract-level 1's prefix
// scheme (`!name!`, nested `!a!!b!`), so C++ and Node sublevels of the same
// data see the same keys. Nesting needs no special code: a sublevel of a
// sublevel prefixes its keys, and its parent prefixes them again.
//
// Snapshots are its root's: snapshot() hands out the parent's (so every
// sublevel of one root shares them, as abstract-level allows), and reads at a
// snapshot go to the parent with prefixed keys. A watch is the parent's watch
// of the sublevel's range, with the prefix taken off the keys: it works over
// any parent (a local store, a guest), and ends when the parent closes.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "database.hpp"
#include "iterator.hpp"
#include "options.hpp"
#include "prefixed_iterator.hpp"
#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

struct SublevelOptions {
  char separator = '!';
  std::string key_encoding = "utf8";
  std::string value_encoding = "utf8";
};

class Sublevel final : public Database {
 public:
  // Throws LEVEL_INVALID_PREFIX when the name (trimmed of separators) has a
  // byte outside (separator + 1, 127): that reserve is what gives the prefix
  // an upper bound, exactly as in abstract-level.
  Sublevel(Database& parent, std::string_view name, const SublevelOptions& options = {})
      : Database(parent.supports(), DatabaseOptions(options.key_encoding, options.value_encoding)),
        parent_(parent), prefix_(prefix_of(name, options.separator)) {
    const char reserved = static_cast<char>(options.separator + 1);
    upper_bound_ = prefix_.substr(0, prefix_.size() - 1) + reserved;
  }

  // The prefix a sublevel named `name` has, e.g. "!b!" for "b" or "!b!"; throws
  // LEVEL_INVALID_PREFIX for a name the constructor refuses (so that a name
  // read from a file can be checked before any sublevel is made).
  static std::string prefix_of(std::string_view name, char separator = '!') {
    std::string trimmed(name);
    while (!trimmed.empty() && trimmed.front() == separator) trimmed.erase(0, 1);
    while (!trimmed.empty() && trimmed.back() == separator) trimmed.pop_back();
    const int reserved = static_cast<unsigned char>(separator) + 1;
    for (unsigned char c : trimmed) {
      if (c <= reserved || c >= 127) {
        throw Error("LEVEL_INVALID_PREFIX", "Prefix must use bytes > " + std::to_string(reserved) + " < 127");
      }
    }
    return separator + trimmed + separator;
  }

  ~Sublevel() override {
    try {
      close();
    } catch (...) {
    }
  }

  // This sublevel's own prefix, e.g. "!b!" (the parent adds its own, if any).
  const std::string& prefix() const { return prefix_; }
  Database& parent() { return parent_; }

  // The parent's feed, under the parent's prefix and this one's.
  std::optional<ChangeSource> change_source() override {
    auto source = parent_.change_source();
    if (source) source->prefix += prefix_;
    return source;
  }

  StorageInfo storage_info() const override { return parent_.storage_info(); }

 protected:
  // Passive, as abstract-level's is: a sublevel must not reopen a parent
  // that its user closed.
  void do_open(const OpenOptions&) override {
    OpenOptions passive;
    passive.passive = true;
    parent_.open(passive);
  }

  std::optional<std::string> do_get(std::string_view key) override { return parent_.try_get(prefixed(key), raw_read); }

  std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) override {
    return parent_.get_many(prefixed(keys), raw_read);
  }

  bool do_has(std::string_view key) override { return parent_.has(prefixed(key), raw_read); }

  std::vector<bool> do_has_many(const std::vector<std::string>& keys) override {
    return parent_.has_many(prefixed(keys), raw_read);
  }

  void do_put(std::string_view key, std::string_view value) override {
    parent_.put(prefixed(key), value, raw_write);
  }

  void do_del(std::string_view key) override { parent_.del(prefixed(key), raw_write); }

  void do_batch(const std::vector<BatchOperation>& operations) override {
    std::vector<BatchOperation> mapped;
    mapped.reserve(operations.size());
    for (const auto& op : operations) mapped.push_back({op.type, prefixed(op.key), op.value});
    parent_.batch(mapped, raw_write);
  }

  void do_clear(const RangeOptions& range) override {
    ClearOptions mapped;
    static_cast<RangeOptions&>(mapped) = parent_range(range);
    mapped.key_encoding = "buffer";
    parent_.clear(mapped);
  }

  std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                        std::shared_ptr<const Encoding> key_encoding,
                                        std::shared_ptr<const Encoding> value_encoding) override {
    auto inner = parent_.iterator(PrefixedIterator::inner_options(options, parent_range(options)));
    return std::make_unique<PrefixedIterator>(std::move(inner), prefix_, options, std::move(key_encoding),
                                              std::move(value_encoding));
  }

  // The root's snapshot: the root owns it, the parent's close() closes it.
  std::shared_ptr<Snapshot> do_snapshot() override { return parent_.snapshot(); }

  std::optional<std::string> do_get_at(Snapshot& snapshot, std::string_view key) override {
    return parent_.try_get(prefixed(key), read_at(snapshot));
  }

  std::vector<std::optional<std::string>> do_get_many_at(Snapshot& snapshot,
                                                         const std::vector<std::string>& keys) override {
    return parent_.get_many(prefixed(keys), read_at(snapshot));
  }

  std::vector<bool> do_has_many_at(Snapshot& snapshot, const std::vector<std::string>& keys) override {
    return parent_.has_many(prefixed(keys), read_at(snapshot));
  }

  std::unique_ptr<Iterator> do_iterator_at(Snapshot& snapshot, const IteratorOptions& options,
                                           std::shared_ptr<const Encoding> key_encoding,
                                           std::shared_ptr<const Encoding> value_encoding) override {
    IteratorOptions inner_options = PrefixedIterator::inner_options(options, parent_range(options));
    inner_options.snapshot = borrowed(snapshot);
    auto inner = parent_.iterator(inner_options);
    return std::make_unique<PrefixedIterator>(std::move(inner), prefix_, options, std::move(key_encoding),
                                              std::move(value_encoding));
  }

  std::unique_ptr<Watch> do_watch(const WatchOptions& options, WatchCallback callback) override {
    WatchOptions mapped;
    static_cast<RangeOptions&>(mapped) = parent_range(options);
    mapped.limit = -1;
    mapped.reverse = false;
    mapped.since = options.since;
    mapped.key_encoding = "buffer";
    mapped.value_encoding = "buffer";
    const size_t strip = prefix_.size();
    return parent_.watch(mapped, [strip, callback = std::move(callback)](std::optional<Error> error,
                                                                          const Commit& commit) {
      if (error) return callback(std::move(error), commit);
      Commit mine;
      mine.seq = commit.seq;
      mine.operations.reserve(commit.operations.size());
      for (const auto& op : commit.operations) mine.operations.push_back({op.type, op.key.substr(strip), op.value});
      callback(std::nullopt, mine);
    });
  }

 private:
  std::string prefixed(std::string_view key) const {
    std::string out;
    out.reserve(prefix_.size() + key.size());
    out.append(prefix_).append(key);
    return out;
  }

  std::vector<std::string> prefixed(const std::vector<std::string>& keys) const {
    std::vector<std::string> out;
    out.reserve(keys.size());
    for (const auto& key : keys) out.push_back(prefixed(key));
    return out;
  }

  // Raw bytes at `snapshot`, which the caller holds for the whole call.
  static ReadOptions read_at(Snapshot& snapshot) {
    ReadOptions options = raw_read;
    options.snapshot = borrowed(snapshot);
    return options;
  }

  // A shared_ptr that does not own: reads take the snapshot by shared_ptr,
  // and Database::snapshot()'s caller owns it for as long as the read runs
  // (an iterator made at a snapshot does not need the object afterwards).
  static std::shared_ptr<Snapshot> borrowed(Snapshot& snapshot) {
    return std::shared_ptr<Snapshot>(std::shared_ptr<Snapshot>(), &snapshot);
  }

  // The user's range inside this sublevel, as a range of the parent: the
  // prefix fills in for an absent bound, as abstract-level's prefixRange does.
  RangeOptions parent_range(const RangeOptions& range) const {
    RangeOptions out;
    out.limit = range.limit;
    out.reverse = range.reverse;
    if (range.gte) {
      out.gte = prefixed(*range.gte);
    } else if (range.gt) {
      out.gt = prefixed(*range.gt);
    } else {
      out.gte = prefix_;
    }
    if (range.lte) {
      out.lte = prefixed(*range.lte);
    } else if (range.lt) {
      out.lt = prefixed(*range.lt);
    } else {
      // Exclusive, unlike abstract-level's lte: a parent key equal to the
      // upper bound itself (e.g. `!name"`) is not in the sublevel.
      out.lt = upper_bound_;
    }
    return out;
  }


  Database& parent_;
  std::string prefix_;
  std::string upper_bound_;
};

inline std::unique_ptr<Sublevel> Database::sublevel(std::string_view name) {
  return std::make_unique<Sublevel>(*this, name);
}

inline std::unique_ptr<Sublevel> Database::sublevel(std::string_view name, const SublevelOptions& options) {
  return std::make_unique<Sublevel>(*this, name, options);
}

MANY_LEVEL_NAMESPACE_END

// A sublevel: a prefixed view of any database, with abstract-level 1's prefix
// scheme (`!name!`, nested `!a!!b!`), so C++ and Node sublevels of the same
// data see the same keys. Nesting needs no special code: a sublevel of a
// sublevel prefixes its keys, and its parent prefixes them again.
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
      : Database(parent.supports(), DatabaseOptions{options.key_encoding, options.value_encoding}),
        parent_(parent) {
    std::string trimmed(name);
    while (!trimmed.empty() && trimmed.front() == options.separator) trimmed.erase(0, 1);
    while (!trimmed.empty() && trimmed.back() == options.separator) trimmed.pop_back();
    const int reserved = static_cast<unsigned char>(options.separator) + 1;
    for (unsigned char c : trimmed) {
      if (c <= reserved || c >= 127) {
        throw Error("LEVEL_INVALID_PREFIX", "Prefix must use bytes > " + std::to_string(reserved) + " < 127");
      }
    }
    prefix_ = options.separator + trimmed + options.separator;
    upper_bound_ = prefix_.substr(0, prefix_.size() - 1) + static_cast<char>(reserved);
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

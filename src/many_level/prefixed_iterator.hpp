// An iterator that reads another database's iterator and hides a key prefix:
// what a sublevel yields (prefix "!name!") and what a guest that forwards to
// a local database yields (empty prefix).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "iterator.hpp"
#include "options.hpp"
#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

class PrefixedIterator final : public Iterator {
 public:
  // `inner` yields raw bytes (buffer encodings) with keys, and is confined to
  // keys that start with `prefix`; `options` and the encodings are the user's.
  PrefixedIterator(std::unique_ptr<Iterator> inner, std::string prefix, const IteratorOptions& options,
                   std::shared_ptr<const Encoding> key_encoding, std::shared_ptr<const Encoding> value_encoding)
      : Iterator(options, std::move(key_encoding), std::move(value_encoding)),
        inner_(std::move(inner)),
        prefix_(std::move(prefix)) {}

  // Closed while do_close() can still run (see MemoryDatabase's iterator).
  ~PrefixedIterator() override { close(); }

  // The options to open `inner` with, for a user's range already mapped to
  // the inner database's keys: no limit (the outer iterator counts it), keys
  // always (needed to strip the prefix), raw bytes.
  static IteratorOptions inner_options(const IteratorOptions& options, const RangeOptions& mapped_range) {
    IteratorOptions inner = options;
    static_cast<RangeOptions&>(inner) = mapped_range;
    inner.limit = -1;
    inner.keys = true;
    inner.key_encoding = "buffer";
    inner.value_encoding = "buffer";
    return inner;
  }

 protected:
  bool do_next(Entry& entry) override {
    auto next = inner_->next();
    if (!next) return false;
    entry = unfix(std::move(*next));
    return true;
  }

  void do_nextv(size_t size, std::vector<Entry>& entries) override {
    for (auto& next : inner_->nextv(size)) entries.push_back(unfix(std::move(next)));
  }

  void do_seek(std::string_view target) override {
    std::string mapped;
    mapped.reserve(prefix_.size() + target.size());
    mapped.append(prefix_).append(target);
    inner_->seek(mapped, SeekOptions{"buffer"});
  }

  void do_close() override { inner_->close(); }

 private:
  Entry unfix(Entry entry) const {
    if (wants_keys()) {
      entry.key.erase(0, prefix_.size());
    } else {
      entry.key.clear();
    }
    if (!wants_values()) entry.value.clear();
    return entry;
  }

  std::unique_ptr<Iterator> inner_;
  std::string prefix_;
};

MANY_LEVEL_NAMESPACE_END

// What each of the guest's iterators is for ("key browser: page",
// "playground") and the options it was opened with: GuestStats knows an
// iterator's id, seq and counters but not why it exists. Whoever opens an
// iterator labels it here; the iterators view reads the labels. Thread-safe,
// bounded, Qt-free.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "bytes_text.hpp"
#include "key_queries.hpp"
#include "many_level/guest/guest_iterator.hpp"
#include "many_level/options.hpp"

namespace inspector {

struct IteratorLabel {
  std::string purpose;
  std::string options;  // "keys+values gte=\"a\" lt=\"b\" limit=201"
};

class IteratorLabels {
 public:
  explicit IteratorLabels(size_t capacity = 4096) : capacity_(capacity) {}

  void set(uint32_t id, IteratorLabel label) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (labels_.count(id) == 0) order_.push_back(id);
    labels_[id] = std::move(label);
    while (order_.size() > capacity_) {
      labels_.erase(order_.front());
      order_.pop_front();
    }
  }

  std::optional<IteratorLabel> get(uint32_t id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = labels_.find(id);
    if (found == labels_.end()) return std::nullopt;
    return found->second;
  }

  // Labels a guest iterator (any other kind of iterator has no id to label).
  void label(many_level::Iterator& iterator, const many_level::IteratorOptions& options, const std::string& purpose) {
    if (auto* guest_iterator = dynamic_cast<many_level::GuestIterator*>(&iterator)) {
      set(guest_iterator->id(), {purpose, describe(options)});
    }
  }

  // Hooks for key_queries that label every iterator they open.
  QueryHooks hooks() {
    QueryHooks hooks;
    hooks.opened = [this](many_level::Iterator& iterator, const many_level::IteratorOptions& options,
                          const std::string& purpose) { label(iterator, options, purpose); };
    return hooks;
  }

  static std::string describe(const many_level::IteratorOptions& options) {
    std::string out = options.keys && options.values ? "keys+values" : options.keys ? "keys" : "values";
    const auto bound = [&](const char* name, const std::optional<std::string>& value) {
      if (value) out += std::string(" ") + name + "=\"" + escape_bytes(*value, 40) + "\"";
    };
    bound("gt", options.gt);
    bound("gte", options.gte);
    bound("lt", options.lt);
    bound("lte", options.lte);
    if (options.limit >= 0) out += " limit=" + std::to_string(options.limit);
    if (options.reverse) out += " reverse";
    return out;
  }

 private:
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::map<uint32_t, IteratorLabel> labels_;
  std::deque<uint32_t> order_;
};

}  // namespace inspector

// The contract test suite: abstract-level 1.0.4's behaviour, ported to typed
// GoogleTest suites that run unchanged against every Database. This header
// holds the fixture, the shared helpers and the reference model; the
// factories live in factories.hpp.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "factories.hpp"

// gtest prints an Entry through this (found by ADL), with bytes escaped, so a
// failed comparison of binary keys stays readable.
MANY_LEVEL_NAMESPACE_BEGIN
inline void PrintTo(const Entry& entry, std::ostream* os) {
  *os << '{' << ::testing::PrintToString(entry.key) << ", " << ::testing::PrintToString(entry.value) << '}';
}
MANY_LEVEL_NAMESPACE_END

namespace contract {

// ---- the fixture ---------------------------------------------------------

// Aborts the process, naming the test, when a test runs far past any sane
// duration: an implementation whose call blocks forever (a guest waiting on
// a lost reply) fails loudly instead of hanging the suite.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit = std::chrono::seconds(120)) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "?";
    thread_ = std::thread([this, limit, name] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!done_changed_.wait_for(lock, limit, [&] { return done_; })) {
        std::fprintf(stderr, "\nwatchdog: %s still running after %llds, aborting\n", name.c_str(),
                     static_cast<long long>(limit.count()));
        std::fflush(stderr);
        std::abort();
      }
    });
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    done_changed_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_changed_;
  bool done_ = false;
  std::thread thread_;
};

// Every suite of the contract derives from this. Each test gets a new
// factory, so a new, empty database; TearDown lets the factory verify that
// nothing leaked outside what it handed out.
template <typename Factory>
class Contract : public ::testing::Test {
 private:
  Watchdog watchdog_;  // first, so it also watches the factory's teardown

 protected:
  // The database under test, created on first use (so still "opening").
  Database& db() {
    if (!db_) db_ = &factory_.create();
    return *db_;
  }

  // Another fresh, empty database of the same implementation.
  Database& create(const DatabaseOptions& options = {}) { return factory_.create(options); }

  // db() again, as a new object over the same storage. Only meaningful with
  // supports().permanence; tests check that first and skip otherwise.
  Database& reopen() {
    db();
    db_ = &factory_.reopen();
    return *db_;
  }

  void TearDown() override { factory_.check_isolation(); }

  Factory factory_;

 private:
  Database* db_ = nullptr;
};

// Names the instantiations after their factory: "Iterators/Sqlite.seek...".
struct FactoryName {
  template <typename Factory>
  static std::string GetName(int) {
    return Factory::name();
  }
};

// ---- errors --------------------------------------------------------------

// The LEVEL_* code `body` throws, "no error" when it returns, or a
// description of anything that is not a many_level::Error.
template <typename Body>
std::string error_code(Body&& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.code();
  } catch (const std::exception& e) {
    return std::string("foreign exception: ") + e.what();
  }
  return "no error";
}

#define EXPECT_LEVEL_ERROR(statement, code) EXPECT_EQ(::contract::error_code([&] { statement; }), (code))
#define ASSERT_LEVEL_ERROR(statement, code) ASSERT_EQ(::contract::error_code([&] { statement; }), (code))

// ---- the reference model -------------------------------------------------

// The model orders keys with its own byte comparison rather than the
// library's compare_keys, so a bug there cannot hide in both.
struct ByteOrder {
  bool operator()(const std::string& a, const std::string& b) const {
    size_t n = std::min(a.size(), b.size());
    for (size_t i = 0; i < n; ++i) {
      auto x = static_cast<unsigned char>(a[i]);
      auto y = static_cast<unsigned char>(b[i]);
      if (x != y) return x < y;
    }
    return a.size() < b.size();
  }
};

using Model = std::map<std::string, std::string, ByteOrder>;

inline bool in_range(const std::string& key, const RangeOptions& range) {
  ByteOrder less;
  // gte wins over gt and lte over lt, as abstract-level decides it.
  if (range.gte) {
    if (less(key, *range.gte)) return false;
  } else if (range.gt) {
    if (!less(*range.gt, key)) return false;
  }
  if (range.lte) {
    if (less(*range.lte, key)) return false;
  } else if (range.lt) {
    if (!less(key, *range.lt)) return false;
  }
  return true;
}

// What an iterator over `model` with `range` must yield, in order.
inline std::vector<Entry> expected_entries(const Model& model, const RangeOptions& range) {
  std::vector<Entry> out;
  for (const auto& [key, value] : model) {
    if (in_range(key, range)) out.push_back({key, value});
  }
  if (range.reverse) std::reverse(out.begin(), out.end());
  if (range.limit >= 0 && out.size() > static_cast<size_t>(range.limit)) out.resize(range.limit);
  return out;
}

// What an iterator over `range` yields after seek(target), having already
// yielded `consumed` entries: the keys of the range at or after the target
// (at or before it, in reverse), within what is left of the limit; nothing
// when the target itself is outside the range (as leveldown, memory-level and
// abstract-level's seek tests have it).
inline std::vector<Entry> expected_after_seek(const Model& model, RangeOptions range, const std::string& target,
                                              size_t consumed) {
  int64_t limit = range.limit;
  range.limit = -1;
  ByteOrder less;
  std::vector<Entry> out;
  if (!in_range(target, range)) return out;
  for (auto& entry : expected_entries(model, range)) {
    bool reached = range.reverse ? !less(target, entry.key) : !less(entry.key, target);
    if (reached) out.push_back(std::move(entry));
  }
  if (limit >= 0) {
    size_t left = static_cast<size_t>(limit) > consumed ? static_cast<size_t>(limit) - consumed : 0;
    if (out.size() > left) out.resize(left);
  }
  return out;
}

// `model` after clear(range).
inline Model cleared(Model model, const RangeOptions& range) {
  for (const auto& entry : expected_entries(model, range)) model.erase(entry.key);
  return model;
}

inline std::vector<std::string> keys_of(const std::vector<Entry>& entries) {
  std::vector<std::string> out;
  for (const auto& entry : entries) out.push_back(entry.key);
  return out;
}

inline std::vector<std::string> values_of(const std::vector<Entry>& entries) {
  std::vector<std::string> out;
  for (const auto& entry : entries) out.push_back(entry.value);
  return out;
}

inline std::vector<Entry> entries_of(const Model& model) { return expected_entries(model, {}); }

// ---- database helpers ----------------------------------------------------

// Writes every entry of `model` in one batch (raw bytes, whatever the
// database's default encodings are).
inline void fill(Database& db, const Model& model) {
  std::vector<BatchOperation> operations;
  for (const auto& [key, value] : model) operations.push_back(BatchOperation::put(key, value));
  db.batch(operations, WriteOptions{"buffer", "buffer"});
}

// Everything in the database, as raw bytes.
inline std::vector<Entry> contents(Database& db) {
  IteratorOptions options;
  options.key_encoding = "buffer";
  options.value_encoding = "buffer";
  return db.iterator(options)->all();
}

// Every entry an iterator yields, one next() at a time.
inline std::vector<Entry> drain_by_next(Iterator& iterator) {
  std::vector<Entry> out;
  while (auto entry = iterator.next()) out.push_back(std::move(*entry));
  return out;
}

// Every entry an iterator yields through nextv(size).
inline std::vector<Entry> drain_by_nextv(Iterator& iterator, size_t size) {
  std::vector<Entry> out;
  for (;;) {
    auto chunk = iterator.nextv(size);
    if (chunk.empty()) return out;
    EXPECT_LE(chunk.size(), std::max<size_t>(size, 1));
    for (auto& entry : chunk) out.push_back(std::move(entry));
  }
}

inline IteratorOptions range_options(std::optional<std::string> gt, std::optional<std::string> gte,
                                     std::optional<std::string> lt, std::optional<std::string> lte,
                                     int64_t limit = -1, bool reverse = false) {
  IteratorOptions options;
  options.gt = std::move(gt);
  options.gte = std::move(gte);
  options.lt = std::move(lt);
  options.lte = std::move(lte);
  options.limit = limit;
  options.reverse = reverse;
  return options;
}

// A readable name for a range in failure messages.
inline std::string describe(const RangeOptions& range) {
  std::string out = "{";
  auto bound = [&](const char* name, const std::optional<std::string>& value) {
    if (value) out += std::string(name) + "=" + ::testing::PrintToString(*value) + " ";
  };
  bound("gt", range.gt);
  bound("gte", range.gte);
  bound("lt", range.lt);
  bound("lte", range.lte);
  out += "limit=" + std::to_string(range.limit) + (range.reverse ? " reverse" : "") + "}";
  return out;
}

// Keys chosen to trip any ordering that is not raw bytes: empty, NUL, bytes
// above 0x7f (negative as signed char), prefixes of each other, and the
// separator bytes sublevels use.
inline Model binary_model() {
  Model model;
  const std::vector<std::string> keys = {
      std::string(),
      std::string("\0", 1),
      std::string("\0\0", 2),
      std::string("\0\xff", 2),
      "\x01",
      "!",
      "!a!",
      "\"",
      "0",
      "09",
      "1",
      "a",
      std::string("a\0", 2),
      std::string("a\0b", 3),
      "a\x7f",
      "a\x80",
      "aa",
      "ab",
      "b",
      "ba",
      "z",
      "~",
      "\x7f",
      "\x80",
      "\xc3\xa9",
      "\xfe",
      "\xff",
      std::string("\xff\0", 2),
      "\xff\xff",
      "\xff\xff\xff",
  };
  int i = 0;
  for (const auto& key : keys) model[key] = "v" + std::to_string(i++) + std::string("\0\xff", 2);
  return model;
}

}  // namespace contract

// Test harness for the guest, end to end through a Host over a real store:
//   Remote          a store and a Host over it
//   Link            one stream: guest.connect() + host.create_session() + Pump
//   Gate            a latch a store call can be made to wait on
//   GatedDatabase   a MemoryDatabase whose calls wait at a Gate (to keep
//                   requests pending on the host)
//   GuestTest       a fixture base with a watchdog, so no test can hang
// plus helpers: bounded waits, error codes, data sets.
//
// No sleeps as synchronisation: waits are for conditions, bounded by kTimeout.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <many_level.hpp>

#include "pump.hpp"

MANY_LEVEL_NAMESPACE_BEGIN
inline void PrintTo(const Entry& entry, std::ostream* os) {
  *os << '{' << ::testing::PrintToString(entry.key) << ", " << ::testing::PrintToString(entry.value) << '}';
}
MANY_LEVEL_NAMESPACE_END

namespace guest_tests {

using namespace many_level;
using namespace std::chrono_literals;

inline constexpr std::chrono::milliseconds kTimeout{10000};
// A gated store call gives up after this, so a failing test cannot wedge the
// host's worker pool (and its destructor) forever.
inline constexpr std::chrono::milliseconds kGateTimeout{20000};

inline const ReadOptions kRawRead{"buffer", "buffer"};
inline const WriteOptions kRawWrite{"buffer", "buffer"};

// ---- waiting ----------------------------------------------------------------

// Polls `condition` until it holds or the deadline passes. For conditions no
// notification reaches (stats, gate arrivals).
inline bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = kTimeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
}

template <typename T>
bool ready(const std::future<T>& future, std::chrono::milliseconds timeout = kTimeout) {
  return future.wait_for(timeout) == std::future_status::ready;
}

template <typename T>
bool still_pending(const std::future<T>& future) {
  return future.wait_for(0ms) != std::future_status::ready;
}

// The LEVEL_* code `body` throws, "no error" when it returns.
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

template <typename T>
std::string future_error(std::future<T>& future) {
  if (!ready(future)) return "still pending";
  return error_code([&] { future.get(); });
}

// Kills the process when a test runs far past any sane duration, naming it:
// a guest bug that blocks a call forever fails loudly instead of hanging CI.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit = std::chrono::seconds(120)) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    name_ = info ? std::string(info->test_suite_name()) + "." + info->name() : "?";
    thread_ = std::thread([this, limit] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!changed_.wait_for(lock, limit, [&] { return done_; })) {
        std::fprintf(stderr, "\nwatchdog: %s still running after %llds, aborting\n", name_.c_str(),
                     static_cast<long long>(limit.count()));
        std::fflush(stderr);
        std::abort();
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }

 private:
  std::string name_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool done_ = false;
  std::thread thread_;
};

class GuestTest : public ::testing::Test {
 private:
  Watchdog watchdog_;
};

// ---- the remote side ---------------------------------------------------------

// A store and a host over it. The store is declared first, so it outlives the host.
template <typename Store = MemoryDatabase>
struct BasicRemote {
  template <typename... Args>
  explicit BasicRemote(HostOptions options = {}, Args&&... args)
      : db(std::forward<Args>(args)...), host(db, std::move(options), 4) {}
  Store db;
  Host host;
};

using Remote = BasicRemote<MemoryDatabase>;

// A latch: while closed, pass() waits (at most kGateTimeout).
class Gate {
 public:
  explicit Gate(bool open = true) : open_(open) {}

  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = false;
  }
  void open() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      open_ = true;
    }
    changed_.notify_all();
  }

  void pass() {
    std::unique_lock<std::mutex> lock(mutex_);
    ++waiting_;
    changed_.notify_all();
    changed_.wait_for(lock, kGateTimeout, [&] { return open_; });
    --waiting_;
  }

  // Waits (bounded) until at least `count` callers wait at the gate.
  bool wait_for_waiting(size_t count, std::chrono::milliseconds timeout = kTimeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return waiting_ >= count; });
  }

  size_t waiting() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return waiting_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool open_;
  size_t waiting_ = 0;
};

// A MemoryDatabase whose every call (and iterator creation) first passes a gate.
class GatedDatabase final : public Database {
 public:
  explicit GatedDatabase(Gate& gate) : Database(Supports{}), gate_(gate) {}
  ~GatedDatabase() override {
    gate_.open();
    try {
      close();
    } catch (...) {
    }
  }

  MemoryDatabase& inner() { return inner_; }

 protected:
  std::optional<std::string> do_get(std::string_view key) override {
    gate_.pass();
    return inner_.try_get(key, kRawRead);
  }
  std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) override {
    gate_.pass();
    return inner_.get_many(keys, kRawRead);
  }
  void do_put(std::string_view key, std::string_view value) override {
    gate_.pass();
    inner_.put(key, value, kRawWrite);
  }
  void do_del(std::string_view key) override {
    gate_.pass();
    inner_.del(key, kRawWrite);
  }
  void do_batch(const std::vector<BatchOperation>& operations) override {
    gate_.pass();
    inner_.batch(operations, kRawWrite);
  }
  void do_clear(const RangeOptions& range) override {
    gate_.pass();
    ClearOptions options;
    static_cast<RangeOptions&>(options) = range;
    options.key_encoding = "buffer";
    inner_.clear(options);
  }
  std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options, std::shared_ptr<const Encoding> key_encoding,
                                        std::shared_ptr<const Encoding> value_encoding) override {
    gate_.pass();
    auto inner = inner_.iterator(PrefixedIterator::inner_options(options, options));
    return std::make_unique<PrefixedIterator>(std::move(inner), "", options, std::move(key_encoding),
                                              std::move(value_encoding));
  }

 private:
  Gate& gate_;
  MemoryDatabase inner_;
};

// A host over a GatedDatabase. Its destructor opens the gate before the host
// goes, so the host's workers can finish.
struct GatedRemote {
  explicit GatedRemote(HostOptions options = {}) : db(gate), host(db, std::move(options), 4) {}
  ~GatedRemote() { gate.open(); }
  Gate gate;
  GatedDatabase db;
  Host host;
};

// One stream between a guest and a host. Declared after the guest and the
// host it links (or reset before them): the pump stops first.
class Link {
 public:
  Link(Guest& guest, Host& host, PumpOptions options = {})
      : host_session_(host.create_session()), pump_(guest.connect(), host_session_, options) {}
  // A stream to a listener with its own access (tokens, anonymous grant).
  Link(Guest& guest, Host& host, HostAccess access, PumpOptions options = {})
      : host_session_(host.create_session("link", std::move(access))), pump_(guest.connect(), host_session_, options) {}

  void cut() { pump_.cut(); }
  Pump& pump() { return pump_; }
  HostSession& host_session() { return *host_session_; }

 private:
  std::shared_ptr<HostSession> host_session_;
  Pump pump_;
};

// ---- data --------------------------------------------------------------------

inline std::vector<Entry> contents(Database& db, IteratorOptions options = {}) {
  options.key_encoding = "buffer";
  options.value_encoding = "buffer";
  return db.iterator(options)->all();
}

inline void fill(Database& db, const std::vector<Entry>& entries) {
  std::vector<BatchOperation> operations;
  operations.reserve(entries.size());
  for (const auto& entry : entries) operations.push_back(BatchOperation::put(entry.key, entry.value));
  db.batch(operations, kRawWrite);
}

// `count` entries with binary keys: a 4-byte big-endian counter (so NUL and
// 0xff bytes everywhere) with a varying suffix, some keys prefixes of others.
inline std::vector<Entry> binary_entries(size_t count, uint32_t seed = 7) {
  std::mt19937 random(seed);
  std::vector<Entry> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    uint32_t n = static_cast<uint32_t>(i * 2654435761u);
    std::string key;
    for (int shift = 24; shift >= 0; shift -= 8) key.push_back(static_cast<char>((n >> shift) & 0xff));
    size_t suffix = random() % 4;
    for (size_t j = 0; j < suffix; ++j) key.push_back(static_cast<char>(random() % 256));
    std::string value = "value-" + std::to_string(i);
    value.push_back('\0');
    value.push_back(static_cast<char>(0xff));
    out.push_back({std::move(key), std::move(value)});
  }
  return out;
}

inline IteratorOptions range(std::optional<std::string> gt, std::optional<std::string> gte,
                             std::optional<std::string> lt, std::optional<std::string> lte, int64_t limit = -1,
                             bool reverse = false) {
  IteratorOptions options;
  options.gt = std::move(gt);
  options.gte = std::move(gte);
  options.lt = std::move(lt);
  options.lte = std::move(lte);
  options.limit = limit;
  options.reverse = reverse;
  return options;
}

inline std::string describe(const IteratorOptions& o) {
  std::string out = "{";
  auto bound = [&](const char* name, const std::optional<std::string>& value) {
    if (value) out += std::string(name) + "=" + ::testing::PrintToString(*value) + " ";
  };
  bound("gt", o.gt);
  bound("gte", o.gte);
  bound("lt", o.lt);
  bound("lte", o.lte);
  out += "limit=" + std::to_string(o.limit) + (o.reverse ? " reverse" : "") + (o.keys ? "" : " no-keys") +
         (o.values ? "" : " no-values") + "}";
  return out;
}

}  // namespace guest_tests

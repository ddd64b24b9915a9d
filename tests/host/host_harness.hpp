// Test harness for the host, driven purely through bytes (sans I/O):
//   FakeGuest          encodes requests into a HostSession and decodes its output
//   Gate               a latch a store call can be made to wait on
//   ControlledDatabase a Database over an inner MemoryDatabase whose calls can
//                      be blocked (gates) or made to fail, and which counts
//                      the store iterators it hands out
// plus helpers to seed data and to load the Node reference's captured frames.
//
// No sleeps as synchronisation: every wait is for a condition, bounded by a
// deadline (kTimeout), so a broken host fails a test instead of hanging it.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "many_level/host/host.hpp"
#include "many_level/memory_database.hpp"
#include "many_level/protocol/protocol.hpp"

namespace host_test {

using namespace many_level;
namespace proto = many_level::protocol;

// How long any awaited condition may take before the test fails.
inline constexpr std::chrono::milliseconds kTimeout{5000};
// How long a gated store call waits at most when nobody opens its gate, so a
// failing test cannot wedge the worker pool (and the host's destructor) forever.
inline constexpr std::chrono::milliseconds kGateTimeout{15000};

inline const ReadOptions kRawRead{"buffer", "buffer"};
inline const WriteOptions kRawWrite{"buffer", "buffer"};

// ---- bytes ------------------------------------------------------------------

inline std::string from_hex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

inline std::string to_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

// Polls `condition` until it holds or the deadline passes. For conditions that
// no notification reaches (store iterator counts, gate arrivals, stats).
inline bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout = kTimeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Runs a function when the scope ends (also when an assertion returns early).
class OnExit {
 public:
  explicit OnExit(std::function<void()> f) : f_(std::move(f)) {}
  OnExit(const OnExit&) = delete;
  OnExit& operator=(const OnExit&) = delete;
  ~OnExit() { if (f_) f_(); }

 private:
  std::function<void()> f_;
};

// ---- data -------------------------------------------------------------------

inline void seed(Database& db, const std::vector<std::pair<std::string, std::string>>& entries) {
  std::vector<BatchOperation> ops;
  ops.reserve(entries.size());
  for (const auto& [key, value] : entries) ops.push_back(BatchOperation::put(key, value));
  db.batch(ops, kRawWrite);
}

// The data set the reference's vectors were captured with: a..e = 1..5.
inline std::vector<std::pair<std::string, std::string>> abcde() {
  return {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}};
}

inline std::map<std::string, std::string> abcde_map() {
  auto entries = abcde();
  return {entries.begin(), entries.end()};
}

// Keys k000000..k<n-1>, each with a value of `value_size` bytes derived from the key.
inline std::string big_key(size_t i) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "k%07zu", i);
  return buffer;
}

inline std::string big_value(size_t i, size_t value_size) {
  std::string value = big_key(i);
  value.resize(value_size, static_cast<char>('a' + i % 26));
  return value;
}

inline void seed_big(Database& db, size_t count, size_t value_size) {
  std::vector<BatchOperation> ops;
  ops.reserve(count);
  for (size_t i = 0; i < count; ++i) ops.push_back(BatchOperation::put(big_key(i), big_value(i, value_size)));
  db.batch(ops, kRawWrite);
}

// Every entry of a database, in order, as raw bytes.
inline std::map<std::string, std::string> dump(Database& db) {
  IteratorOptions options;
  options.key_encoding = "buffer";
  options.value_encoding = "buffer";
  std::map<std::string, std::string> out;
  for (auto& entry : db.iterator(options)->all()) out.emplace(std::move(entry.key), std::move(entry.value));
  return out;
}

// ---- messages ---------------------------------------------------------------

inline proto::IteratorOptions iter_options(bool keys = true, bool values = true) {
  proto::IteratorOptions options;
  options.keys = keys;
  options.values = values;
  options.limit = -1;
  return options;
}

inline proto::IteratorRequest iterator_request(uint32_t id, proto::IteratorOptions options = iter_options()) {
  proto::IteratorRequest request;
  request.id = id;
  request.seq = 0;
  request.options = std::move(options);
  request.consumed = 0;
  return request;
}

// The id a message answers (a request's, an iterator's or a watch's); 0 for HelloReply, which has none.
template <class M>
uint32_t message_id(const M& m) {
  if constexpr (std::is_same_v<M, proto::HelloReply>) {
    return 0;
  } else {
    return m.id;
  }
}

inline uint32_t id_of(const proto::HostMessage& message) {
  return std::visit([](const auto& m) { return message_id(m); }, message);
}

// The seq of an iterator message; nullopt for callbacks.
inline std::optional<uint32_t> seq_of(const proto::HostMessage& message) {
  if (auto* m = std::get_if<proto::IteratorData>(&message)) return m->seq;
  if (auto* m = std::get_if<proto::IteratorEnd>(&message)) return m->seq;
  if (auto* m = std::get_if<proto::IteratorError>(&message)) return m->seq;
  return std::nullopt;
}

inline std::string describe(const proto::HostMessage& message) {
  return std::visit(
      [](const auto& m) -> std::string {
        using T = std::decay_t<decltype(m)>;
        std::string text = std::string(proto::tag_name(T::tag)) + "{id " + std::to_string(message_id(m));
        if constexpr (std::is_same_v<T, proto::IteratorData>) {
          text += ", seq " + std::to_string(m.seq) + ", " + std::to_string(m.data.size()) + " items";
        } else if constexpr (std::is_same_v<T, proto::IteratorEnd>) {
          text += ", seq " + std::to_string(m.seq);
        } else if constexpr (std::is_same_v<T, proto::IteratorError>) {
          text += ", seq " + std::to_string(m.seq) + ", " + m.error;
        } else if constexpr (std::is_same_v<T, proto::Callback>) {
          if (m.error) text += ", error " + *m.error;
          if (m.value) text += ", value " + to_hex(*m.value);
        } else if constexpr (std::is_same_v<T, proto::GetManyCallback>) {
          if (m.error) text += ", error " + *m.error;
          text += ", " + std::to_string(m.values.size()) + " values";
        } else if constexpr (std::is_same_v<T, proto::HelloReply>) {
          text += ", version " + std::to_string(m.version) + ", seq " + std::to_string(m.seq);
          for (const auto& feature : m.features) text += ", " + feature;
        } else if constexpr (std::is_same_v<T, proto::HasCallback>) {
          if (m.error) text += ", error " + *m.error;
          text += ", found " + to_hex(m.found);
        } else if constexpr (std::is_same_v<T, proto::WatchStarted>) {
          text += ", seq " + std::to_string(m.seq);
        } else if constexpr (std::is_same_v<T, proto::WatchData>) {
          text += ", " + std::to_string(m.commits.size()) + " commits";
          if (!m.commits.empty()) text += " up to seq " + std::to_string(m.commits.back().seq);
        } else if constexpr (std::is_same_v<T, proto::WatchError>) {
          text += ", " + m.error;
        } else if constexpr (std::is_same_v<T, proto::HostStatsReply>) {
          if (m.error) text += ", error " + *m.error;
        }
        return text + "}";
      },
      message);
}

// ---- the fake guest ---------------------------------------------------------

struct Received {
  std::string payload;  // as it came off the wire: tag byte, then the message
  proto::HostMessage message;
};

// Plays the guest's side of one HostSession, byte for byte: requests are
// encoded into frames and fed to receive(); whatever the host writes to its
// output is taken, split into frames and decoded, in stream order. Used from
// one test thread; the host's workers only ever touch the wake-up signal.
class FakeGuest {
 public:
  explicit FakeGuest(std::shared_ptr<HostSession> session)
      : session_(std::move(session)), signal_(std::make_shared<Signal>()) {
    session_->output().on_readable([signal = signal_] {
      std::lock_guard<std::mutex> lock(signal->mutex);
      signal->readable = true;
      signal->changed.notify_all();
    });
  }

  FakeGuest(const FakeGuest&) = delete;
  FakeGuest& operator=(const FakeGuest&) = delete;

  ~FakeGuest() { session_->output().on_readable(nullptr); }

  HostSession& session() { return *session_; }
  const std::shared_ptr<HostSession>& session_ptr() { return session_; }

  // ---- to the host ----

  template <class M>
  void send(const M& message) {
    feed(frame(message));
  }

  template <class M>
  static std::string frame(const M& message) {
    std::string out;
    proto::encode(out, message);
    return out;
  }

  // A raw payload (tag byte and message) behind its length prefix.
  static std::string frame_payload(std::string_view payload) {
    std::string out;
    proto::append_length_prefix(out, static_cast<uint32_t>(payload.size()));
    out.append(payload);
    return out;
  }

  void send_payload(std::string_view payload) { feed(frame_payload(payload)); }
  void send_hex(std::string_view hex) { send_payload(from_hex(hex)); }

  void feed(std::string_view bytes) { session_->receive(bytes.data(), bytes.size()); }

  void feed_bytewise(std::string_view bytes) {
    for (char c : bytes) session_->receive(&c, 1);
  }

  // ---- from the host ----

  // Takes what the host has written; returns how many messages arrived in all.
  size_t poll() {
    std::string chunk;
    if (session_->output().take(chunk) > 0) {
      bytes_received_ += chunk.size();
      decoder_.feed(chunk, [&](std::string_view payload) {
        Received received{std::string(payload), {}};
        auto status = proto::decode_payload(payload, received.message);
        EXPECT_EQ(status, proto::DecodeStatus::ok) << "undecodable host frame " << to_hex(payload);
        messages_.push_back(std::move(received));
      });
    }
    return messages_.size();
  }

  // Waits until `condition` (over what arrived) holds; polls the output each
  // time the host signals new bytes, with a short fallback tick.
  bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout = kTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(signal_->mutex);
        signal_->readable = false;
      }
      poll();
      if (condition()) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::unique_lock<std::mutex> lock(signal_->mutex);
      signal_->changed.wait_for(lock, std::chrono::milliseconds(5), [&] { return signal_->readable; });
    }
  }

  // Waits for at least `count` messages in all.
  bool wait_for_count(size_t count, std::chrono::milliseconds timeout = kTimeout) {
    return wait_until([&] { return messages_.size() >= count; }, timeout);
  }

  // The Callback answering `id` (waiting for it); fails the test if none comes.
  proto::Callback callback(uint32_t id) {
    auto* found = wait_for_message<proto::Callback>(id);
    if (!found) {
      ADD_FAILURE() << "no callback for request " << id << "; received: " << transcript();
      return proto::Callback{id, std::string("<no answer>"), std::nullopt};
    }
    return *found;
  }

  proto::GetManyCallback get_many_callback(uint32_t id) {
    auto* found = wait_for_message<proto::GetManyCallback>(id);
    if (!found) {
      ADD_FAILURE() << "no getMany callback for request " << id << "; received: " << transcript();
      return proto::GetManyCallback{id, std::string("<no answer>"), {}};
    }
    return *found;
  }

  // The first message of type M for `id` that arrived, waiting for it.
  template <class M>
  const M* wait_for_message(uint32_t id, std::chrono::milliseconds timeout = kTimeout) {
    const M* found = nullptr;
    wait_until(
        [&] {
          found = find<M>(id);
          return found != nullptr;
        },
        timeout);
    return found;
  }

  template <class M>
  const M* find(uint32_t id) const {
    for (const auto& received : messages_) {
      if (auto* m = std::get_if<M>(&received.message); m && m->id == id) return m;
    }
    return nullptr;
  }

  // Every message of type M that arrived, in order.
  template <class M>
  std::vector<M> all_of() const {
    std::vector<M> out;
    for (const auto& received : messages_) {
      if (auto* m = std::get_if<M>(&received.message)) out.push_back(*m);
    }
    return out;
  }

  // Iterator messages (data, end, error) for iterator `id`, in stream order.
  std::vector<proto::HostMessage> iterator_messages(uint32_t id) const {
    std::vector<proto::HostMessage> out;
    for (const auto& received : messages_) {
      if (seq_of(received.message) && id_of(received.message) == id) out.push_back(received.message);
    }
    return out;
  }

  const std::vector<Received>& messages() const { return messages_; }
  size_t count() const { return messages_.size(); }
  uint64_t bytes_received() const { return bytes_received_; }

  std::vector<std::string> payloads_hex(size_t from = 0) const {
    std::vector<std::string> out;
    for (size_t i = from; i < messages_.size(); ++i) out.push_back(to_hex(messages_[i].payload));
    return out;
  }

  std::string transcript() const {
    std::string out;
    for (const auto& received : messages_) out += "\n  " + describe(received.message);
    return out.empty() ? " (nothing)" : out;
  }

 private:
  struct Signal {
    std::mutex mutex;
    std::condition_variable changed;
    bool readable = false;
  };

  std::shared_ptr<HostSession> session_;
  std::shared_ptr<Signal> signal_;
  proto::FrameDecoder decoder_;
  std::vector<Received> messages_;
  uint64_t bytes_received_ = 0;
};

// ---- a remote iterator, consumed the way a guest does -------------------------

// Drives one iterator of a FakeGuest: waits for its frames, "consumes" them and
// acks each data frame, as the reference guest does, until the end (or an
// error). Checks on the way that the host never has more than two data frames
// unacknowledged.
struct Drained {
  std::vector<std::string> items;  // data items in order (key, value, key, value ... or one half)
  size_t frames = 0;
  bool ended = false;
  std::optional<std::string> error;
  size_t max_unacknowledged = 0;
};

inline Drained drain_iterator(FakeGuest& guest, uint32_t id, uint32_t seq = 0, uint64_t consumed_before = 0,
                              size_t items_per_entry = 2, size_t start_at_message = 0) {
  Drained out;
  size_t next = start_at_message;  // next message index to look at
  size_t unacknowledged = 0;
  uint64_t consumed = consumed_before;
  for (;;) {
    bool got = guest.wait_until([&] {
      for (size_t i = next; i < guest.count(); ++i) {
        const auto& message = guest.messages()[i].message;
        if (seq_of(message) && id_of(message) == id && *seq_of(message) == seq) return true;
      }
      return false;
    });
    if (!got) {
      ADD_FAILURE() << "iterator " << id << " seq " << seq << " stalled; received:" << guest.transcript();
      return out;
    }
    for (; next < guest.count(); ++next) {
      const auto& message = guest.messages()[next].message;
      if (!seq_of(message) || id_of(message) != id || *seq_of(message) != seq) continue;
      if (auto* data = std::get_if<proto::IteratorData>(&message)) {
        ++out.frames;
        ++unacknowledged;
        out.max_unacknowledged = std::max(out.max_unacknowledged, unacknowledged);
        out.items.insert(out.items.end(), data->data.begin(), data->data.end());
      } else if (std::get_if<proto::IteratorEnd>(&message)) {
        out.ended = true;
        return out;
      } else if (auto* error = std::get_if<proto::IteratorError>(&message)) {
        out.error = error->error;
        return out;
      }
    }
    // Consume and ack every frame received so far, one ack each.
    while (unacknowledged > 0) {
      --unacknowledged;
      consumed = consumed_before + out.items.size() / items_per_entry;
      guest.send(proto::IteratorAck{id, seq, consumed});
    }
  }
}

// Keys (or other halves) from interleaved items.
inline std::vector<std::string> evens(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (size_t i = 0; i < items.size(); i += 2) out.push_back(items[i]);
  return out;
}

// ---- gates and a controllable store --------------------------------------------

// A latch store calls pass through. Open by default; close() makes callers
// wait (each for at most kGateTimeout) until open().
class Gate {
 public:
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = false;
  }

  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

  void pass() {
    std::unique_lock<std::mutex> lock(mutex_);
    ++arrived_;
    changed_.notify_all();
    if (open_) return;
    ++waiting_;
    changed_.notify_all();
    changed_.wait_for(lock, kGateTimeout, [&] { return open_; });
    --waiting_;
    changed_.notify_all();
  }

  // Waits until `count` callers are held at the gate at once.
  bool wait_for_waiting(size_t count, std::chrono::milliseconds timeout = kTimeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return waiting_ >= count; });
  }

  size_t waiting() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return waiting_;
  }

  size_t arrived() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return arrived_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = true;
  size_t waiting_ = 0;
  size_t arrived_ = 0;
};

// A Database that delegates every call to an inner MemoryDatabase through its
// public API (raw "buffer" encodings), with gates to block calls and switches
// to make them fail.
class ControlledDatabase final : public Database {
 public:
  // With `explicit_snapshots`, snapshot() wraps the inner database's and
  // counts them; without, it is refused (LEVEL_NOT_SUPPORTED) as by a store
  // that has none. It never has a change feed.
  explicit ControlledDatabase(bool explicit_snapshots = false)
      : Database(manifest(explicit_snapshots), DatabaseOptions{"buffer", "buffer"}) {}

  ~ControlledDatabase() override {
    open_all_gates();
    try {
      close();
    } catch (...) {
    }
  }

  MemoryDatabase& inner() { return inner_; }

  Gate get_gate;       // do_get (and so get, and getMany through do_get)
  Gate nextv_gate;     // the store iterators' do_nextv
  Gate clear_gate;     // do_clear
  Gate write_gate;     // do_put, do_del, do_batch

  // A failure to throw: nullopt = none; a LEVEL_* code throws Error with it,
  // any other text throws std::runtime_error.
  std::optional<std::string> fail_get_many;
  std::optional<std::string> fail_batch;
  std::optional<std::string> fail_iterator;
  std::optional<std::string> fail_nextv;

  std::atomic<int> iterators_created{0};
  std::atomic<int> iterators_closed{0};
  std::atomic<int> snapshots_made{0};
  std::atomic<int> snapshots_closed{0};

  void open_all_gates() {
    get_gate.open();
    nextv_gate.open();
    clear_gate.open();
    write_gate.open();
  }

  static void raise(const std::string& failure) {
    if (failure.rfind("LEVEL_", 0) == 0) throw Error(failure, "injected failure");
    throw std::runtime_error(failure);
  }

 protected:
  std::optional<std::string> do_get(std::string_view key) override {
    get_gate.pass();
    return inner_.try_get(key, kRawRead);
  }

  std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) override {
    if (fail_get_many) raise(*fail_get_many);
    return Database::do_get_many(keys);  // through do_get, so the get gate applies
  }

  void do_put(std::string_view key, std::string_view value) override {
    write_gate.pass();
    inner_.put(key, value, kRawWrite);
  }

  void do_del(std::string_view key) override {
    write_gate.pass();
    inner_.del(key, kRawWrite);
  }

  void do_batch(const std::vector<BatchOperation>& operations) override {
    write_gate.pass();
    if (fail_batch) raise(*fail_batch);
    inner_.batch(operations, kRawWrite);
  }

  void do_clear(const RangeOptions& range) override {
    clear_gate.pass();
    ClearOptions options;
    static_cast<RangeOptions&>(options) = range;
    options.key_encoding = "buffer";
    inner_.clear(options);
  }

  std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options, std::shared_ptr<const Encoding> key_encoding,
                                        std::shared_ptr<const Encoding> value_encoding) override {
    if (fail_iterator) raise(*fail_iterator);
    IteratorOptions inner_options = options;
    inner_options.key_encoding = "buffer";
    inner_options.value_encoding = "buffer";
    auto inner = inner_.iterator(inner_options);
    ++iterators_created;
    return std::make_unique<ControlledIterator>(*this, options, std::move(key_encoding), std::move(value_encoding),
                                                std::move(inner));
  }

  std::shared_ptr<Snapshot> do_snapshot() override {
    if (!supports().explicit_snapshots) return Database::do_snapshot();
    auto snapshot = std::make_shared<ControlledSnapshot>(*this, inner_.snapshot());
    ++snapshots_made;
    return snapshot;
  }

 private:
  // A snapshot of the inner database, read through the same gates.
  class ControlledSnapshot final : public Snapshot {
   public:
    ControlledSnapshot(ControlledDatabase& db, std::shared_ptr<Snapshot> inner) : db_(db), inner_(std::move(inner)) {}

   protected:
    std::optional<std::string> do_get(std::string_view key) override {
      db_.get_gate.pass();
      ReadOptions options = kRawRead;
      options.snapshot = inner_;
      return db_.inner_.try_get(key, options);
    }

    std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options, std::shared_ptr<const Encoding> key_encoding,
                                          std::shared_ptr<const Encoding> value_encoding) override {
      IteratorOptions inner_options = options;
      inner_options.key_encoding = "buffer";
      inner_options.value_encoding = "buffer";
      inner_options.snapshot = inner_;
      auto inner = db_.inner_.iterator(inner_options);
      ++db_.iterators_created;
      return std::make_unique<ControlledIterator>(db_, options, std::move(key_encoding), std::move(value_encoding),
                                                  std::move(inner));
    }

    void do_close() override {
      inner_->close();
      ++db_.snapshots_closed;
    }

   private:
    ControlledDatabase& db_;
    std::shared_ptr<Snapshot> inner_;
  };

  class ControlledIterator final : public Iterator {
   public:
    ControlledIterator(ControlledDatabase& db, const IteratorOptions& options,
                       std::shared_ptr<const Encoding> key_encoding, std::shared_ptr<const Encoding> value_encoding,
                       std::unique_ptr<Iterator> inner)
        : Iterator(options, std::move(key_encoding), std::move(value_encoding)), db_(db), inner_(std::move(inner)) {}

    // An iterator dropped without close() (the host may replace one) still counts as released.
    ~ControlledIterator() override {
      if (!released_) ++db_.iterators_closed;
    }

   protected:
    bool do_next(Entry& entry) override {
      auto next = inner_->next();
      if (!next) return false;
      entry = std::move(*next);
      return true;
    }

    void do_nextv(size_t size, std::vector<Entry>& entries) override {
      db_.nextv_gate.pass();
      if (db_.fail_nextv) raise(*db_.fail_nextv);
      for (auto& entry : inner_->nextv(size)) entries.push_back(std::move(entry));
    }

    void do_seek(std::string_view target) override { inner_->seek(target); }

    void do_close() override {
      inner_->close();
      released_ = true;
      ++db_.iterators_closed;
    }

   private:
    ControlledDatabase& db_;
    std::unique_ptr<Iterator> inner_;
    bool released_ = false;
  };

  static Supports manifest(bool explicit_snapshots) {
    Supports supports;
    supports.snapshots = true;
    supports.explicit_snapshots = explicit_snapshots;
    return supports;
  }

  MemoryDatabase inner_{DatabaseOptions{"buffer", "buffer"}};
};

// ---- the reference's captured frames ------------------------------------------

struct Exchange {
  std::vector<std::string> guest_to_host;  // payloads (tag byte + message), raw bytes
  std::vector<std::string> host_to_guest;
};

struct Scenario {
  std::string name;
  std::vector<Exchange> connections;  // one, except for the retry scenarios
};

inline std::vector<Scenario> load_scenarios() {
  std::ifstream file(MANY_LEVEL_TEST_DATA_DIR "/vectors.json");
  if (!file) throw std::runtime_error("cannot open vectors.json");
  const auto json = nlohmann::json::parse(file);
  auto exchange = [](const nlohmann::json& j) {
    Exchange e;
    for (const auto& hex : j.at("guest_to_host")) e.guest_to_host.push_back(from_hex(hex.get<std::string>()));
    for (const auto& hex : j.at("host_to_guest")) e.host_to_guest.push_back(from_hex(hex.get<std::string>()));
    return e;
  };
  std::vector<Scenario> scenarios;
  for (const auto& s : json.at("scenarios")) scenarios.push_back({s.at("name").get<std::string>(), {exchange(s)}});
  for (const auto& s : json.at("retry_scenarios")) {
    Scenario scenario{s.at("name").get<std::string>(), {}};
    for (const auto& c : s.at("connections")) scenario.connections.push_back(exchange(c));
    scenarios.push_back(std::move(scenario));
  }
  return scenarios;
}

inline const Scenario& scenario(const std::vector<Scenario>& all, const std::string& name) {
  for (const auto& s : all) {
    if (s.name == name) return s;
  }
  throw std::runtime_error("no scenario " + name);
}

}  // namespace host_test

namespace host_test {

// A database, a host over it, and fake guests. The host goes first, after
// every gate is opened, so no worker can be left waiting on one.
template <class Db = MemoryDatabase>
struct Rig {
  Db db;
  std::unique_ptr<Host> host;

  explicit Rig(HostOptions options = {}, size_t threads = 4)
      : db(make_db()), host(std::make_unique<Host>(db, std::move(options), threads)) {}

  // With the database made from `db_argument` (its options, say).
  template <class DbArgument>
  Rig(HostOptions options, size_t threads, DbArgument&& db_argument)
      : db(std::forward<DbArgument>(db_argument)), host(std::make_unique<Host>(db, std::move(options), threads)) {}

  ~Rig() { shutdown(); }

  void shutdown() {
    if constexpr (std::is_same_v<Db, ControlledDatabase>) db.open_all_gates();
    host.reset();
  }

  std::unique_ptr<FakeGuest> guest(std::string address = {}) {
    return std::make_unique<FakeGuest>(host->create_session(std::move(address)));
  }

 private:
  static Db make_db() {
    if constexpr (std::is_same_v<Db, MemoryDatabase>) {
      return MemoryDatabase(DatabaseOptions{"buffer", "buffer"});
    } else {
      return Db();
    }
  }
};

}  // namespace host_test

namespace host_test {

// The host's view of iterator `id` on a session, if it is open there.
inline std::optional<HostIteratorInfo> iterator_info(HostSession& session, uint32_t id) {
  for (const auto& info : session.stats().iterators) {
    if (info.id == id) return info;
  }
  return std::nullopt;
}

// Waits until iterator `id` is idle on the host (no store call in flight) with
// `unacknowledged` data frames outstanding. Once that holds, everything the
// host will send for it until the guest speaks again is already in the output.
inline bool idle_with(HostSession& session, uint32_t id, unsigned unacknowledged) {
  return eventually([&] {
    auto info = iterator_info(session, id);
    return info && !info->busy && info->unacknowledged_frames == unacknowledged;
  });
}

// Data frames (and their item counts) of iterator `id`, seq `seq`, in order.
inline std::vector<proto::IteratorData> data_frames(const FakeGuest& guest, uint32_t id, uint32_t seq) {
  std::vector<proto::IteratorData> out;
  for (const auto& data : guest.all_of<proto::IteratorData>()) {
    if (data.id == id && data.seq == seq) out.push_back(data);
  }
  return out;
}

inline bool has_end(const FakeGuest& guest, uint32_t id, uint32_t seq) {
  for (const auto& end : guest.all_of<proto::IteratorEnd>()) {
    if (end.id == id && end.seq == seq) return true;
  }
  return false;
}

}  // namespace host_test

namespace host_test {

// ---- the extension ------------------------------------------------------------

inline proto::Hello hello() { return proto::Hello{1, {"has", "snapshots", "watch", "stats"}, std::nullopt}; }

inline size_t count_hello_replies(const FakeGuest& guest) { return guest.all_of<proto::HelloReply>().size(); }

// Says Hello and waits for the answer: the stream is extended from then on.
inline proto::HelloReply say_hello(FakeGuest& guest) {
  size_t before = count_hello_replies(guest);
  guest.send(hello());
  if (!guest.wait_until([&] { return count_hello_replies(guest) > before; })) {
    ADD_FAILURE() << "no HelloReply; received:" << guest.transcript();
    return {};
  }
  return guest.all_of<proto::HelloReply>().back();
}

inline proto::WatchRequest watch_request(uint32_t id, proto::WatchRange range = {},
                                         std::optional<uint64_t> since = std::nullopt) {
  return proto::WatchRequest{id, std::move(range), since};
}

inline proto::WatchRange watch_range(std::optional<std::string> gte, std::optional<std::string> lt) {
  proto::WatchRange range;
  range.gte = std::move(gte);
  range.lt = std::move(lt);
  return range;
}

// A commit as text, to compare: "put a=1, del b".
inline std::string describe(const proto::Commit& commit) {
  std::string text;
  for (const auto& op : commit.ops) {
    if (!text.empty()) text += ", ";
    if (op.type == proto::BatchOp::Type::put) {
      text += "put " + op.key + "=" + op.value.value_or("<none>");
    } else {
      text += "del " + op.key + (op.value ? "=<value>" : "");
    }
  }
  return text;
}

// WatchData frames of watch `id`, in order.
inline std::vector<proto::WatchData> watch_frames(const FakeGuest& guest, uint32_t id) {
  std::vector<proto::WatchData> out;
  for (const auto& data : guest.all_of<proto::WatchData>()) {
    if (data.id == id) out.push_back(data);
  }
  return out;
}

// The commits a watcher has received, across its frames.
struct Watched {
  std::vector<proto::Commit> commits;
  size_t frames = 0;
  size_t max_unacknowledged = 0;
  std::optional<std::string> error;

  std::vector<uint64_t> seqs() const {
    std::vector<uint64_t> out;
    for (const auto& commit : commits) out.push_back(commit.seq);
    return out;
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const auto& commit : commits) out.push_back(describe(commit));
    return out;
  }
};

// Follows watch `id` as a guest does: takes each WatchData frame, acks it
// (WatchAck with its last commit's seq), until `done` holds over what was
// received or a WatchError comes. Counts the frames the host had out
// unacknowledged at once. Starts at message `from` of the guest's transcript.
inline Watched follow_watch(FakeGuest& guest, uint32_t id, const std::function<bool(const Watched&)>& done,
                            size_t from = 0) {
  Watched out;
  size_t next = from;
  for (;;) {
    size_t unacknowledged = 0;
    std::vector<uint64_t> acks;
    for (; next < guest.count(); ++next) {
      const auto& message = guest.messages()[next].message;
      if (auto* data = std::get_if<proto::WatchData>(&message); data && data->id == id) {
        ++out.frames;
        out.commits.insert(out.commits.end(), data->commits.begin(), data->commits.end());
        acks.push_back(data->commits.empty() ? 0 : data->commits.back().seq);
        out.max_unacknowledged = std::max(out.max_unacknowledged, ++unacknowledged);
      } else if (auto* error = std::get_if<proto::WatchError>(&message); error && error->id == id) {
        out.error = error->error;
        return out;
      }
    }
    if (done(out)) return out;
    for (uint64_t seq : acks) guest.send(proto::WatchAck{id, seq});
    bool more = guest.wait_until([&] { return guest.count() > next; });
    if (!more) {
      ADD_FAILURE() << "watch " << id << " stalled after " << out.commits.size() << " commits; received:"
                    << guest.transcript();
      return out;
    }
  }
}

// Follows watch `id` until it has received a commit with seq `seq` or later.
inline Watched follow_watch_to(FakeGuest& guest, uint32_t id, uint64_t seq, size_t from = 0) {
  return follow_watch(
      guest, id, [seq](const Watched& w) { return !w.commits.empty() && w.commits.back().seq >= seq; }, from);
}

// The host's view of watch `id` on a session, if it is open there.
inline std::optional<HostWatchInfo> watch_info(HostSession& session, uint32_t id) {
  for (const auto& info : session.stats().watches) {
    if (info.id == id) return info;
  }
  return std::nullopt;
}

// The commit sequence of a database with a change feed.
inline uint64_t last_seq(Database& db) {
  auto source = db.change_source();
  return source ? source->feed->last_seq() : 0;
}

}  // namespace host_test

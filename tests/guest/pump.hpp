// A test-only transport: one thread moving bytes between a guest Session and
// a host Session in the same process, optionally in random small pieces (a
// fixed seed keeps runs reproducible) so that frames split anywhere.
//
// cut() is a dropped connection: nothing more is delivered (a frame half fed
// stays half fed), then end() runs on the guest and then on the host, on the
// pump thread. It is thread-safe and idempotent; called from any thread but
// the pump's own it returns once both end() calls ran.
//
// Like a real transport, the pump checks Session::failed() after every
// receive() and whenever a session wakes its output (a guest's
// drop_connection() or close()): a failed session's pending output is
// delivered, then the stream ends as for a cut.
//
// Kept independent of src/many_level/transport/memory_pair.hpp on purpose:
// these tests need cut() to interrupt delivery mid-stream, and a failed()
// check on every wake (MemoryPair only looks at failed() after a receive()).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include <many_level.hpp>

namespace guest_tests {

using namespace many_level;

struct PumpOptions {
  // 0 delivers what is waiting in one receive(); n > 0 in pieces of 1..n bytes.
  size_t max_chunk = 0;
  std::uint32_t seed = 1;
};

inline void PrintTo(const PumpOptions& options, std::ostream* os) {
  *os << "{max_chunk=" << options.max_chunk << ", seed=" << options.seed << "}";
}

class Pump {
 public:
  Pump(std::shared_ptr<Session> guest, std::shared_ptr<Session> host, PumpOptions options = {})
      : state_(std::make_shared<State>()),
        guest_(std::move(guest)),
        host_(std::move(host)),
        options_(options),
        random_(options.seed) {
    std::weak_ptr<State> weak = state_;
    auto signal = [weak] {
      if (auto state = weak.lock()) {
        {
          std::lock_guard<std::mutex> lock(state->mutex);
          state->signalled = true;
        }
        state->changed.notify_all();
      }
    };
    guest_->output().on_readable(signal);
    host_->output().on_readable(signal);
    thread_ = std::thread([this] { run(); });
  }

  Pump(const Pump&) = delete;
  Pump& operator=(const Pump&) = delete;

  ~Pump() {
    cut();
    join();
  }

  void cut() {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->stop = true;
    }
    state_->changed.notify_all();
    if (std::this_thread::get_id() == thread_id_) return;
    join();
  }

  bool ended() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->ended;
  }

  // Waits (bounded) for the stream to end by itself, e.g. after a drop.
  bool wait_ended(std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(state_->mutex);
    return state_->changed.wait_for(lock, timeout, [&] { return state_->ended; });
  }

  // "cut", "guest failed: <why>", "host failed: <why>"; empty while running.
  std::string reason() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->reason;
  }

  uint64_t bytes_to_host() const { return to_host_.load(); }
  uint64_t bytes_to_guest() const { return to_guest_.load(); }

  Session& guest() { return *guest_; }
  Session& host() { return *host_; }

 private:
  struct State {
    mutable std::mutex mutex;
    mutable std::condition_variable changed;
    bool signalled = true;  // look once at the start: requests may already wait
    bool stop = false;
    bool ended = false;
    std::string reason;
  };

  void join() {
    std::lock_guard<std::mutex> lock(join_mutex_);
    if (thread_.joinable()) thread_.join();
  }

  bool stop_requested() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->stop;
  }

  // Feeds `bytes` to `to`, in chunks; stops early on a cut (a dropped
  // connection loses what is in flight) or once `to` failed.
  void feed(Session& to, const std::string& bytes, std::atomic<uint64_t>& counter, bool honour_cut) {
    size_t offset = 0;
    while (offset < bytes.size()) {
      if (honour_cut && stop_requested()) return;
      size_t size = bytes.size() - offset;
      if (options_.max_chunk > 0) {
        std::uniform_int_distribution<size_t> pick(1, options_.max_chunk);
        size = std::min(size, pick(random_));
      }
      to.receive(bytes.data() + offset, size);
      offset += size;
      counter += size;
      if (!to.failed().empty()) return;
    }
  }

  // One pass each way; true if any byte moved.
  bool move_once() {
    bool moved = false;
    std::string bytes;
    if (guest_->output().take(bytes) > 0) {
      moved = true;
      feed(*host_, bytes, to_host_, true);
    }
    if (host_->output().take(bytes) > 0) {
      moved = true;
      feed(*guest_, bytes, to_guest_, true);
    }
    return moved;
  }

  // Non-empty once the stream must end.
  std::string check_failed() {
    std::string why = guest_->failed();
    if (!why.empty()) {
      std::string bytes;
      if (guest_->output().take(bytes) > 0) feed(*host_, bytes, to_host_, false);
      return "guest failed: " + why;
    }
    why = host_->failed();
    if (!why.empty()) {
      std::string bytes;
      if (host_->output().take(bytes) > 0) feed(*guest_, bytes, to_guest_, false);
      return "host failed: " + why;
    }
    return {};
  }

  void run() {
    thread_id_ = std::this_thread::get_id();
    std::string reason;
    while (reason.empty()) {
      {
        std::unique_lock<std::mutex> lock(state_->mutex);
        state_->changed.wait(lock, [&] { return state_->signalled || state_->stop; });
        state_->signalled = false;
      }
      for (;;) {
        if (stop_requested()) {
          reason = "cut";
          break;
        }
        reason = check_failed();
        if (!reason.empty()) break;
        bool moved = move_once();
        reason = check_failed();
        if (!reason.empty() || !moved) break;
      }
    }
    guest_->output().on_readable(nullptr);
    host_->output().on_readable(nullptr);
    guest_->end();
    host_->end();
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->ended = true;
      state_->reason = reason;
    }
    state_->changed.notify_all();
  }

  std::shared_ptr<State> state_;
  std::shared_ptr<Session> guest_;
  std::shared_ptr<Session> host_;
  PumpOptions options_;
  std::mt19937 random_;
  std::atomic<uint64_t> to_host_{0};
  std::atomic<uint64_t> to_guest_{0};
  std::mutex join_mutex_;
  std::atomic<std::thread::id> thread_id_{};
  std::thread thread_;
};

}  // namespace guest_tests

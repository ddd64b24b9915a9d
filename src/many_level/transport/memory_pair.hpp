// Two Sessions wired together in one process, with no sockets: a guest and a
// host for tests. Bytes move on a pump thread of the pair's own, never inside
// the other session's call (which would deadlock on the sessions' locks), and
// can be cut into random small pieces to exercise framing.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "../version.hpp"
#include "session.hpp"
#include "stats.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

struct MemoryPairOptions {
  // 0 delivers what is waiting in one receive(); n delivers it in pieces of
  // 1..n bytes, sized by a generator seeded with `seed` (reproducible).
  size_t max_chunk = 0;
  std::uint32_t seed = 1;
};

// Threads: every receive() and end() runs on the pump thread. Sessions may
// write their output from any thread. close() and cut() are thread-safe;
// from any other thread they return after both sessions' end() ran, on the
// pump thread they return at once. Both sessions must outlive the pair.
//
// As over a socket to an EventLoop, a side receives only while its
// wants_input() says so, and failed() is asked after every receive() and
// every wake: a failed side's pending output is delivered, then both end.
class MemoryPair {
 public:
  MemoryPair(Session& guest, Session& host) : MemoryPair(guest, host, MemoryPairOptions{}) {}

  MemoryPair(Session& guest, Session& host, MemoryPairOptions options)
      : state_(std::make_shared<State>()), guest_(guest), host_(host), options_(options) {
    std::weak_ptr<State> weak = state_;
    auto signal = [weak] {
      if (auto alive = weak.lock()) alive->notify([&] { alive->signalled = true; });
    };
    guest_.output().on_readable(signal);
    host_.output().on_readable(signal);
    thread_ = std::thread([this] { pump(); });
  }

  MemoryPair(const MemoryPair&) = delete;
  MemoryPair& operator=(const MemoryPair&) = delete;

  ~MemoryPair() {
    cut();
    if (thread_.joinable()) thread_.join();
  }

  // A clean close: what both outputs hold now is delivered, then both
  // sessions end. Replies to those last bytes are not.
  void close() { stop(Stop::close); }

  // A dropped connection: nothing more is delivered; both sessions end.
  void cut() { stop(Stop::cut); }

  bool is_open() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return !state_->ended;
  }

  // Why the pair ended ("closed", "cut", "guest failed: ..."); empty while open.
  std::string end_reason() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->reason;
  }

  // bytes_out: taken from that side's output; bytes_in: delivered to it.
  const TransportStats& guest_stats() const { return guest_stats_; }
  const TransportStats& host_stats() const { return host_stats_; }

 private:
  enum class Stop { none, close, cut };

  struct State {
    mutable std::mutex mutex;
    std::condition_variable changed;
    bool signalled = true;  // look once at the start: output may already wait
    Stop stop = Stop::none;
    bool ended = false;
    std::string reason;

    template <typename Change>
    void notify(Change&& change) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        change();
      }
      changed.notify_all();
    }
  };

  // Bytes taken from one output and not yet all delivered.
  struct Pending {
    std::string bytes;
    size_t offset = 0;
    bool empty() const { return offset == bytes.size(); }
  };

  void stop(Stop how) {
    state_->notify([&] {
      if (state_->stop == Stop::none || how == Stop::cut) state_->stop = how;
    });
    if (std::this_thread::get_id() == thread_.get_id()) return;
    std::unique_lock<std::mutex> lock(state_->mutex);
    state_->changed.wait(lock, [&] { return state_->ended; });
  }

  Stop requested() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->stop;
  }

  // Feeds `pending` to `to`; false once `to` failed (or threw: then
  // `failure` says so). With `when_wanted`, stops early while `to` does not
  // want input.
  bool deliver(Session& to, const char* name, Pending& pending, TransportStats& stats, bool when_wanted,
               std::string& failure) {
    while (!pending.empty()) {
      if (when_wanted && !to.wants_input()) return true;
      size_t size = pending.bytes.size() - pending.offset;
      if (options_.max_chunk > 0) {
        std::uniform_int_distribution<size_t> pick(1, options_.max_chunk);
        size = std::min(size, pick(random_));
      }
      try {
        to.receive(pending.bytes.data() + pending.offset, size);
      } catch (const std::exception& error) {
        failure = std::string(name) + " threw: " + error.what();
        return false;
      }
      pending.offset += size;
      stats.add_in(size);
      if (!to.failed().empty()) return false;
    }
    return true;
  }

  // Appends what `from`'s output holds to `pending`; true if anything.
  static bool take_all(Session& from, Pending& pending, TransportStats& stats) {
    std::string more;
    const size_t taken = from.output().take(more);
    stats.add_out(taken);
    if (pending.empty()) {
      pending.bytes.swap(more);
      pending.offset = 0;
    } else {
      pending.bytes += more;
    }
    return taken > 0;
  }

  // Why the pair must end because a side failed, or empty. A failed side's
  // pending output still reaches the other side first.
  std::string failures() {
    std::string ignored;
    std::string failure = guest_.failed();
    if (!failure.empty()) {
      take_all(guest_, to_host_, guest_stats_);
      deliver(host_, "host", to_host_, host_stats_, false, ignored);
      return "guest failed: " + failure;
    }
    failure = host_.failed();
    if (!failure.empty()) {
      take_all(host_, to_guest_, host_stats_);
      deliver(guest_, "guest", to_guest_, guest_stats_, false, ignored);
      return "host failed: " + failure;
    }
    return {};
  }

  // One pass in each direction; true if any byte moved. Sets `reason` when
  // the pair must end. failed() is asked on every pass: a session may ask
  // to be closed with a wake that carries no bytes.
  bool move_once(std::string& reason) {
    reason = failures();
    if (!reason.empty()) return false;
    bool moved = false;
    std::string failure;
    // Nothing is taken from one side while the other wants no input.
    if (to_host_.empty() && host_.wants_input()) moved |= take_all(guest_, to_host_, guest_stats_);
    size_t before = to_host_.offset;
    bool ok = deliver(host_, "host", to_host_, host_stats_, true, failure);
    moved |= to_host_.offset != before;
    if (ok) {
      if (to_guest_.empty() && guest_.wants_input()) moved |= take_all(host_, to_guest_, host_stats_);
      before = to_guest_.offset;
      ok = deliver(guest_, "guest", to_guest_, guest_stats_, true, failure);
      moved |= to_guest_.offset != before;
    }
    if (!ok) {
      reason = failures();
      if (reason.empty()) reason = failure;
    }
    return moved;
  }

  // close(): both outputs as they are now, delivered whether wanted or not.
  std::string deliver_last() {
    take_all(guest_, to_host_, guest_stats_);
    take_all(host_, to_guest_, host_stats_);
    std::string failure;
    if (!deliver(host_, "host", to_host_, host_stats_, false, failure) ||
        !deliver(guest_, "guest", to_guest_, guest_stats_, false, failure)) {
      std::string reason = failures();
      return reason.empty() ? failure : reason;
    }
    return "closed";
  }

  void pump() {
    std::string reason;
    while (reason.empty()) {
      {
        std::unique_lock<std::mutex> lock(state_->mutex);
        state_->changed.wait(lock, [&] { return state_->signalled || state_->stop != Stop::none; });
        state_->signalled = false;
      }
      // Until nothing moves (a ping-pong pair keeps this busy, as it would a
      // socket), looking for close() and cut() between passes.
      for (;;) {
        const Stop stop = requested();
        if (stop != Stop::none) {
          reason = stop == Stop::cut ? "cut" : deliver_last();
          break;
        }
        const bool moved = move_once(reason);
        if (!reason.empty() || !moved) break;
      }
    }
    guest_.output().on_readable(nullptr);
    host_.output().on_readable(nullptr);
    try {
      guest_.end();
    } catch (...) {
    }
    try {
      host_.end();
    } catch (...) {
    }
    state_->notify([&] {
      state_->ended = true;
      state_->reason = reason;
    });
  }

  std::shared_ptr<State> state_;
  Session& guest_;
  Session& host_;
  MemoryPairOptions options_;
  std::mt19937 random_{options_.seed};
  TransportStats guest_stats_;
  TransportStats host_stats_;
  Pending to_host_;
  Pending to_guest_;
  std::thread thread_;
};

MANY_LEVEL_NAMESPACE_END

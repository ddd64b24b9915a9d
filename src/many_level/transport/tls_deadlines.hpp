// One thread that runs tasks at deadlines. Sessions own no thread and no
// timer, yet a TLS peer that connects and never finishes its handshake must
// not hold its connection (and a slot of the host) forever: each TLS context
// has one of these, which fails such sessions when their time is up. It is
// idle otherwise, and never on the path of a byte.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "../version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN
namespace detail {

// Threads: at() and cancel() from any thread. Tasks run on the deadline
// thread (started by the first at()), one at a time, with no lock held; they
// must not block for long. Destroying it drops the tasks not yet run, and may
// happen on its own thread (from inside a task's destructor).
class TlsDeadlines {
 public:
  using Clock = std::chrono::steady_clock;
  // Ordered by time, then by a serial number that makes it unique.
  using Key = std::pair<Clock::time_point, std::uint64_t>;

  TlsDeadlines() : state_(std::make_shared<State>()) {}
  TlsDeadlines(const TlsDeadlines&) = delete;
  TlsDeadlines& operator=(const TlsDeadlines&) = delete;

  ~TlsDeadlines() {
    std::thread thread;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->stop = true;
      thread = std::move(thread_);
    }
    state_->changed.notify_all();
    if (!thread.joinable()) return;
    // The thread holds the state it needs: it may outlive this object.
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();
    } else {
      thread.join();
    }
  }

  // Runs `task` at `when` (soon, if that is past), unless cancelled first.
  Key at(Clock::time_point when, std::function<void()> task) {
    Key key;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      key = Key{when, state_->next_serial++};
      state_->tasks.emplace(key, std::move(task));
      if (!thread_.joinable() && !state_->stop) thread_ = std::thread([state = state_] { run(*state); });
    }
    state_->changed.notify_all();
    return key;
  }

  // Forgets a task that has not run yet; a key already run or cancelled is ignored.
  void cancel(const Key& key) {
    std::function<void()> dropped;  // destroyed without the lock: it may own anything
    std::lock_guard<std::mutex> lock(state_->mutex);
    auto found = state_->tasks.find(key);
    if (found == state_->tasks.end()) return;
    dropped = std::move(found->second);
    state_->tasks.erase(found);
  }

  size_t pending() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->tasks.size();
  }

 private:
  struct State {
    mutable std::mutex mutex;
    std::condition_variable changed;
    std::map<Key, std::function<void()>> tasks;
    std::uint64_t next_serial = 0;
    bool stop = false;
  };

  static void run(State& state) {
    std::unique_lock<std::mutex> lock(state.mutex);
    while (!state.stop) {
      if (state.tasks.empty()) {
        state.changed.wait(lock);
        continue;
      }
      auto first = state.tasks.begin();
      if (first->first.first > Clock::now()) {
        state.changed.wait_until(lock, first->first.first);
        continue;
      }
      std::function<void()> task = std::move(first->second);
      state.tasks.erase(first);
      lock.unlock();
      try {
        task();
      } catch (...) {
      }
      task = nullptr;  // its captures go here, still without the lock
      lock.lock();
    }
  }

  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace detail
MANY_LEVEL_NAMESPACE_END

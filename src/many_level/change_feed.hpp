// The change feed of one database: every committed write (put, del, batch, a
// chunk of a clear) gets the next number of one commit sequence, and the last
// commits are kept in a bounded history that watchers read from. It is etcd's
// watch-from-revision scaled down: a watcher remembers the sequence it has
// seen and asks for what came after it; past the history's start it is told
// that the gap is too old and reloads instead.
//
// Stores publish in commit order (they already serialize their commits);
// readers pull. Listeners only learn "something was committed", on the
// committing thread and without any lock of the feed held, and then read at
// their own pace, so one slow watcher costs a cursor, never a queue.
//
// Nothing is recorded until the first subscriber: a database nobody watches
// pays one lock and one counter increment a commit (and an atomic load to
// find no listener). From then on the history is kept (so a watcher that
// reconnects can resume), bounded in commits and in bytes.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "batch_operation.hpp"
#include "options.hpp"
#include "range.hpp"
#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// One committed write as watchers see it: its sequence and its operations,
// in the order they were applied (a clear appears as the deletes it did).
struct Commit {
  uint64_t seq = 0;
  std::vector<BatchOperation> operations;

  // What it costs the history: its bytes plus a little per operation.
  size_t weight() const {
    size_t bytes = sizeof(Commit);
    for (const auto& op : operations) bytes += op.key.size() + op.value.size() + sizeof(BatchOperation);
    return bytes;
  }
};

// ChangeHistoryOptions (how much history a feed keeps) is in options.hpp,
// beside the DatabaseOptions that carry it.

class ChangeFeed {
 public:
  using Listener = std::function<void()>;

  explicit ChangeFeed(ChangeHistoryOptions options = {}) : options_(options) {}
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  // ---- the store's side ------------------------------------------------
  // One commit, after it is durable, in commit order; returns its sequence.
  // `operations()` (returning std::vector<BatchOperation>) is called only
  // while the feed records, under the feed's lock, so that a watcher that
  // starts meanwhile cannot miss this commit: it must only build the vector.
  template <typename Build>
  uint64_t publish_with(Build&& operations) {
    uint64_t seq = record_with(std::forward<Build>(operations));
    notify();
    return seq;
  }

  uint64_t publish(std::vector<BatchOperation> operations) {
    return publish_with([&] { return std::move(operations); });
  }

  // publish_with() in two halves, for a store that records while it holds
  // a lock of its own (which is what keeps its commits in order): record
  // there, then notify() once that lock is released, so that no listener
  // (and no watch callback) runs under it.
  template <typename Build>
  uint64_t record_with(Build&& operations) {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t seq = ++last_;
    if (recording_) {
      auto commit = std::make_shared<Commit>();
      commit->seq = seq;
      commit->operations = operations();
      bytes_ += commit->weight();
      history_.push_back(std::move(commit));
      trim_locked();
    } else {
      first_ = last_ + 1;
    }
    return seq;
  }

  // Runs the listeners, on this thread, with no lock of the feed held. With
  // none, it costs one atomic load. Calling it more often than there are
  // commits is harmless: listeners read what is there.
  void notify() {
    if (listener_count_.load(std::memory_order_acquire) == 0) return;
    std::shared_ptr<const Listeners> listeners;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      listeners = listeners_;
    }
    for (const auto& entry : *listeners) entry->call();
  }

  // ---- the readers' side -----------------------------------------------
  // The sequence of the last commit (0 before the first).
  uint64_t last_seq() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_;
  }

  // Whether everything after `seq` is still in the history (or yet to come).
  bool can_resume_after(uint64_t seq) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return resumable_locked(seq);
  }

  enum class ReadStatus { ok, too_old };

  // Appends to `out` the commits after `after`, oldest first, at most
  // `max_commits` of them and, past the first, no more than `max_bytes` in
  // all. too_old: some commit after `after` has left the history.
  ReadStatus read(uint64_t after, size_t max_commits, size_t max_bytes,
                  std::vector<std::shared_ptr<const Commit>>& out) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!resumable_locked(after)) return ReadStatus::too_old;
    if (history_.empty() || after >= last_) return ReadStatus::ok;
    size_t index = static_cast<size_t>(after + 1 - first_);
    size_t bytes = 0;
    for (size_t taken = 0; index < history_.size() && taken < max_commits; ++index, ++taken) {
      const auto& commit = history_[index];
      bytes += commit->weight();
      if (taken > 0 && bytes > max_bytes) break;
      out.push_back(commit);
    }
    return ReadStatus::ok;
  }

  // A listener registration: while it lives, `listener` runs after each
  // commit, on the committing thread, with no lock of the feed held. It must
  // be quick (typically: schedule a read, or deliver what is new) and must
  // not throw. It may run on several threads at once, and re-entrantly (if
  // it writes to the database). Destroying the subscription waits for calls
  // in progress on other threads; it may be destroyed from inside the
  // listener itself.
  class Subscription {
   public:
    ~Subscription() {
      if (auto feed = feed_.lock()) feed->unsubscribe(entry_.get());
      entry_->disable();
    }
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;

   private:
    friend class ChangeFeed;

    // One listener and the threads inside it right now.
    class Entry {
     public:
      explicit Entry(Listener listener) : listener_(std::make_shared<Listener>(std::move(listener))) {}

      void call() {
        std::shared_ptr<Listener> listener;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          if (!listener_) return;
          listener = listener_;  // kept alive by this call even if disabled meanwhile
          calling_.push_back(std::this_thread::get_id());
        }
        struct Leave {
          Entry& entry;
          ~Leave() { entry.leave(); }
        } leave{*this};
        (*listener)();
      }

      // No call starts after this; returns once those running on other
      // threads are done (one on this thread is the caller's own frame).
      void disable() {
        std::unique_lock<std::mutex> lock(mutex_);
        listener_.reset();
        const auto self = std::this_thread::get_id();
        left_.wait(lock, [&] {
          return std::all_of(calling_.begin(), calling_.end(), [&](std::thread::id id) { return id == self; });
        });
      }

     private:
      void leave() {
        std::lock_guard<std::mutex> lock(mutex_);
        calling_.erase(std::find(calling_.begin(), calling_.end(), std::this_thread::get_id()));
        left_.notify_all();
      }

      std::mutex mutex_;
      std::condition_variable left_;
      std::shared_ptr<Listener> listener_;
      std::vector<std::thread::id> calling_;
    };

    Subscription(std::weak_ptr<ChangeFeed> feed, std::shared_ptr<Entry> entry)
        : feed_(std::move(feed)), entry_(std::move(entry)) {}
    std::weak_ptr<ChangeFeed> feed_;
    std::shared_ptr<Entry> entry_;
  };

  // Starts recording (for good: later watchers may resume) and registers a
  // listener. The feed must be owned by a shared_ptr.
  static std::unique_ptr<Subscription> subscribe(const std::shared_ptr<ChangeFeed>& feed, Listener listener) {
    auto entry = std::make_shared<Subscription::Entry>(std::move(listener));
    {
      std::lock_guard<std::mutex> lock(feed->mutex_);
      if (!feed->recording_) {
        feed->recording_ = true;
        feed->first_ = feed->last_ + 1;
      }
      auto listeners = std::make_shared<Listeners>(*feed->listeners_);
      listeners->push_back(entry);
      feed->replace_listeners_locked(std::move(listeners));
    }
    return std::unique_ptr<Subscription>(new Subscription(feed, std::move(entry)));
  }

  // For introspection: commits and bytes held, listeners registered.
  size_t history_commits() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return history_.size();
  }
  size_t history_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return bytes_;
  }
  size_t listeners() const { return listener_count_.load(std::memory_order_acquire); }
  const ChangeHistoryOptions& options() const { return options_; }

 private:
  using Entry = Subscription::Entry;
  // Copied on change, so notify() takes a reference under the lock and
  // calls the listeners outside it without copying the vector.
  using Listeners = std::vector<std::shared_ptr<Entry>>;

  // Commits after `seq` are all known: the next one wanted (seq + 1) is at or
  // after the oldest kept. A seq from the future is refused as too old too:
  // it was not given out by this feed (another database, or a restart).
  bool resumable_locked(uint64_t seq) const { return seq + 1 >= first_ && seq <= last_; }

  void trim_locked() {
    while (history_.size() > 1 &&
           (history_.size() > options_.max_commits || bytes_ > options_.max_bytes)) {
      bytes_ -= history_.front()->weight();
      history_.pop_front();
      ++first_;
    }
  }

  void replace_listeners_locked(std::shared_ptr<const Listeners> listeners) {
    listener_count_.store(listeners->size(), std::memory_order_release);
    listeners_ = std::move(listeners);
  }

  void unsubscribe(const Entry* entry) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto listeners = std::make_shared<Listeners>();
    for (const auto& e : *listeners_) {
      if (e.get() != entry) listeners->push_back(e);
    }
    replace_listeners_locked(std::move(listeners));
  }

  const ChangeHistoryOptions options_;
  mutable std::mutex mutex_;
  bool recording_ = false;
  uint64_t last_ = 0;   // sequence of the last commit
  uint64_t first_ = 1;  // sequence of history_.front() (last_ + 1 when empty)
  size_t bytes_ = 0;
  std::deque<std::shared_ptr<const Commit>> history_;
  std::shared_ptr<const Listeners> listeners_ = std::make_shared<Listeners>();
  std::atomic<size_t> listener_count_{0};  // listeners_->size(), read without the lock
};

// Where a database's changes come from: a feed, and the prefix its keys have
// there (a sublevel watches its parent's feed under its prefix).
struct ChangeSource {
  std::shared_ptr<ChangeFeed> feed;
  std::string prefix;
};

// The operations of `commit` whose key is under `prefix` and, with the prefix
// taken off, inside `range`; keys come out without the prefix.
inline std::vector<BatchOperation> operations_in(const Commit& commit, std::string_view prefix,
                                                 const KeyRange& range) {
  std::vector<BatchOperation> out;
  for (const auto& op : commit.operations) {
    std::string_view key(op.key);
    if (key.substr(0, prefix.size()) != prefix) continue;
    key.remove_prefix(prefix.size());
    if (!range.contains(key)) continue;
    out.push_back({op.type, std::string(key), op.value});
  }
  return out;
}

MANY_LEVEL_NAMESPACE_END

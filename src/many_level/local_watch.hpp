// The in-process watch: what Database::watch() gives for any store that
// publishes to a change feed (memory, SQLite, and a host's database), read
// straight from the feed with a cursor.
//
// Where callbacks run: on a committing thread, after its commit, with no
// lock of the store or the feed held. Each notification delivers, in commit
// order, every commit after the watch's cursor that touches its range (only
// the operations inside the range; commits with none are skipped). A watch
// delivers on one thread at a time: a thread that commits while another
// delivers for the same watch leaves its commit to that one and returns, so a
// writer never waits for another thread's callback, and a callback may write
// to the database itself (its commit is delivered after it returns). Nothing
// is queued per watch: a callback slow enough for the feed's history to move
// past its cursor gets LEVEL_WATCH_TOO_OLD once, and the watch ends.
//
// Resuming (WatchOptions::since): the commits after `since` that the history
// holds are delivered on the thread calling watch(), before it returns; a
// `since` the history no longer reaches (or one from the future) makes
// watch() throw LEVEL_WATCH_TOO_OLD.
//
// A callback that throws has its exception dropped: the write that delivered
// it has already committed, and its caller must not see another's failure.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "change_feed.hpp"
#include "error.hpp"
#include "options.hpp"
#include "range.hpp"
#include "version.hpp"
#include "watch.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

class LocalWatch final : public Watch {
 public:
  // Starts watching `source`'s feed for the raw-byte range of `options`
  // (limit and reverse are not looked at). Throws LEVEL_WATCH_TOO_OLD when
  // options.since cannot be resumed.
  static std::unique_ptr<LocalWatch> start(const ChangeSource& source, const RangeOptions& range,
                                           std::optional<uint64_t> since, WatchCallback callback) {
    auto state = std::make_shared<State>(source, KeyRange::from(range), std::move(callback));
    std::unique_ptr<LocalWatch> watch(new LocalWatch(state));
    // Subscribed first, so the feed records before the cursor is chosen:
    // every commit after it is then either in the history or yet to come.
    watch->subscription_ = ChangeFeed::subscribe(source.feed, [state] { state->deliver(false); });
    if (since) {
      if (!source.feed->can_resume_after(*since)) {
        throw Error(codes::watch_too_old, "The change history no longer reaches back to sequence " +
                                              std::to_string(*since) + " (or it is newer than the database's)");
      }
      state->cursor = *since;
    } else {
      state->cursor = source.feed->last_seq();
    }
    // Catches up on what the history holds (and whatever was committed while
    // this started), here, before watch() returns.
    state->deliver(true);
    return watch;
  }

  ~LocalWatch() override { close(); }

  void close() override {
    state_->close();
    // On the callback's own thread the subscription may go too: the feed
    // waits only for listener calls on other threads.
    subscription_.reset();
  }

  uint64_t seq() const override { return state_->cursor.load(std::memory_order_acquire); }

 private:
  // Shared by the watch and its feed listener, so a delivery running on a
  // committing thread keeps it alive even if the watch is destroyed from the
  // callback.
  struct State {
    State(const ChangeSource& source, KeyRange range, WatchCallback callback)
        : feed(source.feed),
          prefix(source.prefix),
          range(std::move(range)),
          everything(prefix.empty() && !this->range.lower && !this->range.upper),
          callback(std::move(callback)) {}

    // Delivers what is new, unless another thread is at it (then that one
    // will, as it reads until it finds nothing). `wait`: wait for that
    // thread instead, so that the caller returns with everything delivered.
    void deliver(bool wait) {
      {
        std::unique_lock<std::mutex> lock(mutex);
        if (wait) {
          idle.wait(lock, [&] { return !delivering || closed; });
          started = true;
        }
        // Before start() has chosen the cursor, start() itself delivers.
        if (closed || !started) return;
        if (delivering) {
          more = true;
          return;
        }
        delivering = true;
        deliverer = std::this_thread::get_id();
      }
      bool ended = run();
      std::lock_guard<std::mutex> lock(mutex);
      if (ended) closed = true;
      delivering = false;
      deliverer = std::thread::id();
      idle.notify_all();
    }

    // Reads and delivers until the feed has nothing after the cursor; true
    // when the watch has ended (closed, or fallen out of the history).
    bool run() {
      std::vector<std::shared_ptr<const Commit>> commits;
      for (;;) {
        commits.clear();
        if (feed->read(cursor.load(std::memory_order_relaxed), kCommitsPerRead, kBytesPerRead, commits) ==
            ChangeFeed::ReadStatus::too_old) {
          if (!is_closed()) {
            call(Error(codes::watch_too_old, "The watch fell behind the change history; reload and watch again"),
                 Commit{cursor.load(std::memory_order_relaxed), {}});
          }
          return true;
        }
        if (commits.empty()) {
          std::lock_guard<std::mutex> lock(mutex);
          if (closed) return true;
          if (!more) return false;
          more = false;
          continue;
        }
        for (const auto& commit : commits) {
          if (is_closed()) return true;
          if (everything) {
            cursor.store(commit->seq, std::memory_order_release);
            call(std::nullopt, *commit);
            continue;
          }
          Commit mine{commit->seq, operations_in(*commit, prefix, range)};
          cursor.store(commit->seq, std::memory_order_release);
          if (!mine.operations.empty()) call(std::nullopt, mine);
        }
      }
    }

    void call(std::optional<Error> error, const Commit& commit) {
      try {
        callback(std::move(error), commit);
      } catch (...) {
        // See the top of this file.
      }
    }

    bool is_closed() {
      std::lock_guard<std::mutex> lock(mutex);
      return closed;
    }

    // No delivery starts after this; waits for one running on another thread.
    void close() {
      std::unique_lock<std::mutex> lock(mutex);
      closed = true;
      const auto self = std::this_thread::get_id();
      idle.wait(lock, [&] { return !delivering || deliverer == self; });
    }

    // One read's worth: enough to amortize the feed's lock, little enough
    // that a close() from another thread is seen soon.
    static constexpr size_t kCommitsPerRead = 64;
    static constexpr size_t kBytesPerRead = size_t{1} << 20;

    const std::shared_ptr<ChangeFeed> feed;
    const std::string prefix;
    const KeyRange range;
    const bool everything;  // no prefix, no bounds: commits go out as they are
    const WatchCallback callback;
    std::atomic<uint64_t> cursor{0};  // the last commit delivered (or skipped)

    std::mutex mutex;  // this watch's alone; guards what follows
    std::condition_variable idle;
    bool delivering = false;
    bool more = false;  // a commit came while delivering: read again before stopping
    bool closed = false;
    bool started = false;  // the cursor is set: notifications may deliver
    std::thread::id deliverer;
  };

  explicit LocalWatch(std::shared_ptr<State> state) : state_(std::move(state)) {}

  std::shared_ptr<State> state_;
  std::unique_ptr<ChangeFeed::Subscription> subscription_;
};

MANY_LEVEL_NAMESPACE_END

// LocalWatch, the in-process watch of a store with a change feed, over a
// MemoryDatabase: where and when callbacks run (on the committing thread,
// one at a time, a callback that writes or closes), catching up on `since`,
// falling behind the history, and how the memory store publishes its commits.
// What every store must do is in tests/contract (watch_test.cpp).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "many_level/memory_database.hpp"
#include "many_level/sublevel.hpp"

using namespace many_level;

namespace {

using Ops = std::vector<BatchOperation>;

// Every commit a watch delivered, and its error if it ended with one.
struct Recorder {
  std::mutex mutex;
  std::vector<Commit> commits;
  std::vector<std::string> errors;

  WatchCallback callback() {
    return [this](std::optional<Error> error, const Commit& commit) {
      std::lock_guard<std::mutex> lock(mutex);
      if (error) {
        errors.push_back(error->code());
      } else {
        commits.push_back(commit);
      }
    };
  }
  std::vector<Ops> operations() {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<Ops> out;
    for (const auto& commit : commits) out.push_back(commit.operations);
    return out;
  }
};

WatchOptions raw() {
  WatchOptions options;
  options.key_encoding = "buffer";
  options.value_encoding = "buffer";
  return options;
}

TEST(MemoryFeed, PublishesEveryWriteAsItsOperations) {
  MemoryDatabase db;
  Recorder seen;
  auto watch = db.watch(raw(), seen.callback());
  db.put("a", "1");
  db.del("a");
  db.del("missing");  // published anyway, as abstract-level emits it
  db.batch({BatchOperation::put("b", "2"), BatchOperation::put("c", "3"), BatchOperation::del("x")});
  db.batch(std::vector<BatchOperation>{});  // nothing: no commit
  ClearOptions nothing;
  nothing.gte = "zz";
  db.clear(nothing);  // deletes nothing: no commit
  ClearOptions reverse;
  reverse.reverse = true;
  db.put("d", "4");
  db.clear(reverse);
  EXPECT_EQ(seen.operations(),
            (std::vector<Ops>{{BatchOperation::put("a", "1")},
                              {BatchOperation::del("a")},
                              {BatchOperation::del("missing")},
                              {BatchOperation::put("b", "2"), BatchOperation::put("c", "3"), BatchOperation::del("x")},
                              {BatchOperation::put("d", "4")},
                              {BatchOperation::del("d"), BatchOperation::del("c"), BatchOperation::del("b")}}));
  std::vector<uint64_t> seqs;
  for (const auto& commit : seen.commits) seqs.push_back(commit.seq);
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(watch->seq(), 6u);
  EXPECT_EQ(db.change_source()->feed->last_seq(), 6u);
}

TEST(MemoryFeed, ClearWithLimitPublishesOnlyWhatItDeleted) {
  MemoryDatabase db;
  db.batch({BatchOperation::put("a", "1"), BatchOperation::put("b", "2"), BatchOperation::put("c", "3"),
            BatchOperation::put("d", "4")});
  Recorder seen;
  auto watch = db.watch(raw(), seen.callback());
  ClearOptions options;
  options.gt = "a";
  options.limit = 2;
  db.clear(options);
  options.reverse = true;
  options.limit = 1;
  db.clear(options);
  EXPECT_EQ(seen.operations(),
            (std::vector<Ops>{{BatchOperation::del("b"), BatchOperation::del("c")}, {BatchOperation::del("d")}}));
}

TEST(MemoryFeed, CallbacksRunOnTheCommittingThreadBeforeTheWriteReturns) {
  MemoryDatabase db;
  std::thread::id where;
  int calls = 0;
  auto watch = db.watch(raw(), [&](std::optional<Error>, const Commit&) {
    where = std::this_thread::get_id();
    ++calls;
  });
  db.put("k", "v");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(where, std::this_thread::get_id());
}

TEST(MemoryFeed, ACallbackMayWriteToTheDatabaseAndCloseItsWatch) {
  MemoryDatabase db;
  std::unique_ptr<Watch> watch;
  std::vector<std::string> keys;
  watch = db.watch(raw(), [&](std::optional<Error> error, const Commit& commit) {
    ASSERT_FALSE(error);
    keys.push_back(commit.operations.at(0).key);
    if (keys.size() < 3) db.put(keys.back() + "+", "v");  // delivered after this call returns
    if (keys.size() == 3) watch.reset();                  // destroys the watch from inside its callback
  });
  db.put("k", "v");
  EXPECT_EQ(keys, (std::vector<std::string>{"k", "k+", "k++"}));
  EXPECT_EQ(watch, nullptr);
  EXPECT_EQ(db.get("k++"), "v");
  db.put("later", "v");
  EXPECT_EQ(keys.size(), 3u);
}

TEST(MemoryFeed, SinceDeliversTheHistoryBeforeWatchReturns) {
  MemoryDatabase db;
  Recorder first;
  auto watch = db.watch(raw(), first.callback());
  const uint64_t start = watch->seq();
  db.put("a", "1");
  db.put("b", "2");
  db.put("c", "3");
  WatchOptions options = raw();
  options.since = start + 1;
  Recorder resumed;
  auto again = db.watch(options, resumed.callback());
  EXPECT_EQ(resumed.operations(), (std::vector<Ops>{{BatchOperation::put("b", "2")}, {BatchOperation::put("c", "3")}}));
  EXPECT_EQ(again->seq(), start + 3);
  options.since = start + 4;  // from the future
  EXPECT_THROW(db.watch(options, resumed.callback()), Error);
}

TEST(MemoryFeed, ASinceBeforeTheFirstWatchIsTooOld) {
  MemoryDatabase db;
  db.put("a", "1");
  db.put("b", "2");
  WatchOptions options = raw();
  options.since = 1;
  try {
    db.watch(options, [](std::optional<Error>, const Commit&) {});
    FAIL() << "resumed from before the history";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), codes::watch_too_old);
  }
  options.since = 2;  // "now" is always fine
  EXPECT_NO_THROW(db.watch(options, [](std::optional<Error>, const Commit&) {}));
}

TEST(MemoryFeed, ASlowWatcherThatFallsOutOfTheHistoryGetsTooOldOnce) {
  DatabaseOptions options;
  options.change_history.max_commits = 4;
  MemoryDatabase db(options);
  std::mutex mutex;
  std::condition_variable changed;
  bool blocked = false;
  bool release = false;
  Recorder seen;
  auto watch = db.watch(raw(), [&](std::optional<Error> error, const Commit& commit) {
    seen.callback()(error, commit);
    std::unique_lock<std::mutex> lock(mutex);
    if (!blocked) {
      blocked = true;
      changed.notify_all();
      changed.wait(lock, [&] { return release; });
    }
  });
  std::thread slow([&] { db.put("first", "v"); });
  {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return blocked; });
  }
  // Meanwhile others commit more than the history holds; their writes do not
  // wait for the callback in progress.
  for (int i = 0; i < 10; ++i) db.put("k" + std::to_string(i), "v");
  {
    std::lock_guard<std::mutex> lock(mutex);
    release = true;
    changed.notify_all();
  }
  slow.join();
  db.put("after", "v");
  EXPECT_EQ(seen.errors, (std::vector<std::string>{codes::watch_too_old}));
  EXPECT_EQ(seen.operations(), (std::vector<Ops>{{BatchOperation::put("first", "v")}}));
}

TEST(MemoryFeed, CloseWaitsForACallbackInProgressOnAnotherThread) {
  MemoryDatabase db;
  std::mutex mutex;
  std::condition_variable changed;
  bool entered = false;
  std::atomic<bool> finished{false};
  std::atomic<int> calls{0};
  auto watch = db.watch(raw(), [&](std::optional<Error>, const Commit&) {
    ++calls;
    {
      std::lock_guard<std::mutex> lock(mutex);
      entered = true;
      changed.notify_all();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    finished = true;
  });
  std::thread writer([&] { db.put("k", "v"); });
  {
    std::unique_lock<std::mutex> lock(mutex);
    changed.wait(lock, [&] { return entered; });
  }
  watch->close();
  EXPECT_TRUE(finished);
  writer.join();
  db.put("k2", "v");
  EXPECT_EQ(calls.load(), 1);
}

TEST(MemoryFeed, ClosingTheDatabaseEndsItsWatchesAndTheirSublevels) {
  MemoryDatabase db;
  auto sub = db.sublevel("s");
  Recorder root_seen;
  Recorder sub_seen;
  auto root_watch = db.watch(raw(), root_seen.callback());
  auto sub_watch = sub->watch(raw(), sub_seen.callback());
  sub->put("k", "v");
  db.close();
  EXPECT_EQ(root_seen.errors, (std::vector<std::string>{codes::database_not_open}));
  EXPECT_EQ(sub_seen.errors, (std::vector<std::string>{codes::database_not_open}));
  EXPECT_EQ(root_seen.operations(), (std::vector<Ops>{{BatchOperation::put("!s!k", "v")}}));
  EXPECT_EQ(sub_seen.operations(), (std::vector<Ops>{{BatchOperation::put("k", "v")}}));
  root_watch->close();
  sub_watch.reset();
  EXPECT_EQ(root_seen.errors.size(), 1u);
}

TEST(MemoryFeed, NobodyWatchingRecordsNothing) {
  MemoryDatabase db;
  for (int i = 0; i < 100; ++i) db.put("k", "v");
  auto feed = db.change_source()->feed;
  EXPECT_EQ(feed->last_seq(), 100u);
  EXPECT_EQ(feed->history_commits(), 0u);
  EXPECT_EQ(feed->listeners(), 0u);
}

TEST(MemoryFeed, ManyWritersOneWatcherSeeEveryCommitInOrder) {
  MemoryDatabase db;
  std::vector<uint64_t> seqs;
  std::atomic<bool> overlapping{false};
  std::atomic<int> inside{0};
  auto watch = db.watch(raw(), [&](std::optional<Error> error, const Commit& commit) {
    if (inside.fetch_add(1) != 0) overlapping = true;
    ASSERT_FALSE(error);
    seqs.push_back(commit.seq);
    inside.fetch_sub(1);
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) db.put("t" + std::to_string(t) + "-" + std::to_string(i), "v");
    });
  }
  for (auto& writer : writers) writer.join();
  // Every write has returned, and a delivery in progress reads to the end.
  watch->close();
  EXPECT_FALSE(overlapping);
  ASSERT_EQ(seqs.size(), 8000u);
  for (size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], i + 1);
}

}  // namespace

namespace {

// Not the feed, but counted on the same write path: what a host reports.
TEST(MemoryStore, StorageInfoFollowsWhatItHolds) {
  MemoryDatabase db;
  EXPECT_EQ(db.storage_info().kind, "memory");
  EXPECT_EQ(db.storage_info().bytes, 0u);
  db.put("key", std::string(1000, 'v'));
  const uint64_t one = db.storage_info().bytes;
  EXPECT_GE(one, 1003u);
  db.put("key", std::string(10, 'v'));  // overwritten: smaller
  EXPECT_EQ(db.storage_info().bytes, one - 990);
  db.batch({BatchOperation::put("other", "v"), BatchOperation::del("key"), BatchOperation::del("missing")});
  db.put("third", "v");
  db.clear(ClearOptions{});
  EXPECT_EQ(db.storage_info().bytes, 0u);
}

}  // namespace

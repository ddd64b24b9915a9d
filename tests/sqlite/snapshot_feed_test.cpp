// SqliteDatabase's explicit snapshots and change feed where SQLite is what
// makes them hard: snapshots read while writers commit, many snapshots at
// once (each a read transaction), clear chunks published as exactly the keys
// they deleted, and the feed's order under group commit from eight threads.
// The behaviour every store shares is proven in tests/contract.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "many_level.hpp"
#include "temp_dir.hpp"

using namespace many_level;

namespace {

SqliteOptions bytes_options() {
  SqliteOptions options;
  options.key_encoding = "buffer";
  options.value_encoding = "buffer";
  return options;
}

std::string key_of(int n) {
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "k%04d", n);
  return buffer;
}

ReadOptions at(const std::shared_ptr<Snapshot>& snapshot) {
  ReadOptions options;
  options.snapshot = snapshot;
  return options;
}

IteratorOptions iterate_at(const std::shared_ptr<Snapshot>& snapshot) {
  IteratorOptions options;
  options.snapshot = snapshot;
  return options;
}

// Commits a watch received; the callbacks run on the writers' threads.
struct Received {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<Commit> commits;

  WatchCallback callback() {
    return [this](std::optional<Error> error, const Commit& commit) {
      ASSERT_FALSE(error) << error->what();
      std::lock_guard<std::mutex> lock(mutex);
      commits.push_back(commit);
      changed.notify_all();
    };
  }
};

}  // namespace

TEST(SqliteSnapshots, DeclaredAndReportedInStorageInfo) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  EXPECT_TRUE(db.supports().explicit_snapshots);
  EXPECT_TRUE(db.supports().watch);
  db.put("k", std::string(10000, 'v'));
  auto info = db.storage_info();
  EXPECT_EQ(info.kind, "sqlite");
  EXPECT_EQ(info.path, dir.file("db"));
  EXPECT_GT(info.bytes, 10000u);
}

// Writers keep every key of a batch at one version; a snapshot must always
// see a single version across all keys, however long it is read.
TEST(SqliteSnapshots, ASnapshotStaysConsistentUnderConcurrentWriters) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"), bytes_options());
  constexpr int kKeys = 50;
  auto write_version = [&](int version) {
    std::vector<BatchOperation> operations;
    for (int k = 0; k < kKeys; ++k) operations.push_back(BatchOperation::put(key_of(k), std::to_string(version)));
    db.batch(operations);
  };
  write_version(0);
  std::atomic<bool> stop{false};
  std::atomic<int> version{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    writers.emplace_back([&] {
      while (!stop) write_version(++version);
    });
  }
  std::atomic<int> inconsistent{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      for (int round = 0; round < 20; ++round) {
        auto snapshot = db.snapshot();
        auto seen = db.get(key_of(0), at(snapshot));
        for (int k = 0; k < kKeys; k += 7) {
          if (db.get(key_of(k), at(snapshot)) != seen) ++inconsistent;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // writers move on meanwhile
        for (auto& entry : db.iterator(iterate_at(snapshot))->all()) {
          if (entry.value != seen) ++inconsistent;
        }
        std::vector<std::string> keys;
        for (int k = 0; k < kKeys; ++k) keys.push_back(key_of(k));
        for (auto& value : db.get_many(keys, at(snapshot))) {
          if (value != seen) ++inconsistent;
        }
        snapshot->close();
      }
    });
  }
  for (auto& reader : readers) reader.join();
  stop = true;
  for (auto& writer : writers) writer.join();
  EXPECT_EQ(inconsistent.load(), 0);
  EXPECT_GT(version.load(), 0);
}

// Each snapshot is a read connection in a read transaction: many at once
// work, each at its own moment, and closing them gives the connections back.
TEST(SqliteSnapshots, ManySnapshotsAtOnceEachKeepItsMoment) {
  TempDir dir;
  SqliteOptions options = bytes_options();
  options.read_pool_size = 2;
  SqliteDatabase db(dir.file("db"), options);
  constexpr int kSnapshots = 40;
  std::vector<std::shared_ptr<Snapshot>> snapshots;
  for (int i = 0; i < kSnapshots; ++i) {
    db.put("counter", std::to_string(i));
    db.put(key_of(i), "x");
    snapshots.push_back(db.snapshot());
  }
  EXPECT_GE(db.stats().read_connections, static_cast<size_t>(kSnapshots));
  db.clear();
  for (int i = 0; i < kSnapshots; ++i) {
    EXPECT_EQ(db.get("counter", at(snapshots[i])), std::to_string(i));
    EXPECT_EQ(db.iterator(iterate_at(snapshots[i]))->all().size(), static_cast<size_t>(i + 2));
  }
  // An iterator keeps its snapshot's transaction past the snapshot's close.
  auto iterator = db.iterator(iterate_at(snapshots.back()));
  for (auto& snapshot : snapshots) snapshot->close();
  EXPECT_EQ(iterator->all().size(), static_cast<size_t>(kSnapshots + 1));
  iterator->close();
  EXPECT_LE(db.stats().read_connections, options.read_pool_size);
  EXPECT_EQ(db.iterator()->all().size(), 0u);
}

TEST(SqliteSnapshots, ClosingTheDatabaseEndsSnapshotTransactions) {
  TempDir dir;
  auto db = std::make_unique<SqliteDatabase>(dir.file("db"), bytes_options());
  db->put("a", "1");
  auto snapshot = db->snapshot();
  auto iterator = db->iterator(iterate_at(snapshot));
  db->close();
  EXPECT_FALSE(snapshot->is_open());
  db.reset();
  // The file is whole and writable by the next one.
  SqliteDatabase again(dir.file("db"), bytes_options());
  again.put("b", "2");
  EXPECT_EQ(again.iterator()->all().size(), 2u);
}

TEST(SqliteFeed, AClearPublishesExactlyTheKeysItDeletedChunkByChunk) {
  TempDir dir;
  SqliteOptions options = bytes_options();
  options.clear_chunk = 7;
  SqliteDatabase db(dir.file("db"), options);
  std::vector<BatchOperation> fill;
  for (int k = 0; k < 60; ++k) fill.push_back(BatchOperation::put(key_of(k), "v"));
  db.batch(fill);
  Received received;
  WatchOptions raw;
  raw.key_encoding = "buffer";
  raw.value_encoding = "buffer";
  auto watch = db.watch(raw, received.callback());

  for (bool reverse : {false, true}) {
    received.commits.clear();
    std::vector<std::string> before;
    for (auto& entry : db.iterator()->all()) before.push_back(entry.key);
    ClearOptions clear;
    clear.gt = key_of(5);
    clear.lt = key_of(55);
    clear.limit = 23;
    clear.reverse = reverse;
    db.clear(clear);
    std::vector<std::string> after;
    for (auto& entry : db.iterator()->all()) after.push_back(entry.key);
    std::vector<std::string> deleted;
    std::set_difference(before.begin(), before.end(), after.begin(), after.end(), std::back_inserter(deleted));
    ASSERT_EQ(deleted.size(), 23u);
    if (reverse) std::reverse(deleted.begin(), deleted.end());

    // Chunks of 7, 7, 7 and 2: one commit each, holding just its deletes, in
    // the order the clear went.
    std::vector<size_t> sizes;
    std::vector<std::string> published;
    for (const auto& commit : received.commits) {
      sizes.push_back(commit.operations.size());
      for (const auto& op : commit.operations) {
        EXPECT_EQ(op.type, BatchOperation::Type::del);
        published.push_back(op.key);
      }
    }
    EXPECT_EQ(sizes, (std::vector<size_t>{7, 7, 7, 2}));
    EXPECT_EQ(published, deleted);
  }
  // A clear that deletes nothing commits nothing.
  received.commits.clear();
  ClearOptions empty;
  empty.gte = "zzz";
  db.clear(empty);
  EXPECT_TRUE(received.commits.empty());
}

// Eight threads write through group commit; the feed numbers every write
// request once, contiguously, each thread's in its own order, and replaying
// it gives the file's content.
TEST(SqliteFeed, OrderUnderEightWriterThreadsWithGroupCommit) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"), bytes_options());
  Received received;
  WatchOptions raw;
  raw.key_encoding = "buffer";
  raw.value_encoding = "buffer";
  auto watch = db.watch(raw, received.callback());
  const uint64_t start = watch->seq();
  constexpr int kThreads = 8;
  constexpr int kWrites = 300;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        std::string key = "t" + std::to_string(t) + "-" + key_of(i % 37);
        if (i % 5 == 4) {
          db.batch({BatchOperation::del(key), BatchOperation::put(key + "b", std::to_string(i))});
        } else {
          db.put(key, std::to_string(i));
        }
      }
    });
  }
  for (auto& writer : writers) writer.join();
  watch->close();  // waits for a delivery in progress: every commit is in by now

  ASSERT_EQ(received.commits.size(), static_cast<size_t>(kThreads * kWrites));
  std::map<std::string, std::string> replayed;
  std::vector<int> next(kThreads, 0);
  for (size_t i = 0; i < received.commits.size(); ++i) {
    const Commit& commit = received.commits[i];
    ASSERT_EQ(commit.seq, start + i + 1) << "sequences are contiguous";
    const auto& last = commit.operations.back();
    int t = std::stoi(last.key.substr(1));
    ASSERT_EQ(last.value, std::to_string(next[t]++)) << "thread " << t << "'s writes out of order";
    for (const auto& op : commit.operations) {
      if (op.type == BatchOperation::Type::put) {
        replayed[op.key] = op.value;
      } else {
        replayed.erase(op.key);
      }
    }
  }
  std::map<std::string, std::string> content;
  for (auto& entry : db.iterator()->all()) content[entry.key] = entry.value;
  EXPECT_EQ(replayed, content);
  auto stats = db.stats();
  EXPECT_EQ(stats.writes, static_cast<uint64_t>(kThreads * kWrites));
  std::printf("group commit: %llu writes in %llu transactions\n", static_cast<unsigned long long>(stats.writes),
              static_cast<unsigned long long>(stats.commits));
}

// A write that fails (another connection holds the write lock) commits
// nothing, so it is neither numbered nor delivered.
TEST(SqliteFeed, AFailedCommitPublishesNothing) {
  TempDir dir;
  SqliteOptions options = bytes_options();
  options.busy_timeout = std::chrono::milliseconds(50);
  SqliteDatabase db(dir.file("db"), options);
  Received received;
  auto watch = db.watch(WatchOptions{}, received.callback());
  db.put("a", "1");
  const uint64_t before = db.change_source()->feed->last_seq();
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(dir.file("db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_THROW(db.put("b", "2"), Error);
  EXPECT_THROW(db.batch({BatchOperation::put("c", "3")}), Error);
  EXPECT_THROW(db.clear(), Error);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_EQ(db.change_source()->feed->last_seq(), before);
  db.put("d", "4");
  ASSERT_EQ(received.commits.size(), 2u);
  EXPECT_EQ(received.commits[1].seq, before + 1);
  EXPECT_EQ(received.commits[1].operations, (std::vector<BatchOperation>{BatchOperation::put("d", "4")}));
}

// Reopening starts a new sequence (the feed is the process's, not the
// file's): a `since` from before is refused, not misread.
TEST(SqliteFeed, ASequenceFromAnotherOpeningIsTooOld) {
  TempDir dir;
  uint64_t since;
  {
    SqliteDatabase db(dir.file("db"), bytes_options());
    auto watch = db.watch(WatchOptions{}, [](std::optional<Error>, const Commit&) {});
    for (int i = 0; i < 10; ++i) db.put(key_of(i), "v");
    since = watch->seq();
  }
  SqliteDatabase db(dir.file("db"), bytes_options());
  db.put("x", "y");
  WatchOptions options;
  options.since = since;
  try {
    db.watch(options, [](std::optional<Error>, const Commit&) {});
    FAIL() << "resumed from another opening's sequence";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), codes::watch_too_old);
  }
}

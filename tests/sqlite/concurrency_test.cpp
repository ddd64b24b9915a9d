// SqliteDatabase under many threads: group commit, reads beside writes,
// snapshots taken while writers run, and close() racing with users.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "many_level.hpp"
#include "temp_dir.hpp"

using namespace many_level;

namespace {

std::string key_of(int n) {
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "k%08d", n);
  return buffer;
}

template <typename Condition>
bool eventually(Condition condition) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

TEST(SqliteConcurrency, GroupCommitKeepsEveryPutOfEightThreads) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  constexpr int threads_count = 8;
  constexpr int per_thread = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_count; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) db.put(key_of(t * per_thread + i), std::to_string(t));
    });
  }
  for (auto& thread : threads) thread.join();

  const int total = threads_count * per_thread;
  auto entries = db.iterator()->all();
  ASSERT_EQ(entries.size(), static_cast<size_t>(total));
  for (int n = 0; n < total; ++n) {
    ASSERT_EQ(entries[n].key, key_of(n));
    ASSERT_EQ(entries[n].value, std::to_string(n / per_thread));
  }
  auto stats = db.stats();
  EXPECT_EQ(stats.writes, static_cast<uint64_t>(total));
  EXPECT_LT(stats.commits, stats.writes) << "no two puts ever shared a commit";
}

// One group that holds a failing batch between good writes: the batch alone
// is undone (its savepoint), the others commit. The group is made certain by
// holding the write lock elsewhere while the writers queue up.
TEST(SqliteConcurrency, AFailingBatchInAGroupFailsAlone) {
  TempDir dir;
  const std::string path = dir.file("db");
  SqliteDatabase db(path);
  db.put("x", "1");
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other,
                         "CREATE TRIGGER refuse BEFORE INSERT ON kv WHEN NEW.key = CAST('bad' AS BLOB) "
                         "BEGIN SELECT RAISE(ABORT, 'refused'); END;"
                         "BEGIN IMMEDIATE",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);

  std::thread leader([&] { db.put("first", "1"); });  // waits for the lock in BEGIN IMMEDIATE
  ASSERT_TRUE(eventually([&] { return db.stats().committing_writes == 1; }));
  std::atomic<bool> batch_failed{false};
  std::thread bad([&] {
    try {
      db.batch({BatchOperation::put("a", "1"), BatchOperation::del("x"), BatchOperation::put("bad", "1")});
    } catch (const Error&) {
      batch_failed = true;
    }
  });
  ASSERT_TRUE(eventually([&] { return db.stats().queued_writes == 1; }));
  std::thread good([&] { db.put("b", "2"); });
  ASSERT_TRUE(eventually([&] { return db.stats().queued_writes == 2; }));
  auto commits_before = db.stats().commits;
  ASSERT_EQ(sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  leader.join();
  bad.join();
  good.join();
  sqlite3_close(other);

  EXPECT_TRUE(batch_failed);
  EXPECT_EQ(db.keys().all(), (std::vector<std::string>{"b", "first", "x"}));
  EXPECT_EQ(db.stats().commits - commits_before, 2u);  // {first}, then {bad batch, b}
}

TEST(SqliteConcurrency, ReadersSeeEveryAcknowledgedWrite) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  constexpr int total = 3000;
  std::atomic<int> acknowledged{0};
  std::atomic<int> missing{0};
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int n = 0; n < total; ++n) {
      db.put(key_of(n), "v");
      acknowledged = n + 1;
    }
    done = true;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      int reads = 0;
      while (!done || reads < 100) {
        int known = acknowledged.load();
        if (known == 0) continue;
        int n = (known * 7919 + reads * 31 + r) % known;
        if (r == 0) {
          if (!db.has(key_of(n))) ++missing;
        } else if (r == 1) {
          if (!db.try_get(key_of(n))) ++missing;
        } else {
          auto values = db.get_many({key_of(n), key_of(known - 1)});
          if (!values[0] || !values[1]) ++missing;
        }
        ++reads;
      }
    });
  }
  writer.join();
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(missing.load(), 0);
}

// Writers keep ten keys equal (each batch sets all ten) and append to a log;
// every iterator, however slowly read, sees one consistent moment: ten equal
// values, and a log that is a prefix no shorter than what was acknowledged
// before the iterator was created and no longer than what was submitted by
// the time it was.
TEST(SqliteConcurrency, IteratorsSeeOneMomentWhileWritersRun) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  std::atomic<int> logged{0};     // puts returned
  std::atomic<int> submitted{0};  // puts begun
  std::atomic<bool> stop{false};
  auto version_batch = [](int version) {
    std::vector<BatchOperation> batch;
    for (int k = 0; k < 10; ++k) batch.push_back(BatchOperation::put("same" + std::to_string(k), std::to_string(version)));
    return batch;
  };
  db.batch(version_batch(0));
  std::thread same_writer([&] {
    for (int version = 1; !stop; ++version) db.batch(version_batch(version));
  });
  std::thread log_writer([&] {
    for (int n = 0; !stop; ++n) {
      submitted = n + 1;
      db.put("log" + key_of(n), "");
      logged = n + 1;
    }
  });

  for (int round = 0; round < 30; ++round) {
    int before = logged.load();
    IteratorOptions same;
    same.gte = "same";
    same.lt = "samf";
    auto same_it = db.iterator(same);
    IteratorOptions log;
    log.gte = "log";
    log.lt = "loh";
    log.values = false;
    auto log_it = db.iterator(log);
    int after = submitted.load();
    // Read one entry at a time while the writers go on.
    std::vector<Entry> same_entries;
    while (auto entry = same_it->next()) {
      same_entries.push_back(*entry);
      std::this_thread::yield();
    }
    ASSERT_EQ(same_entries.size(), 10u);
    for (const auto& entry : same_entries) ASSERT_EQ(entry.value, same_entries[0].value) << "round " << round;
    int count = 0;
    while (auto entry = log_it->next()) {
      ASSERT_EQ(entry->key, "log" + key_of(count));
      ++count;
    }
    EXPECT_GE(count, before);
    EXPECT_LE(count, after);
  }
  stop = true;
  same_writer.join();
  log_writer.join();
}

TEST(SqliteConcurrency, CloseWhileThreadsReadWriteAndIterate) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  for (int n = 0; n < 200; ++n) db.put(key_of(n), "v");
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      bool counted = false;
      try {
        for (int n = 0;; ++n) {
          if (t == 0) db.put(key_of(1000 + n), "w");
          if (t == 1) db.get(key_of(n % 200));
          if (t >= 2) {
            auto it = db.iterator();
            while (it->next()) {
            }
          }
          if (!counted) {
            counted = true;
            ++started;
          }
        }
      } catch (const Error& e) {
        // Once closing, calls fail as not open (an iterator closed under us
        // says so too); nothing else may go wrong.
        EXPECT_TRUE(e.is(codes::database_not_open) || e.is(codes::iterator_not_open)) << e.what();
        if (!counted) ++started;
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return started.load() == 4; }));
  db.close();
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(db.stats().read_connections, 0u);
  db.open();
  EXPECT_EQ(db.get(key_of(0)), "v");
}

// SqliteDatabase as a store: what it keeps on disk, in which order, how its
// iterators and clear() agree with MemoryDatabase (the reference semantics),
// and what its statistics and pool report.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <random>
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

std::vector<std::string> keys_of(Database& db, IteratorOptions options = {}) {
  std::vector<std::string> keys;
  for (auto& entry : db.iterator(options)->all()) keys.push_back(entry.key);
  return keys;
}

// The answer of one SQL query over a file, read with SQLite alone.
std::string raw_query(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  std::string answer;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  if (sqlite3_step(statement) == SQLITE_ROW) {
    auto text = sqlite3_column_text(statement, 0);
    if (text) answer = reinterpret_cast<const char*>(text);
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return answer;
}

}  // namespace

TEST(SqliteStore, DeclaresWhatItSupports) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  EXPECT_TRUE(db.supports().permanence);
  EXPECT_TRUE(db.supports().snapshots);
  EXPECT_TRUE(db.supports().create_if_missing);
  EXPECT_TRUE(db.supports().error_if_exists);
  EXPECT_TRUE(db.supports().seek);
  EXPECT_TRUE(db.supports().clear);
}

TEST(SqliteStore, OpensOnlyWhenFirstUsed) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  EXPECT_EQ(db.status(), Status::opening);
  EXPECT_FALSE(std::filesystem::exists(dir.file("db")));
  db.put("a", "1");
  EXPECT_EQ(db.status(), Status::open);
  EXPECT_TRUE(std::filesystem::exists(dir.file("db")));
  EXPECT_EQ(db.get("a"), "1");
}

TEST(SqliteStore, KeepsDataAcrossCloseAndReopen) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  db.put("a", "1");
  db.batch({BatchOperation::put("b", "2"), BatchOperation::put("c", "3"), BatchOperation::del("a")});
  db.close();
  EXPECT_EQ(db.status(), Status::closed);
  db.open();
  EXPECT_FALSE(db.has("a"));
  EXPECT_EQ(db.get("b"), "2");
  EXPECT_EQ(keys_of(db), (std::vector<std::string>{"b", "c"}));
  db.put("d", "4");
  db.close();
  db.open();
  EXPECT_EQ(keys_of(db), (std::vector<std::string>{"b", "c", "d"}));
}

TEST(SqliteStore, KeepsDataAcrossSeparateObjects) {
  TempDir dir;
  {
    SqliteDatabase db(dir.file("db"));
    for (int i = 0; i < 100; ++i) db.put("key" + std::to_string(1000 + i), std::to_string(i));
  }
  SqliteDatabase again(dir.file("db"));
  auto entries = again.iterator()->all();
  ASSERT_EQ(entries.size(), 100u);
  EXPECT_EQ(entries.front(), (Entry{"key1000", "0"}));
  EXPECT_EQ(entries.back(), (Entry{"key1099", "99"}));
}

TEST(SqliteStore, StoresAKvTableOfBlobsInWalMode) {
  TempDir dir;
  {
    SqliteDatabase db(dir.file("db"));
    db.put("", "");
    db.put("k", "v");
  }
  const std::string path = dir.file("db");
  EXPECT_EQ(raw_query(path, "PRAGMA journal_mode"), "wal");
  EXPECT_NE(raw_query(path, "SELECT sql FROM sqlite_schema WHERE name = 'kv'").find("WITHOUT ROWID"),
            std::string::npos);
  // Empty keys and values are zero-length BLOBs, never NULL or TEXT.
  EXPECT_EQ(raw_query(path, "SELECT group_concat(typeof(key) || '/' || typeof(value)) FROM kv"), "blob/blob,blob/blob");
}

TEST(SqliteStore, EmptyValuesArePresent) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  db.put("empty", "");
  EXPECT_TRUE(db.has("empty"));
  EXPECT_EQ(db.try_get("empty"), std::optional<std::string>(""));
  EXPECT_EQ(db.try_get("missing"), std::nullopt);
  EXPECT_THROW(db.get("missing"), Error);
}

TEST(SqliteStore, OrdersKeysAsBytesLikeLevelDb) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"), bytes_options());
  std::vector<std::string> keys = {std::string(),
                                   std::string(1, '\0'),
                                   std::string(2, '\0'),
                                   std::string("\x00\xff", 2),
                                   "\x01",
                                   "\x7f",
                                   "\x80",
                                   "\xfe\xff",
                                   "\xff",
                                   std::string("\xff\x00", 2),
                                   "\xff\xff",
                                   "\xff\xff\xff",
                                   "a",
                                   std::string("a\x00", 2),
                                   "ab"};
  std::vector<std::string> shuffled = keys;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
  for (const auto& key : shuffled) db.put(key, "v" + key);
  std::sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
    return compare_keys(a, b) < 0;
  });
  EXPECT_EQ(keys_of(db), keys);
  IteratorOptions reverse;
  reverse.reverse = true;
  std::vector<std::string> backwards(keys.rbegin(), keys.rend());
  EXPECT_EQ(keys_of(db, reverse), backwards);

  // Bounds next to the 0x00 and 0xff edges.
  IteratorOptions range;
  range.gt = std::string(1, '\0');
  range.lt = "\xff";
  auto inside = keys_of(db, range);
  ASSERT_FALSE(inside.empty());
  EXPECT_EQ(inside.front(), std::string(2, '\0'));
  EXPECT_EQ(inside.back(), "\xfe\xff");
  range.lte = "\xff";
  EXPECT_EQ(keys_of(db, range).back(), "\xff");
}

TEST(SqliteStore, IteratorsYieldOnlyTheHalfAskedFor) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  db.batch({BatchOperation::put("a", "1"), BatchOperation::put("b", "2")});
  EXPECT_EQ(db.keys().all(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(db.values().all(), (std::vector<std::string>{"1", "2"}));
  IteratorOptions neither;
  neither.keys = false;
  neither.values = false;
  auto entries = db.iterator(neither)->all();
  EXPECT_EQ(entries, (std::vector<Entry>{{"", ""}, {"", ""}}));
}

TEST(SqliteStore, IteratorSeesTheDataAsOfItsCreation) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  db.batch({BatchOperation::put("a", "old"), BatchOperation::put("c", "old")});
  auto forward = db.iterator();
  IteratorOptions options;
  options.reverse = true;
  auto backward = db.iterator(options);
  // Writes after creation, before the first next(): invisible to both.
  db.put("b", "new");
  db.put("a", "new");
  db.del("c");
  EXPECT_EQ(forward->all(), (std::vector<Entry>{{"a", "old"}, {"c", "old"}}));
  backward->seek("b");  // a seek stays in the snapshot
  EXPECT_EQ(backward->all(), (std::vector<Entry>{{"a", "old"}}));
  EXPECT_EQ(db.iterator()->all(), (std::vector<Entry>{{"a", "new"}, {"b", "new"}}));
}

TEST(SqliteStore, SeeksWithinTheRangeBothWays) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  for (const char* key : {"a", "b", "c", "d", "e"}) db.put(key, key);
  IteratorOptions range;
  range.gt = "a";
  range.lte = "d";
  auto it = db.iterator(range);
  it->seek("c");
  EXPECT_EQ(it->next()->key, "c");
  EXPECT_EQ(it->next()->key, "d");
  EXPECT_EQ(it->next(), std::nullopt);
  it->seek("b");  // back again, after reaching the end
  EXPECT_EQ(it->next()->key, "b");
  it->seek("bb");  // between keys
  EXPECT_EQ(it->next()->key, "c");
  it->seek("z");  // outside the range: nothing until the next seek
  EXPECT_EQ(it->next(), std::nullopt);
  it->seek("a\x01");
  EXPECT_EQ(it->next()->key, "b");

  range.reverse = true;
  auto back = db.iterator(range);
  back->seek("c");
  EXPECT_EQ(back->next()->key, "c");
  EXPECT_EQ(back->next()->key, "b");
  EXPECT_EQ(back->next(), std::nullopt);  // a is excluded
  back->seek("d");
  EXPECT_EQ(back->next()->key, "d");
  back->seek("cc");
  EXPECT_EQ(back->next()->key, "c");
}

// Random keys (0x00 and 0xff included), random ranges, seeks and clears: the
// SQLite store must answer exactly as the memory store does.
TEST(SqliteStore, AgreesWithTheMemoryStoreOnRandomRanges) {
  TempDir dir;
  SqliteOptions options = bytes_options();
  options.clear_chunk = 7;  // many chunks per clear
  SqliteDatabase sqlite(dir.file("db"), options);
  MemoryDatabase memory(DatabaseOptions{"buffer", "buffer"});
  std::mt19937 random(42);
  const char alphabet[] = {'\0', '\x01', 'a', 'b', '\x7f', '\x80', '\xfe', '\xff'};
  auto random_key = [&] {
    std::string key(random() % 4, '\0');
    for (auto& c : key) c = alphabet[random() % sizeof(alphabet)];
    return key;
  };
  auto random_range = [&](RangeOptions& range) {
    switch (random() % 3) {
      case 0: range.gt = random_key(); break;
      case 1: range.gte = random_key(); break;
      default: break;
    }
    switch (random() % 3) {
      case 0: range.lt = random_key(); break;
      case 1: range.lte = random_key(); break;
      default: break;
    }
    range.reverse = random() % 2 == 0;
    range.limit = random() % 3 == 0 ? static_cast<int64_t>(random() % 20) : -1;
  };

  for (int round = 0; round < 40; ++round) {
    std::vector<BatchOperation> batch;
    for (int i = 0; i < 30; ++i) {
      std::string key = random_key();
      if (random() % 5 == 0) {
        batch.push_back(BatchOperation::del(key));
      } else {
        batch.push_back(BatchOperation::put(key, "v" + std::to_string(random() % 1000)));
      }
    }
    sqlite.batch(batch);
    memory.batch(batch);

    for (int query = 0; query < 10; ++query) {
      IteratorOptions iterate;
      random_range(iterate);
      auto expected = memory.iterator(iterate);
      auto actual = sqlite.iterator(iterate);
      for (int step = 0; step < 6; ++step) {
        if (random() % 3 == 0) {
          std::string target = random_key();
          expected->seek(target);
          actual->seek(target);
        }
        size_t size = 1 + random() % 5;
        ASSERT_EQ(actual->nextv(size), expected->nextv(size)) << "round " << round << " query " << query;
      }
      ASSERT_EQ(actual->all(), expected->all());
    }

    if (round % 4 == 3) {
      ClearOptions clear;
      random_range(clear);
      sqlite.clear(clear);
      memory.clear(clear);
      ASSERT_EQ(sqlite.iterator()->all(), memory.iterator()->all()) << "clear in round " << round;
    }
  }
}

TEST(SqliteStore, ClearsInChunksHonouringLimitAndDirection) {
  TempDir dir;
  SqliteOptions options;
  options.clear_chunk = 3;
  SqliteDatabase db(dir.file("db"), options);
  std::vector<BatchOperation> fill;
  for (int i = 0; i < 20; ++i) fill.push_back(BatchOperation::put("k" + std::to_string(10 + i), "v"));
  db.batch(fill);
  auto before = db.stats();

  ClearOptions last_five;
  last_five.reverse = true;
  last_five.limit = 5;
  db.clear(last_five);
  auto keys = db.keys().all();
  ASSERT_EQ(keys.size(), 15u);
  EXPECT_EQ(keys.back(), "k24");
  // 5 keys in chunks of at most 3: two write requests.
  EXPECT_EQ(db.stats().writes - before.writes, 2u);

  ClearOptions range;
  range.gte = "k12";
  range.lt = "k20";
  db.clear(range);
  EXPECT_EQ(db.keys().all(), (std::vector<std::string>{"k10", "k11", "k20", "k21", "k22", "k23", "k24"}));
  db.clear();
  EXPECT_TRUE(db.keys().all().empty());
}

TEST(SqliteStore, GetManyAndHasManyAnswerInOrder) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  db.batch({BatchOperation::put("a", "1"), BatchOperation::put("c", "3")});
  EXPECT_EQ(db.get_many({"a", "b", "c", "a"}),
            (std::vector<std::optional<std::string>>{"1", std::nullopt, "3", "1"}));
  EXPECT_EQ(db.has_many({"c", "b", "a"}), (std::vector<bool>{true, false, true}));
  EXPECT_TRUE(db.get_many({}).empty());
}

TEST(SqliteStore, KeepsValuesOfSixteenMebibytesAndMore) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"), bytes_options());
  std::string big(16 << 20, '\0');
  std::mt19937 random(3);
  for (auto& c : big) c = static_cast<char>(random());
  std::string bigger(20 << 20, '\xab');
  db.put("big", big);
  db.batch({BatchOperation::put("bigger", bigger)});
  EXPECT_TRUE(db.get("big") == big);
  auto entries = db.iterator()->all();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_TRUE(entries[0].value == big);
  EXPECT_TRUE(entries[1].value == bigger);
  db.close();
  db.open();
  EXPECT_EQ(db.get("bigger").size(), bigger.size());
}

TEST(SqliteStore, AFailingBatchLeavesNothingBehind) {
  TempDir dir;
  const std::string path = dir.file("db");
  SqliteDatabase db(path);
  db.put("x", "1");
  {
    // A trigger that refuses one key makes the batch fail halfway.
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw,
                           "CREATE TRIGGER refuse BEFORE INSERT ON kv WHEN NEW.key = CAST('bad' AS BLOB) "
                           "BEGIN SELECT RAISE(ABORT, 'refused'); END",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
  }
  try {
    db.batch({BatchOperation::put("a", "1"), BatchOperation::del("x"), BatchOperation::put("bad", "1"),
              BatchOperation::put("c", "1")});
    FAIL() << "the batch should fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("refused"), std::string::npos) << e.what();
  }
  EXPECT_EQ(db.keys().all(), (std::vector<std::string>{"x"}));
  db.put("d", "1");  // the write path goes on
  EXPECT_EQ(db.keys().all(), (std::vector<std::string>{"d", "x"}));
}

TEST(SqliteStore, ReportsWritesCommitsAndReadConnections) {
  TempDir dir;
  SqliteOptions options;
  options.read_pool_size = 2;
  SqliteDatabase db(dir.file("db"), options);
  EXPECT_EQ(db.stats().writes, 0u);
  db.put("a", "1");
  db.del("b");
  db.batch({BatchOperation::put("c", "1"), BatchOperation::put("d", "1")});
  EXPECT_EQ(db.stats().writes, 3u);
  EXPECT_EQ(db.stats().commits, 3u);  // one thread: nothing to group with
  EXPECT_EQ(db.stats().queued_writes, 0u);

  std::vector<std::unique_ptr<Iterator>> iterators;
  for (int i = 0; i < 6; ++i) iterators.push_back(db.iterator());
  EXPECT_EQ(db.stats().read_connections, 6u);  // one each, the pool grows
  iterators.clear();
  EXPECT_EQ(db.stats().read_connections, 2u);  // and keeps read_pool_size idle
  db.close();
  EXPECT_EQ(db.stats().read_connections, 0u);
}

TEST(SqliteStore, CloseClosesIteratorsAndReopenWorks) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  db.put("a", "1");
  auto it = db.iterator();
  db.close();
  EXPECT_FALSE(it->is_open());
  EXPECT_THROW(it->next(), Error);
  db.open();
  EXPECT_EQ(db.iterator()->all(), (std::vector<Entry>{{"a", "1"}}));
}

TEST(SqliteStore, AnIteratorMayOutliveItsDatabase) {
  TempDir dir;
  auto db = std::make_unique<SqliteDatabase>(dir.file("db"));
  db->put("a", "1");
  auto it = db->iterator();
  db.reset();
  try {
    it->next();
    FAIL() << "expected LEVEL_ITERATOR_NOT_OPEN";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), codes::iterator_not_open);
  }
}

TEST(SqliteStore, IteratorsOnManyThreadsReadTheirOwnSnapshots) {
  TempDir dir;
  SqliteDatabase db(dir.file("db"));
  std::vector<BatchOperation> fill;
  for (int i = 0; i < 500; ++i) fill.push_back(BatchOperation::put("k" + std::to_string(1000 + i), "v"));
  db.batch(fill);
  std::vector<std::thread> threads;
  std::vector<size_t> counts(4);
  for (size_t t = 0; t < counts.size(); ++t) {
    threads.emplace_back([&, t] {
      auto it = db.iterator();
      size_t count = 0;
      while (it->next()) ++count;
      counts[t] = count;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counts, std::vector<size_t>(4, 500));
}

// Checkpoints run beside the writes (the writer's automatic one is off), so
// the WAL is reused instead of growing; an iterator opened before them still
// reads its snapshot.
TEST(SqliteStore, CheckpointsKeepTheWalSmallAndSnapshotsIntact) {
  TempDir dir;
  SqliteOptions options;
  options.checkpoint_pages = 200;
  SqliteDatabase db(dir.file("db"), options);
  db.put("before", "1");
  auto held = db.iterator();
  const std::string value(1000, 'v');
  for (int i = 0; i < 20; ++i) db.put("k" + std::to_string(100000 + i), value);
  EXPECT_EQ(held->all(), (std::vector<Entry>{{"before", "1"}}));  // all() closes it
  for (int i = 0; i < 1500; ++i) db.put("k" + std::to_string(100000 + i), value + "2");
  EXPECT_GT(db.stats().checkpoints, 0u);
  // Without checkpoints these commits (a few pages each) would leave a WAL
  // of over 20 MiB.
  EXPECT_LT(std::filesystem::file_size(dir.file("db-wal")), 4u << 20);
  EXPECT_EQ(db.get("k100000"), value + "2");
  EXPECT_EQ(db.keys().all().size(), 1501u);
}

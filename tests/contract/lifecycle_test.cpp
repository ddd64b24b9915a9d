// Status transitions, deferred open, operations on a closed database and
// permanence (abstract-level's open, close and deferred-open tests).
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "contract.hpp"

namespace contract {
namespace {

template <typename Factory>
using Lifecycle = Contract<Factory>;
TYPED_TEST_SUITE(Lifecycle, Factories, FactoryName);

TYPED_TEST(Lifecycle, NewDatabaseIsOpeningUntilOpened) {
  Database& db = this->db();
  EXPECT_EQ(db.status(), Status::opening);
  db.open();
  EXPECT_EQ(db.status(), Status::open);
  db.close();
  EXPECT_EQ(db.status(), Status::closed);
}

TYPED_TEST(Lifecycle, OpenAndCloseAreIdempotent) {
  Database& db = this->db();
  db.open();
  db.open();
  EXPECT_EQ(db.status(), Status::open);
  db.close();
  db.close();
  EXPECT_EQ(db.status(), Status::closed);
}

TYPED_TEST(Lifecycle, ClosingANewDatabaseClosesIt) {
  Database& db = this->db();
  db.close();
  EXPECT_EQ(db.status(), Status::closed);
  EXPECT_LEVEL_ERROR(db.put("a", "b"), codes::database_not_open);
  EXPECT_EQ(db.status(), Status::closed);
}

TYPED_TEST(Lifecycle, EveryOperationOnAClosedDatabaseFails) {
  Database& db = this->db();
  db.put("a", "1");
  db.close();
  EXPECT_LEVEL_ERROR(db.get("a"), codes::database_not_open);
  EXPECT_LEVEL_ERROR(db.try_get("a"), codes::database_not_open);
  EXPECT_LEVEL_ERROR(db.get_many({"a"}), codes::database_not_open);
  EXPECT_LEVEL_ERROR(db.has("a"), codes::database_not_open);
  EXPECT_LEVEL_ERROR(db.has_many({"a"}), codes::database_not_open);
  EXPECT_LEVEL_ERROR(db.put("b", "2"), codes::database_not_open);
  EXPECT_LEVEL_ERROR(db.del("a"), codes::database_not_open);
  EXPECT_LEVEL_ERROR(db.batch({BatchOperation::put("c", "3")}), codes::database_not_open);
  EXPECT_LEVEL_ERROR(db.batch(), codes::database_not_open);
  EXPECT_LEVEL_ERROR(db.clear(), codes::database_not_open);
  EXPECT_LEVEL_ERROR(db.iterator(), codes::database_not_open);
  EXPECT_LEVEL_ERROR(db.keys(), codes::database_not_open);
  EXPECT_LEVEL_ERROR(db.values(), codes::database_not_open);
  EXPECT_EQ(db.status(), Status::closed);
}

TYPED_TEST(Lifecycle, ChainedBatchWrittenAfterCloseFailsAndCloses) {
  Database& db = this->db();
  db.open();
  auto batch = db.batch();
  batch.put("a", "1");
  db.close();
  EXPECT_LEVEL_ERROR(batch.write(), codes::database_not_open);
  EXPECT_FALSE(batch.is_open());
  EXPECT_LEVEL_ERROR(batch.put("b", "2"), codes::batch_not_open);
  if (!TypeParam::reopens_after_close) return;
  db.open();
  EXPECT_FALSE(db.has("a"));
}

TYPED_TEST(Lifecycle, ReopensAfterClose) {
  Database& db = this->db();
  db.put("a", "1");
  db.close();
  if (!TypeParam::reopens_after_close) {
    EXPECT_LEVEL_ERROR(db.open(), codes::not_supported);
    EXPECT_EQ(db.status(), Status::closed);
    EXPECT_LEVEL_ERROR(db.get("a"), codes::database_not_open);
    return;
  }
  db.open();
  EXPECT_EQ(db.status(), Status::open);
  db.put("b", "2");
  EXPECT_EQ(db.get("b"), "2");
  // Several cycles, with an iterator left open each time.
  for (int i = 0; i < 3; ++i) {
    auto iterator = db.iterator();
    db.close();
    EXPECT_FALSE(iterator->is_open());
    db.open();
    EXPECT_FALSE(iterator->is_open()) << "reopening revived an iterator of the previous session";
    EXPECT_LEVEL_ERROR(iterator->next(), codes::iterator_not_open);
  }
  EXPECT_EQ(db.get("b"), "2");
}

// A passive open does what a first operation would on a new database, waits
// for nothing on an open one, and never reopens a closed one.
TYPED_TEST(Lifecycle, PassiveOpenNeverReopens) {
  Database& fresh = this->create();
  fresh.open(OpenOptions{true, false, true});
  EXPECT_EQ(fresh.status(), Status::open);

  Database& db = this->db();
  db.open();
  db.open(OpenOptions{true, false, true});
  EXPECT_EQ(db.status(), Status::open);
  db.close();
  EXPECT_LEVEL_ERROR(db.open(OpenOptions{true, false, true}), codes::database_not_open);
  EXPECT_EQ(db.status(), Status::closed);
  if (!TypeParam::reopens_after_close) return;
  db.open();
  db.open(OpenOptions{true, false, true});
  EXPECT_EQ(db.status(), Status::open);
}

// Each kind of operation, as the first call on a new database, opens it.
TYPED_TEST(Lifecycle, AnyFirstOperationOpensTheDatabase) {
  const std::vector<std::pair<const char*, std::function<void(Database&)>>> operations = {
      {"put", [](Database& db) { db.put("k", "v"); }},
      {"get", [](Database& db) { EXPECT_LEVEL_ERROR(db.get("k"), codes::not_found); }},
      {"try_get", [](Database& db) { EXPECT_EQ(db.try_get("k"), std::nullopt); }},
      {"get_many", [](Database& db) { EXPECT_EQ(db.get_many({"k"}).size(), 1u); }},
      {"has", [](Database& db) { EXPECT_FALSE(db.has("k")); }},
      {"has_many", [](Database& db) { EXPECT_EQ(db.has_many({"k"}), std::vector<bool>{false}); }},
      {"del", [](Database& db) { db.del("k"); }},
      {"batch", [](Database& db) { db.batch({BatchOperation::put("k", "v")}); }},
      {"chained batch", [](Database& db) { db.batch().put("k", "v").write(); }},
      {"clear", [](Database& db) { db.clear(); }},
      {"iterator", [](Database& db) { EXPECT_EQ(db.iterator()->next(), std::nullopt); }},
      {"keys", [](Database& db) { EXPECT_EQ(db.keys().all().size(), 0u); }},
      {"values", [](Database& db) { EXPECT_EQ(db.values().all().size(), 0u); }},
  };
  for (const auto& [name, operation] : operations) {
    SCOPED_TRACE(name);
    Database& db = this->create();
    ASSERT_EQ(db.status(), Status::opening);
    operation(db);
    EXPECT_EQ(db.status(), Status::open);
  }
}

TYPED_TEST(Lifecycle, DeferredOperationsKeepTheirData) {
  Database& db = this->db();
  db.batch({BatchOperation::put("a", "1"), BatchOperation::put("b", "2")});
  EXPECT_EQ(db.get("a"), "1");
  EXPECT_EQ(db.get_many({"a", "b"}), (std::vector<std::optional<std::string>>{"1", "2"}));
}

// Threads that race to be first on a new database all succeed: one opens it,
// the others wait for that open rather than failing or opening twice.
TYPED_TEST(Lifecycle, ThreadsRacingTheDeferredOpenAllSucceed) {
  Database& db = this->db();
  constexpr int threads = 8;
  std::mutex mutex;
  std::condition_variable start;
  int waiting = 0;
  std::vector<std::string> failures(threads);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      {
        std::unique_lock<std::mutex> lock(mutex);
        if (++waiting == threads) start.notify_all();
        start.wait(lock, [&] { return waiting == threads; });
      }
      std::string key = "key" + std::to_string(i);
      failures[i] = error_code([&] {
        if (i % 2 == 0) {
          db.put(key, std::to_string(i));
        } else {
          db.batch({BatchOperation::put(key, std::to_string(i))});
        }
        if (db.get(key) != std::to_string(i)) throw std::runtime_error("read back a different value");
      });
    });
  }
  for (auto& thread : pool) thread.join();
  for (int i = 0; i < threads; ++i) EXPECT_EQ(failures[i], "no error") << "thread " << i;
  EXPECT_EQ(db.status(), Status::open);
  EXPECT_EQ(contents(db).size(), static_cast<size_t>(threads));
}

TYPED_TEST(Lifecycle, CloseClosesOpenIterators) {
  Database& db = this->db();
  db.put("a", "1");
  auto iterator = db.iterator();
  auto keys = db.keys();
  auto values = db.values();
  auto started = db.iterator();
  ASSERT_TRUE(started->next().has_value());
  EXPECT_EQ(db.open_iterator_count(), 4u);
  db.close();
  EXPECT_EQ(db.open_iterator_count(), 0u);
  for (Iterator* it : {iterator.get(), started.get()}) {
    EXPECT_FALSE(it->is_open());
    EXPECT_LEVEL_ERROR(it->next(), codes::iterator_not_open);
    EXPECT_LEVEL_ERROR(it->nextv(10), codes::iterator_not_open);
    EXPECT_LEVEL_ERROR(it->all(), codes::iterator_not_open);
    it->seek("a");  // ignored once closed, as in abstract-level
    it->close();
  }
  EXPECT_FALSE(keys.is_open());
  EXPECT_LEVEL_ERROR(keys.next(), codes::iterator_not_open);
  EXPECT_LEVEL_ERROR(values.nextv(1), codes::iterator_not_open);
}

TYPED_TEST(Lifecycle, ClosedIteratorsLeaveTheCount) {
  Database& db = this->db();
  auto a = db.iterator();
  auto b = db.keys();
  EXPECT_EQ(db.open_iterator_count(), 2u);
  a->close();
  EXPECT_EQ(db.open_iterator_count(), 1u);
  EXPECT_EQ(b.all().size(), 0u);  // all() closes
  EXPECT_EQ(db.open_iterator_count(), 0u);
  { auto c = db.values(); }
  EXPECT_EQ(db.open_iterator_count(), 0u) << "a destroyed iterator still counts as open";
}

TYPED_TEST(Lifecycle, DataSurvivesReopeningTheStorage) {
  if (!this->db().supports().permanence) GTEST_SKIP() << "no permanence";
  Database& db = this->db();
  Model model = binary_model();
  fill(db, model);
  db.del("a");
  model.erase("a");
  db.batch().put("late", "write").del("b").write();
  model["late"] = "write";
  model.erase("b");
  db.put("big", std::string(1 << 20, 'x'));
  model["big"] = std::string(1 << 20, 'x');

  Database& again = this->reopen();
  EXPECT_EQ(again.status(), Status::opening);
  EXPECT_EQ(contents(again), entries_of(model));
}

TYPED_TEST(Lifecycle, ClearedDataStaysClearedAfterReopening) {
  if (!this->db().supports().permanence) GTEST_SKIP() << "no permanence";
  Model model = binary_model();
  fill(this->db(), model);
  ClearOptions range;
  range.gte = "a";
  range.lt = "z";
  this->db().clear(range);
  EXPECT_EQ(contents(this->reopen()), entries_of(cleared(model, range)));
}

}  // namespace
}  // namespace contract

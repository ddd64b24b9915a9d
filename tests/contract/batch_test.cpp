// Array and chained batches: order, atomicity and the chained batch's own
// lifecycle (abstract-level's batch and chained-batch tests).
#include "contract.hpp"

namespace contract {
namespace {

template <typename Factory>
using Batches = Contract<Factory>;
TYPED_TEST_SUITE(Batches, Factories, FactoryName);

using Op = BatchOperation;

TYPED_TEST(Batches, AppliesOperationsInOrder) {
  Database& db = this->db();
  db.put("gone", "x");
  db.batch({Op::put("a", "1"), Op::put("b", "2"), Op::del("a"), Op::del("c"), Op::put("c", "3"),
            Op::del("gone"), Op::put("b", "22"), Op::del("never")});
  EXPECT_EQ(contents(db), (std::vector<Entry>{{"b", "22"}, {"c", "3"}}));
}

TYPED_TEST(Batches, EmptyBatchIsFine) {
  Database& db = this->db();
  db.batch(std::vector<Op>{});
  db.batch().write();
  EXPECT_TRUE(contents(db).empty());
  EXPECT_EQ(db.status(), Status::open);
}

TYPED_TEST(Batches, ManyOperations) {
  Database& db = this->db();
  std::vector<Op> operations;
  Model model;
  for (int i = 0; i < 2000; ++i) {
    std::string key = "key" + std::to_string(i % 700);
    if (i % 5 == 4) {
      operations.push_back(Op::del(key));
      model.erase(key);
    } else {
      operations.push_back(Op::put(key, std::to_string(i)));
      model[key] = std::to_string(i);
    }
  }
  db.batch(operations);
  EXPECT_EQ(contents(db), entries_of(model));
}

// A batch that fails on one operation writes none of them.
TYPED_TEST(Batches, ArrayBatchIsAtomic) {
  Database& db = this->db();
  db.put("00", "before");
  EXPECT_LEVEL_ERROR(db.batch({Op::put("01", "61"), Op::put("zz", "62"), Op::put("03", "63")}, WriteOptions{"hex", "hex"}),
                     codes::invalid_key);
  EXPECT_LEVEL_ERROR(db.batch({Op::del("00"), Op::put("a", "{}"), Op::put("b", "{bad")}, WriteOptions{"", "json"}),
                     codes::invalid_value);
  EXPECT_EQ(contents(db), (std::vector<Entry>{{"00", "before"}}));
}

TYPED_TEST(Batches, ChainedBatchBasics) {
  Database& db = this->db();
  db.batch({Op::put("one", "1"), Op::put("two", "2"), Op::put("three", "3")});

  auto batch = db.batch();
  batch.put("1", "one").del("2").put("3", "three");
  EXPECT_EQ(batch.length(), 3u);
  batch.clear();
  EXPECT_EQ(batch.length(), 0u);
  batch.put("one", "I").put("two", "II").del("three").put("foo", "bar");
  EXPECT_EQ(batch.length(), 4u);
  EXPECT_FALSE(db.has("foo")) << "a chained batch wrote before write()";
  batch.write();
  EXPECT_EQ(contents(db), (std::vector<Entry>{{"foo", "bar"}, {"one", "I"}, {"two", "II"}}));
}

TYPED_TEST(Batches, ChainedBatchAppliesInOrder) {
  Database& db = this->db();
  db.put("x", "old");
  db.batch().put("a", "1").del("a").del("b").put("b", "2").del("x").put("x", "new").write();
  EXPECT_EQ(contents(db), (std::vector<Entry>{{"b", "2"}, {"x", "new"}}));
}

TYPED_TEST(Batches, ChainedBatchIsClosedAfterWrite) {
  Database& db = this->db();
  auto batch = db.batch();
  batch.put("foo", "bar");
  EXPECT_TRUE(batch.is_open());
  batch.write();
  EXPECT_FALSE(batch.is_open());
  EXPECT_LEVEL_ERROR(batch.put("boom", "bang"), codes::batch_not_open);
  EXPECT_LEVEL_ERROR(batch.del("foo"), codes::batch_not_open);
  EXPECT_LEVEL_ERROR(batch.clear(), codes::batch_not_open);
  EXPECT_LEVEL_ERROR(batch.write(), codes::batch_not_open);
  batch.close();
  EXPECT_EQ(contents(db), (std::vector<Entry>{{"foo", "bar"}}));
}

TYPED_TEST(Batches, ClosedChainedBatchWritesNothing) {
  Database& db = this->db();
  auto batch = db.batch();
  batch.put("a", "1");
  batch.close();
  batch.close();  // idempotent
  EXPECT_FALSE(batch.is_open());
  EXPECT_LEVEL_ERROR(batch.put("b", "2"), codes::batch_not_open);
  EXPECT_LEVEL_ERROR(batch.write(), codes::batch_not_open);
  { db.batch().put("c", "3"); }  // dropped without write()
  EXPECT_TRUE(contents(db).empty());
}

TYPED_TEST(Batches, ChainedBatchRejectsBadOperationsWhereTheyAreAdded) {
  Database& db = this->db();
  auto batch = db.batch();
  batch.put("ok", "1");
  EXPECT_LEVEL_ERROR(batch.put("xyz", "00", WriteOptions{"hex", "hex"}), codes::invalid_key);
  EXPECT_LEVEL_ERROR(batch.put("00", "xyz", WriteOptions{"hex", "hex"}), codes::invalid_value);
  EXPECT_LEVEL_ERROR(batch.del("{", WriteOptions{"json", ""}), codes::invalid_key);
  EXPECT_EQ(batch.length(), 1u) << "a rejected operation was counted";
  EXPECT_TRUE(batch.is_open());
  batch.write();
  EXPECT_EQ(contents(db), (std::vector<Entry>{{"ok", "1"}}));
}

// abstract-level's "chained batch with per-operation encoding options".
TYPED_TEST(Batches, ChainedBatchPerOperationEncodings) {
  Database& db = this->db();
  db.batch()
      .put("a", "\"a\"", WriteOptions{"", "json"})
      .put("b", "b")
      .put("\"c\"", "c")
      .del("\"c\"", WriteOptions{"json", ""})
      .put("6869", "6f6b", WriteOptions{"hex", "hex"})
      .write();
  EXPECT_EQ(contents(db), (std::vector<Entry>{{"a", "\"a\""}, {"b", "b"}, {"hi", "ok"}}));
}

TYPED_TEST(Batches, ArrayBatchEncodings) {
  Database& db = this->db();
  db.batch({Op::put("6869", "6f6b"), Op::put("00ff", ""), Op::del("6869")}, WriteOptions{"hex", "hex"});
  EXPECT_EQ(contents(db), (std::vector<Entry>{{std::string("\0\xff", 2), ""}}));
}

}  // namespace
}  // namespace contract

// Iterators see the data as of their creation when supports().snapshots,
// whatever is written, deleted or cleared afterwards (abstract-level's
// iterator-snapshot and iterator-no-snapshot tests).
#include <functional>

#include "contract.hpp"

namespace contract {
namespace {

template <typename Factory>
using Snapshots = Contract<Factory>;
TYPED_TEST_SUITE(Snapshots, Factories, FactoryName);

#define SKIP_WITHOUT_SNAPSHOTS() \
  if (!this->db().supports().snapshots) GTEST_SKIP() << "no snapshots"

// Writes "z", creates an iterator, lets `change` modify the database, then
// expects the iterator to yield exactly the snapshot.
void expect_snapshot_survives(Database& db, const std::function<void(Database&)>& change) {
  db.put("z", "from snapshot");
  auto iterator = db.iterator();
  change(db);
  EXPECT_EQ(iterator->next(), (Entry{"z", "from snapshot"}));
  EXPECT_EQ(iterator->next(), std::nullopt);
}

TYPED_TEST(Snapshots, DeleteAfterSnapshotting) {
  SKIP_WITHOUT_SNAPSHOTS();
  expect_snapshot_survives(this->db(), [](Database& db) { db.del("z"); });
}

TYPED_TEST(Snapshots, OverwriteAfterSnapshotting) {
  SKIP_WITHOUT_SNAPSHOTS();
  expect_snapshot_survives(this->db(), [](Database& db) { db.put("z", "not from snapshot"); });
}

TYPED_TEST(Snapshots, AddKeyThatSortsFirstAfterSnapshotting) {
  SKIP_WITHOUT_SNAPSHOTS();
  expect_snapshot_survives(this->db(), [](Database& db) { db.put("a", "not from snapshot"); });
}

TYPED_TEST(Snapshots, BatchesAfterSnapshotting) {
  SKIP_WITHOUT_SNAPSHOTS();
  expect_snapshot_survives(this->db(), [](Database& db) {
    db.batch({BatchOperation::del("z"), BatchOperation::put("a", "new"), BatchOperation::put("zz", "new")});
  });
}

TYPED_TEST(Snapshots, ChainedBatchAfterSnapshotting) {
  SKIP_WITHOUT_SNAPSHOTS();
  expect_snapshot_survives(this->db(), [](Database& db) { db.batch().put("y", "new").del("z").write(); });
}

TYPED_TEST(Snapshots, ClearAfterSnapshotting) {
  SKIP_WITHOUT_SNAPSHOTS();
  expect_snapshot_survives(this->db(), [](Database& db) { db.clear(); });
  ClearOptions range;
  range.gte = "y";
  expect_snapshot_survives(this->create(), [&](Database& db) { db.clear(range); });
}

TYPED_TEST(Snapshots, DeleteAfterSnapshottingWithMoreEntries) {
  SKIP_WITHOUT_SNAPSHOTS();
  Database& db = this->db();
  db.put("a", "A");
  db.put("b", "B");
  db.put("c", "C");
  auto iterator = db.iterator(range_options({}, "a", {}, {}));
  EXPECT_EQ(iterator->next(), (Entry{"a", "A"}));
  db.del("b");
  EXPECT_EQ(iterator->next(), (Entry{"b", "B"}));
  EXPECT_EQ(iterator->next(), (Entry{"c", "C"}));
  EXPECT_EQ(iterator->next(), std::nullopt);
}

// The whole data set replaced under an iterator in every mode and direction.
TYPED_TEST(Snapshots, EveryKindOfIteratorKeepsItsSnapshot) {
  SKIP_WITHOUT_SNAPSHOTS();
  Database& db = this->db();
  const Model before = binary_model();
  fill(db, before);
  IteratorOptions reverse;
  reverse.reverse = true;
  auto forward = db.iterator();
  auto backward = db.iterator(reverse);
  auto keys = db.keys();
  auto values = db.values(reverse);
  auto started = db.iterator();
  ASSERT_EQ(started->next(), entries_of(before).front());

  db.clear();
  Model after;
  for (const auto& [key, value] : before) after[key + "'"] = "after";
  fill(db, after);

  auto all_before = entries_of(before);
  EXPECT_EQ(forward->all(), all_before);
  EXPECT_EQ(drain_by_nextv(*backward, 7), expected_entries(before, reverse));
  EXPECT_EQ(keys.all(), keys_of(all_before));
  EXPECT_EQ(values.all(), values_of(expected_entries(before, reverse)));
  EXPECT_EQ(started->all(), std::vector<Entry>(all_before.begin() + 1, all_before.end()));
  EXPECT_EQ(contents(db), entries_of(after));
}

// Each iterator has the snapshot of its own creation.
TYPED_TEST(Snapshots, IteratorsCreatedAtDifferentTimes) {
  SKIP_WITHOUT_SNAPSHOTS();
  Database& db = this->db();
  std::vector<std::unique_ptr<Iterator>> iterators;
  for (int i = 0; i < 5; ++i) {
    iterators.push_back(db.iterator());
    db.put("k" + std::to_string(i), std::to_string(i));
  }
  for (size_t i = 0; i < iterators.size(); ++i) EXPECT_EQ(iterators[i]->all().size(), i) << "iterator " << i;
}

// An iterator made before the first operation opens the database has the
// snapshot of the moment it was made: empty.
TYPED_TEST(Snapshots, IteratorOnADeferredDatabase) {
  SKIP_WITHOUT_SNAPSHOTS();
  Database& db = this->db();
  ASSERT_EQ(db.status(), Status::opening);
  auto iterator = db.iterator();
  db.put("a", "1");
  EXPECT_EQ(iterator->next(), std::nullopt);
  EXPECT_EQ(db.iterator()->next(), (Entry{"a", "1"}));
}

// Without snapshots, an iterator may or may not see a later delete; either
// way it must not yield anything else.
TYPED_TEST(Snapshots, WithoutSnapshotsDeletesMayShow) {
  if (this->db().supports().snapshots) GTEST_SKIP() << "has snapshots (covered above)";
  for (bool batch : {false, true}) {
    Database& db = this->create();
    db.batch({BatchOperation::put("a", "a"), BatchOperation::put("b", "b"), BatchOperation::put("c", "c")});
    auto iterator = db.iterator();
    if (batch) {
      db.batch({BatchOperation::del("b")});
    } else {
      db.del("b");
    }
    auto keys = keys_of(iterator->all());
    if (keys.size() == 3) {
      EXPECT_EQ(keys, (std::vector<std::string>{"a", "b", "c"}));
    } else {
      EXPECT_EQ(keys, (std::vector<std::string>{"a", "c"}));
    }
  }
}

}  // namespace
}  // namespace contract

// Explicit snapshots (abstract-level 2/3's db.snapshot()): every read that
// names one sees the database as it was when it was made, whatever is written
// afterwards; a closed one refuses reads, while iterators made from it go on;
// the database's close() closes it; a sublevel reads with its root's.
#include <atomic>

#include "contract.hpp"

namespace contract {
namespace {

template <typename Factory>
using ExplicitSnapshots = Contract<Factory>;
TYPED_TEST_SUITE(ExplicitSnapshots, Factories, FactoryName);

#define SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db) \
  if (!(db).supports().explicit_snapshots) GTEST_SKIP() << "no explicit snapshots"

using Values = std::vector<std::optional<std::string>>;
using Found = std::vector<bool>;

ReadOptions at(const std::shared_ptr<Snapshot>& snapshot) {
  ReadOptions options;
  options.snapshot = snapshot;
  return options;
}

IteratorOptions iterate_at(const std::shared_ptr<Snapshot>& snapshot, IteratorOptions options = {}) {
  options.snapshot = snapshot;
  return options;
}

// "a" and "b" before the snapshot; then "a" changed, "b" deleted, "c" added.
std::shared_ptr<Snapshot> snapshot_then_change(Database& db) {
  db.put("a", "1");
  db.put("b", "2");
  auto snapshot = db.snapshot();
  db.put("a", "changed");
  db.del("b");
  db.put("c", "new");
  return snapshot;
}

TYPED_TEST(ExplicitSnapshots, WithoutSupportSnapshotIsRefused) {
  Database& db = this->db();
  if (db.supports().explicit_snapshots) GTEST_SKIP() << "has explicit snapshots (covered below)";
  EXPECT_LEVEL_ERROR(db.snapshot(), codes::not_supported);
}

TYPED_TEST(ExplicitSnapshots, EveryReadAtTheSnapshotIgnoresLaterWrites) {
  Database& db = this->db();
  SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db);
  auto snapshot = snapshot_then_change(db);
  ASSERT_TRUE(snapshot->is_open());
  EXPECT_EQ(db.get("a", at(snapshot)), "1");
  EXPECT_EQ(db.try_get("b", at(snapshot)), "2");
  EXPECT_EQ(db.try_get("c", at(snapshot)), std::nullopt);
  EXPECT_LEVEL_ERROR(db.get("c", at(snapshot)), codes::not_found);
  EXPECT_EQ(db.get_many({"a", "b", "c"}, at(snapshot)), (Values{"1", "2", std::nullopt}));
  EXPECT_TRUE(db.has("b", at(snapshot)));
  EXPECT_FALSE(db.has("c", at(snapshot)));
  EXPECT_EQ(db.has_many({"c", "b", "a", "zz"}, at(snapshot)), (Found{false, true, true, false}));
  EXPECT_EQ(db.iterator(iterate_at(snapshot))->all(), (std::vector<Entry>{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(db.keys(iterate_at(snapshot)).all(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(db.values(iterate_at(snapshot)).all(), (std::vector<std::string>{"1", "2"}));
  // Without it, reads see the database as it is.
  EXPECT_EQ(db.get_many({"a", "b", "c"}), (Values{"changed", std::nullopt, "new"}));
  EXPECT_EQ(db.iterator()->all(), (std::vector<Entry>{{"a", "changed"}, {"c", "new"}}));
  snapshot->close();
}

TYPED_TEST(ExplicitSnapshots, EmptyReadsAtASnapshot) {
  Database& db = this->db();
  SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db);
  auto snapshot = db.snapshot();
  db.put("a", "1");
  EXPECT_EQ(db.get_many({}, at(snapshot)), Values{});
  EXPECT_EQ(db.has_many({}, at(snapshot)), Found{});
  EXPECT_EQ(db.iterator(iterate_at(snapshot))->all(), std::vector<Entry>{});
  snapshot->close();
}

TYPED_TEST(ExplicitSnapshots, ClearAndBatchesAfterTheSnapshotAreNotSeen) {
  Database& db = this->db();
  SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db);
  const Model model = binary_model();
  fill(db, model);
  auto snapshot = db.snapshot();
  db.clear();
  db.batch({BatchOperation::put("a", "new"), BatchOperation::put("new", "new")});
  db.batch().put("z", "new").del("a").write();
  IteratorOptions raw = iterate_at(snapshot);
  raw.key_encoding = "buffer";
  raw.value_encoding = "buffer";
  EXPECT_EQ(db.iterator(raw)->all(), entries_of(model));
  std::vector<std::string> keys;
  for (const auto& [key, value] : model) keys.push_back(key);
  keys.push_back("new");
  ReadOptions read = at(snapshot);
  read.key_encoding = "buffer";
  read.value_encoding = "buffer";
  Values expected;
  for (const auto& [key, value] : model) expected.push_back(value);
  expected.push_back(std::nullopt);
  EXPECT_EQ(db.get_many(keys, read), expected);
  snapshot->close();
}

// Ranges, limits, direction and seeks of iterators at a snapshot, against the
// model of what the snapshot holds, after the database was rewritten.
TYPED_TEST(ExplicitSnapshots, IteratorsAtTheSnapshotHonourRangesAndSeek) {
  Database& db = this->db();
  SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db);
  const Model model = binary_model();
  fill(db, model);
  auto snapshot = db.snapshot();
  db.clear();
  Model later;
  for (const auto& [key, value] : model) later[key] = "later";
  later["extra"] = "later";
  fill(db, later);
  for (bool reverse : {false, true}) {
    for (int64_t limit : {-1, 0, 3}) {
      for (const auto& range : {range_options({}, {}, {}, {}), range_options("a", {}, {}, "b"),
                                range_options({}, std::string("\0", 1), "\xff", {}), range_options("~", {}, {}, {})}) {
        IteratorOptions options = iterate_at(snapshot, range);
        options.limit = limit;
        options.reverse = reverse;
        options.key_encoding = "buffer";
        options.value_encoding = "buffer";
        EXPECT_EQ(db.iterator(options)->all(), expected_entries(model, options)) << describe(options);
        auto iterator = db.iterator(options);
        iterator->seek("a", SeekOptions{"buffer"});
        EXPECT_EQ(drain_by_next(*iterator), expected_after_seek(model, options, "a", 0)) << describe(options);
      }
    }
  }
  snapshot->close();
}

TYPED_TEST(ExplicitSnapshots, EachSnapshotKeepsItsOwnMoment) {
  Database& db = this->db();
  SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db);
  std::vector<std::shared_ptr<Snapshot>> snapshots;
  for (int i = 0; i < 5; ++i) {
    db.put("k", std::to_string(i));
    db.put("n" + std::to_string(i), "x");
    snapshots.push_back(db.snapshot());
  }
  db.clear();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(db.get("k", at(snapshots[i])), std::to_string(i));
    EXPECT_EQ(db.keys(iterate_at(snapshots[i])).all().size(), static_cast<size_t>(i + 2));
  }
  // Closing one leaves the others readable.
  snapshots[2]->close();
  EXPECT_EQ(db.get("k", at(snapshots[3])), "3");
  EXPECT_LEVEL_ERROR(db.get("k", at(snapshots[2])), codes::snapshot_not_open);
  for (auto& snapshot : snapshots) snapshot->close();
}

TYPED_TEST(ExplicitSnapshots, AClosedSnapshotRefusesEveryRead) {
  Database& db = this->db();
  SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db);
  auto snapshot = snapshot_then_change(db);
  snapshot->close();
  EXPECT_FALSE(snapshot->is_open());
  snapshot->close();  // idempotent
  EXPECT_LEVEL_ERROR(db.get("a", at(snapshot)), codes::snapshot_not_open);
  EXPECT_LEVEL_ERROR(db.try_get("a", at(snapshot)), codes::snapshot_not_open);
  EXPECT_LEVEL_ERROR(db.get_many({"a"}, at(snapshot)), codes::snapshot_not_open);
  EXPECT_LEVEL_ERROR(db.has("a", at(snapshot)), codes::snapshot_not_open);
  EXPECT_LEVEL_ERROR(db.has_many({"a"}, at(snapshot)), codes::snapshot_not_open);
  // An iterator at a closed snapshot fails when made or at its first read.
  EXPECT_LEVEL_ERROR(db.iterator(iterate_at(snapshot))->next(), codes::snapshot_not_open);
  // The database itself goes on.
  EXPECT_EQ(db.get("a"), "changed");
}

TYPED_TEST(ExplicitSnapshots, AnIteratorMadeBeforeCloseGoesOn) {
  Database& db = this->db();
  SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db);
  for (int i = 0; i < 100; ++i) db.put("k" + std::to_string(1000 + i), "old");
  auto snapshot = db.snapshot();
  db.clear();
  auto iterator = db.iterator(iterate_at(snapshot));
  auto first = iterator->next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->key, "k1000");
  snapshot->close();
  db.put("k1050", "new");
  auto rest = drain_by_next(*iterator);
  ASSERT_EQ(rest.size(), 99u);
  for (const auto& entry : rest) EXPECT_EQ(entry.value, "old");
}

TYPED_TEST(ExplicitSnapshots, IteratorsAtOneSnapshotInterleave) {
  Database& db = this->db();
  SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db);
  for (int i = 0; i < 50; ++i) db.put("k" + std::to_string(100 + i), std::to_string(i));
  auto snapshot = db.snapshot();
  db.clear();
  // Same shape twice (the same SQL for a SQLite store), and a reverse one.
  auto first = db.iterator(iterate_at(snapshot));
  auto second = db.iterator(iterate_at(snapshot));
  IteratorOptions reverse = iterate_at(snapshot);
  reverse.reverse = true;
  auto third = db.iterator(reverse);
  for (int i = 0; i < 50; ++i) {
    auto a = first->next();
    auto b = second->next();
    auto c = third->next();
    ASSERT_TRUE(a && b && c);
    EXPECT_EQ(a->key, "k" + std::to_string(100 + i));
    EXPECT_EQ(b->key, a->key);
    EXPECT_EQ(c->key, "k" + std::to_string(149 - i));
    EXPECT_EQ(db.get(a->key, at(snapshot)), std::to_string(i));  // gets in between
  }
  EXPECT_EQ(first->next(), std::nullopt);
  snapshot->close();
}

TYPED_TEST(ExplicitSnapshots, ClosingTheDatabaseClosesItsSnapshots) {
  Database& db = this->db();
  SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db);
  auto snapshot = snapshot_then_change(db);
  auto iterator = db.iterator(iterate_at(snapshot));
  db.close();
  EXPECT_FALSE(snapshot->is_open());
  EXPECT_LEVEL_ERROR(iterator->next(), codes::iterator_not_open);
  EXPECT_LEVEL_ERROR(db.get("a", at(snapshot)), codes::database_not_open);
}

TYPED_TEST(ExplicitSnapshots, ASublevelReadsWithItsRootsSnapshot) {
  Database& db = this->db();
  SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db);
  auto sub = db.sublevel("s");
  auto other = db.sublevel("t");
  sub->put("k", "old");
  other->put("k", "other old");
  // Made by the root, by a sublevel: either serves all of them.
  auto from_root = db.snapshot();
  auto from_sub = sub->snapshot();
  sub->put("k", "new");
  sub->put("k2", "new");
  other->del("k");
  for (const auto& snapshot : {from_root, from_sub}) {
    EXPECT_EQ(sub->get("k", at(snapshot)), "old");
    EXPECT_EQ(sub->try_get("k2", at(snapshot)), std::nullopt);
    EXPECT_EQ(sub->get_many({"k", "k2"}, at(snapshot)), (Values{"old", std::nullopt}));
    EXPECT_EQ(sub->has_many({"k", "k2"}, at(snapshot)), (Found{true, false}));
    EXPECT_EQ(sub->iterator(iterate_at(snapshot))->all(), (std::vector<Entry>{{"k", "old"}}));
    EXPECT_EQ(other->get("k", at(snapshot)), "other old");
    EXPECT_EQ(db.get("!s!k", at(snapshot)), "old");
  }
  EXPECT_EQ(sub->get("k"), "new");
  // A nested sublevel too.
  auto nested = sub->sublevel("n");
  nested->put("x", "before");
  auto snapshot = nested->snapshot();
  nested->put("x", "after");
  EXPECT_EQ(nested->get("x", at(snapshot)), "before");
  EXPECT_EQ(sub->get("!n!x", at(snapshot)), "before");
  // Closing it through the sublevel closes it for all.
  from_sub->close();
  EXPECT_LEVEL_ERROR(db.get("!s!k", at(from_sub)), codes::snapshot_not_open);
  from_root->close();
  snapshot->close();
}

TYPED_TEST(ExplicitSnapshots, ASnapshotBelongsToItsDatabase) {
  Database& db = this->db();
  SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db);
  // Another root altogether (sublevels of one root share snapshots).
  MemoryDatabase stranger;
  stranger.put("a", "stranger's");
  db.put("a", "mine");
  auto snapshot = stranger.snapshot();
  EXPECT_LEVEL_ERROR(db.get("a", at(snapshot)), codes::invalid_argument);
  EXPECT_LEVEL_ERROR(db.has_many({"a"}, at(snapshot)), codes::invalid_argument);
  EXPECT_LEVEL_ERROR(db.iterator(iterate_at(snapshot))->next(), codes::invalid_argument);
  snapshot->close();
}

TYPED_TEST(ExplicitSnapshots, EncodingsApplyToReadsAtTheSnapshot) {
  Database& db = this->create(DatabaseOptions{"hex", "json"});
  SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db);
  db.put("6b", "{\"n\":1}");
  auto snapshot = db.snapshot();
  db.put("6b", "{\"n\":2}");
  EXPECT_EQ(db.get("6b", at(snapshot)), "{\"n\":1}");
  ReadOptions utf8 = at(snapshot);
  utf8.key_encoding = "utf8";
  utf8.value_encoding = "utf8";
  EXPECT_EQ(db.get("k", utf8), "{\"n\":1}");
  EXPECT_EQ(db.get_many({"6b", "6c"}, at(snapshot)), (Values{"{\"n\":1}", std::nullopt}));
  EXPECT_TRUE(db.has("6b", at(snapshot)));
  IteratorOptions options = iterate_at(snapshot);
  options.gte = "6b";
  EXPECT_EQ(db.iterator(options)->all(), (std::vector<Entry>{{"6b", "{\"n\":1}"}}));
  EXPECT_LEVEL_ERROR(db.get("not hex", at(snapshot)), codes::invalid_key);
  snapshot->close();
}

TYPED_TEST(ExplicitSnapshots, ReadsAtASnapshotFromManyThreads) {
  Database& db = this->db();
  SKIP_WITHOUT_EXPLICIT_SNAPSHOTS(db);
  Model model;
  for (int i = 0; i < 50; ++i) model["k" + std::to_string(100 + i)] = std::to_string(i);
  fill(db, model);
  auto snapshot = db.snapshot();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int round = 0; !stop; ++round) db.put("k" + std::to_string(100 + round % 50), "changed");
  });
  std::vector<std::thread> readers;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        std::string key = "k" + std::to_string(100 + (i * 7 + t) % 50);
        if (db.get(key, at(snapshot)) != model[key]) ++wrong;
        if (i % 10 == 0 && db.iterator(iterate_at(snapshot))->all() != entries_of(model)) ++wrong;
      }
    });
  }
  for (auto& reader : readers) reader.join();
  stop = true;
  writer.join();
  EXPECT_EQ(wrong.load(), 0);
  snapshot->close();
}

}  // namespace
}  // namespace contract

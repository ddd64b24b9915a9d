// Iterator seek: targets inside, between, before and after the range and the
// data, in both directions, combined with limit and continued iteration
// (abstract-level's iterator-seek tests, plus a model-based sweep).
#include "contract.hpp"

namespace contract {
namespace {

template <typename Factory>
using Seek = Contract<Factory>;
TYPED_TEST_SUITE(Seek, Factories, FactoryName);

using Keys = std::vector<std::string>;

class ThreeWords {
 public:
  static void fill(Database& db) {
    db.batch({BatchOperation::put("one", "1"), BatchOperation::put("two", "2"), BatchOperation::put("three", "3")});
  }
};

TYPED_TEST(Seek, ToATarget) {
  Database& db = this->db();
  ThreeWords::fill(db);
  auto iterator = db.iterator();
  iterator->seek("two");
  EXPECT_EQ(iterator->next(), (Entry{"two", "2"}));
  EXPECT_EQ(iterator->next(), std::nullopt);

  auto keys = db.keys();
  keys.seek("two");
  EXPECT_EQ(keys.next(), std::optional<std::string>("two"));
  EXPECT_EQ(keys.next(), std::nullopt);

  auto values = db.values();
  values.seek("two");
  EXPECT_EQ(values.next(), std::optional<std::string>("2"));
  EXPECT_EQ(values.next(), std::nullopt);
}

TYPED_TEST(Seek, TargetIsEncodedWithTheGivenEncoding) {
  Database& db = this->db();
  ThreeWords::fill(db);
  auto iterator = db.iterator();
  iterator->seek("74776f", SeekOptions{"hex"});  // "two"
  EXPECT_EQ(iterator->next(), (Entry{"two", "2"}));
  EXPECT_EQ(iterator->next(), std::nullopt);

  IteratorOptions hex_keys;
  hex_keys.key_encoding = "hex";
  auto keys = db.keys(hex_keys);
  keys.seek("74");  // "t": default to the iterator's own key encoding
  EXPECT_EQ(keys.all(), (std::vector<std::string>{"7468726565", "74776f"}));

  auto bad = db.iterator(hex_keys);
  EXPECT_LEVEL_ERROR(bad->seek("not hex"), codes::invalid_key);
}

TYPED_TEST(Seek, OnAReverseIteratorWithLimit) {
  Database& db = this->db();
  ThreeWords::fill(db);
  IteratorOptions options;
  options.reverse = true;
  options.limit = 1;
  auto iterator = db.iterator(options);
  iterator->seek("three!");  // lands on the key at or before the target
  EXPECT_EQ(iterator->next(), (Entry{"three", "3"}));
  EXPECT_EQ(iterator->next(), std::nullopt);
}

TYPED_TEST(Seek, PastEitherEnd) {
  Database& db = this->db();
  ThreeWords::fill(db);
  auto forward = db.iterator();
  forward->seek("zzz");
  EXPECT_EQ(forward->next(), std::nullopt);

  IteratorOptions reverse;
  reverse.reverse = true;
  auto backward = db.iterator(reverse);
  backward->seek("zzz");
  EXPECT_EQ(drain_by_next(*backward), (std::vector<Entry>{{"two", "2"}, {"three", "3"}, {"one", "1"}}));

  auto before_all = db.iterator();
  before_all->seek("");
  EXPECT_EQ(drain_by_next(*before_all).size(), 3u);

  auto backward_before_all = db.iterator(reverse);
  backward_before_all->seek("a");
  EXPECT_EQ(backward_before_all->next(), std::nullopt);
}

TYPED_TEST(Seek, AfterTheEndYieldsAgain) {
  Database& db = this->db();
  ThreeWords::fill(db);
  auto iterator = db.iterator();
  EXPECT_EQ(drain_by_next(*iterator).size(), 3u);
  EXPECT_EQ(iterator->next(), std::nullopt);
  iterator->seek("three");
  EXPECT_EQ(iterator->next(), (Entry{"three", "3"}));
  EXPECT_EQ(iterator->next(), (Entry{"two", "2"}));
  EXPECT_EQ(iterator->next(), std::nullopt);
  // And backwards over entries already yielded.
  iterator->seek("one");
  EXPECT_EQ(iterator->nextv(10), (std::vector<Entry>{{"one", "1"}, {"three", "3"}, {"two", "2"}}));
}

TYPED_TEST(Seek, ThenContinueInEitherDirection) {
  Database& db = this->db();
  Model model;
  for (char c = 'a'; c <= 'j'; ++c) model[std::string(1, c)] = std::string(1, c - 'a' + 'A');
  fill(db, model);
  auto forward = db.keys();
  EXPECT_EQ(forward.next(), std::optional<std::string>("a"));
  forward.seek("e");
  EXPECT_EQ(forward.nextv(2), (std::vector<std::string>{"e", "f"}));
  forward.seek("b");
  EXPECT_EQ(forward.next(), std::optional<std::string>("b"));
  forward.seek("cc");
  EXPECT_EQ(forward.all(), (std::vector<std::string>{"d", "e", "f", "g", "h", "i", "j"}));

  IteratorOptions reverse;
  reverse.reverse = true;
  auto backward = db.keys(reverse);
  EXPECT_EQ(backward.next(), std::optional<std::string>("j"));
  backward.seek("e");
  EXPECT_EQ(backward.nextv(2), (std::vector<std::string>{"e", "d"}));
  backward.seek("hh");
  EXPECT_EQ(backward.all(), (std::vector<std::string>{"h", "g", "f", "e", "d", "c", "b", "a"}));
}

// A target outside the range ends the iteration; a later seek inside it
// resumes, in either direction.
TYPED_TEST(Seek, OutsideTheRangeEndsUntilTheNextSeek) {
  Database& db = this->db();
  fill(db, Model{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}});
  for (bool reverse : {false, true}) {
    SCOPED_TRACE(reverse ? "reverse" : "forward");
    auto keys = db.keys(range_options({}, "b", {}, "d", -1, reverse));
    keys.seek("a");
    EXPECT_EQ(keys.next(), std::nullopt);
    EXPECT_TRUE(keys.nextv(3).empty());
    keys.seek("c");
    EXPECT_EQ(keys.next(), std::optional<std::string>("c"));
    keys.seek("e");
    EXPECT_EQ(keys.next(), std::nullopt);
    keys.seek("d");
    EXPECT_EQ(keys.all(), reverse ? (Keys{"d", "c", "b"}) : Keys{"d"});
  }
}

// Seeking does not reset the limit: it counts entries yielded, wherever from.
TYPED_TEST(Seek, LimitCountsAcrossSeeks) {
  Database& db = this->db();
  ThreeWords::fill(db);
  IteratorOptions options;
  options.limit = 2;
  auto iterator = db.iterator(options);
  EXPECT_EQ(iterator->next(), (Entry{"one", "1"}));
  iterator->seek("one");
  EXPECT_EQ(iterator->next(), (Entry{"one", "1"}));
  EXPECT_EQ(iterator->next(), std::nullopt);
  iterator->seek("one");
  EXPECT_EQ(iterator->next(), std::nullopt);
  EXPECT_EQ(iterator->count(), 2u);
}

// abstract-level's "seek() respects range", for iterator(), keys() and values().
TYPED_TEST(Seek, RespectsRange) {
  Database& db = this->db();
  for (int i = 0; i < 10; ++i) db.put(std::to_string(i), std::to_string(i));
  using S = std::optional<std::string>;
  const S none;
  struct Case {
    IteratorOptions range;
    std::string target;
    S expected;
  };
  const std::vector<Case> cases = {
      {range_options("5", none, none, none), "4", none},
      {range_options("5", none, none, none), "5", none},
      {range_options("5", none, none, none), "6", "6"},
      {range_options(none, "5", none, none), "4", none},
      {range_options(none, "5", none, none), "5", "5"},
      {range_options(none, "5", none, none), "6", "6"},
      {range_options("7", "5", none, none), "4", none},  // gte wins over gt
      {range_options("7", "5", none, none), "5", "5"},
      {range_options("7", "5", none, none), "6", "6"},
      {range_options("3", "5", none, none), "4", none},
      {range_options("3", "5", none, none), "5", "5"},
      {range_options("3", "5", none, none), "6", "6"},
      {range_options(none, none, "5", none), "4", "4"},
      {range_options(none, none, "5", none), "5", none},
      {range_options(none, none, "5", none), "6", none},
      {range_options(none, none, none, "5"), "4", "4"},
      {range_options(none, none, none, "5"), "5", "5"},
      {range_options(none, none, none, "5"), "6", none},
      {range_options(none, none, "3", "5"), "4", "4"},  // lte wins over lt
      {range_options(none, none, "3", "5"), "5", "5"},
      {range_options(none, none, "3", "5"), "6", none},
      {range_options(none, none, "7", "5"), "4", "4"},
      {range_options(none, none, "7", "5"), "5", "5"},
      {range_options(none, none, "7", "5"), "6", none},
      {range_options(none, none, "5", none, -1, true), "4", "4"},
      {range_options(none, none, "5", none, -1, true), "5", none},
      {range_options(none, none, "5", none, -1, true), "6", none},
      {range_options(none, none, none, "5", -1, true), "4", "4"},
      {range_options(none, none, none, "5", -1, true), "5", "5"},
      {range_options(none, none, none, "5", -1, true), "6", none},
      {range_options("5", none, none, none, -1, true), "4", none},
      {range_options("5", none, none, none, -1, true), "5", none},
      {range_options("5", none, none, none, -1, true), "6", "6"},
      {range_options(none, "5", none, none, -1, true), "4", none},
      {range_options(none, "5", none, none, -1, true), "5", "5"},
      {range_options(none, "5", none, none, -1, true), "6", "6"},
      {range_options("7", none, "8", none), "7", none},
      {range_options(none, "7", "8", none), "7", "7"},
      {range_options(none, "7", "8", none), "8", none},
      {range_options("7", none, none, "8"), "8", "8"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("seek(" + c.target + ") on " + describe(c.range));
    auto iterator = db.iterator(c.range);
    iterator->seek(c.target);
    auto entry = iterator->next();
    EXPECT_EQ(entry ? S(entry->key) : none, c.expected);
      if (entry) {
      EXPECT_EQ(entry->value, entry->key);
    }
    auto keys = db.keys(c.range);
    keys.seek(c.target);
    EXPECT_EQ(keys.next(), c.expected);
    auto values = db.values(c.range);
    values.seek(c.target);
    EXPECT_EQ(values.next(), c.expected);
  }
}

// Seek targets everywhere relative to keys and ranges, over binary keys,
// each followed by the rest of the iteration, against the model.
TYPED_TEST(Seek, EverySeekMatchesTheModel) {
  Database& db = this->db();
  const Model model = binary_model();
  fill(db, model);
  const std::vector<std::string> targets = {
      "", std::string("\0", 1), "!", "a", std::string("a\0", 2), "a\x01", "b", "\x80", "\xff", "\xff\xff\xff\xff"};
  using S = std::optional<std::string>;
  const std::vector<IteratorOptions> ranges = {
      range_options({}, {}, {}, {}),
      range_options("!", {}, {}, "b"),
      range_options({}, "a", "\x80", {}),
      range_options({}, std::string("\0", 1), {}, std::string("a\0", 2)),
      range_options("a", {}, "\xff", {}, 4),
      range_options({}, {}, S(""), {}),
  };
  for (auto range : ranges) {
    for (bool reverse : {false, true}) {
      range.reverse = reverse;
      for (const auto& target : targets) {
        for (size_t consumed : {0, 2}) {
          SCOPED_TRACE("seek(" + ::testing::PrintToString(target) + ") after " + std::to_string(consumed) +
                       " entries on " + describe(range));
          auto iterator = db.iterator(range);
          auto before = consumed > 0 ? iterator->nextv(consumed) : std::vector<Entry>{};
          iterator->seek(target);
          EXPECT_EQ(drain_by_nextv(*iterator, 4), expected_after_seek(model, range, target, before.size()));
        }
      }
    }
  }
}

TYPED_TEST(Seek, ItsOwnSnapshot) {
  if (!this->db().supports().snapshots) GTEST_SKIP() << "no snapshots";
  for (bool reverse : {false, true}) {
    for (bool deferred : {false, true}) {
      SCOPED_TRACE(std::string(reverse ? "reverse" : "forward") + (deferred ? ", deferred" : ""));
      Database& db = this->create();
      if (!deferred) db.open();
      IteratorOptions options;
      options.reverse = reverse;
      auto iterator = db.iterator(options);
      db.put("a", "a");
      // Seeking must not take a new snapshot, which would include the new entry.
      iterator->seek("a");
      EXPECT_EQ(iterator->next(), std::nullopt);
    }
  }
}

}  // namespace
}  // namespace contract

// Iterators, keys() and values(): ranges against the reference model, limit,
// reverse, next/nextv/all and the iterator's own lifecycle (abstract-level's
// iterator and iterator-range tests).
#include "contract.hpp"

namespace contract {
namespace {

template <typename Factory>
using Iterators = Contract<Factory>;
TYPED_TEST_SUITE(Iterators, Factories, FactoryName);

// Reads an iterator over `range` in one of several ways (chosen by `how`)
// and checks it against the model. Covering each way for every range would
// multiply the run time without finding more.
void expect_range(Database& db, const Model& model, IteratorOptions range, int how) {
  SCOPED_TRACE(describe(range) + " read #" + std::to_string(how % 6));
  auto expected = expected_entries(model, range);
  switch (how % 6) {
    case 0: EXPECT_EQ(db.iterator(range)->all(), expected); break;
    case 1: {
      auto iterator = db.iterator(range);
      EXPECT_EQ(drain_by_next(*iterator), expected);
      break;
    }
    case 2: {
      auto iterator = db.iterator(range);
      EXPECT_EQ(drain_by_nextv(*iterator, 3), expected);
      break;
    }
    case 3: EXPECT_EQ(db.keys(range).all(), keys_of(expected)); break;
    case 4: EXPECT_EQ(db.values(range).all(), values_of(expected)); break;
    case 5: {
      // Half by next(), the rest by all().
      auto iterator = db.iterator(range);
      std::vector<Entry> got;
      for (size_t i = 0; i < expected.size() / 2; ++i) got.push_back(iterator->next().value_or(Entry{"<end>", ""}));
      for (auto& entry : iterator->all()) got.push_back(std::move(entry));
      EXPECT_EQ(got, expected);
      break;
    }
  }
}

// Every combination of absent / exclusive / inclusive bounds over keys that
// exist, fall between keys, and lie before and after all of them, with and
// without limit, in both directions.
TYPED_TEST(Iterators, EveryRangeMatchesTheModel) {
  Database& db = this->db();
  const Model model = binary_model();
  fill(db, model);
  const std::vector<std::string> bounds = {
      "", std::string("\0", 1), "!", "a", std::string("a\x01", 2), "b", "\x80", "\xff", "\xff\xff\xff\xff"};
  std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>> lowers = {{}};
  std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>> uppers = {{}};
  for (const auto& bound : bounds) {
    lowers.push_back({bound, std::nullopt});  // gt
    lowers.push_back({std::nullopt, bound});  // gte
    uppers.push_back({bound, std::nullopt});  // lt
    uppers.push_back({std::nullopt, bound});  // lte
  }
  int how = 0;
  for (const auto& [gt, gte] : lowers) {
    for (const auto& [lt, lte] : uppers) {
      for (int64_t limit : {-1, 3}) {
        for (bool reverse : {false, true}) {
          expect_range(db, model, range_options(gt, gte, lt, lte, limit, reverse), how++);
        }
      }
    }
  }
}

// abstract-level's iterator-range test: its data set (keys 00..99) and its
// list of ranges, each also flipped.
TYPED_TEST(Iterators, AbstractLevelRanges) {
  Database& db = this->db();
  Model model;
  for (int i = 0; i < 100; ++i) model[(i < 10 ? "0" : "") + std::to_string(i)] = "value" + std::to_string(i);
  fill(db, model);
  using S = std::optional<std::string>;
  const S none;
  const std::vector<IteratorOptions> ranges = {
      range_options(none, none, none, none),
      range_options(none, "00", none, none),
      range_options(none, "50", none, none),
      range_options(none, none, none, "50", -1, true),
      range_options(none, "49.5", none, none),
      range_options(none, "49999", none, none),
      range_options(none, none, none, "49.5", -1, true),
      range_options(none, none, "49.5", none, -1, true),
      range_options(none, none, "50", none, -1, true),
      range_options(none, none, none, "50"),
      range_options(none, none, none, "50.5"),
      range_options(none, none, none, "50555"),
      range_options(none, none, "50555", none),
      range_options(none, "50.5", none, none, -1, true),
      range_options("50.5", none, none, none, -1, true),
      range_options("50", none, none, none, -1, true),
      range_options(none, none, none, "0"),
      range_options(none, none, "0", none),
      range_options(none, "30", none, "70"),
      range_options("40", "30", "60", "70"),  // gte and lte win over gt and lt
      range_options("20", "30", "80", "70"),
      range_options("29", none, "71", none),
      range_options(none, "30", none, "70", -1, true),
      range_options("29", none, "71", none, -1, true),
      range_options(none, none, none, none, 20),
      range_options(none, "20", none, none, 20),
      range_options(none, none, none, none, 20, true),
      range_options(none, none, none, "79", 20, true),
      range_options(none, none, none, none, -1),
      range_options(none, none, none, none, 0),
      range_options(none, none, none, "50", 20),
      range_options(none, none, none, "19", 50),
      range_options(none, "9a", none, none),
      range_options("9a", none, none, none),
      range_options(none, none, none, "9a", -1, true),
      range_options(none, none, "a", none),
      range_options(none, none, "99", none),
      range_options(none, none, none, "99"),
      range_options(none, none, "98", none),
      range_options(none, none, none, "98"),
      range_options(none, "9a", none, "9b", -1, true),
      range_options("9a", none, "9b", none, -1, true),
      range_options("20", none, "10", none),
      range_options(none, "20", none, "10"),
  };
  int how = 0;
  for (auto range : ranges) {
    expect_range(db, model, range, how++);
    range.reverse = !range.reverse;
    expect_range(db, model, range, how++);
  }
  // Spot checks that do not go through the model.
  EXPECT_EQ(db.keys(range_options(none, "30", none, "32")).all(), (std::vector<std::string>{"30", "31", "32"}));
  EXPECT_EQ(db.keys(range_options("30", none, "33", none, -1, true)).all(), (std::vector<std::string>{"32", "31"}));
}

// Empty bounds are real bounds (abstract-level rejects neither nullish nor
// empty range options): everything is >= "", nothing is < "".
TYPED_TEST(Iterators, EmptyBoundsAreRealBounds) {
  Database& db = this->db();
  fill(db, Model{{"", "empty"}, {"a", "A"}, {"b", "B"}});
  std::optional<std::string> none;
  std::string empty;
  EXPECT_EQ(db.keys(range_options(none, empty, none, none)).all(), (std::vector<std::string>{"", "a", "b"}));
  EXPECT_EQ(db.keys(range_options(empty, none, none, none)).all(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(db.keys(range_options(none, none, empty, none)).all(), std::vector<std::string>{});
  EXPECT_EQ(db.keys(range_options(none, none, none, empty)).all(), std::vector<std::string>{""});
  EXPECT_EQ(db.keys(range_options(none, none, none, empty, -1, true)).all(), std::vector<std::string>{""});
}

TYPED_TEST(Iterators, ByteRanges) {
  // abstract-level's "iterator() with byte range".
  Database& db = this->db();
  fill(db, Model{{std::string("\0", 1), "0"}, {"\x80", "128"}, {"\xa0", "160"}, {"\xc0", "192"}});
  auto collect = [&](IteratorOptions range) {
    std::vector<int> out;
    for (auto& key : db.keys(range).all()) out.push_back(static_cast<unsigned char>(key.at(0)));
    return out;
  };
  std::optional<std::string> none;
  const std::string zero("\0", 1);
  using V = std::vector<int>;
  EXPECT_EQ(collect(range_options("\xff", none, none, none)), V{});
  EXPECT_EQ(collect(range_options("\xc0", none, none, none)), V{});
  EXPECT_EQ(collect(range_options("\xa0", none, none, none)), V{192});
  EXPECT_EQ(collect(range_options("\x80", none, none, none)), (V{160, 192}));
  EXPECT_EQ(collect(range_options(zero, none, none, none)), (V{128, 160, 192}));
  EXPECT_EQ(collect(range_options("", none, none, none)), (V{0, 128, 160, 192}));
  EXPECT_EQ(collect(range_options(none, none, "\xff", none)), (V{0, 128, 160, 192}));
  EXPECT_EQ(collect(range_options(none, none, "\xc0", none)), (V{0, 128, 160}));
  EXPECT_EQ(collect(range_options(none, none, "\x80", none)), V{0});
  EXPECT_EQ(collect(range_options(none, none, zero, none)), V{});
  EXPECT_EQ(collect(range_options(none, none, "", none)), V{});
  EXPECT_EQ(collect(range_options(none, "\xff", none, none)), V{});
  EXPECT_EQ(collect(range_options(none, "\xc0", none, none)), V{192});
  EXPECT_EQ(collect(range_options(none, zero, none, none)), (V{0, 128, 160, 192}));
  EXPECT_EQ(collect(range_options(none, "", none, none)), (V{0, 128, 160, 192}));
  EXPECT_EQ(collect(range_options(none, none, none, "\xff")), (V{0, 128, 160, 192}));
  EXPECT_EQ(collect(range_options(none, none, none, "\xa0")), (V{0, 128, 160}));
  EXPECT_EQ(collect(range_options(none, none, none, zero)), V{0});
  EXPECT_EQ(collect(range_options(none, none, none, "")), V{});
}

class ThreeEntries {
 public:
  static void fill(Database& db) {
    db.batch({BatchOperation::put("foobatch1", "bar1"), BatchOperation::put("foobatch2", "bar2"),
              BatchOperation::put("foobatch3", "bar3")});
  }
  static Entry e(int i) { return {"foobatch" + std::to_string(i), "bar" + std::to_string(i)}; }
};

TYPED_TEST(Iterators, NextYieldsEachEntryThenStaysAtTheEnd) {
  Database& db = this->db();
  ThreeEntries::fill(db);
  auto iterator = db.iterator();
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(iterator->next(), ThreeEntries::e(i));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(iterator->next(), std::nullopt);
  EXPECT_TRUE(iterator->nextv(5).empty());
  EXPECT_TRUE(iterator->is_open());
  EXPECT_TRUE(iterator->all().empty());
  EXPECT_FALSE(iterator->is_open());
}

TYPED_TEST(Iterators, EmptyDatabase) {
  Database& db = this->db();
  EXPECT_EQ(db.iterator()->next(), std::nullopt);
  EXPECT_TRUE(db.iterator()->nextv(10).empty());
  EXPECT_TRUE(db.keys().all().empty());
  IteratorOptions reverse;
  reverse.reverse = true;
  EXPECT_TRUE(db.values(reverse).all().empty());
}

TYPED_TEST(Iterators, KeysOnlyAndValuesOnly) {
  Database& db = this->db();
  ThreeEntries::fill(db);
  IteratorOptions options;
  options.values = false;
  EXPECT_EQ(db.iterator(options)->next(), (Entry{"foobatch1", ""}));
  options.values = true;
  options.keys = false;
  EXPECT_EQ(db.iterator(options)->next(), (Entry{"", "bar1"}));
  EXPECT_EQ(db.keys().next(), std::optional<std::string>("foobatch1"));
  EXPECT_EQ(db.values().next(), std::optional<std::string>("bar1"));
  // keys() and values() ignore keys/values flags they would contradict.
  EXPECT_EQ(db.keys(options).all(), (std::vector<std::string>{"foobatch1", "foobatch2", "foobatch3"}));
}

TYPED_TEST(Iterators, Nextv) {
  Database& db = this->db();
  ThreeEntries::fill(db);
  auto e = &ThreeEntries::e;
  auto forward = db.iterator();
  EXPECT_EQ(forward->nextv(1), std::vector<Entry>{e(1)});
  EXPECT_EQ(forward->nextv(2), (std::vector<Entry>{e(2), e(3)}));
  EXPECT_TRUE(forward->nextv(2).empty());

  IteratorOptions reverse;
  reverse.reverse = true;
  auto backward = db.iterator(reverse);
  EXPECT_EQ(backward->nextv(1), std::vector<Entry>{e(3)});
  EXPECT_EQ(backward->nextv(2), (std::vector<Entry>{e(2), e(1)}));
  EXPECT_TRUE(backward->nextv(2).empty());

  // A size of 0 asks for 1, as abstract-level's soft minimum does.
  auto soft = db.iterator();
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(soft->nextv(0), std::vector<Entry>{e(i)});
  EXPECT_TRUE(soft->nextv(0).empty());

  auto exact = db.iterator();
  EXPECT_EQ(exact->nextv(3), (std::vector<Entry>{e(1), e(2), e(3)}));
  EXPECT_TRUE(exact->nextv(3).empty());

  auto more = db.iterator();
  EXPECT_EQ(more->nextv(10), (std::vector<Entry>{e(1), e(2), e(3)}));
  EXPECT_TRUE(more->nextv(10).empty());

  auto keys = db.keys();
  EXPECT_EQ(keys.nextv(2), (std::vector<std::string>{"foobatch1", "foobatch2"}));
  auto values = db.values(reverse);
  EXPECT_EQ(values.nextv(2), (std::vector<std::string>{"bar3", "bar2"}));
}

TYPED_TEST(Iterators, NextvHonorsLimit) {
  Database& db = this->db();
  ThreeEntries::fill(db);
  auto e = &ThreeEntries::e;
  IteratorOptions options;
  options.limit = 2;
  auto forward = db.iterator(options);
  EXPECT_EQ(forward->nextv(10), (std::vector<Entry>{e(1), e(2)}));
  EXPECT_TRUE(forward->nextv(10).empty());
  options.reverse = true;
  auto backward = db.iterator(options);
  EXPECT_EQ(backward->nextv(10), (std::vector<Entry>{e(3), e(2)}));
  EXPECT_TRUE(backward->nextv(10).empty());
  // The limit counts across next() and nextv().
  options.reverse = false;
  auto mixed = db.iterator(options);
  EXPECT_EQ(mixed->next(), e(1));
  EXPECT_EQ(mixed->nextv(10), std::vector<Entry>{e(2)});
  EXPECT_EQ(mixed->next(), std::nullopt);
}

TYPED_TEST(Iterators, AllHonorsLimitAndCloses) {
  Database& db = this->db();
  ThreeEntries::fill(db);
  auto e = &ThreeEntries::e;
  EXPECT_EQ(db.iterator()->all(), (std::vector<Entry>{e(1), e(2), e(3)}));
  IteratorOptions options;
  options.limit = 2;
  EXPECT_EQ(db.iterator(options)->all(), (std::vector<Entry>{e(1), e(2)}));
  auto partly = db.iterator(options);
  EXPECT_EQ(partly->next(), e(1));
  EXPECT_EQ(partly->all(), std::vector<Entry>{e(2)});
  EXPECT_FALSE(partly->is_open());
  EXPECT_LEVEL_ERROR(partly->next(), codes::iterator_not_open);
  options.reverse = true;
  auto backward = db.iterator(options);
  EXPECT_EQ(backward->next(), e(3));
  EXPECT_EQ(backward->all(), std::vector<Entry>{e(2)});
  EXPECT_EQ(db.open_iterator_count(), 0u);
}

TYPED_TEST(Iterators, LimitAndCount) {
  Database& db = this->db();
  ThreeEntries::fill(db);
  for (int64_t limit : {-1, -5, 0, 1, 2, 3, 4, 1000}) {
    SCOPED_TRACE(limit);
    IteratorOptions options;
    options.limit = limit;
    auto iterator = db.iterator(options);
    EXPECT_EQ(iterator->limit(), limit < 0 ? -1 : limit);
    EXPECT_EQ(iterator->count(), 0u);
    auto entries = drain_by_next(*iterator);
    size_t expected = limit < 0 ? 3 : std::min<size_t>(3, limit);
    EXPECT_EQ(entries.size(), expected);
    EXPECT_EQ(iterator->count(), expected);
  }
  auto counted = db.iterator();
  counted->next();
  counted->nextv(1);
  EXPECT_EQ(counted->count(), 2u);
  counted->all();
  EXPECT_EQ(counted->count(), 3u);
}

TYPED_TEST(Iterators, UseAfterCloseFails) {
  Database& db = this->db();
  ThreeEntries::fill(db);
  auto iterator = db.iterator();
  iterator->close();
  iterator->close();  // idempotent
  EXPECT_FALSE(iterator->is_open());
  EXPECT_LEVEL_ERROR(iterator->next(), codes::iterator_not_open);
  EXPECT_LEVEL_ERROR(iterator->nextv(1), codes::iterator_not_open);
  EXPECT_LEVEL_ERROR(iterator->all(), codes::iterator_not_open);
  iterator->seek("foobatch2");  // does not throw, as in abstract-level
  auto keys = db.keys();
  keys.close();
  EXPECT_LEVEL_ERROR(keys.next(), codes::iterator_not_open);
  EXPECT_LEVEL_ERROR(keys.all(), codes::iterator_not_open);
  auto values = db.values();
  values.close();
  EXPECT_LEVEL_ERROR(values.nextv(3), codes::iterator_not_open);
  EXPECT_TRUE(db.iterator()->next().has_value()) << "closing an iterator disturbed the database";
}

// Enough entries to cross any batching a store does internally.
TYPED_TEST(Iterators, ManyEntriesInBothDirections) {
  Database& db = this->db();
  Model model;
  for (int i = 0; i < 3000; ++i) {
    char key[16];
    snprintf(key, sizeof key, "%06d", i * 7 % 3001);
    model[key] = std::string(i % 50, 'v');
  }
  fill(db, model);
  EXPECT_EQ(db.iterator()->all(), entries_of(model));
  IteratorOptions reverse;
  reverse.reverse = true;
  auto backward = db.iterator(reverse);
  auto expected = expected_entries(model, reverse);
  EXPECT_EQ(drain_by_nextv(*backward, 1000), expected);
  reverse.gt = "001000";
  reverse.limit = 1500;
  auto ranged = db.iterator(reverse);
  EXPECT_EQ(drain_by_nextv(*ranged, 700), expected_entries(model, reverse));
}

// Iterators are independent: two over the same data interleave freely.
TYPED_TEST(Iterators, IteratorsAreIndependent) {
  Database& db = this->db();
  ThreeEntries::fill(db);
  auto a = db.iterator();
  IteratorOptions reverse;
  reverse.reverse = true;
  auto b = db.iterator(reverse);
  EXPECT_EQ(a->next(), ThreeEntries::e(1));
  EXPECT_EQ(b->next(), ThreeEntries::e(3));
  EXPECT_EQ(a->next(), ThreeEntries::e(2));
  b->close();
  EXPECT_EQ(a->next(), ThreeEntries::e(3));
  EXPECT_EQ(a->next(), std::nullopt);
}

}  // namespace
}  // namespace contract

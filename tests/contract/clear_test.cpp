// clear(): everything, ranges, limit and reverse, encoded bounds
// (abstract-level's clear and clear-range tests, swept against the model).
#include "contract.hpp"

namespace contract {
namespace {

template <typename Factory>
using Clear = Contract<Factory>;
TYPED_TEST_SUITE(Clear, Factories, FactoryName);

ClearOptions clear_options(const IteratorOptions& range) {
  ClearOptions options;
  static_cast<RangeOptions&>(options) = range;
  return options;
}

TYPED_TEST(Clear, Everything) {
  Database& db = this->db();
  fill(db, binary_model());
  db.clear();
  EXPECT_TRUE(contents(db).empty());
  db.clear();  // on an empty database
  EXPECT_TRUE(contents(db).empty());
  db.put("a", "1");
  EXPECT_EQ(db.get("a"), "1") << "the database is unusable after clear()";
}

// clear() with limit and reverse against the model; without a limit,
// reverse makes no difference, which the sweep also checks.
TYPED_TEST(Clear, EveryRangeMatchesTheModel) {
  Database& db = this->db();
  const Model model = binary_model();
  const std::vector<std::string> bounds = {"", "!", std::string("a\x01", 2), "b", "\xff"};
  std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>> ends = {{}};
  for (const auto& bound : bounds) {
    ends.push_back({bound, std::nullopt});
    ends.push_back({std::nullopt, bound});
  }
  for (const auto& [gt, gte] : ends) {
    for (const auto& [lt, lte] : ends) {
      for (auto [limit, reverse] : std::vector<std::pair<int64_t, bool>>{{-1, false}, {-1, true}, {2, false}, {2, true}}) {
        auto range = clear_options(range_options(gt, gte, lt, lte, limit, reverse));
        SCOPED_TRACE("clear" + describe(range));
        fill(db, model);  // puts back whatever the previous case cleared
        db.clear(range);
        ASSERT_EQ(contents(db), entries_of(cleared(model, range)));
      }
    }
  }
}

TYPED_TEST(Clear, LimitAndReverse) {
  Database& db = this->db();
  Model model;
  for (int i = 0; i < 100; ++i) model[(i < 10 ? "0" : "") + std::to_string(i)] = std::to_string(i);
  ClearOptions options;
  options.limit = 10;
  fill(db, model);
  db.clear(options);
  auto keys = keys_of(contents(db));
  ASSERT_EQ(keys.size(), 90u);
  EXPECT_EQ(keys.front(), "10");

  options.reverse = true;
  fill(db, model);
  db.clear(options);
  keys = keys_of(contents(db));
  ASSERT_EQ(keys.size(), 90u);
  EXPECT_EQ(keys.back(), "89");

  options.limit = 0;
  db.clear(options);
  EXPECT_EQ(contents(db).size(), 90u) << "limit 0 cleared something";
  options.limit = -1;
  db.clear(options);
  EXPECT_TRUE(contents(db).empty());

  fill(db, model);
  options.limit = 5;
  options.reverse = true;
  options.gte = "20";
  options.lt = "30";
  db.clear(options);
  EXPECT_EQ(db.keys(range_options({}, "20", {}, "29")).all(),
            (std::vector<std::string>{"20", "21", "22", "23", "24"}));
  EXPECT_EQ(contents(db).size(), 95u);
}

TYPED_TEST(Clear, EmptyAndInvertedRanges) {
  Database& db = this->db();
  const Model model{{"", "empty"}, {"a", "A"}, {"b", "B"}};
  fill(db, model);
  db.clear(clear_options(range_options({}, {}, std::string(), {})));
  EXPECT_EQ(contents(db), entries_of(model)) << "lt \"\" cleared something";
  db.clear(clear_options(range_options("b", {}, "a", {})));
  db.clear(clear_options(range_options({}, "b", {}, "a")));
  EXPECT_EQ(contents(db), entries_of(model)) << "an inverted range cleared something";
  db.clear(clear_options(range_options({}, {}, {}, std::string())));
  EXPECT_EQ(keys_of(contents(db)), (std::vector<std::string>{"a", "b"}));
  db.clear(clear_options(range_options({}, std::string(), {}, {})));
  EXPECT_TRUE(contents(db).empty());
}

TYPED_TEST(Clear, BoundsAreEncoded) {
  Database& db = this->db();
  fill(db, Model{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"\"a\"", "4"}, {"\"b\"", "5"}});
  ClearOptions hex;
  hex.gte = "62";  // "b"
  hex.lt = "63";   // "c"
  hex.key_encoding = "hex";
  db.clear(hex);
  EXPECT_FALSE(db.has("b"));
  EXPECT_TRUE(db.has("a"));
  EXPECT_TRUE(db.has("c"));

  // abstract-level's "clear() with json encoding": "b" encodes to "\"b\"".
  ClearOptions json;
  json.gte = " \"b\" ";
  json.lte = "\"b\"";
  json.key_encoding = "json";
  db.clear(json);
  EXPECT_EQ(keys_of(contents(db)), (std::vector<std::string>{"\"a\"", "a", "c"}));

  ClearOptions bad;
  bad.gte = "xyz";
  bad.key_encoding = "hex";
  EXPECT_LEVEL_ERROR(db.clear(bad), codes::invalid_key);
  EXPECT_EQ(contents(db).size(), 3u);
}

TYPED_TEST(Clear, OnANewDatabase) {
  Database& db = this->db();
  db.clear();
  EXPECT_EQ(db.status(), Status::open);
  EXPECT_TRUE(contents(db).empty());
}

TYPED_TEST(Clear, ManyEntries) {
  Database& db = this->db();
  Model model;
  for (int i = 0; i < 5000; ++i) model["k" + std::to_string(i)] = "v";
  fill(db, model);
  ClearOptions half;
  half.lt = "k5";
  db.clear(half);
  EXPECT_EQ(contents(db), entries_of(cleared(model, half)));
  db.clear();
  EXPECT_TRUE(contents(db).empty());
}

}  // namespace
}  // namespace contract

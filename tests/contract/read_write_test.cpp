// get, try_get, get_many, has, has_many, put and del, with empty and binary
// keys and values, byte order and large values (abstract-level's get, get-many,
// put, del and put-get-del tests; has/has_many as abstract-level 2 has them).
#include "contract.hpp"

namespace contract {
namespace {

template <typename Factory>
using ReadWrite = Contract<Factory>;
TYPED_TEST_SUITE(ReadWrite, Factories, FactoryName);

using Values = std::vector<std::optional<std::string>>;

TYPED_TEST(ReadWrite, MissingKeyIsNotFound) {
  Database& db = this->db();
  EXPECT_LEVEL_ERROR(db.get("missing"), codes::not_found);
  EXPECT_EQ(db.try_get("missing"), std::nullopt);
  EXPECT_FALSE(db.has("missing"));
  db.put("present", "1");
  EXPECT_LEVEL_ERROR(db.get("presen"), codes::not_found);
  EXPECT_LEVEL_ERROR(db.get("present!"), codes::not_found);
}

TYPED_TEST(ReadWrite, PutThenGet) {
  Database& db = this->db();
  db.put("foo", "bar");
  EXPECT_EQ(db.get("foo"), "bar");
  EXPECT_EQ(db.try_get("foo"), std::optional<std::string>("bar"));
  EXPECT_TRUE(db.has("foo"));
}

TYPED_TEST(ReadWrite, PutOverwrites) {
  Database& db = this->db();
  db.put("foo", "first");
  db.put("foo", "second");
  EXPECT_EQ(db.get("foo"), "second");
  db.put("foo", "");
  EXPECT_EQ(db.get("foo"), "");
  EXPECT_EQ(contents(db).size(), 1u);
}

TYPED_TEST(ReadWrite, DelRemovesOnlyItsKey) {
  Database& db = this->db();
  db.put("a", "1");
  db.put("ab", "2");
  db.put("b", "3");
  db.del("ab");
  EXPECT_EQ(db.try_get("ab"), std::nullopt);
  EXPECT_FALSE(db.has("ab"));
  EXPECT_EQ(contents(db), (std::vector<Entry>{{"a", "1"}, {"b", "3"}}));
}

TYPED_TEST(ReadWrite, DelOfAMissingKeyIsFine) {
  Database& db = this->db();
  db.del("never-there");
  db.put("a", "1");
  db.del("a");
  db.del("a");
  EXPECT_TRUE(contents(db).empty());
}

TYPED_TEST(ReadWrite, EmptyKeyAndEmptyValueAreValid) {
  Database& db = this->db();
  EXPECT_FALSE(db.has(""));
  db.put("", "");
  EXPECT_TRUE(db.has(""));
  EXPECT_EQ(db.get(""), "");
  EXPECT_EQ(db.try_get(""), std::optional<std::string>(""));
  db.put("a", "");
  EXPECT_EQ(db.get_many({"", "a", "b"}), (Values{"", "", std::nullopt}));
  EXPECT_EQ(db.has_many({"", "a", "b"}), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(contents(db), (std::vector<Entry>{{"", ""}, {"a", ""}}));
  db.del("");
  EXPECT_FALSE(db.has(""));
  EXPECT_LEVEL_ERROR(db.get(""), codes::not_found);
}

TYPED_TEST(ReadWrite, BinaryKeysAndValuesRoundTrip) {
  Database& db = this->db();
  std::string every_byte;
  for (int i = 0; i < 256; ++i) every_byte.push_back(static_cast<char>(i));
  db.put(every_byte, every_byte);
  db.put(std::string("\0", 1), std::string("\0\0", 2));
  db.put(std::string("k\0ey", 4), std::string("va\0lue", 6));
  EXPECT_EQ(db.get(every_byte), every_byte);
  EXPECT_EQ(db.get(std::string("\0", 1)), std::string("\0\0", 2));
  EXPECT_EQ(db.get(std::string("k\0ey", 4)), std::string("va\0lue", 6));
  EXPECT_LEVEL_ERROR(db.get("k"), codes::not_found);  // not cut at the NUL
  EXPECT_EQ(contents(db).size(), 3u);
}

// abstract-level's "iterator() sorts lexicographically" and "has byte order",
// with the order written out by hand rather than computed.
TYPED_TEST(ReadWrite, KeysSortAsRawBytes) {
  Database& db = this->db();
  const std::vector<std::string> sorted = {
      "",
      std::string("\0", 1),
      std::string("\0\0", 2),
      "\x01",
      "\t",
      "12",
      "2",
      "a",
      std::string("a\0", 2),
      "aa",
      "a\xf0\x9f\x90\x84",  // a🐄
      "b",
      "~",
      "\x7f",
      "\x80",
      "\xf0\x9f\x90\x84",  // 🐄
      "\xff",
      std::string("\xff\0", 2),
      "\xff\xff",
  };
  // Written in a scrambled order, in several operations.
  for (size_t i = 0; i < sorted.size(); i += 2) db.put(sorted[sorted.size() - 1 - i], "v");
  std::vector<BatchOperation> rest;
  for (size_t i = 1; i < sorted.size(); i += 2) rest.push_back(BatchOperation::put(sorted[sorted.size() - 1 - i], "v"));
  db.batch(rest);

  EXPECT_EQ(keys_of(contents(db)), sorted);
  auto reversed = sorted;
  std::reverse(reversed.begin(), reversed.end());
  IteratorOptions reverse;
  reverse.reverse = true;
  EXPECT_EQ(db.keys(reverse).all(), reversed);
  EXPECT_EQ(db.keys(range_options({}, {}, {}, std::string())).all(), std::vector<std::string>{""});
}

TYPED_TEST(ReadWrite, GetManyKeepsOrderAndReportsMissingKeys) {
  Database& db = this->db();
  db.put("a", "1");
  db.put("c", "3");
  EXPECT_EQ(db.get_many({"a", "b", "c"}), (Values{"1", std::nullopt, "3"}));
  EXPECT_EQ(db.get_many({"c", "a"}), (Values{"3", "1"}));
  EXPECT_EQ(db.get_many({"a", "a", "x"}), (Values{"1", "1", std::nullopt}));
  EXPECT_EQ(db.get_many({"x", "y"}), (Values{std::nullopt, std::nullopt}));
  EXPECT_TRUE(db.get_many({}).empty());
}

TYPED_TEST(ReadWrite, GetManyOfManyKeys) {
  Database& db = this->db();
  std::vector<std::string> keys;
  Values expected;
  for (int i = 0; i < 500; ++i) {
    keys.push_back("k" + std::to_string(i));
    if (i % 3 == 0) {
      db.put(keys.back(), std::to_string(i));
      expected.push_back(std::to_string(i));
    } else {
      expected.push_back(std::nullopt);
    }
  }
  EXPECT_EQ(db.get_many(keys), expected);
}

TYPED_TEST(ReadWrite, HasAndHasMany) {
  Database& db = this->db();
  db.put("a", "1");
  db.put("b", "");
  EXPECT_TRUE(db.has("a"));
  EXPECT_TRUE(db.has("b"));
  EXPECT_FALSE(db.has("c"));
  EXPECT_EQ(db.has_many({"c", "b", "a", "a", ""}), (std::vector<bool>{false, true, true, true, false}));
  EXPECT_TRUE(db.has_many({}).empty());
  db.del("a");
  EXPECT_FALSE(db.has("a"));
}

// 16 MiB: the protocol must carry it as one value, and stores must not cap it.
TYPED_TEST(ReadWrite, SixteenMebibyteValues) {
  Database& db = this->db();
  std::string big(16u << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131 + i / 7919) & 0xff);
  db.put("big", big);
  db.put("after", "small");
  // EXPECT_TRUE, not EXPECT_EQ: a failure must not print 16 MiB.
  EXPECT_TRUE(db.get("big") == big);
  EXPECT_TRUE(db.get_many({"big", "after"}) == (Values{big, "small"}));
  auto entries = db.iterator()->all();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].key, "big");
  EXPECT_TRUE(entries[1].value == big);
  EXPECT_TRUE(db.values(range_options({}, "big", {}, {})).all() == std::vector<std::string>{big});
  std::string big_key(1u << 20, 'k');
  db.put(big_key, "v");
  EXPECT_EQ(db.get(big_key), "v");
}

}  // namespace
}  // namespace contract

// Sublevels of the database under test: the exact prefix bytes, invalid
// names, and every operation confined to the sublevel (abstract-level's
// sublevel tests). As the database under test may itself be a sublevel, this
// also covers sublevels nested one level deeper than the factories build.
#include "contract.hpp"

namespace contract {
namespace {

template <typename Factory>
using Sublevels = Contract<Factory>;
TYPED_TEST_SUITE(Sublevels, Factories, FactoryName);

using Keys = std::vector<std::string>;

TYPED_TEST(Sublevels, PrefixIsTheNameBetweenSeparators) {
  Database& db = this->db();
  auto a = db.sublevel("a");
  auto b = a->sublevel("b");
  EXPECT_EQ(a->prefix(), "!a!");
  EXPECT_EQ(b->prefix(), "!b!");
  a->put("k", "1");
  b->put("k", "2");
  a->put("", "empty");
  EXPECT_EQ(contents(db), (std::vector<Entry>{{"!a!", "empty"}, {"!a!!b!k", "2"}, {"!a!k", "1"}}));
  // The nested sublevel's keys are inside its parent sublevel, as in abstract-level.
  EXPECT_EQ(a->keys().all(), (Keys{"", "!b!k", "k"}));
  EXPECT_EQ(b->keys().all(), Keys{"k"});
}

TYPED_TEST(Sublevels, SeparatorsAreTrimmedAndConfigurable) {
  Database& db = this->db();
  EXPECT_EQ(db.sublevel("!a!")->prefix(), "!a!");
  EXPECT_EQ(db.sublevel("!!a")->prefix(), "!a!");
  EXPECT_EQ(db.sublevel("")->prefix(), "!!");
  EXPECT_EQ(db.sublevel("!!")->prefix(), "!!");
  SublevelOptions hash;
  hash.separator = '#';
  auto sub = db.sublevel("#x#", hash);
  EXPECT_EQ(sub->prefix(), "#x#");
  sub->put("k", "v");
  EXPECT_EQ(keys_of(contents(db)), Keys{"#x#k"});
}

TYPED_TEST(Sublevels, InvalidNamesAreRejected) {
  Database& db = this->db();
  for (const std::string& name : {std::string(" "), std::string("a b"), std::string("a!b"), std::string("a\"b"),
                                 std::string("\x7f"), std::string("caf\xc3\xa9"), std::string("a\0", 2),
                                 std::string("\t")}) {
    SCOPED_TRACE(::testing::PrintToString(name));
    EXPECT_LEVEL_ERROR(db.sublevel(name), "LEVEL_INVALID_PREFIX");
  }
  SublevelOptions hash;
  hash.separator = '#';
  EXPECT_LEVEL_ERROR(db.sublevel("a$", hash), "LEVEL_INVALID_PREFIX");  // '$' is reserved after '#'
  EXPECT_LEVEL_ERROR(db.sublevel("a!", hash), "LEVEL_INVALID_PREFIX");
  for (const char* name : {"#", "~", "a-b", "A_Z09", "a.b", "x/y"}) EXPECT_EQ(db.sublevel(name)->prefix(), std::string("!") + name + "!");
  EXPECT_TRUE(contents(db).empty());
}

// Keys in the parent all around the sublevel's range; the sublevel sees
// only its own, whatever the range, direction and limit.
TYPED_TEST(Sublevels, IterationIsConfined) {
  Database& db = this->db();
  fill(db, Model{{"", "out"},  {"!", "out"},    {"!a", "out"},   {"!a ", "out"}, {"!a\"", "out"},
                 {"!a#", "out"}, {"!aa!k", "out"}, {"!b!k", "out"}, {"a", "out"},   {"\xff", "out"}});
  auto sub = db.sublevel("a");
  Model model;
  for (const auto& key : {std::string(), std::string("\0", 1), std::string("k"), std::string("\xff\xff")}) {
    model[key] = "in:" + key;
  }
  fill(*sub, model);
  EXPECT_EQ(sub->iterator()->all(), entries_of(model));
  for (const auto& range : {range_options({}, {}, {}, {}, -1, true), range_options({}, std::string(), {}, "k"),
                            range_options(std::string(), {}, "\xff", {}, 2, true),
                            range_options({}, {}, {}, {}, 3), range_options("k", {}, {}, {})}) {
    SCOPED_TRACE(describe(range));
    EXPECT_EQ(sub->iterator(range)->all(), expected_entries(model, range));
  }
  EXPECT_EQ(sub->values().all(), values_of(entries_of(model)));
  EXPECT_EQ(sub->get_many({"", "k", "a", "!b!k"}),
            (std::vector<std::optional<std::string>>{"in:", "in:k", std::nullopt, std::nullopt}));
  EXPECT_EQ(sub->has_many({"", "x"}), (std::vector<bool>{true, false}));
  EXPECT_LEVEL_ERROR(sub->get("a"), codes::not_found);
}

TYPED_TEST(Sublevels, SeekTargetIsPrefixed) {
  Database& db = this->db();
  db.put("a", "outside");
  db.put("z", "outside");
  auto sub = db.sublevel("s");
  sub->batch({BatchOperation::put("b", "1"), BatchOperation::put("c", "2")});
  auto forward = sub->keys();
  forward.seek("a");
  EXPECT_EQ(forward.all(), (Keys{"b", "c"}));
  auto past = sub->keys();
  past.seek("z");
  EXPECT_EQ(past.next(), std::nullopt);
  IteratorOptions reverse;
  reverse.reverse = true;
  auto backward = sub->keys(reverse);
  backward.seek("bb");
  EXPECT_EQ(backward.all(), Keys{"b"});
  auto before = sub->keys(reverse);
  before.seek("a");
  EXPECT_EQ(before.next(), std::nullopt);
}

// abstract-level's "sublevel.clear()", with and without opening first.
TYPED_TEST(Sublevels, ClearIsConfined) {
  for (bool deferred : {false, true}) {
    SCOPED_TRACE(deferred ? "deferred" : "opened");
    Database& db = this->create();
    auto sub1 = db.sublevel("1");
    auto sub2 = db.sublevel("2");
    if (!deferred) {
      sub1->open();
      sub2->open();
    }
    auto populate = [](Database& sub) { sub.batch({BatchOperation::put("a", "a"), BatchOperation::put("b", "b")}); };
    populate(*sub1);
    populate(*sub2);
    EXPECT_EQ(keys_of(contents(db)), (Keys{"!1!a", "!1!b", "!2!a", "!2!b"}));
    sub1->clear();
    EXPECT_EQ(keys_of(contents(db)), (Keys{"!2!a", "!2!b"}));
    populate(*sub1);
    ClearOptions below_b;
    below_b.lt = "b";
    sub2->clear(below_b);
    EXPECT_EQ(keys_of(contents(db)), (Keys{"!1!a", "!1!b", "!2!b"}));
    ClearOptions reverse_one;
    reverse_one.reverse = true;
    reverse_one.limit = 1;
    sub1->clear(reverse_one);
    EXPECT_EQ(keys_of(contents(db)), (Keys{"!1!a", "!2!b"}));
  }
}

// abstract-level's "iterate sublevel keys with bytes above 196".
TYPED_TEST(Sublevels, KeysWithEveryByte) {
  Database& db = this->db();
  auto sub1 = db.sublevel("a");
  auto sub2 = db.sublevel("b");
  std::vector<std::string> keys;
  auto batch1 = sub1->batch();
  auto batch2 = sub2->batch();
  for (int i = 0; i < 256; ++i) {
    keys.push_back(std::string(1, static_cast<char>(i)));
    batch1.put(keys.back(), "aa");
    batch2.put(keys.back(), "bb");
  }
  batch1.write();
  batch2.write();
  auto entries1 = sub1->iterator()->all();
  auto entries2 = sub2->iterator()->all();
  ASSERT_EQ(entries1.size(), 256u);
  ASSERT_EQ(entries2.size(), 256u);
  EXPECT_EQ(keys_of(entries1), keys);
  EXPECT_EQ(values_of(entries1), std::vector<std::string>(256, "aa"));
  EXPECT_EQ(values_of(entries2), std::vector<std::string>(256, "bb"));
  EXPECT_EQ(sub1->get_many(keys), std::vector<std::optional<std::string>>(256, "aa"));
  EXPECT_EQ(sub2->get_many(keys), std::vector<std::optional<std::string>>(256, "bb"));
  for (const auto& key : keys) ASSERT_EQ(sub1->get(key), "aa");
  sub1->clear();
  EXPECT_TRUE(sub1->keys().all().empty());
  EXPECT_EQ(sub2->keys().all().size(), 256u);
}

TYPED_TEST(Sublevels, EachHasItsOwnEncodings) {
  Database& db = this->db();
  auto json = db.sublevel("json", SublevelOptions{'!', "utf8", "json"});
  auto hex = db.sublevel("hex", SublevelOptions{'!', "hex", "hex"});
  json->put("k", "{ \"a\": 1 }");
  hex->put("6b", "ff");
  EXPECT_EQ(json->get("k"), "{\"a\":1}");
  EXPECT_EQ(hex->get("6b"), "ff");
  EXPECT_EQ(contents(db), (std::vector<Entry>{{"!hex!k", "\xff"}, {"!json!k", "{\"a\":1}"}}));
  EXPECT_LEVEL_ERROR(json->put("k", "{bad"), codes::invalid_value);
  EXPECT_LEVEL_ERROR(hex->put("k", "00"), codes::invalid_key);
  EXPECT_EQ(hex->keys().all(), Keys{"6b"});
  EXPECT_EQ(json->get("k", ReadOptions{"", "utf8"}), "{\"a\":1}");
}

TYPED_TEST(Sublevels, OpenOnFirstUseWithTheirParent) {
  Database& db = this->db();
  auto sub = db.sublevel("s");
  EXPECT_EQ(sub->status(), Status::opening);
  sub->put("k", "v");
  EXPECT_EQ(sub->status(), Status::open);
  EXPECT_EQ(db.status(), Status::open);
  EXPECT_EQ(db.get("!s!k"), "v");
  EXPECT_EQ(sub->supports().snapshots, db.supports().snapshots);
  EXPECT_EQ(sub->supports().permanence, db.supports().permanence);
}

TYPED_TEST(Sublevels, ClosingASublevelLeavesTheParentOpen) {
  Database& db = this->db();
  auto sub = db.sublevel("s");
  sub->put("k", "v");
  auto iterator = sub->iterator();
  sub->close();
  EXPECT_EQ(sub->status(), Status::closed);
  EXPECT_EQ(db.status(), Status::open);
  EXPECT_LEVEL_ERROR(sub->get("k"), codes::database_not_open);
  EXPECT_LEVEL_ERROR(iterator->next(), codes::iterator_not_open);
  EXPECT_EQ(db.get("!s!k"), "v");
  sub->open();
  EXPECT_EQ(sub->get("k"), "v");
}

// abstract-level's "sublevel rejects operations if parent db is closed".
TYPED_TEST(Sublevels, RejectOperationsWhileTheParentIsClosed) {
  Database& db = this->db();
  auto sub = db.sublevel("s");
  sub->put("k", "v");
  auto iterator = sub->iterator();
  db.close();
  EXPECT_LEVEL_ERROR(sub->put("foo", "bar"), codes::database_not_open);
  EXPECT_LEVEL_ERROR(sub->get("k"), codes::database_not_open);
  EXPECT_LEVEL_ERROR(sub->del("k"), codes::database_not_open);
  EXPECT_LEVEL_ERROR(sub->clear(), codes::database_not_open);
  EXPECT_LEVEL_ERROR(sub->batch({BatchOperation::del("k")}), codes::database_not_open);
  EXPECT_LEVEL_ERROR(sub->iterator(), codes::database_not_open);
  EXPECT_LEVEL_ERROR(iterator->next(), codes::iterator_not_open);
  EXPECT_EQ(db.status(), Status::closed) << "a sublevel reopened its parent";
  if (!TypeParam::reopens_after_close) return;
  db.open();
  EXPECT_EQ(sub->get("k"), "v");
}

// A sublevel must not reopen a parent the user closed: its open is passive,
// as abstract-level's is ("cannot create a sublevel on a closed db").
TYPED_TEST(Sublevels, CannotOpenOnAClosedParent) {
  Database& db = this->db();
  db.open();
  db.close();
  auto sub = db.sublevel("s");
  EXPECT_LEVEL_ERROR(sub->open(), codes::database_not_open);
  EXPECT_LEVEL_ERROR(sub->put("k", "v"), codes::database_not_open);
  EXPECT_EQ(db.status(), Status::closed);
  if (!TypeParam::reopens_after_close) return;
  db.open();
  sub->open();
  sub->put("k", "v");
  EXPECT_EQ(db.sublevel("s")->get("k"), "v");
}

// Prefixes survive closing and reopening a nested sublevel.
TYPED_TEST(Sublevels, NestedSublevelReopens) {
  Database& db = this->db();
  auto outer = db.sublevel("test1");
  auto inner = outer->sublevel("test2");
  inner->put("k", "v");
  inner->close();
  inner->open();
  inner->put("k2", "v2");
  EXPECT_EQ(keys_of(contents(db)), (Keys{"!test1!!test2!k", "!test1!!test2!k2"}));
}

}  // namespace
}  // namespace contract

// The contract-suite factories of guest_factory.hpp: what they hand out is a
// fresh guest linked to a host of its own, reopen() keeps the data, and
// teardown in any state (pending requests, open iterators) is clean.
#include "guest_factory.hpp"

#include "guest_harness.hpp"

namespace guest_tests {
namespace {

template <typename Factory>
class Factories : public GuestTest {};

using Types = ::testing::Types<GuestFactory<MemoryStore>, GuestFactory<MemoryStore, true>,
                               GuestFactory<MemoryStore, false, 3>
#ifndef MANY_LEVEL_NO_SQLITE
                               ,
                               GuestFactory<SqliteStore>
#endif
                               >;

struct Name {
  template <typename Factory>
  static std::string GetName(int) {
    return Factory::name();
  }
};

TYPED_TEST_SUITE(Factories, Types, Name);

TYPED_TEST(Factories, CreateReopenAndTeardown) {
  EXPECT_FALSE(TypeParam::reopens_after_close);
  auto factory = std::make_unique<TypeParam>();
  Database& first = factory->create(DatabaseOptions{"utf8", "json"});
  EXPECT_EQ(first.status(), Status::opening);
  EXPECT_NE(dynamic_cast<Guest*>(&first), nullptr);
  first.put("k", R"({ "a": 1 })");
  EXPECT_EQ(factory->store(0).get("k"), R"({"a":1})");

  Database& second = factory->create();
  EXPECT_TRUE(contents(second).empty());  // a store of its own
  second.put("other", "x");
  EXPECT_EQ(factory->store(1).get("other"), "x");

  Database& again = factory->reopen();
  EXPECT_EQ(again.get("k"), R"({"a":1})");  // the first one's options and data
  auto iterator = again.iterator();         // left open on purpose
  auto pending = dynamic_cast<Guest&>(again).put_async("late", "1");
  factory->check_isolation();
  EXPECT_FALSE(::testing::Test::HasFailure());
  factory.reset();  // tears down with an iterator open and maybe a write in flight
  ASSERT_TRUE(ready(pending));
  EXPECT_EQ(error_code([&] { iterator->next(); }), codes::iterator_not_open);
}

TYPED_TEST(Factories, UnknownEncodingFailsCleanly) {
  TypeParam factory;
  EXPECT_EQ(error_code([&] { factory.create(DatabaseOptions{"no-such-encoding", "utf8"}); }),
            codes::encoding_not_found);
  factory.create().put("still", "works");
}

}  // namespace
}  // namespace guest_tests

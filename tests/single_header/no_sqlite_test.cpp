// The single header with MANY_LEVEL_NO_SQLITE: it must not include SQLite's
// header (poison/sqlite3.h, first on the include path, stops the build if it
// does) and everything else must still be there.

#ifndef MANY_LEVEL_NO_SQLITE
#error "build this unit with MANY_LEVEL_NO_SQLITE defined"
#endif

#include <gtest/gtest.h>

#include "many_level.hpp"

namespace ml = many_level;

namespace {

TEST(SingleHeaderNoSqlite, KeepsEverythingElse) {
  ml::MemoryDatabase db;
  auto sub = db.sublevel("s");
  sub->put("6b", "dg==", {"hex", "base64"});
  EXPECT_EQ(db.get("!s!k"), "v");
  EXPECT_EQ(MANY_LEVEL_PROTOCOL_VERSION_STRING, std::string("2.0.0"));
}

}  // namespace

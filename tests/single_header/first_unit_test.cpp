// Unit one of two: builds against single_include/ alone (see CMakeLists.txt)
// and uses what unit two defines, and the other way round.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "many_level.hpp"
#include "two_units.hpp"

#ifndef MANY_LEVEL_SINGLE_INCLUDE_HPP
#error "single_header_test must include single_include/many_level.hpp, not the headers in src/"
#endif

namespace ml = many_level;

namespace two_units {

std::unique_ptr<ml::Database> make_memory_database() { return std::make_unique<ml::MemoryDatabase>(); }
const ml::Encoding* registry_hex_in_first() { return ml::find_encoding("hex").get(); }
const void* encoding_registry_in_first() { return &ml::detail::EncodingRegistry::instance(); }

}  // namespace two_units

namespace {

TEST(SingleHeader, CarriesTheVersions) {
  EXPECT_STREQ(MANY_LEVEL_VERSION_STRING, MANY_LEVEL_EXPECTED_VERSION);
  EXPECT_STREQ(MANY_LEVEL_PROTOCOL_VERSION_STRING, "2.0.0");
}

TEST(SingleHeaderTwoUnits, ShareOneEncodingRegistry) {
  EXPECT_EQ(two_units::encoding_registry_in_first(), two_units::encoding_registry_in_second());
  EXPECT_EQ(two_units::registry_hex_in_first(), ml::find_encoding("hex").get());
}

TEST(SingleHeaderTwoUnits, ADatabaseMadeInOneIsUsedInTheOther) {
  auto db = two_units::make_memory_database();
  db->put("top", "1");
  two_units::put_in_sublevel(*db, "sub", "k", "2");
  auto sub = db->sublevel("sub");
  EXPECT_EQ(sub->get("k"), "2");
  sub->put("6b32", "aGk=", {"hex", "base64"});
  EXPECT_EQ(two_units::dump(*db), "!sub!k=2;!sub!k2=hi;top=1;");
  EXPECT_EQ(two_units::dump(*sub), "k=2;k2=hi;");
}

TEST(SingleHeaderTwoUnits, AnErrorThrownInOneIsCaughtByTypeInTheOther) {
  try {
    two_units::throw_not_found_from_second();
  } catch (const ml::Error& e) {
    EXPECT_TRUE(e.is(ml::codes::not_found));
    return;
  }
  FAIL() << "no many_level::Error caught";
}

#ifndef MANY_LEVEL_NO_SQLITE
TEST(SingleHeaderTwoUnits, SqliteWrittenInOneIsReadInTheOther) {
  auto path = std::filesystem::temp_directory_path() /
              ("many_level_single_header_" + std::to_string(::getpid()) + ".sqlite");
  two_units::write_sqlite(path.string(), 10);
  {
    ml::SqliteDatabase db(path.string());
    EXPECT_EQ(db.get("key5"), "value5");
    auto entries = db.iterator()->all();
    EXPECT_EQ(entries.size(), 10u);
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
}
#endif

}  // namespace

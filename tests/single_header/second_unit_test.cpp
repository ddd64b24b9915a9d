// Unit two of two: see first_unit_test.cpp.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "many_level.hpp"
#include "two_units.hpp"

namespace ml = many_level;

namespace two_units {

void put_in_sublevel(ml::Database& db, const std::string& name, const std::string& key, const std::string& value) {
  ml::Sublevel sublevel(db, name);
  sublevel.put(key, value);
}

std::string dump(ml::Database& db) {
  std::string out;
  auto iterator = db.iterator();
  while (auto entry = iterator->next()) out += entry->key + "=" + entry->value + ";";
  return out;
}

const void* encoding_registry_in_second() { return &ml::detail::EncodingRegistry::instance(); }

void throw_not_found_from_second() { throw ml::Error(ml::codes::not_found, "from unit two"); }

#ifndef MANY_LEVEL_NO_SQLITE
void write_sqlite(const std::string& path, int count) {
  ml::SqliteDatabase db(path);
  auto batch = db.batch();
  for (int i = 0; i < count; ++i) batch.put("key" + std::to_string(i), "value" + std::to_string(i));
  batch.write();
  db.close();
}
#endif

}  // namespace two_units

namespace {

TEST(SingleHeaderTwoUnits, BothUseMemoryDatabasesSublevelsAndEncodings) {
  ml::MemoryDatabase db(ml::DatabaseOptions{"utf8", "json"});
  auto sub = db.sublevel("json");
  sub->put("a", "[1, 2]", {"", "json"});
  db.batch().put("b", R"({"x": true})").del("missing").write();
  EXPECT_EQ(db.get("b"), R"({"x":true})");
  EXPECT_EQ(two_units::dump(db), R"(!json!a=[1,2];b={"x":true};)");
  EXPECT_EQ(two_units::dump(*sub), "a=[1,2];");
  EXPECT_EQ(db.keys({}).all(), (std::vector<std::string>{"!json!a", "b"}));
}

}  // namespace

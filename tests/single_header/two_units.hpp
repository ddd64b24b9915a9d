// What each translation unit of single_header_test offers the other. Both
// include the single header; anything it defined outside an inline function
// or variable would make the link fail, and anything it left to static local
// state per unit (a second encoding registry, say) would fail these tests.
#pragma once

#include <memory>
#include <string>

#include "many_level.hpp"

namespace two_units {

// ---- defined in first_unit_test.cpp --------------------------------------
std::unique_ptr<many_level::Database> make_memory_database();
const many_level::Encoding* registry_hex_in_first();
const void* encoding_registry_in_first();

// ---- defined in second_unit_test.cpp -------------------------------------
// Puts `key` = `value` into the sublevel `name` of `db`, as the sublevel's own key.
void put_in_sublevel(many_level::Database& db, const std::string& name, const std::string& key,
                     const std::string& value);
// Every key=value of `db` in order, "k=v;k=v;".
std::string dump(many_level::Database& db);
const void* encoding_registry_in_second();
[[noreturn]] void throw_not_found_from_second();

#ifndef MANY_LEVEL_NO_SQLITE
// Opens the SQLite database at `path`, writes `count` keys, closes it.
void write_sqlite(const std::string& path, int count);
#endif

}  // namespace two_units

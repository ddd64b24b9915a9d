// Sample data for --demo, the screenshot tool and tests: plain keys,
// sublevels (users, orders), a nested sublevel (users/sessions), JSON and
// binary values, and a "bulk" sublevel of as many keys as asked for.
#pragma once

#include <cstddef>

#include "many_level/database.hpp"

namespace inspector {

// Returns how many keys it wrote.
size_t seedDemoData(many_level::Database& db, size_t bulk_keys);

}  // namespace inspector

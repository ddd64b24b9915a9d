// A key range reduced to at most one lower and one upper bound, so every store
// (memory, SQLite, sublevel) interprets gt/gte/lt/lte identically.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "options.hpp"
#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// Keys compare as raw bytes (memcmp, then length), exactly like LevelDB.
inline int compare_keys(std::string_view a, std::string_view b) noexcept {
  // string_view::compare uses char_traits<char>, which compares as unsigned char.
  int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

struct Bound {
  std::string key;
  bool inclusive = true;
};

struct KeyRange {
  std::optional<Bound> lower;
  std::optional<Bound> upper;

  static KeyRange from(const RangeOptions& options) {
    KeyRange range;
    if (options.gte) {
      range.lower = Bound{*options.gte, true};
    } else if (options.gt) {
      range.lower = Bound{*options.gt, false};
    }
    if (options.lte) {
      range.upper = Bound{*options.lte, true};
    } else if (options.lt) {
      range.upper = Bound{*options.lt, false};
    }
    return range;
  }

  bool above_lower(std::string_view key) const {
    if (!lower) return true;
    int c = compare_keys(key, lower->key);
    return c > 0 || (c == 0 && lower->inclusive);
  }

  bool below_upper(std::string_view key) const {
    if (!upper) return true;
    int c = compare_keys(key, upper->key);
    return c < 0 || (c == 0 && upper->inclusive);
  }

  bool contains(std::string_view key) const { return above_lower(key) && below_upper(key); }

  // Whether no key at all can fall in the range (lower above upper).
  bool empty() const {
    if (!lower || !upper) return false;
    int c = compare_keys(lower->key, upper->key);
    return c > 0 || (c == 0 && !(lower->inclusive && upper->inclusive));
  }
};

MANY_LEVEL_NAMESPACE_END

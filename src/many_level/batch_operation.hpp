// One operation of a batch, and one change of a commit as watchers see it:
// a put of a key and value, or a del of a key, in raw bytes or encoded text.
#pragma once

#include <string>
#include <utility>

#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

struct BatchOperation {
  enum class Type { put, del };
  Type type = Type::put;
  std::string key;
  std::string value;

  static BatchOperation put(std::string key, std::string value) {
    return {Type::put, std::move(key), std::move(value)};
  }
  static BatchOperation del(std::string key) { return {Type::del, std::move(key), {}}; }

  bool operator==(const BatchOperation& other) const {
    return type == other.type && key == other.key && value == other.value;
  }
};

MANY_LEVEL_NAMESPACE_END

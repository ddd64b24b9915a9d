// Version and ABI of many-level for C++. The inline namespace carries the
// version, so two copies of different versions in one program do not collide.
#pragma once

#define MANY_LEVEL_VERSION_MAJOR 0
#define MANY_LEVEL_VERSION_MINOR 1
#define MANY_LEVEL_VERSION_PATCH 0
#define MANY_LEVEL_VERSION_STRING "0.1.0"

// The Node many-level release whose wire protocol this library speaks.
#define MANY_LEVEL_PROTOCOL_VERSION_STRING "2.0.0"

#define MANY_LEVEL_NAMESPACE_BEGIN \
  namespace many_level {           \
  inline namespace v0_1 {
#define MANY_LEVEL_NAMESPACE_END \
  }                              \
  }

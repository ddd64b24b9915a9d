// A program as a user of many-level writes it: one include, one target to link.
// The consumer tests build it through find_package and through add_subdirectory.

#include <many_level.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#define CHECK(condition)                                                       \
  do {                                                                         \
    if (!(condition)) {                                                        \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      return EXIT_FAILURE;                                                     \
    }                                                                          \
  } while (false)

namespace ml = many_level;

// Which face of the library this build was meant to get: the single header
// (installed package, many_level::single) or the headers in src/.
#if defined(CONSUMER_EXPECTS_SINGLE_HEADER) && CONSUMER_EXPECTS_SINGLE_HEADER != defined(MANY_LEVEL_SINGLE_INCLUDE_HPP)
#error "many_level.hpp is not the header this consumer expects"
#endif

int main() {
#ifdef CONSUMER_PACKAGE_VERSION
  // The CMake package version and the header's version are one version.
  CHECK(std::string(CONSUMER_PACKAGE_VERSION) == MANY_LEVEL_VERSION_STRING);
#endif

  ml::MemoryDatabase db;
  db.put("hello", "world");
  CHECK(db.get("hello") == "world");
  auto users = db.sublevel("users");
  users->put("616461", "dg==", {"hex", "base64"});  // "ada" = "v"
  CHECK(db.get("!users!ada") == "v");
  CHECK(users->keys().all() == std::vector<std::string>{"ada"});

#ifndef MANY_LEVEL_NO_SQLITE
  auto path = std::filesystem::temp_directory_path() / "many_level_consumer_test.sqlite";
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
  {
    ml::SqliteDatabase sqlite(path.string());
    sqlite.batch({ml::BatchOperation::put("a", "1"), ml::BatchOperation::put("b", "2")});
    CHECK(sqlite.get("b") == "2");
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path.string() + suffix);
#endif

  std::printf("many-level consumer: ok (many-level %s, protocol %s)\n", MANY_LEVEL_VERSION_STRING,
              MANY_LEVEL_PROTOCOL_VERSION_STRING);
  return EXIT_SUCCESS;
}

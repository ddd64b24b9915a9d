// Fuzz target: a whole host session, as a guest's bytes reach it, with a
// database behind it (memory, or SQLite when the input's first byte is odd)
// holding a few keys. One store and one host of each kind serve the whole
// run, as one host serves many connections; every input is a new guest's
// stream, refilling the store first. The session gets the rest of the input
// in chunks of up to 64 bytes and then the end of its stream, as a
// connection would deliver them. Nothing a guest
// sends may crash the host, hang it or make it read or write out of bounds:
// the session may only fail (and ask for its stream to be closed) with a
// reason.
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "many_level/host/host.hpp"
#include "many_level/memory_database.hpp"
#ifndef MANY_LEVEL_NO_SQLITE
#include "many_level/sqlite_database.hpp"
#endif

namespace {

using namespace many_level;

// One store of each kind for the whole run (opening SQLite per input would
// be most of the time), cleared and filled again for every input.
Database& database(bool sqlite) {
#ifndef MANY_LEVEL_NO_SQLITE
  if (sqlite) {
    static SqliteDatabase* db = [] {
      char folder[] = "/tmp/many-level-fuzz.XXXXXX";
      if (!::mkdtemp(folder)) __builtin_trap();
      auto* opened = new SqliteDatabase(std::string(folder) + "/fuzz.db");  // lives as long as the process
      opened->open();
      return opened;
    }();
    return *db;
  }
#endif
  (void)sqlite;
  static MemoryDatabase memory;
  return memory;
}

// The host of each store, for the whole run too, as one host serves many
// connections: every input is a new guest's stream.
Host& host_of(bool sqlite) {
  static auto make = [](Database& db) {
    HostOptions options;
    options.max_frame_length = 1 << 16;
    options.max_snapshots = 4;
    options.max_watches = 4;
    return std::make_unique<Host>(db, options);
  };
  static auto memory_host = make(database(false));
  if (!sqlite) return *memory_host;
  static auto sqlite_host = make(database(true));
  return *sqlite_host;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool sqlite = data[0] & 1;
  Database& db = database(sqlite);
  db.clear();
  db.put("a", "1");
  db.put("b", std::string(300, 'b'));
  db.put("c", "3");
  auto session = host_of(sqlite).create_session("fuzz");
  const char* bytes = reinterpret_cast<const char*>(data) + 1;
  size_t left = size - 1;
  std::string replies;
  while (left > 0 && session->failed().empty()) {
    const size_t chunk = std::min<size_t>(left, 64);
    session->receive(bytes, chunk);
    bytes += chunk;
    left -= chunk;
    session->output().take(replies);  // a guest that reads its replies
    replies.clear();
  }
  session->end();
  return 0;
}

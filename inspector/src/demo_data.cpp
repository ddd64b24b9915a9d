#include "demo_data.h"

#include <cstdio>
#include <string>
#include <vector>

namespace inspector {

size_t seedDemoData(many_level::Database& db, size_t bulk_keys) {
  const many_level::WriteOptions raw{"buffer", "buffer"};
  std::vector<many_level::BatchOperation> batch;
  size_t written = 0;
  const auto put = [&](std::string key, std::string value) {
    batch.push_back(many_level::BatchOperation::put(std::move(key), std::move(value)));
    if (batch.size() >= 1000) {
      db.batch(batch, raw);
      written += batch.size();
      batch.clear();
    }
  };

  put("config:theme", "dark");
  put("config:version", "\"2.0.0\"");
  put("hello", "world");
  put(std::string("raw:\x00\x01\x02", 7), std::string("\xde\xad\xbe\xef\x00\x10", 6));

  static const char* names[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
                                "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil",
                                "trent", "victor", "walter", "yolanda"};
  int age = 23;
  for (const char* name : names) {
    std::string json = std::string("{\"name\":\"") + name + "\",\"age\":" + std::to_string(age) +
                       ",\"roles\":[\"reader\"" + (age % 3 == 0 ? ",\"admin\"" : "") + "],\"active\":" +
                       (age % 2 == 0 ? "true" : "false") + "}";
    put(std::string("!users!") + name, json);
    age += 3;
  }
  for (int i = 0; i < 12; ++i) {
    char key[64];
    std::snprintf(key, sizeof key, "!users!!sessions!%08x", 0x5e55000 + i * 7919);
    put(key, std::string("{\"user\":\"") + names[i % 20] + "\",\"expires\":" + std::to_string(1700000000 + i * 3600) + "}");
  }
  for (int i = 1; i <= 60; ++i) {
    char key[64];
    std::snprintf(key, sizeof key, "!orders!2024-%04d", i);
    char value[160];
    std::snprintf(value, sizeof value, "{\"customer\":\"%s\",\"items\":%d,\"total\":%.2f,\"status\":\"%s\"}",
                  names[(i * 7) % 20], 1 + i % 5, 9.99 * (1 + i % 7), i % 4 == 0 ? "shipped" : "open");
    put(key, value);
  }
  for (size_t i = 0; i < bulk_keys; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "!bulk!k%07zu", i);
    char value[32];
    std::snprintf(value, sizeof value, "value %zu", i);
    put(key, value);
  }
  if (!batch.empty()) {
    db.batch(batch, raw);
    written += batch.size();
  }
  return written;
}

}  // namespace inspector

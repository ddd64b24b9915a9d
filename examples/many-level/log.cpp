// Timestamped log lines on stderr, for the host's connection log and the
// program's errors (stdout may be a guest's stream, with --stdio).
#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>

#include "commands.hpp"

namespace cli {

void log_line(const std::string& line) {
  auto now = std::chrono::system_clock::now();
  auto seconds = std::chrono::system_clock::to_time_t(now);
  auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  char full[48];
  std::snprintf(full, sizeof full, "%s.%03dZ", stamp, static_cast<int>(millis));
  std::cerr << full << " " << line << std::endl;
}

}  // namespace cli

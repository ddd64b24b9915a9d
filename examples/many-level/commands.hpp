// The subcommands of the many-level program. Each returns the process's exit
// status: 0 success, 1 failure, 2 usage error, 3 key not found.
#pragma once

#include <string>
#include <vector>

namespace cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_not_found = 3;

int serve(const std::vector<std::string>& args);
int guest_command(const std::string& command, const std::vector<std::string>& args);
int bench(const std::vector<std::string>& args);
int stats(const std::vector<std::string>& args);
int watch(const std::vector<std::string>& args);
int token(const std::vector<std::string>& args);

// Writes a timestamped line to stderr (stdout may be a guest's stream).
void log_line(const std::string& line);

}  // namespace cli

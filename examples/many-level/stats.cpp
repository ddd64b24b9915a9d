// `many-level stats`: a host's statistics (the extension's HostStatsReply),
// as a table for people or as JSON for scripts. A Node host has none.
#include <signal.h>

#include <cstdio>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "guest_connection.hpp"
#include "many_level.hpp"

namespace cli {
namespace {

using namespace many_level;

// 1536 -> "1.5 KiB".
std::string bytes_text(uint64_t bytes) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  std::ostringstream out;
  if (unit == 0) {
    out << bytes << " B";
  } else {
    out << std::fixed << std::setprecision(1) << value << ' ' << units[unit];
  }
  return out.str();
}

// 7384000 ms -> "2h 03m 04s".
std::string duration_text(uint64_t ms) {
  uint64_t seconds = ms / 1000;
  char text[64];
  if (seconds >= 86400) {
    std::snprintf(text, sizeof text, "%llud %02lluh %02llum", static_cast<unsigned long long>(seconds / 86400),
                  static_cast<unsigned long long>(seconds / 3600 % 24), static_cast<unsigned long long>(seconds / 60 % 60));
  } else if (seconds >= 3600) {
    std::snprintf(text, sizeof text, "%lluh %02llum %02llus", static_cast<unsigned long long>(seconds / 3600),
                  static_cast<unsigned long long>(seconds / 60 % 60), static_cast<unsigned long long>(seconds % 60));
  } else if (seconds >= 60) {
    std::snprintf(text, sizeof text, "%llum %02llus", static_cast<unsigned long long>(seconds / 60),
                  static_cast<unsigned long long>(seconds % 60));
  } else {
    std::snprintf(text, sizeof text, "%.1fs", static_cast<double>(ms) / 1000);
  }
  return text;
}

// Milliseconds since the Unix epoch -> "2024-05-01T10:00:00Z".
std::string utc_text(uint64_t ms) {
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

nlohmann::ordered_json to_json(const HostStats& stats) {
  nlohmann::ordered_json connections = nlohmann::ordered_json::array();
  for (const auto& c : stats.connections) {
    connections.push_back(nlohmann::ordered_json{{"id", c.id},
                           {"address", c.address},
                           {"since_ms", c.since_ms},
                           {"requests", c.requests},
                           {"bytes_in", c.bytes_in},
                           {"bytes_out", c.bytes_out},
                           {"frames_in", c.frames_in},
                           {"frames_out", c.frames_out},
                           {"iterators", c.iterators},
                           {"watches", c.watches},
                           {"snapshots", c.snapshots},
                           {"pending", c.pending},
                           {"extended", c.extended}});
  }
  return nlohmann::ordered_json{{"version", stats.version},
          {"uptime_ms", stats.uptime_ms},
          {"connections_total", stats.connections_total},
          {"database_kind", stats.database_kind},
          {"database_path", stats.database_path},
          {"database_bytes", stats.database_bytes},
          {"seq", stats.seq},
          {"connections", connections}};
}

// Columns padded to their widest cell; numbers right-aligned.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows, size_t text_columns) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      const std::string padding(widths[i] - row[i].size(), ' ');
      const bool last = i + 1 == row.size();
      if (i < text_columns || last) {
        line += row[i] + (last ? "" : padding);
      } else {
        line += padding + row[i];
      }
    }
    out << line << '\n';
  }
}

void print_human(std::ostream& out, const HostStats& stats) {
  std::string database = stats.database_kind.empty() ? "(unknown)" : stats.database_kind;
  if (!stats.database_path.empty()) database += " " + stats.database_path;
  if (stats.database_bytes > 0) database += ", " + bytes_text(stats.database_bytes);
  out << "host         many-level " << stats.version << ", up " << duration_text(stats.uptime_ms) << '\n'
      << "database     " << database << '\n'
      << "sequence     " << stats.seq << '\n'
      << "connections  " << stats.connections.size() << " open, " << stats.connections_total
      << " accepted since start\n\n";
  std::vector<std::vector<std::string>> rows = {{"ADDRESS", "SINCE", "REQUESTS", "BYTES IN", "BYTES OUT", "ITERATORS",
                                                 "WATCHES", "SNAPSHOTS", "PENDING", "GUEST"}};
  for (const auto& c : stats.connections) {
    rows.push_back({c.address.empty() ? "?" : c.address, utc_text(c.since_ms), std::to_string(c.requests),
                    bytes_text(c.bytes_in), bytes_text(c.bytes_out), std::to_string(c.iterators),
                    std::to_string(c.watches), std::to_string(c.snapshots), std::to_string(c.pending),
                    c.extended ? "C++" : "Node"});
  }
  print_table(out, rows, 2);
}

}  // namespace

int stats(const std::vector<std::string>& words) {
  ::signal(SIGPIPE, SIG_IGN);
  try {
    std::set<std::string> with_value = connection_value_options(), flags = guest_flags;
    flags.insert("json");
    Args args(words, with_value, flags);
    if (!args.positional().empty()) throw UsageError("stats takes no argument '" + args.positional().front() + "'");
    check_guest_options(args);
    GuestConnection host(args);
    if (!host.connect()) return exit_failure;
    HostStats stats;
    try {
      stats = host.guest().host_stats();
    } catch (const Error& e) {
      if (!e.is(codes::not_supported)) throw;
      std::cerr << "many-level stats: the host has no statistics (a Node many-level host?)\n";
      return exit_failure;
    }
    if (args.has("json")) {
      // A path that is not UTF-8 must not end the command: such bytes become U+FFFD.
      std::cout << to_json(stats).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
    } else {
      print_human(std::cout, stats);
    }
    std::cout.flush();
    return exit_ok;
  } catch (const UsageError& e) {
    std::cerr << "many-level stats: " << e.what() << " (see many-level --help)\n";
    return exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "many-level stats: " << e.what() << "\n";
    return exit_failure;
  }
}

}  // namespace cli

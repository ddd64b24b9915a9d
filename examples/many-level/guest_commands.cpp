// The guest commands of the many-level program: get, put, del, ls, batch and
// clear against a host, each over one connection that lives for the command.
#include <signal.h>

#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "guest_connection.hpp"
#include "many_level.hpp"

namespace cli {
namespace {

using namespace many_level;

const std::set<std::string> range_options = {"gt", "gte", "lt", "lte", "limit"};

// The range flags of ls and clear, in the key encoding (the database's default).
template <typename Options>
Options range_from(const Args& args) {
  Options options;
  options.gt = args.value("gt");
  options.gte = args.value("gte");
  options.lt = args.value("lt");
  options.lte = args.value("lte");
  if (auto limit = args.number("limit")) options.limit = *limit;
  options.reverse = args.has("reverse");
  return options;
}

Args parse(const std::string& command, const std::vector<std::string>& words) {
  std::set<std::string> with_value = guest_value_options;
  std::set<std::string> flags = guest_flags;
  if (command == "ls" || command == "clear") {
    with_value.insert(range_options.begin(), range_options.end());
    flags.insert("reverse");
  }
  if (command == "ls") flags.insert({"keys", "values"});
  Args args(words, with_value, flags);
  // Everything about the command line is checked before connecting, so a
  // usage error is reported as one (exit 2) whether or not a host is there.
  static const std::map<std::string, std::pair<size_t, std::string>> positional = {
      {"get", {1, "get KEY"}},
      {"put", {2, "put KEY VALUE"}},
      {"del", {1, "del KEY"}},
      {"ls", {0, "no argument to ls, only options"}},
      {"batch", {0, "no argument to batch: operations come on stdin"}},
      {"clear", {0, "no argument to clear, only options"}}};
  const auto& [count, synopsis] = positional.at(command);
  args.expect_positional(count, synopsis);
  if (args.has("keys") && args.has("values")) throw UsageError("--keys and --values exclude each other");
  if (command == "ls" || command == "clear") range_from<ClearOptions>(args);  // --limit must be a number
  check_guest_options(args);
  return args;
}

std::string read_stdin() {
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

// The value of a batch operation: a JSON string as is; with the json value
// encoding, any JSON value as its text.
std::string operation_value(const nlohmann::json& op, bool json_values) {
  if (!op.contains("value")) throw UsageError("a put operation needs a \"value\"");
  const auto& value = op.at("value");
  if (value.is_string() && !json_values) return value.get<std::string>();
  if (json_values) return value.dump();
  throw UsageError("a \"value\" must be a string (or any JSON value with --value-encoding json)");
}

std::vector<BatchOperation> parse_operations(const std::string& text, bool json_values) {
  std::vector<nlohmann::json> ops;
  auto whole = nlohmann::json::parse(text, nullptr, false);
  if (!whole.is_discarded() && whole.is_array()) {
    ops.assign(whole.begin(), whole.end());
  } else {
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto op = nlohmann::json::parse(line, nullptr, false);
      if (op.is_discarded()) throw UsageError("not a JSON operation: " + line);
      ops.push_back(std::move(op));
    }
  }
  std::vector<BatchOperation> operations;
  for (const auto& op : ops) {
    if (!op.is_object() || !op.contains("type") || !op.contains("key") || !op.at("key").is_string()) {
      throw UsageError("an operation is {\"type\": \"put\"|\"del\", \"key\": \"...\", \"value\": ...}, got " +
                       op.dump());
    }
    auto type = op.at("type").get<std::string>();
    auto key = op.at("key").get<std::string>();
    if (type == "put") {
      operations.push_back(BatchOperation::put(key, operation_value(op, json_values)));
    } else if (type == "del") {
      operations.push_back(BatchOperation::del(key));
    } else {
      throw UsageError("an operation's type is put or del, got '" + type + "'");
    }
  }
  return operations;
}

// `db` is the guest, or its sublevel with --prefix.
int run(const std::string& command, const Args& args, Database& db) {
  const auto& words = args.positional();
  if (command == "get") {
    auto value = db.try_get(words[0]);
    if (!value) {
      std::cerr << "many-level: key not found: " << words[0] << "\n";
      return exit_not_found;
    }
    std::cout << *value << "\n";
  } else if (command == "put") {
    db.put(words[0], words[1] == "-" ? read_stdin() : words[1]);
  } else if (command == "del") {
    db.del(words[0]);
  } else if (command == "ls") {
    auto options = range_from<IteratorOptions>(args);
    options.keys = !args.has("values");
    options.values = !args.has("keys");
    auto iterator = db.iterator(options);
    for (auto entries = iterator->nextv(1000); !entries.empty(); entries = iterator->nextv(1000)) {
      for (const auto& entry : entries) {
        if (options.keys && options.values) {
          std::cout << entry.key << '\t' << entry.value << '\n';
        } else {
          std::cout << (options.keys ? entry.key : entry.value) << '\n';
        }
      }
    }
    iterator->close();
  } else if (command == "batch") {
    auto operations = parse_operations(read_stdin(), args.value("value-encoding") == std::optional<std::string>("json"));
    db.batch(operations);
    std::cerr << "many-level: wrote " << operations.size() << " operations\n";
  } else {  // clear
    db.clear(range_from<ClearOptions>(args));
  }
  std::cout.flush();
  return exit_ok;
}

}  // namespace

int guest_command(const std::string& command, const std::vector<std::string>& words) {
  ::signal(SIGPIPE, SIG_IGN);
  try {
    Args args = parse(command, words);
    GuestConnection host(args);
    if (!host.connect()) return exit_failure;
    return run(command, args, host.database());
  } catch (const UsageError& e) {
    std::cerr << "many-level " << command << ": " << e.what() << " (see many-level --help)\n";
    return exit_usage;
  } catch (const Error& e) {
    std::cerr << "many-level " << command << ": " << e.what() << "\n";
    return exit_failure;
  } catch (const std::exception& e) {
    std::cerr << "many-level " << command << ": " << e.what() << "\n";
    return exit_failure;
  }
}

}  // namespace cli

// many-level: serve a database to guests, relay another host, or use a host
// from the command line. The same wire protocol as Node's many-level 2.0.0.
#include <iostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "usage.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty() || words[0] == "--help" || words[0] == "-h" || words[0] == "help") {
    std::cout << cli::usage_text;
    return words.empty() ? cli::exit_usage : cli::exit_ok;
  }
  if (words[0] == "--version") {
    std::cout << "many-level " << MANY_LEVEL_VERSION_STRING << " (wire protocol of many-level "
              << MANY_LEVEL_PROTOCOL_VERSION_STRING << ")\n";
    return cli::exit_ok;
  }
  std::string command = words[0];
  std::vector<std::string> rest(words.begin() + 1, words.end());
  for (const auto& word : rest) {
    if (word == "--help" || word == "-h") {
      std::cout << cli::usage_text;
      return cli::exit_ok;
    }
  }
  if (command == "serve") return cli::serve(rest);
  if (command == "bench") return cli::bench(rest);
  if (command == "stats") return cli::stats(rest);
  if (command == "watch") return cli::watch(rest);
  if (command == "token") return cli::token(rest);
  for (const char* guest : {"get", "put", "del", "ls", "batch", "clear"}) {
    if (command == guest) return cli::guest_command(command, rest);
  }
  std::cerr << "many-level: unknown command '" << command << "' (see many-level --help)\n";
  return cli::exit_usage;
}

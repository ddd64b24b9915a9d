// `many-level token`: make a token for a host that authenticates (serve
// --auth FILE). `create` writes a new random token to a file only its owner
// can read and prints the token file's line for it (its SHA-256 and grant);
// `hash` prints that line for a token read from stdin. The token itself is
// never printed or taken on the command line.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "access_options.hpp"
#include "args.hpp"
#include "commands.hpp"
#include "many_level.hpp"

namespace cli {
namespace {

using namespace many_level;

Grant grant_from(const Args& args) {
  Grant grant;
  grant.read_only = args.has("read-only");
  grant.prefix = args.value_or("prefix", "");
  if (!grant.prefix.empty()) {
    try {
      Sublevel::prefix_of(grant.prefix);
    } catch (const Error& e) {
      throw UsageError("--prefix " + grant.prefix + ": " + e.what());
    }
  }
  return grant;
}

// Writes `token` to a new file `path`, readable by its owner only.
void write_new_file(const std::string& path, const std::string& token) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw Error(codes::io_error, "cannot create " + path + ": " + std::strerror(errno) +
                                     (errno == EEXIST ? " (it exists: tokens are never overwritten)" : ""));
  }
  std::string text = token + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = (::close(fd) == 0) && ok;
  if (!ok) throw Error(codes::io_error, "cannot write " + path);
}

}  // namespace

int token(const std::vector<std::string>& words) {
  try {
    Args args(words, {"out", "prefix"}, {"read-only"});
    if (args.positional().size() != 1) throw UsageError("token takes create or hash");
    const std::string& action = args.positional().front();
    Grant grant = grant_from(args);
    std::string token;
    if (action == "create") {
      auto out = args.value("out");
      if (!out) throw UsageError("token create needs --out FILE (the token goes there, not to the terminal)");
      token = generate_token();
      write_new_file(*out, token);
      std::cerr << "many-level: the token is in " << *out << " (mode 0600); add this line to the host's --auth file:\n";
    } else if (action == "hash") {
      if (args.has("out")) throw UsageError("token hash reads the token from stdin and takes no --out");
      token = trimmed_token(std::string(std::istreambuf_iterator<char>(std::cin), {}));
      if (token.empty()) throw UsageError("token hash reads a token from stdin, and got none");
    } else {
      throw UsageError("token takes create or hash, not '" + action + "'");
    }
    std::cout << token_file_line(token_hash(token), grant) << "\n";
    return exit_ok;
  } catch (const UsageError& e) {
    std::cerr << "many-level token: " << e.what() << " (see many-level --help)\n";
    return exit_usage;
  } catch (const Error& e) {
    std::cerr << "many-level token: " << e.message() << "\n";
    return exit_failure;
  }
}

}  // namespace cli

// Who may use a host, and how much of it: tokens and grants (docs/SECURITY.md).
//
// A guest presents a token in its Hello (the extension's first frame). The
// host keeps only SHA-256 hashes of tokens, each with a grant: read-write or
// read-only, and optionally a sublevel name the guest is confined to (it sees
// that subtree as its whole database, as a sublevel does). A guest that says
// no Hello (a Node many-level guest) or no token gets the listener's
// anonymous grant, if it has one; else it is refused, and so is a wrong token.
//
// The token file (`many-level serve --auth FILE`), one grant per line:
//
//   # SHA-256 of the token (hex)                                    grant      confined to
//   9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 read-write
//   60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752 read-only  reports
//
// `many-level token create` makes a token and prints its line.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../sublevel.hpp"
#include "../version.hpp"
#include "sha256.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// What one guest may do.
struct Grant {
  bool read_only = false;
  // The sublevel name the guest is confined to; empty: the whole database.
  std::string prefix;

  static Grant read_write_all() { return {}; }
  static Grant read_only_all() { return {true, {}}; }

  // "read-only" or "read-write": the word the token file and the CLI use.
  const char* access() const { return read_only ? "read-only" : "read-write"; }

  // For messages: "read-only", "read-write, confined to sublevel 'a'".
  std::string describe() const {
    std::string out = access();
    if (!prefix.empty()) out += ", confined to sublevel '" + prefix + "'";
    return out;
  }

  // "read-only" / "read-write"; nullopt for anything else.
  static std::optional<Grant> parse_access(std::string_view word) {
    if (word == "read-only") return read_only_all();
    if (word == "read-write") return read_write_all();
    return std::nullopt;
  }

  bool operator==(const Grant& other) const { return read_only == other.read_only && prefix == other.prefix; }
};

// The SHA-256 of a token, in lower-case hex: what the token file holds.
inline std::string token_hash(std::string_view token) { return detail::Sha256::hex(token); }

// A new token: 32 bytes from the kernel's random source, in hex.
inline std::string generate_token() {
  unsigned char bytes[32];
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(codes::io_error, std::string("cannot open /dev/urandom: ") + std::strerror(errno));
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::read(fd, bytes + got, sizeof bytes - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      throw Error(codes::io_error, "cannot read /dev/urandom");
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  static const char digits[] = "0123456789abcdef";
  std::string token;
  for (unsigned char byte : bytes) {
    token += digits[byte >> 4];
    token += digits[byte & 15];
  }
  return token;
}

// The token file's line for a token's hash and its grant.
inline std::string token_file_line(std::string_view hash, const Grant& grant) {
  std::string line = std::string(hash) + " " + grant.access();
  if (!grant.prefix.empty()) line += " " + grant.prefix;
  return line;
}

// Token hashes and their grants.
class TokenTable {
 public:
  // Adds a grant for the token whose SHA-256 is `hash` (64 hex digits).
  void add_hash(std::string_view hash, Grant grant) {
    std::string lower;
    for (char c : hash) lower += static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    if (!is_hash(lower)) throw Error(codes::invalid_argument, "a token hash is 64 hex digits (SHA-256)");
    if (!grant.prefix.empty()) Sublevel::prefix_of(grant.prefix);  // LEVEL_INVALID_PREFIX now, not at connect
    entries_.push_back({std::move(lower), std::move(grant)});
  }

  void add_token(std::string_view token, Grant grant) { add_hash(token_hash(token), std::move(grant)); }

  // The grant of `token`, if any. Every entry is compared, each in constant
  // time, so the time taken says nothing of which hash came close.
  std::optional<Grant> grant_for(std::string_view token) const {
    const std::string hash = token_hash(token);
    const Entry* found = nullptr;
    for (const auto& entry : entries_) {
      unsigned char difference = 0;
      for (size_t i = 0; i < hash.size(); ++i) difference |= static_cast<unsigned char>(hash[i] ^ entry.hash[i]);
      if (difference == 0 && !found) found = &entry;
    }
    if (!found) return std::nullopt;
    return found->grant;
  }

  size_t size() const { return entries_.size(); }

  // A token file's text; `source` names it in errors ("FILE:LINE: ...").
  static TokenTable parse(std::string_view text, const std::string& source = "token file") {
    TokenTable table;
    std::istringstream lines{std::string(text)};
    std::string line;
    for (int number = 1; std::getline(lines, line); ++number) {
      auto where = source + ":" + std::to_string(number) + ": ";
      if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
      std::istringstream words(line);
      std::vector<std::string> fields;
      for (std::string word; words >> word;) fields.push_back(word);
      if (fields.empty()) continue;
      if (fields.size() < 2 || fields.size() > 3) {
        throw Error(codes::invalid_argument, where + "expected 'HASH read-only|read-write [SUBLEVEL]'");
      }
      auto grant = Grant::parse_access(fields[1]);
      if (!grant) throw Error(codes::invalid_argument, where + "the grant is read-only or read-write, not '" + fields[1] + "'");
      if (fields.size() == 3) grant->prefix = fields[2];
      try {
        table.add_hash(fields[0], *grant);
      } catch (const Error& e) {
        throw Error(e.code(), where + e.message());
      }
    }
    return table;
  }

  // Reads a token file. Refuses one that others than its owner may write:
  // it says who may use the database. (Others may read it: it holds hashes.)
  static TokenTable load(const std::string& path) {
    struct stat status {};
    if (::stat(path.c_str(), &status) == 0 && (status.st_mode & (S_IWGRP | S_IWOTH))) {
      throw Error(codes::invalid_argument, "the token file " + path + " may be written by others than its owner (chmod go-w)");
    }
    std::ifstream file(path, std::ios::binary);
    if (!file) throw Error(codes::io_error, "cannot read the token file " + path + ": " + std::strerror(errno));
    std::ostringstream text;
    text << file.rdbuf();
    return parse(text.str(), path);
  }

 private:
  struct Entry {
    std::string hash;
    Grant grant;
  };

  static bool is_hash(const std::string& text) {
    if (text.size() != 64) return false;
    for (char c : text) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
  }

  std::vector<Entry> entries_;
};

// Who may use a listener (or a whole host, as HostOptions::access).
struct HostAccess {
  // The tokens it accepts; none: it does not authenticate, and every guest
  // gets `anonymous`.
  std::shared_ptr<const TokenTable> tokens;
  // What a guest without a token gets (a Node guest cannot send one); none:
  // such a guest is refused.
  std::optional<Grant> anonymous = Grant::read_write_all();

  // Everyone may do everything: a host without authentication, as today.
  static HostAccess open() { return {}; }

  // Tokens only; `anonymous` lets guests without one in with that grant.
  static HostAccess with_tokens(std::shared_ptr<const TokenTable> tokens, std::optional<Grant> anonymous = std::nullopt) {
    HostAccess access;
    access.tokens = std::move(tokens);
    access.anonymous = std::move(anonymous);
    return access;
  }

  bool authenticates() const { return tokens != nullptr; }
};

MANY_LEVEL_NAMESPACE_END

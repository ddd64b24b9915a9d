// The access options of the many-level program (docs/SECURITY.md): on serve,
// --auth FILE (token hashes and grants) and --allow-anonymous GRANT[@ADDRESS]
// (what a guest without a token, such as a Node guest, may do on all
// listeners or on one); on guests, the token from --token-file FILE or the
// MANY_LEVEL_TOKEN environment variable, never from the command line.
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "args.hpp"
#include "many_level.hpp"

namespace cli {

// Who may use each of serve's listeners.
class ServeAccess {
 public:
  ServeAccess() = default;

  // From --auth and --allow-anonymous; `listeners` are the --listen addresses
  // (and "stdio" for --stdio), which a GRANT@ADDRESS must name.
  ServeAccess(const Args& args, const std::vector<std::string>& listeners) {
    auto anonymous = args.values("allow-anonymous");
    auto file = args.value("auth");
    if (!file) {
      if (!anonymous.empty()) throw UsageError("--allow-anonymous goes with --auth (without it, everyone is let in)");
      return;
    }
    try {
      tokens_ = std::make_shared<many_level::TokenTable>(many_level::TokenTable::load(*file));
    } catch (const many_level::Error& e) {
      throw UsageError("--auth: " + e.message());
    }
    for (const auto& word : anonymous) {
      auto at = word.find('@');
      auto grant = many_level::Grant::parse_access(word.substr(0, at));
      if (!grant) throw UsageError("--allow-anonymous takes read-only or read-write[@ADDRESS], got '" + word + "'");
      if (at == std::string::npos) {
        everywhere_ = grant;
        continue;
      }
      std::string address = word.substr(at + 1);
      bool known = false;
      for (const auto& listener : listeners) known = known || listener == address;
      if (!known) throw UsageError("--allow-anonymous " + word + ": no --listen " + address + (address == "stdio" ? " (--stdio)" : ""));
      per_listener_[address] = *grant;
    }
  }

  bool authenticates() const { return tokens_ != nullptr; }

  // The access of the listener at `address` ("stdio" for --stdio).
  many_level::HostAccess for_listener(const std::string& address) const {
    if (!tokens_) return many_level::HostAccess::open();
    auto found = per_listener_.find(address);
    return many_level::HostAccess::with_tokens(tokens_, found != per_listener_.end() ? std::optional(found->second) : everywhere_);
  }

  // For the log line of a listener: "", or ", tokens (N), anonymous read-only".
  std::string describe(const std::string& address) const {
    if (!tokens_) return "";
    auto access = for_listener(address);
    return ", tokens (" + std::to_string(tokens_->size()) + ")" +
           (access.anonymous ? std::string(", anonymous ") + access.anonymous->access() : ", no anonymous guests");
  }

 private:
  std::shared_ptr<const many_level::TokenTable> tokens_;
  std::optional<many_level::Grant> everywhere_;
  std::map<std::string, many_level::Grant> per_listener_;
};

// A token as a file or a variable holds it: the first line, without the
// spaces and line end around it.
inline std::string trimmed_token(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  auto first = line.find_first_not_of(" \t\r");
  auto last = line.find_last_not_of(" \t\r");
  return first == std::string::npos ? std::string() : line.substr(first, last - first + 1);
}

// The guest's token: --token-file FILE, else MANY_LEVEL_TOKEN, else none.
inline std::optional<std::string> guest_token(const Args& args) {
  if (auto file = args.value("token-file")) {
    std::ifstream in(*file, std::ios::binary);
    if (!in) throw UsageError("--token-file: cannot read " + *file);
    std::ostringstream text;
    text << in.rdbuf();
    auto token = trimmed_token(text.str());
    if (token.empty()) throw UsageError("--token-file: " + *file + " holds no token");
    return token;
  }
  if (const char* variable = std::getenv("MANY_LEVEL_TOKEN")) {
    auto token = trimmed_token(variable);
    if (!token.empty()) return token;
  }
  return std::nullopt;
}

}  // namespace cli

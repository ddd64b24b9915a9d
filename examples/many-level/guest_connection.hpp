// What every guest command of the many-level program shares: the guest
// options (--connect, --key-encoding, --value-encoding, --prefix), checked
// before connecting so that a usage error is one whether or not a host is
// there, and one connection to the host that lives for the command.
#pragma once

#include <iostream>
#include <memory>
#include <set>
#include <string>

#include "args.hpp"
#include "many_level.hpp"

namespace cli {

inline const char* const default_address = "tcp://127.0.0.1:9000";

// The options each guest command takes besides its own.
inline const std::set<std::string> guest_value_options = {"connect", "key-encoding", "value-encoding", "prefix"};

// Usage errors in the guest options: a malformed address, an unknown encoding.
inline void check_guest_options(const Args& args) {
  try {
    many_level::parse_address(args.value_or("connect", default_address));
  } catch (const many_level::Error& e) {
    throw UsageError(e.message());
  }
  for (const char* option : {"key-encoding", "value-encoding"}) {
    if (auto name = args.value(option)) {
      if (*name != "utf8" && *name != "hex" && *name != "base64" && *name != "json") {
        throw UsageError(std::string("--") + option + " must be utf8, hex, base64 or json, got '" + *name + "'");
      }
    }
  }
}

// A guest connected to the host at --connect for the life of one command.
class GuestConnection {
 public:
  explicit GuestConnection(const Args& args)
      : address_(args.value_or("connect", default_address)), guest_(options_from(args)) {
    if (auto prefix = args.value("prefix")) {
      many_level::SublevelOptions options;  // the encodings the user chose, not the sublevel's defaults
      options.key_encoding = args.value_or("key-encoding", "utf8");
      options.value_encoding = args.value_or("value-encoding", "utf8");
      sublevel_ = guest_.sublevel(*prefix, options);  // a name abstract-level refuses: LEVEL_INVALID_PREFIX
    }
  }

  // Closes the guest first: the stream's thread must not outlive it.
  ~GuestConnection() {
    sublevel_.reset();
    guest_.close();
  }

  GuestConnection(const GuestConnection&) = delete;
  GuestConnection& operator=(const GuestConnection&) = delete;

  // Connects; false, with the reason on stderr, when the host is not there.
  // `on_close` runs (on the stream's thread) when the stream ends.
  bool connect(many_level::FdConnection::CloseCallback on_close = nullptr) {
    session_ = guest_.connect();
    try {
      connection_ = many_level::connect_fd(address_, *session_, std::move(on_close));
    } catch (const many_level::Error& e) {
      std::cerr << "many-level: " << e.message() << "\n";
      session_->end();
      return false;
    }
    return true;
  }

  const std::string& address() const { return address_; }
  many_level::Guest& guest() { return guest_; }
  // What the command works on: the sublevel --prefix NAME, or the whole database.
  many_level::Database& database() { return sublevel_ ? static_cast<many_level::Database&>(*sublevel_) : guest_; }

 private:
  static many_level::GuestOptions options_from(const Args& args) {
    many_level::GuestOptions options;
    options.encodings.key_encoding = args.value_or("key-encoding", "utf8");
    options.encodings.value_encoding = args.value_or("value-encoding", "utf8");
    return options;
  }

  std::string address_;
  many_level::Guest guest_;
  std::unique_ptr<many_level::Sublevel> sublevel_;
  // The stream's session: the connection pumps it by reference, so it lives
  // as long as the connection does (members go in reverse order).
  std::shared_ptr<many_level::Session> session_;
  many_level::FdConnection connection_;
};

}  // namespace cli

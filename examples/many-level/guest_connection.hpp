// What every guest command of the many-level program shares: the guest
// options (--connect, --token-file, --key-encoding, --value-encoding,
// --prefix, and the TLS options of tls_options.hpp), checked
// before connecting so that a usage error is one whether or not a host is
// there, and one connection to the host that lives for the command.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "access_options.hpp"
#include "args.hpp"
#include "many_level.hpp"
#include "tls_options.hpp"

namespace cli {

inline const char* const default_address = "tcp://127.0.0.1:9000";

// The options that reach a host: where, over what, and as whom.
inline std::set<std::string> connection_value_options() {
  std::set<std::string> options = tls_guest_value_options;
  options.insert({"connect", "token-file"});
  return options;
}

// The options each guest command takes besides its own: the connection's,
// and how keys and values are read and written.
inline const std::set<std::string> guest_value_options = [] {
  auto options = connection_value_options();
  options.insert({"key-encoding", "value-encoding", "prefix"});
  return options;
}();
inline const std::set<std::string> guest_flags = tls_guest_flags;

// Usage errors in the guest options: a malformed address, an unknown
// encoding, TLS options that do not fit the address.
inline void check_guest_options(const Args& args) {
  try {
    TlsFlags::from(args).check_guest(many_level::parse_address(args.value_or("connect", default_address)), "connect");
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
      : address_(args.value_or("connect", default_address)), tls_(TlsFlags::from(args)), guest_(options_from(args)) {
    if (auto prefix = args.value("prefix")) {
      many_level::SublevelOptions options;  // the encodings the user chose, not the sublevel's defaults
      options.key_encoding = args.value_or("key-encoding", "utf8");
      options.value_encoding = args.value_or("value-encoding", "utf8");
      sublevel_ = guest_.sublevel(*prefix, options);  // a name abstract-level refuses: LEVEL_INVALID_PREFIX
    }
  }

  // Closes the guest first: the stream's thread must not outlive it.
  ~GuestConnection() {
    closing_.store(true);
    sublevel_.reset();
    guest_.close();
  }

  GuestConnection(const GuestConnection&) = delete;
  GuestConnection& operator=(const GuestConnection&) = delete;

  // Connects; false, with the reason on stderr, when the host is not there
  // (or, over tls://, its TLS handshake fails: the certificates' reason).
  // `on_close` runs (on the stream's thread) when the stream ends.
  bool connect(many_level::FdConnection::CloseCallback on_close = nullptr) {
    struct Closed {
      std::mutex mutex;
      std::condition_variable changed;
      bool done = false;
    };
    auto closed = std::make_shared<Closed>();
    session_ = guest_.connect();
    try {
      const many_level::Address address = many_level::parse_address(address_);
      stream_ = guest_stream(tls_, address, session_);  // a TLS file that cannot be used throws
      connection_ = many_level::connect_fd(
          address, *stream_,
          [this, closed, tls = address.tls, name = address_, on_close](const std::string& reason) {
            // A TLS failure ends the stream, not a request: say why here, once.
            if (tls && !closing_.load()) std::cerr << "many-level: " << name << ": " << tls_end_reason(reason) << "\n";
            {
              std::lock_guard<std::mutex> lock(closed->mutex);
              closed->done = true;
            }
            closed->changed.notify_all();
            if (on_close) on_close(reason);
            // A stream that ended on its own (a host that went away, or
            // refused a client certificate after the handshake) fails what
            // is in flight; the guest would keep what comes after waiting for
            // a stream that never comes: closing it fails those too.
            if (!closing_.load()) {
              try {
                guest_.close();
              } catch (...) {
              }
            }
          });
      if (address.tls) {  // the handshake first, so a certificate the guest refuses fails here
        std::unique_lock<std::mutex> lock(closed->mutex);
        while (!closed->done && !tls_handshake_done(*stream_)) {
          closed->changed.wait_for(lock, std::chrono::milliseconds(5));
        }
        if (closed->done) return false;  // the reason is on stderr
      }
    } catch (const many_level::Error& e) {
      std::cerr << "many-level: " << e.message() << "\n";
      (stream_ ? stream_ : session_)->end();
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
    options.token = guest_token(args);  // a file that cannot be read is a usage error
    return options;
  }

  std::string address_;
  std::atomic<bool> closing_{false};  // the command is done: the stream's end is ours
  TlsFlags tls_;
  many_level::Guest guest_;
  std::unique_ptr<many_level::Sublevel> sublevel_;
  // The stream's session: the connection pumps it by reference, so it lives
  // as long as the connection does (members go in reverse order).
  std::shared_ptr<many_level::Session> session_;
  std::shared_ptr<many_level::Session> stream_;  // session_, or session_ in TLS
  many_level::FdConnection connection_;
};

}  // namespace cli

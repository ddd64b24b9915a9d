// Errors carry a code string from abstract-level's LEVEL_* family, because that
// code is exactly what travels on the wire and what Node peers compare against.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

namespace codes {
inline constexpr const char* not_found = "LEVEL_NOT_FOUND";
inline constexpr const char* database_not_open = "LEVEL_DATABASE_NOT_OPEN";
inline constexpr const char* database_not_closed = "LEVEL_DATABASE_NOT_CLOSED";
inline constexpr const char* iterator_not_open = "LEVEL_ITERATOR_NOT_OPEN";
inline constexpr const char* iterator_busy = "LEVEL_ITERATOR_BUSY";
inline constexpr const char* batch_not_open = "LEVEL_BATCH_NOT_OPEN";
inline constexpr const char* invalid_key = "LEVEL_INVALID_KEY";
inline constexpr const char* invalid_value = "LEVEL_INVALID_VALUE";
inline constexpr const char* not_supported = "LEVEL_NOT_SUPPORTED";
inline constexpr const char* encoding_not_found = "LEVEL_ENCODING_NOT_FOUND";
inline constexpr const char* encoding_not_supported = "LEVEL_ENCODING_NOT_SUPPORTED";
inline constexpr const char* decode_error = "LEVEL_DECODE_ERROR";
inline constexpr const char* encode_error = "LEVEL_ENCODE_ERROR";
inline constexpr const char* io_error = "LEVEL_IO_ERROR";
inline constexpr const char* corruption = "LEVEL_CORRUPTION";
inline constexpr const char* locked = "LEVEL_LOCKED";
inline constexpr const char* readonly = "LEVEL_READONLY";
inline constexpr const char* remote_error = "LEVEL_REMOTE_ERROR";
inline constexpr const char* connection_lost = "LEVEL_CONNECTION_LOST";
inline constexpr const char* invalid_argument = "LEVEL_INVALID_ARGUMENT";
inline constexpr const char* protocol_error = "LEVEL_PROTOCOL_ERROR";
// abstract-level 2/3's code for a read that names a closed snapshot.
inline constexpr const char* snapshot_not_open = "LEVEL_SNAPSHOT_NOT_OPEN";
// This project's: a watch asked to resume from, or fell behind to, a commit
// the history no longer holds. Reload, then watch again.
inline constexpr const char* watch_too_old = "LEVEL_WATCH_TOO_OLD";
// This project's: a per-connection limit of the host (snapshots, watches).
inline constexpr const char* limit_reached = "LEVEL_LIMIT_REACHED";
// This project's: the host authenticates and this guest presented no token
// it accepts (or none, where anonymous guests are not let in).
inline constexpr const char* unauthenticated = "LEVEL_UNAUTHENTICATED";
// This project's: the guest's grant does not allow this (host statistics for
// a guest confined to a sublevel).
inline constexpr const char* access_denied = "LEVEL_ACCESS_DENIED";
}  // namespace codes

// Every failure the library reports is an Error with a LEVEL_* code and a
// message for humans. what() holds "CODE: message".
class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message)
      : std::runtime_error(code + ": " + message), code_(std::move(code)), message_(message) {}

  const std::string& code() const noexcept { return code_; }
  // The message without its code.
  const std::string& message() const noexcept { return message_; }
  bool is(std::string_view code) const noexcept { return code_ == code; }

 private:
  std::string code_;
  std::string message_;
};

// The code a host reports to a guest for any exception, as the reference does:
// LEVEL_* codes pass through, everything else becomes LEVEL_REMOTE_ERROR.
inline std::string wire_error_code(const std::exception& error) {
  if (auto* level = dynamic_cast<const Error*>(&error)) {
    if (level->code().rfind("LEVEL_", 0) == 0) return level->code();
  }
  return codes::remote_error;
}

MANY_LEVEL_NAMESPACE_END

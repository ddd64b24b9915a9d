// What the connection form adds to an address: TLS for a tls:// host (the
// CAs to trust, an optional client certificate, or no verification at all)
// and the token a host that authenticates asks for. The token is read from
// a file (its first line, trimmed) or else from MANY_LEVEL_TOKEN; it is
// never typed into the form nor saved.
#pragma once

#include <QString>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "endpoint.h"
#include "many_level/transport/address.hpp"
#include "many_level/transport/session.hpp"

namespace inspector {

// The environment variable a token comes from when no token file is given.
inline constexpr const char* kTokenEnvironmentVariable = "MANY_LEVEL_TOKEN";

// Mirrors many_level::TlsClientOptions (which needs OpenSSL) in Qt terms.
struct TlsSettings {
  QString ca_file;           // empty: the system's CAs
  QString certificate_file;  // a client certificate, with its key (both or neither)
  QString private_key_file;
  bool insecure = false;  // no verification of the host at all

  bool operator==(const TlsSettings& other) const {
    return ca_file == other.ca_file && certificate_file == other.certificate_file &&
           private_key_file == other.private_key_file && insecure == other.insecure;
  }
};

// ConnectorOptions::wrap_session's type: wraps a guest's stream (TLS).
using SessionWrapper =
    std::function<std::shared_ptr<many_level::Session>(std::shared_ptr<many_level::Session>, const many_level::Address&)>;

// False when the library was built without OpenSSL (MANY_LEVEL_NO_OPENSSL).
bool tlsAvailable();

// A TLS wrapper (tls_wrapper(TlsContext::client(...))) for `settings`, or
// nullptr with the reason in `error` (a CA file that cannot be loaded, a
// certificate without its key, no TLS in this build).
SessionWrapper makeTlsWrapper(const TlsSettings& settings, QString* error);

// The first line of `path`, trimmed; nullopt with the reason in `error`
// when the file cannot be read or its first line is empty.
std::optional<std::string> readTokenFile(const QString& path, QString* error);

// The token to send: read from `token_file` when it is not empty (a bad file
// is an error: false, the reason in `error`), else MANY_LEVEL_TOKEN when it
// is set and not empty, else none. `source` (if given) says where it came from.
bool resolveToken(const QString& token_file, std::optional<std::string>* token, QString* error,
                  QString* source = nullptr);

// Everything the form says about one connection.
struct ConnectRequest {
  Endpoint endpoint;
  std::optional<TlsSettings> tls;  // set for a tls:// address only
  SessionWrapper wrap;             // made from `tls`
  QString token_file;
  std::optional<std::string> token;
  QString token_source;  // "file PATH", "MANY_LEVEL_TOKEN" or empty
};

}  // namespace inspector

// Where the Inspector connects: tcp://HOST:PORT, tls://HOST:PORT (TCP carrying
// TLS) or unix:PATH, parsed by the
// library's own parse_address so the Inspector and the many-level program
// accept exactly the same addresses.
#pragma once

#include <QString>

#include <optional>

#include "many_level/transport/address.hpp"

namespace inspector {

struct Endpoint {
  enum class Kind { tcp, local };

  Kind kind = Kind::tcp;
  QString host;
  quint16 port = 0;
  bool tls = false;  // tcp only: the stream carries TLS (tls://HOST:PORT)
  QString path;

  static Endpoint tcp(QString host, quint16 port);
  static Endpoint local(QString path);

  // nullopt (and a reason in `error`) when `text` is not an address.
  static std::optional<Endpoint> parse(const QString& text, QString* error = nullptr);

  QString toString() const;
  // The library's address (for a SessionWrapper).
  many_level::Address toAddress() const;
  bool operator==(const Endpoint& other) const;
  bool operator!=(const Endpoint& other) const { return !(*this == other); }
};

}  // namespace inspector

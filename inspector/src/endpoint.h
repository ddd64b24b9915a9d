// Where the Inspector connects: tcp://HOST:PORT or unix:PATH, parsed by the
// library's own parse_address so the Inspector and the many-level program
// accept exactly the same addresses.
#pragma once

#include <QString>

#include <optional>

namespace inspector {

struct Endpoint {
  enum class Kind { tcp, local };

  Kind kind = Kind::tcp;
  QString host;
  quint16 port = 0;
  QString path;

  static Endpoint tcp(QString host, quint16 port);
  static Endpoint local(QString path);

  // nullopt (and a reason in `error`) when `text` is not an address.
  static std::optional<Endpoint> parse(const QString& text, QString* error = nullptr);

  QString toString() const;
  bool operator==(const Endpoint& other) const;
  bool operator!=(const Endpoint& other) const { return !(*this == other); }
};

}  // namespace inspector

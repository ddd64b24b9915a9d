#include "endpoint.h"

#include "many_level/error.hpp"
#include "many_level/transport/address.hpp"

namespace inspector {

Endpoint Endpoint::tcp(QString host, quint16 port) {
  Endpoint endpoint;
  endpoint.host = std::move(host);
  endpoint.port = port;
  return endpoint;
}

Endpoint Endpoint::local(QString path) {
  Endpoint endpoint;
  endpoint.kind = Kind::local;
  endpoint.path = std::move(path);
  return endpoint;
}

std::optional<Endpoint> Endpoint::parse(const QString& text, QString* error) {
  try {
    many_level::Address address = many_level::parse_address(text.trimmed().toStdString());
    if (address.is_unix()) return local(QString::fromStdString(address.path));
    return tcp(QString::fromStdString(address.host), address.port);
  } catch (const many_level::Error& e) {
    if (error) *error = QString::fromStdString(e.message());
    return std::nullopt;
  }
}

QString Endpoint::toString() const {
  if (kind == Kind::local) return QStringLiteral("unix:") + path;
  if (host.contains(QLatin1Char(':'))) return QStringLiteral("tcp://[%1]:%2").arg(host).arg(port);
  return QStringLiteral("tcp://%1:%2").arg(host).arg(port);
}

bool Endpoint::operator==(const Endpoint& other) const {
  return kind == other.kind && host == other.host && port == other.port && path == other.path;
}

}  // namespace inspector

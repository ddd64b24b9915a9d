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
    Endpoint endpoint = tcp(QString::fromStdString(address.host), address.port);
    endpoint.tls = address.tls;
    return endpoint;
  } catch (const many_level::Error& e) {
    if (error) *error = QString::fromStdString(e.message());
    return std::nullopt;
  }
}

QString Endpoint::toString() const {
  if (kind == Kind::local) return QStringLiteral("unix:") + path;
  const QString scheme = tls ? QStringLiteral("tls://") : QStringLiteral("tcp://");
  if (host.contains(QLatin1Char(':'))) return scheme + QStringLiteral("[%1]:%2").arg(host).arg(port);
  return scheme + QStringLiteral("%1:%2").arg(host).arg(port);
}

many_level::Address Endpoint::toAddress() const {
  if (kind == Kind::local) return many_level::Address::unix_socket(path.toStdString());
  return many_level::Address::tcp(host.toStdString(), port).with_tls(tls);
}

bool Endpoint::operator==(const Endpoint& other) const {
  return kind == other.kind && host == other.host && port == other.port && path == other.path &&
         tls == other.tls;
}

}  // namespace inspector

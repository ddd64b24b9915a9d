#include "host_server.h"

#include <QLocalServer>
#include <QLocalSocket>
#include <QTcpServer>
#include <QTcpSocket>

#include "session_pump.h"

namespace inspector {

HostServer::HostServer(many_level::Host& host, QObject* parent) : QObject(parent), host_(host) {}

HostServer::~HostServer() {
  for (SessionPump* pump : pumps_) delete pump;  // ends each session
  pumps_.clear();
}

bool HostServer::listen(const Endpoint& endpoint, QString* error) {
  if (endpoint.kind == Endpoint::Kind::local) {
    local_ = new QLocalServer(this);
    QLocalServer::removeServer(endpoint.path);
    if (!local_->listen(endpoint.path)) {
      if (error) *error = local_->errorString();
      return false;
    }
    connect(local_, &QLocalServer::newConnection, this, [this] {
      while (QLocalSocket* socket = local_->nextPendingConnection()) {
        adopt(socket, QStringLiteral("unix:%1").arg(local_->fullServerName()));
      }
    });
    endpoint_ = Endpoint::local(local_->fullServerName());
    return true;
  }
  tcp_ = new QTcpServer(this);
  QHostAddress address(endpoint.host == QLatin1String("localhost") ? QStringLiteral("127.0.0.1") : endpoint.host);
  if (!tcp_->listen(address, endpoint.port)) {
    if (error) *error = tcp_->errorString();
    return false;
  }
  connect(tcp_, &QTcpServer::newConnection, this, [this] {
    while (QTcpSocket* socket = tcp_->nextPendingConnection()) {
      socket->setSocketOption(QAbstractSocket::LowDelayOption, 1);
      adopt(socket, Endpoint::tcp(socket->peerAddress().toString(), socket->peerPort()).toString());
    }
  });
  endpoint_ = Endpoint::tcp(tcp_->serverAddress().toString(), tcp_->serverPort());
  return true;
}

void HostServer::adopt(QIODevice* socket, const QString& peer) {
  // The peer's address goes to the host's statistics (the Host tab).
  auto* pump = new SessionPump(socket, host_.create_session(peer.toStdString()), this);
  socket->setParent(pump);
  pumps_.append(pump);
  connect(pump, &SessionPump::finished, this, [this, pump](const QString& reason) {
    pumps_.removeOne(pump);
    pump->deleteLater();
    emit connectionClosed(reason);
  });
  pump->start();
  emit connectionOpened();
}

void HostServer::dropAll() {
  const auto pumps = pumps_;
  for (SessionPump* pump : pumps) pump->close(QStringLiteral("dropped by the host"));
}

}  // namespace inspector

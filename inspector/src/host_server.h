// Serves a many_level::Host on a TCP port (QTcpServer) or a local socket
// (QLocalServer): one HostSession per connection, pumped by a SessionPump.
// The Inspector itself is a guest; this exists for its tests, its screenshot
// tool and its --demo mode, which need a real host in-process.
#pragma once

#include <QList>
#include <QObject>

#include "endpoint.h"
#include "many_level/host/host.hpp"

class QIODevice;
class QLocalServer;
class QTcpServer;

namespace inspector {

class SessionPump;

class HostServer : public QObject {
  Q_OBJECT

 public:
  explicit HostServer(many_level::Host& host, QObject* parent = nullptr);
  ~HostServer() override;

  // Listens at `endpoint` (tcp port 0 picks a free port). False, with a
  // reason in `error`, on failure.
  bool listen(const Endpoint& endpoint, QString* error = nullptr);
  // Where it listens, with the real port.
  Endpoint endpoint() const { return endpoint_; }
  int connectionCount() const { return pumps_.size(); }

 public slots:
  // Closes every connection from the host's side.
  void dropAll();

 signals:
  void connectionOpened();
  void connectionClosed(const QString& reason);

 private:
  void adopt(QIODevice* socket, const QString& peer);

  many_level::Host& host_;
  QTcpServer* tcp_ = nullptr;
  QLocalServer* local_ = nullptr;
  Endpoint endpoint_;
  QList<SessionPump*> pumps_;
};

}  // namespace inspector

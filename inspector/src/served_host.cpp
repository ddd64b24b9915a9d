#include "served_host.h"

#include <stdexcept>

#include "host_server.h"

namespace inspector {

ServedHost::ServedHost(many_level::Database& db, many_level::HostOptions options)
    : host_(db, std::move(options), 4) {
  thread_.setObjectName(QStringLiteral("served-host"));
  thread_.start();
  server_ = new HostServer(host_);
  server_->moveToThread(&thread_);
}

ServedHost::~ServedHost() {
  // Deleted on its thread, where its sockets live (deferred deletes run as
  // the thread finishes); that ends every session before the host goes.
  server_->deleteLater();
  thread_.quit();
  thread_.wait();
}

Endpoint ServedHost::listen(const Endpoint& endpoint) {
  bool ok = false;
  QString error;
  QMetaObject::invokeMethod(
      server_, [&] { ok = server_->listen(endpoint, &error); }, Qt::BlockingQueuedConnection);
  if (!ok) throw std::runtime_error("cannot listen at " + endpoint.toString().toStdString() + ": " + error.toStdString());
  return server_->endpoint();
}

int ServedHost::connectionCount() const {
  int count = 0;
  QMetaObject::invokeMethod(
      server_, [&] { count = server_->connectionCount(); }, Qt::BlockingQueuedConnection);
  return count;
}

void ServedHost::dropAll() { QMetaObject::invokeMethod(server_, &HostServer::dropAll, Qt::BlockingQueuedConnection); }

}  // namespace inspector

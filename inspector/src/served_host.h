// A host inside the Inspector's process: a Database served by a HostServer
// on a thread of its own, so the host keeps answering while the thread that
// owns this waits on it. For tests, the screenshot tool and --demo.
#pragma once

#include <QThread>

#include <memory>

#include "endpoint.h"
#include "many_level/database.hpp"
#include "many_level/host/host.hpp"

namespace inspector {

class HostServer;

class ServedHost {
 public:
  explicit ServedHost(many_level::Database& db, many_level::HostOptions options = {});
  ~ServedHost();

  ServedHost(const ServedHost&) = delete;
  ServedHost& operator=(const ServedHost&) = delete;

  // Starts listening (tcp port 0 picks a free port) and returns where.
  // Throws std::runtime_error when it cannot listen.
  Endpoint listen(const Endpoint& endpoint = Endpoint::tcp(QStringLiteral("127.0.0.1"), 0));

  int connectionCount() const;
  // Closes every guest's connection from the host's side.
  void dropAll();
  many_level::Host& host() { return host_; }
  HostServer* server() { return server_; }

 private:
  many_level::Host host_;
  QThread thread_;
  HostServer* server_ = nullptr;  // lives on thread_
};

}  // namespace inspector

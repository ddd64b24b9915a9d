// What the Inspector's tests share: a real host in-process (a MemoryDatabase
// behind many_level::Host, served on a loopback TCP port or a local socket
// by HostServer on a thread of its own) and a connected InspectorSession.
// Waits are for conditions with deadlines (QTest::qWaitFor, QTRY_*), never
// sleeps.
#pragma once

#include <QtTest>

#include <memory>
#include <string>
#include <vector>

#include "endpoint.h"
#include "inspector_session.h"
#include "many_level/host/host_options.hpp"
#include "many_level/memory_database.hpp"
#include "served_host.h"

namespace inspector_test {

using namespace inspector;

constexpr int kTimeout = 15000;

inline const many_level::WriteOptions kRawWrite{"buffer", "buffer"};
inline const many_level::ReadOptions kRawRead{"buffer", "buffer"};

// A database and a host serving it.
struct HostFixture {
  many_level::MemoryDatabase db;
  std::unique_ptr<ServedHost> host;
  Endpoint endpoint;

  explicit HostFixture(many_level::HostOptions options = {},
                       const Endpoint& where = Endpoint::tcp(QStringLiteral("127.0.0.1"), 0)) {
    host = std::make_unique<ServedHost>(db, std::move(options));
    endpoint = host->listen(where);
  }
};

// Puts `count` keys "<prefix><number, zero-padded to 7>" straight into the
// host's database, in batches.
inline void seedNumbered(many_level::Database& db, const std::string& prefix, size_t count, size_t first = 0) {
  std::vector<many_level::BatchOperation> batch;
  for (size_t i = first; i < first + count; ++i) {
    char number[24];
    std::snprintf(number, sizeof number, "%07zu", i);
    batch.push_back(many_level::BatchOperation::put(prefix + number, "value " + std::to_string(i)));
    if (batch.size() == 5000) {
      db.batch(batch, kRawWrite);
      batch.clear();
    }
  }
  if (!batch.empty()) db.batch(batch, kRawWrite);
}

inline std::string numbered(const std::string& prefix, size_t i) {
  char number[24];
  std::snprintf(number, sizeof number, "%07zu", i);
  return prefix + number;
}

// A session connected to `endpoint` (or nullptr when it does not connect in time).
inline std::unique_ptr<InspectorSession> connectedSession(const Endpoint& endpoint) {
  auto session = std::make_unique<InspectorSession>();
  session->setBackoff(20, 200);
  session->connectTo(endpoint);
  if (!QTest::qWaitFor([&] { return session->state() == InspectorSession::State::connected; }, kTimeout)) {
    return nullptr;
  }
  return session;
}

}  // namespace inspector_test

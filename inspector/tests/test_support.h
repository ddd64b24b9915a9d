// What the Inspector's tests share: a real host in-process (a MemoryDatabase
// behind many_level::Host, served on a loopback TCP port or a local socket
// by HostServer on a thread of its own) and a connected InspectorSession.
// Waits are for conditions with deadlines (QTest::qWaitFor, QTRY_*), never
// sleeps.
#pragma once

#include <QProcess>
#include <QRegularExpression>
#include <QtTest>

#include <memory>
#include <optional>
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

#ifdef MANY_LEVEL_PROGRAM
// A host in a process of its own: `many-level serve ARGS --listen
// tcp://127.0.0.1:0`, stopped (SIGTERM, then SIGKILL) when it goes. What
// other processes write to it reaches the Inspector only over the wire.
class ProgramHost {
 public:
  explicit ProgramHost(const QStringList& args = {QStringLiteral("--memory")}) {
    process_.setProgram(QStringLiteral(MANY_LEVEL_PROGRAM));
    process_.setArguments(QStringList{QStringLiteral("serve")} + args +
                          QStringList{QStringLiteral("--listen"), QStringLiteral("tcp://127.0.0.1:0")});
    process_.start();
  }
  ~ProgramHost() {
    if (process_.state() == QProcess::NotRunning) return;
    process_.terminate();
    if (!process_.waitForFinished(5000)) {
      process_.kill();
      process_.waitForFinished(5000);
    }
  }
  // Where it listens, once its log says so.
  std::optional<Endpoint> endpoint() {
    const QRegularExpression listening(QStringLiteral("listening (\\S+)"));
    QRegularExpressionMatch match;
    const bool ready = QTest::qWaitFor([&] {
      log_ += QString::fromUtf8(process_.readAllStandardError());
      match = listening.match(log_);
      return match.hasMatch() || process_.state() == QProcess::NotRunning;
    }, kTimeout);
    if (!ready || !match.hasMatch()) {
      qWarning("many-level serve did not start: %s", qPrintable(log_));
      return std::nullopt;
    }
    address_ = match.captured(1);
    return Endpoint::parse(address_);
  }
  const QString& address() const { return address_; }

 private:
  QProcess process_;
  QString log_;
  QString address_;
};

// Runs `many-level ARGS` to its end, `input` on its stdin, while the event
// loop keeps running; its exit status, or -1 when it did not finish in time.
inline int runProgram(const QStringList& args, const QByteArray& input = {}, QString* errors = nullptr) {
  QProcess process;
  process.start(QStringLiteral(MANY_LEVEL_PROGRAM), args);
  if (!process.waitForStarted(kTimeout)) return -1;
  process.write(input);
  process.closeWriteChannel();
  if (!QTest::qWaitFor([&] { return process.state() == QProcess::NotRunning; }, kTimeout)) {
    process.kill();
    process.waitForFinished();
    return -1;
  }
  if (errors) *errors = QString::fromUtf8(process.readAllStandardError());
  return process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1;
}
#endif

}  // namespace inspector_test

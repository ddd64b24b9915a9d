// The transport and the connection's life: a Guest fed by QTcpSocket /
// QLocalSocket through SessionPump, against a real host; drops from either
// side, reconnects with backoff, requests and iterators carried across.
#include <QSignalSpy>
#include <QTcpServer>
#include <QtTest>

#include "host_server.h"
#include "test_support.h"

using namespace inspector_test;

class TestConnection : public QObject {
  Q_OBJECT

 private slots:
  void endpointParsing() {
    auto tcp = Endpoint::parse(QStringLiteral("tcp://127.0.0.1:5000"));
    QVERIFY(tcp);
    QCOMPARE(tcp->host, QStringLiteral("127.0.0.1"));
    QCOMPARE(tcp->port, quint16(5000));
    QCOMPARE(tcp->toString(), QStringLiteral("tcp://127.0.0.1:5000"));
    auto unix_socket = Endpoint::parse(QStringLiteral("unix:/tmp/x.sock"));
    QVERIFY(unix_socket);
    QCOMPARE(unix_socket->kind, Endpoint::Kind::local);
    QCOMPARE(unix_socket->toString(), QStringLiteral("unix:/tmp/x.sock"));
    QCOMPARE(Endpoint::parse(QStringLiteral("tcp://[::1]:7"))->toString(), QStringLiteral("tcp://[::1]:7"));
    QString error;
    QVERIFY(!Endpoint::parse(QStringLiteral("http://x:1"), &error));
    QVERIFY(!error.isEmpty());
    QVERIFY(!Endpoint::parse(QStringLiteral("tcp://host")));
  }

  void tcpRoundTrip() {
    HostFixture fixture;
    fixture.db.put("hello", "world", kRawWrite);
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    auto& guest = session->guest();
    auto value = guest.get_async("hello");
    QVERIFY(QTest::qWaitFor([&] { return value.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }, kTimeout));
    QCOMPARE(*value.get(), std::string("world"));
    auto put = guest.put_async("k", "v");
    QVERIFY(QTest::qWaitFor([&] { return put.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }, kTimeout));
    put.get();
    QCOMPARE(fixture.db.get("k", kRawRead), std::string("v"));
    session->pollStats();
    QCOMPARE(session->stats().connects, uint64_t(1));
    QVERIFY(session->stats().frames_out >= 2);
    QVERIFY(session->stats().bytes_in > 0);
    QCOMPARE(session->reconnects(), quint64(0));
  }

  void localSocketRoundTrip() {
    const QString path = QDir::tempPath() + QStringLiteral("/inspector-test-%1.sock").arg(QCoreApplication::applicationPid());
    HostFixture fixture({}, Endpoint::local(path));
    QCOMPARE(fixture.endpoint.kind, Endpoint::Kind::local);
    fixture.db.put("over", "unix", kRawWrite);
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    auto value = session->guest().get_async("over");
    QVERIFY(QTest::qWaitFor([&] { return value.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }, kTimeout));
    QCOMPARE(*value.get(), std::string("unix"));
  }

  void dropConnectionReconnectsAndLogs() {
    HostFixture fixture;
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    QSignalSpy events(session.get(), &InspectorSession::connectionEvent);
    QVERIFY(session->dropConnection());
    QVERIFY(QTest::qWaitFor([&] { session->pollStats(); return session->reconnects() == 1 && session->state() == InspectorSession::State::connected; }, kTimeout));
    QCOMPARE(session->stats().disconnects, uint64_t(1));
    QStringList kinds;
    for (const auto& args : events) kinds << ConnectionEvent::kindName(args.at(0).value<ConnectionEvent>().kind);
    QVERIFY2(kinds.contains(QStringLiteral("disconnected")), qPrintable(kinds.join(',')));
    QVERIFY(kinds.contains(QStringLiteral("retry")));
    QVERIFY(kinds.contains(QStringLiteral("connected")));
    // Twice more, the count follows.
    QVERIFY(session->dropConnection());
    QVERIFY(QTest::qWaitFor([&] { session->pollStats(); return session->reconnects() == 2 && session->state() == InspectorSession::State::connected; }, kTimeout));
  }

  void hostSideDropReconnects() {
    HostFixture fixture;
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    QTRY_COMPARE_WITH_TIMEOUT(fixture.host->connectionCount(), 1, kTimeout);
    fixture.host->dropAll();
    QVERIFY(QTest::qWaitFor([&] { session->pollStats(); return session->reconnects() >= 1 && session->state() == InspectorSession::State::connected; }, kTimeout));
  }

  void requestsWaitAcrossADropAndDrain() {
    HostFixture fixture;
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    session->disconnectFromHost();
    QVERIFY(QTest::qWaitFor([&] { session->pollStats(); return !session->stats().connected; }, kTimeout));
    std::vector<std::future<void>> puts;
    for (int i = 0; i < 50; ++i) puts.push_back(session->guest().put_async(numbered("w", i), "v"));
    session->pollStats();
    QCOMPARE(session->stats().pending.size(), size_t(50));
    session->connectTo(fixture.endpoint);
    QVERIFY(QTest::qWaitFor([&] { session->pollStats(); return session->stats().pending.empty(); }, kTimeout));
    for (auto& put : puts) put.get();
    QCOMPARE(fixture.db.get(numbered("w", 49), kRawRead), std::string("v"));
  }

  void refusedAttemptsRetryWithBackoff() {
    QTcpServer probe;
    QVERIFY(probe.listen(QHostAddress::LocalHost, 0));
    const quint16 port = probe.serverPort();
    probe.close();  // nothing listens there now
    InspectorSession session;
    session.setBackoff(10, 40);
    QSignalSpy events(&session, &InspectorSession::connectionEvent);
    session.connectTo(Endpoint::tcp(QStringLiteral("127.0.0.1"), port));
    QVERIFY(QTest::qWaitFor([&] {
      int failures = 0;
      for (const auto& args : events) failures += args.at(0).value<ConnectionEvent>().kind == ConnectionEvent::Kind::attempt_failed;
      return failures >= 3;
    }, kTimeout));
    QCOMPARE(session.state(), InspectorSession::State::waiting);
    // The delays grow to the cap.
    QList<int> delays;
    for (const auto& args : events) {
      const auto event = args.at(0).value<ConnectionEvent>();
      if (event.kind == ConnectionEvent::Kind::retry_scheduled) delays << event.delay_ms;
    }
    QVERIFY(delays.size() >= 3);
    QCOMPARE(delays.at(0), 10);
    QCOMPARE(delays.at(1), 20);
    QCOMPARE(delays.at(2), 40);
    session.disconnectFromHost();
    QCOMPARE(session.state(), InspectorSession::State::idle);
  }

  void iteratorResumesAfterDrop() {
    HostFixture fixture;
    seedNumbered(fixture.db, "k", 3000);
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    // Blocking iterator steps run off the test thread, as the Inspector runs them.
    auto iterator = std::shared_ptr<many_level::Iterator>(session->guest().iterator());
    std::vector<std::string> keys;
    auto step = [&](size_t n) {
      auto done = std::async(std::launch::async, [&, n] { return iterator->nextv(n); });
      if (!QTest::qWaitFor([&] { return done.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }, kTimeout)) {
        return false;
      }
      for (auto& entry : done.get()) keys.push_back(entry.key);
      return true;
    };
    QVERIFY(step(1000));
    QVERIFY(session->dropConnection());
    while (keys.size() < 3000) {
      const size_t before = keys.size();
      QVERIFY(step(1000));
      if (keys.size() == before) break;
    }
    QCOMPARE(keys.size(), size_t(3000));  // nothing lost, nothing twice
    for (size_t i = 0; i < keys.size(); ++i) QCOMPARE(keys[i], numbered("k", i));
    iterator->close();
  }
};

QTEST_MAIN(TestConnection)
#include "test_connection.moc"

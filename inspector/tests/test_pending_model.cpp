// PendingModel: the diff by id, and the guest's real queue growing while
// the connection is down and draining when it is back, driven by the load
// generator.
#include <QAbstractItemModelTester>
#include <QSignalSpy>
#include <QtTest>

#include "load_generator.h"
#include "pending_model.h"
#include "test_support.h"

using namespace inspector_test;
using many_level::PendingRequestInfo;

static PendingRequestInfo request(uint32_t id, const char* op, std::string key, int age_ms) {
  PendingRequestInfo info;
  info.id = id;
  info.operation = op;
  info.key = std::move(key);
  info.age = std::chrono::milliseconds(age_ms);
  return info;
}

class TestPendingModel : public QObject {
  Q_OBJECT

 private slots:
  void diffsByIdAndAges() {
    PendingModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.update({request(5, "put", "a", 10), request(2, "get", "b", 30)});
    QCOMPARE(model.rowCount(), 2);
    QCOMPARE(model.index(0, PendingModel::IdColumn).data().toUInt(), 2u);
    QCOMPARE(model.index(0, PendingModel::OperationColumn).data().toString(), QStringLiteral("get"));
    QCOMPARE(model.index(1, PendingModel::KeyColumn).data().toString(), QStringLiteral("a"));
    QPersistentModelIndex five = model.index(1, 0);
    model.update({request(5, "put", "a", 1500), request(7, "del", std::string("\x01", 1), 0)});
    QCOMPARE(model.rowCount(), 2);
    QCOMPARE(five.row(), 0);
    QCOMPARE(model.index(0, PendingModel::AgeColumn).data().toString(), QStringLiteral("1500 ms"));
    QVERIFY(model.index(0, 0).data(Qt::BackgroundRole).isValid());  // waiting over a second
    QCOMPARE(model.index(1, PendingModel::KeyColumn).data().toString(), QStringLiteral("\\x01"));
    QCOMPARE(model.oldestAgeMs(), 1500);
    model.update({});
    QCOMPARE(model.rowCount(), 0);
  }

  void queueGrowsWhileDisconnectedAndDrains() {
    HostFixture fixture;
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    PendingModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    connect(session.get(), &InspectorSession::statsUpdated, &model, [&] { model.update(session->stats().pending); });
    session->setStatsInterval(20);

    LoadGenerator load(session->guest());
    LoadSettings settings;
    settings.rate = 2000;
    settings.put_percent = 50;
    settings.del_percent = 10;
    settings.key_space = 100;
    settings.max_in_flight = 300;
    load.setSettings(settings);
    QSignalSpy windows(&load, &LoadGenerator::windowReady);
    load.start();
    QVERIFY(QTest::qWaitFor([&] { return load.totalCompleted() > 200; }, kTimeout));

    session->disconnectFromHost();
    // Requests pile up, to the generator's cap.
    QVERIFY(QTest::qWaitFor([&] { return model.rowCount() >= 300; }, kTimeout));
    QVERIFY(model.oldestAgeMs() > 0);
    const uint64_t completed = load.totalCompleted();
    session->connectTo(fixture.endpoint);
    QVERIFY(QTest::qWaitFor([&] { return load.totalCompleted() >= completed + 300; }, kTimeout));
    load.stop();
    QVERIFY(QTest::qWaitFor([&] { return model.rowCount() == 0; }, kTimeout));
    QVERIFY(windows.count() >= 1);
    uint64_t failed = 0;
    for (const auto& args : windows) failed += args.at(0).value<LoadWindow>().failed;
    QCOMPARE(failed, uint64_t(0));
    // The generator's keys live in the !load! sublevel.
    many_level::IteratorOptions range;
    range.gte = "!load!";
    range.lt = "!load\"";
    QVERIFY(fixture.db.keys(range).next().has_value());
  }
};

QTEST_MAIN(TestPendingModel)
#include "test_pending_model.moc"

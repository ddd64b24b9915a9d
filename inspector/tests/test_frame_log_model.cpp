// FrameLogModel and its filter against a real guest's traffic: every frame
// in and out, decoded; a bounded ring; pause; filtering by direction, words
// and id.
#include <QAbstractItemModelTester>
#include <QtTest>

#include "frame_filter_model.h"
#include "frame_log_model.h"
#include "test_support.h"

using namespace inspector_test;

class TestFrameLogModel : public QObject {
  Q_OBJECT

 private:
  static void waitFor(std::future<void> future) {
    QVERIFY(QTest::qWaitFor([&] { return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }, kTimeout));
    future.get();
  }

  static QStringList tags(const QAbstractItemModel& model) {
    QStringList out;
    for (int row = 0; row < model.rowCount(); ++row) {
      out << model.index(row, FrameLogModel::TagColumn).data().toString();
    }
    return out;
  }

 private slots:
  void decodesTrafficBothWays() {
    HostFixture fixture;
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    FrameLogModel model(session->frames(), 10000);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setPollInterval(0);
    model.poll();
    const int before = model.rowCount();

    waitFor(session->guest().put_async("alpha", "one"));
    auto got = session->guest().get_async("alpha");
    QVERIFY(QTest::qWaitFor([&] { return got.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }, kTimeout));
    QCOMPARE(*got.get(), std::string("one"));
    model.poll();
    QCOMPARE(model.rowCount(), before + 4);
    QCOMPARE(tags(model).mid(before), (QStringList{"put", "callback", "get", "callback"}));
    const QModelIndex put = model.index(before, 0);
    QCOMPARE(put.data(FrameLogModel::DirectionRole).toString(), QStringLiteral("out"));
    QVERIFY(model.index(before, FrameLogModel::SummaryColumn).data().toString().contains(QStringLiteral("key=\"alpha\"")));
    QCOMPARE(model.index(before + 1, 0).data(FrameLogModel::DirectionRole).toString(), QStringLiteral("in"));
    // A reply carries its request's id.
    QCOMPARE(model.index(before + 1, 0).data(FrameLogModel::IdRole), put.data(FrameLogModel::IdRole));
    QVERIFY(model.index(before + 3, 0).data(FrameLogModel::DetailRole).toString().contains(QStringLiteral("\"one\"")));
  }

  void iteratorFramesAndFilter() {
    HostFixture fixture;
    seedNumbered(fixture.db, "k", 500);
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    FrameLogModel model(session->frames());
    model.setPollInterval(0);
    FrameFilterModel filter;
    filter.setSourceModel(&model);
    QAbstractItemModelTester tester(&filter, QAbstractItemModelTester::FailureReportingMode::QtTest);

    auto all = std::async(std::launch::async, [&] { return session->guest().iterator()->all(); });
    QVERIFY(QTest::qWaitFor([&] { return all.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }, kTimeout));
    QCOMPARE(all.get().size(), size_t(500));
    model.poll();
    const QStringList seen = tags(model);
    QVERIFY(seen.contains(QStringLiteral("iterator")));
    QVERIFY(seen.contains(QStringLiteral("iteratorData")));
    QVERIFY(seen.contains(QStringLiteral("iteratorAck")));
    QVERIFY(seen.contains(QStringLiteral("iteratorEnd")));
    QVERIFY(seen.contains(QStringLiteral("iteratorClose")));

    filter.setDirection(FrameFilterModel::Direction::in);
    for (int row = 0; row < filter.rowCount(); ++row) {
      QCOMPARE(filter.index(row, 0).data(FrameLogModel::DirectionRole).toString(), QStringLiteral("in"));
    }
    filter.setDirection(FrameFilterModel::Direction::both);
    filter.setText(QStringLiteral("iteratorData"));
    QVERIFY(filter.rowCount() >= 2);
    // The first data frame carries one entry, as the reference host does it.
    QCOMPARE(filter.index(0, FrameLogModel::SummaryColumn).data().toString().left(7), QStringLiteral("2 items"));
    filter.setText(QStringLiteral("id=999"));
    QCOMPARE(filter.rowCount(), 0);
    filter.setText(QStringLiteral("id=1 iteratorEnd"));
    QCOMPARE(filter.rowCount(), 1);
  }

  void ringIsBoundedAndPauseStopsCapture() {
    HostFixture fixture;
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    FrameLogModel model(session->frames(), 50);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setPollInterval(0);
    for (int i = 0; i < 40; ++i) {
      waitFor(session->guest().put_async(numbered("k", i), "v"));
      if (i % 10 == 0) model.poll();
    }
    model.poll();
    QCOMPARE(model.rowCount(), 50);  // 80 frames went by; the newest 50 stay
    const quint64 last = model.index(49, FrameLogModel::NumberColumn).data().toULongLong();
    QCOMPARE(model.index(0, FrameLogModel::NumberColumn).data().toULongLong(), last - 49);
    QVERIFY(model.decodedCount() >= 80);

    model.setPaused(true);
    QVERIFY(model.isPaused());
    waitFor(session->guest().put_async("while paused", "v"));
    model.poll();
    QCOMPARE(model.index(49, FrameLogModel::NumberColumn).data().toULongLong(), last);
    QVERIFY(session->frames().skipped() >= 2);
    model.setPaused(false);
    waitFor(session->guest().put_async("after", "v"));
    model.poll();
    QVERIFY(model.index(49, FrameLogModel::SummaryColumn).data().toString().contains(QStringLiteral("ok")));
    model.clear();
    QCOMPARE(model.rowCount(), 0);
  }
};

QTEST_MAIN(TestFrameLogModel)
#include "test_frame_log_model.moc"

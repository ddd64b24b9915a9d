// IteratorsModel: the diff by id, and the guest's real iterators live,
// where backpressure shows as buffered entries and unacknowledged frames;
// WatchesModel and SnapshotsModel: the guest's watches and snapshots beside
// them, live.
#include <QAbstractItemModelTester>
#include <QtTest>

#include "iterator_playground.h"
#include "iterators_model.h"
#include "snapshots_model.h"
#include "watches_model.h"
#include "test_support.h"

using namespace inspector_test;
using many_level::GuestIteratorInfo;

static GuestIteratorInfo info(uint32_t id, uint64_t consumed, size_t buffered = 0, size_t unacked = 0) {
  GuestIteratorInfo i;
  i.id = id;
  i.consumed = consumed;
  i.buffered_entries = buffered;
  i.unacknowledged_frames = unacked;
  return i;
}

class TestIteratorsModel : public QObject {
  Q_OBJECT

 private slots:
  void diffsById() {
    IteratorLabels labels;
    labels.set(2, {"playground", "keys gte=\"a\""});
    IteratorsModel model(&labels);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.update({info(3, 0), info(1, 5), info(2, 7)});
    QCOMPARE(model.rowCount(), 3);
    QCOMPARE(model.index(0, IteratorsModel::IdColumn).data().toUInt(), 1u);
    QCOMPARE(model.index(1, IteratorsModel::PurposeColumn).data().toString(), QStringLiteral("playground"));
    QCOMPARE(model.index(1, IteratorsModel::OptionsColumn).data().toString(), QStringLiteral("keys gte=\"a\""));
    QCOMPARE(model.index(0, IteratorsModel::PurposeColumn).data().toString(), QStringLiteral("(unlabelled)"));

    QPersistentModelIndex third = model.index(2, 0);
    model.update({info(2, 9, 4, 2), info(3, 1), info(4, 0)});
    QCOMPARE(model.rowCount(), 3);
    QCOMPARE(model.rowOfId(1), -1);
    QCOMPARE(model.rowOfId(4), 2);
    QCOMPARE(third.row(), 1);  // iterator 3 kept its row identity
    QCOMPARE(model.index(0, IteratorsModel::ConsumedColumn).data().toULongLong(), qulonglong(9));
    QCOMPARE(model.index(0, IteratorsModel::StateColumn).data().toString(), QStringLiteral("host paused"));
    QVERIFY(model.index(0, IteratorsModel::UnackedColumn).data(Qt::BackgroundRole).isValid());
    model.update({});
    QCOMPARE(model.rowCount(), 0);
  }

  void liveIteratorsShowBackpressure() {
    HostFixture fixture;
    seedNumbered(fixture.db, "k", 20000);
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    IteratorsModel model(&session->labels());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    connect(session.get(), &InspectorSession::statsUpdated, &model, [&] { model.update(session->stats().iterators); });
    session->setStatsInterval(20);

    IteratorPlayground playground(session->guest(), session->labels());
    QSignalSpy stepped(&playground, &IteratorPlayground::stepped);
    QSignalSpy opened(&playground, &IteratorPlayground::opened);
    many_level::IteratorOptions options;
    options.gte = numbered("k", 100);
    playground.open(options);
    QVERIFY(opened.wait(kTimeout));
    const uint32_t id = playground.iteratorId();
    QVERIFY(id > 0);
    QTRY_VERIFY_WITH_TIMEOUT(model.rowOfId(id) >= 0, kTimeout);
    const int row = model.rowOfId(id);
    QCOMPARE(model.index(row, IteratorsModel::PurposeColumn).data().toString(), QStringLiteral("playground"));
    QVERIFY(model.index(row, IteratorsModel::OptionsColumn).data().toString().contains(QStringLiteral("gte=\"k0000100\"")));

    // The first frame carries one entry; consuming it acks it, and the host
    // reads ahead until two frames wait unacknowledged, then pauses.
    playground.next();
    QVERIFY(stepped.wait(kTimeout));
    QCOMPARE(stepped.at(0).at(0).toInt(), 1);
    QTRY_VERIFY_WITH_TIMEOUT(model.index(model.rowOfId(id), IteratorsModel::BufferedColumn).data().toULongLong() > 0, kTimeout);
    QTRY_COMPARE_WITH_TIMEOUT(model.index(model.rowOfId(id), IteratorsModel::UnackedColumn).data().toULongLong(), qulonglong(2), kTimeout);
    QCOMPARE(model.index(model.rowOfId(id), IteratorsModel::ConsumedColumn).data().toULongLong(), qulonglong(1));
    const qulonglong buffered = model.index(model.rowOfId(id), IteratorsModel::BufferedColumn).data().toULongLong();
    QVERIFY2(buffered < 20000, "the host must not send everything at once");

    // A seek bumps seq and drops what was buffered.
    playground.seek(numbered("k", 15000));
    QVERIFY(stepped.wait(kTimeout));
    playground.nextv(3);
    QVERIFY(stepped.wait(kTimeout));
    QTRY_COMPARE_WITH_TIMEOUT(model.index(model.rowOfId(id), IteratorsModel::SeqColumn).data().toUInt(), 1u, kTimeout);
    QVERIFY(playground.output()->toPlainText().contains(QStringLiteral("k0015000")));

    playground.close();
    QTRY_COMPARE_WITH_TIMEOUT(model.rowOfId(id), -1, kTimeout);
  }

  void watchesAndSnapshotsDiffById() {
    WatchesModel watches;
    QAbstractItemModelTester watches_tester(&watches, QAbstractItemModelTester::FailureReportingMode::QtTest);
    many_level::GuestWatchInfo w1;
    w1.id = 1;
    w1.seq = 10;
    w1.commits = 3;
    many_level::GuestWatchInfo w2 = w1;
    w2.id = 2;
    w2.unacknowledged_frames = 2;
    watches.update({w2, w1});
    QCOMPARE(watches.rowCount(), 2);
    QCOMPARE(watches.index(0, WatchesModel::IdColumn).data().toUInt(), 1u);
    QCOMPARE(watches.index(0, WatchesModel::StateColumn).data().toString(), QStringLiteral("following"));
    QCOMPARE(watches.index(1, WatchesModel::StateColumn).data().toString(), QStringLiteral("host paused"));
    QVERIFY(watches.index(1, WatchesModel::UnackedColumn).data(Qt::BackgroundRole).isValid());
    w1.errored = true;
    watches.update({w1});
    QCOMPARE(watches.rowCount(), 1);
    QCOMPARE(watches.index(0, WatchesModel::StateColumn).data().toString(), QStringLiteral("error"));

    SnapshotsModel snapshots;
    QAbstractItemModelTester snapshots_tester(&snapshots, QAbstractItemModelTester::FailureReportingMode::QtTest);
    snapshots.update({{5, true}, {2, false}});
    QCOMPARE(snapshots.rowCount(), 2);
    QCOMPARE(snapshots.index(0, SnapshotsModel::IdColumn).data().toUInt(), 2u);
    QCOMPARE(snapshots.index(0, SnapshotsModel::StateColumn).data().toString(), QStringLiteral("released"));
    QCOMPARE(snapshots.index(1, SnapshotsModel::StateColumn).data().toString(), QStringLiteral("open"));
    snapshots.update({});
    QCOMPARE(snapshots.rowCount(), 0);
  }

  void liveWatchesAndSnapshots() {
    HostFixture fixture;
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    WatchesModel watches;
    SnapshotsModel snapshots;
    QAbstractItemModelTester watches_tester(&watches, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester snapshots_tester(&snapshots, QAbstractItemModelTester::FailureReportingMode::QtTest);
    connect(session.get(), &InspectorSession::statsUpdated, &watches, [&] {
      watches.update(session->stats().watches);
      snapshots.update(session->stats().snapshots);
    });
    session->setStatsInterval(20);

    auto snapshot = session->guest().snapshot();
    many_level::WatchOptions range;
    range.gte = "k";
    range.lt = "l";
    std::atomic<int> delivered{0};
    auto watch = session->guest().watch(range, [&](std::optional<many_level::Error> error, const many_level::Commit&) {
      if (!error) ++delivered;
    });
    QTRY_COMPARE_WITH_TIMEOUT(watches.rowCount(), 1, kTimeout);
    QTRY_COMPARE_WITH_TIMEOUT(snapshots.rowCount(), 1, kTimeout);
    QCOMPARE(snapshots.index(0, SnapshotsModel::StateColumn).data().toString(), QStringLiteral("open"));

    fixture.db.put("k1", "v", kRawWrite);
    fixture.db.put("other", "v", kRawWrite);  // outside the range: not delivered
    fixture.db.put("k2", "v", kRawWrite);
    QTRY_COMPARE_WITH_TIMEOUT(delivered.load(), 2, kTimeout);
    QTRY_COMPARE_WITH_TIMEOUT(watches.index(0, WatchesModel::CommitsColumn).data().toULongLong(), qulonglong(2), kTimeout);
    QCOMPARE(watches.index(0, WatchesModel::SeqColumn).data().toULongLong(), qulonglong(3));  // the host's third commit
    QCOMPARE(watches.index(0, WatchesModel::StateColumn).data().toString(), QStringLiteral("following"));

    snapshot->close();
    QTRY_VERIFY_WITH_TIMEOUT(snapshots.rowCount() == 0 ||
                                 snapshots.index(0, SnapshotsModel::StateColumn).data().toString() == QLatin1String("released"),
                             kTimeout);
    watch->close();
    QTRY_COMPARE_WITH_TIMEOUT(watches.rowCount(), 0, kTimeout);
  }
};

QTEST_MAIN(TestIteratorsModel)
#include "test_iterators_model.moc"

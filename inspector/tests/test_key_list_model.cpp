// KeyListModel against a real host: paging, counting, eviction, filters,
// locating a key, live refresh with highlights, and a 100,000-key database
// browsed without loading it; and over a local database with a change feed:
// live updates applied in place, turned off and resumed, and a page read
// under way while its keys change. QAbstractItemModelTester watches every
// change.
#include <QAbstractItemModelTester>
#include <QElapsedTimer>
#include <QSignalSpy>
#include <QtTest>

#include <atomic>
#include <thread>

#include "key_list_model.h"
#include "test_support.h"

using namespace inspector_test;

class TestKeyListModel : public QObject {
  Q_OBJECT

 private:
  // Reads row `row`'s key, waiting for its page to load.
  static QString keyAt(KeyListModel& model, int row) {
    QString key;
    (void)QTest::qWaitFor([&] {
      const QModelIndex index = model.index(row, KeyListModel::KeyColumn);
      if (!index.data(KeyListModel::LoadedRole).toBool()) return false;
      key = index.data().toString();
      return true;
    }, kTimeout);
    return key;
  }

  static bool waitComplete(KeyListModel& model) {
    return QTest::qWaitFor([&] { return model.isComplete() && model.isIdle(); }, kTimeout);
  }

 private slots:
  void firstPageOfASmallDatabase() {
    HostFixture fixture;
    seedNumbered(fixture.db, "key", 50);
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    KeyListModel model(session->guest(), session->queryHooks());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QVERIFY(waitComplete(model));
    QCOMPARE(model.rowCount(), 50);
    QCOMPARE(keyAt(model, 0), QStringLiteral("key0000000"));
    QCOMPARE(keyAt(model, 49), QStringLiteral("key0000049"));
    const QModelIndex value = model.index(3, KeyListModel::ValueColumn);
    QCOMPARE(value.data().toString(), QStringLiteral("value 3"));
    QCOMPARE(model.index(3, KeyListModel::SizeColumn).data().toULongLong(), qulonglong(7));
    QCOMPARE(model.index(3, 0).data(KeyListModel::RawKeyRole).toByteArray(), QByteArray("key0000003"));
    QVERIFY(model.statusText().startsWith(QStringLiteral("50 keys")));
  }

  void emptyRange() {
    HostFixture fixture;
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    KeyListModel model(session->guest());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QVERIFY(waitComplete(model));
    QCOMPARE(model.rowCount(), 0);
    QVERIFY(!model.canFetchMore(QModelIndex()));
  }

  // The scale test: 100,000 keys, pages of 200, at most 8 pages (1,600 rows)
  // in memory however far the view scrolls.
  void hundredThousandKeysArePagedNotLoaded() {
    HostFixture fixture;
    const size_t total = 100000;
    seedNumbered(fixture.db, "!bulk!k", total);
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);

    KeyListModel model(session->guest(), session->queryHooks());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setMaxLoadedPages(8);
    model.setAutoCount(false);
    model.setCountChunk(10000);
    model.setBasePrefix("!bulk!");

    // Without counting ahead, only the first chunk is known: a partial row
    // count, and more to fetch.
    QVERIFY(QTest::qWaitFor([&] { return model.rowCount() == 10000; }, kTimeout));
    QCOMPARE(keyAt(model, 0), QStringLiteral("k0000000"));
    QVERIFY(!model.isComplete());
    QVERIFY(model.canFetchMore(QModelIndex()));
    QVERIFY(model.statusText().contains(QStringLiteral("≥")));
    QVERIFY(model.loadedRowCount() <= 8 * 200);

    // A view at the bottom asks for more: one more chunk.
    model.fetchMore(QModelIndex());
    QVERIFY(QTest::qWaitFor([&] { return model.rowCount() == 20000; }, kTimeout));

    // Counting the rest in the background reaches the end.
    model.setAutoCount(true);
    QVERIFY(waitComplete(model));
    QCOMPARE(model.rowCount(), int(total));
    QCOMPARE(model.pageCount(), size_t(total / 200));

    // Jump around as a scroll bar does: each jump loads one page or two.
    for (int row : {99999, 73456, 12345, 50000, 199, 200}) {
      model.setVisibleRows(row, std::min<int>(row + 30, total - 1));
      QCOMPARE(keyAt(model, row), QString::fromStdString(numbered("k", static_cast<size_t>(row))));
      QVERIFY2(model.loadedRowCount() <= 8 * 200 + 200, qPrintable(QString::number(model.loadedRowCount())));
      QVERIFY(model.loadedPageCount() <= 9);
    }
    QCOMPARE(keyAt(model, int(total) - 1), QStringLiteral("k0099999"));
  }

  // The same without the tester (which re-checks every row on every change):
  // how long a user waits. Logged, not asserted beyond the usual deadline.
  void hundredThousandKeysTimed() {
    HostFixture fixture;
    seedNumbered(fixture.db, "!bulk!k", 100000);
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    QElapsedTimer timer;
    timer.start();
    KeyListModel model(session->guest(), session->queryHooks());
    QCOMPARE(keyAt(model, 0), QStringLiteral("!bulk!k0000000"));
    const qint64 first_page = timer.elapsed();
    QVERIFY(waitComplete(model));
    qInfo("100,000 keys: first page after %lld ms, all counted after %lld ms, %zu rows in memory", first_page,
          timer.elapsed(), model.loadedRowCount());
    QCOMPARE(model.rowCount(), 100000);
  }

  void filtersAndSublevels() {
    HostFixture fixture;
    seedNumbered(fixture.db, "!a!x", 30);
    seedNumbered(fixture.db, "!a!y", 30);
    seedNumbered(fixture.db, "!b!x", 10);
    fixture.db.put("plain", "p", kRawWrite);
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    KeyListModel model(session->guest());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QVERIFY(waitComplete(model));
    QCOMPARE(model.rowCount(), 71);

    model.setBasePrefix("!a!");
    QVERIFY(waitComplete(model));
    QCOMPARE(model.rowCount(), 60);
    QCOMPARE(keyAt(model, 0), QStringLiteral("x0000000"));  // shown without the prefix

    model.setFilter({"y", "", ""});
    QVERIFY(waitComplete(model));
    QCOMPARE(model.rowCount(), 30);
    QCOMPARE(keyAt(model, 0), QStringLiteral("y0000000"));

    model.setFilter({"", "x0000010", "y0000005"});
    QVERIFY(waitComplete(model));
    QCOMPARE(model.rowCount(), 25);
    QCOMPARE(keyAt(model, 0), QStringLiteral("x0000010"));
    QCOMPARE(keyAt(model, 24), QStringLiteral("y0000004"));

    model.setFilter({"zzz", "", ""});
    QVERIFY(waitComplete(model));
    QCOMPARE(model.rowCount(), 0);
  }

  void locateKey() {
    HostFixture fixture;
    seedNumbered(fixture.db, "k", 5000);
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    KeyListModel model(session->guest());
    model.setAutoCount(false);
    model.setCountChunk(1000);
    model.reload();
    QSignalSpy located(&model, &KeyListModel::keyLocated);
    QVERIFY(QTest::qWaitFor([&] { return model.rowCount() == 1000; }, kTimeout));
    // Beyond what is counted: the model counts on until it gets there.
    model.locateKey(numbered("k", 3210));
    QVERIFY(located.wait(kTimeout));
    QCOMPARE(located.at(0).at(0).toInt(), 3210);
    // Between two keys: the next one.
    model.locateKey(numbered("k", 42) + "5");
    QVERIFY(located.wait(kTimeout));
    QCOMPARE(located.at(1).at(0).toInt(), 43);
  }

  void liveRefreshShowsOtherWritersAndHighlights() {
    HostFixture fixture;
    seedNumbered(fixture.db, "k", 20, 10);  // k0000010 .. k0000029
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    KeyListModel model(session->guest());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setRefreshInterval(50);
    model.setVisibleRows(0, 40);
    QVERIFY(waitComplete(model));
    QCOMPARE(keyAt(model, 0), QStringLiteral("k0000010"));

    // Another writer: a key before, one between, a changed value, a deletion.
    fixture.db.put(numbered("k", 5), "new", kRawWrite);
    fixture.db.put(numbered("k", 15) + "b", "new", kRawWrite);
    fixture.db.put(numbered("k", 20), "changed", kRawWrite);
    fixture.db.del(numbered("k", 29), kRawWrite);
    QVERIFY(QTest::qWaitFor([&] { return model.rowCount() == 21 && model.index(0, 0).data().toString() == "k0000005"; }, kTimeout));
    QCOMPARE(keyAt(model, 0), QStringLiteral("k0000005"));
    QVERIFY(model.index(0, 0).data(KeyListModel::HighlightedRole).toBool());
    QVERIFY(model.index(0, 0).data(Qt::BackgroundRole).isValid());
    QCOMPARE(keyAt(model, 7), QStringLiteral("k0000015b"));
    QCOMPARE(keyAt(model, 12), QStringLiteral("k0000020"));
    QTRY_COMPARE_WITH_TIMEOUT(model.index(12, KeyListModel::ValueColumn).data().toString(), QStringLiteral("changed"), kTimeout);
    QVERIFY(model.index(12, 0).data(KeyListModel::HighlightedRole).toBool());
    QVERIFY(!model.index(1, 0).data(KeyListModel::HighlightedRole).toBool());
    QCOMPARE(keyAt(model, 20), QStringLiteral("k0000028"));
    // Highlights fade.
    QTRY_VERIFY_WITH_TIMEOUT(!model.index(0, 0).data(KeyListModel::HighlightedRole).toBool(), kTimeout);
  }

  void keysWrittenIntoAnEmptyDatabaseAppear() {
    HostFixture fixture;
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    KeyListModel model(session->guest());
    model.setRefreshInterval(50);
    QVERIFY(waitComplete(model));
    QCOMPARE(model.rowCount(), 0);
    fixture.db.put("first", "1", kRawWrite);
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 1, kTimeout);
    QCOMPARE(keyAt(model, 0), QStringLiteral("first"));
  }

  void aPageThatGrewPastOneReadIsSplitAndCounted() {
    HostFixture fixture;
    seedNumbered(fixture.db, "k", 600);  // three pages of 200
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    KeyListModel model(session->guest());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setRefreshInterval(50);
    model.setVisibleRows(0, 10);
    QVERIFY(waitComplete(model));
    QCOMPARE(keyAt(model, 0), QStringLiteral("k0000000"));
    // 3,000 keys land inside the first page: more than one read of it takes.
    seedNumbered(fixture.db, numbered("k", 5) + "-", 3000);
    QVERIFY(QTest::qWaitFor([&] { return model.rowCount() == 3600 && model.isComplete() && model.isIdle(); }, kTimeout));
    QCOMPARE(keyAt(model, 6), QString::fromStdString(numbered(numbered("k", 5) + "-", 0)));
    QCOMPARE(keyAt(model, 3005), QString::fromStdString(numbered(numbered("k", 5) + "-", 2999)));
    QCOMPARE(keyAt(model, 3006), QStringLiteral("k0000006"));
    model.setVisibleRows(3590, 3599);
    QCOMPARE(keyAt(model, 3599), QStringLiteral("k0000599"));
  }

  void valuesAreCutToAPreview() {
    HostFixture fixture;
    fixture.db.put("big", std::string(100000, 'x'), kRawWrite);
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    KeyListModel model(session->guest());
    QVERIFY(waitComplete(model));
    QCOMPARE(keyAt(model, 0), QStringLiteral("big"));
    QCOMPARE(model.index(0, KeyListModel::SizeColumn).data().toULongLong(), qulonglong(100000));
    QCOMPARE(model.index(0, 0).data(KeyListModel::ValuePreviewRole).toByteArray().size(), qsizetype(KeyListModel::kPreviewBytes));
  }

  // ---- live, over a database with a change feed (no host) -----------------

  void liveChangesAreAppliedInPlace() {
    many_level::MemoryDatabase db;
    seedNumbered(db, "k", 20, 10);  // k0000010 .. k0000029
    KeyListModel model(db);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setHighlightDuration(60000);
    model.setVisibleRows(0, 40);
    QVERIFY(QTest::qWaitFor([&] { return model.isComplete() && model.isIdle() && model.isWatching(); }, kTimeout));
    QCOMPARE(keyAt(model, 0), QStringLiteral("k0000010"));
    QSignalSpy resets(&model, &QAbstractItemModel::modelAboutToBeReset);
    QSignalSpy reads(&model, &KeyListModel::pageLoaded);

    db.put(numbered("k", 5), "new", kRawWrite);
    db.put(numbered("k", 20), "changed", kRawWrite);
    db.del(numbered("k", 29), kRawWrite);
    db.batch({many_level::BatchOperation::put(numbered("k", 15) + "b", "b"),
              many_level::BatchOperation::del(numbered("k", 10))},
             kRawWrite);
    many_level::ClearOptions range;
    range.gte = numbered("k", 25);
    range.lt = numbered("k", 29);
    range.key_encoding = "buffer";
    db.clear(range);
    // 20 + 1 - 1 + 1 - 1 - 4
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 16, kTimeout);
    QCOMPARE(keyAt(model, 0), QStringLiteral("k0000005"));
    QVERIFY(model.index(0, 0).data(KeyListModel::HighlightedRole).toBool());
    QCOMPARE(keyAt(model, 1), QStringLiteral("k0000011"));
    QVERIFY(!model.index(1, 0).data(KeyListModel::HighlightedRole).toBool());
    QCOMPARE(keyAt(model, 6), QStringLiteral("k0000015b"));
    QCOMPARE(keyAt(model, 11), QStringLiteral("k0000020"));
    QCOMPARE(model.index(11, KeyListModel::ValueColumn).data().toString(), QStringLiteral("changed"));
    QVERIFY(model.index(11, 0).data(KeyListModel::HighlightedRole).toBool());
    QCOMPARE(keyAt(model, 15), QStringLiteral("k0000024"));
    QCOMPARE(resets.count(), 0);
    QCOMPARE(reads.count(), 0);

    // Off: nothing moves. On again: the watch resumes after the last change
    // applied, so what was written meanwhile arrives, still without a reload.
    model.setLive(false);
    QCOMPARE(model.liveText(), QStringLiteral("Live updates off"));
    db.put(numbered("k", 99), "while off", kRawWrite);
    QTest::qWait(300);
    QCOMPARE(model.rowCount(), 16);
    model.setLive(true);
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 17, kTimeout);
    QCOMPARE(keyAt(model, 16), QString::fromStdString(numbered("k", 99)));
    QCOMPARE(resets.count(), 0);
  }

  // A page read that runs while keys of that page change: the read misses
  // them, the changes are applied before its result lands, and the journal
  // brings the result up to date.
  void aReadUnderWayIsBroughtUpToDate() {
    many_level::MemoryDatabase db;
    seedNumbered(db, "k", 600);  // pages anchored at k0000000, k0000200, k0000400
    std::atomic<bool> fired{false};
    QueryHooks hooks;
    hooks.opened = [&](many_level::Iterator&, const many_level::IteratorOptions& options, const std::string& purpose) {
      if (purpose != "key browser: page" || options.gte != numbered("k", 400) || fired.exchange(true)) return;
      // The iterator is open (it reads the data as it was): change the page
      // under it and take long enough for the change to be applied first.
      db.put(numbered("k", 450) + "x", "new", kRawWrite);
      db.del(numbered("k", 460), kRawWrite);
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
    };
    KeyListModel model(db, hooks);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setVisibleRows(0, 10);
    QVERIFY(QTest::qWaitFor([&] { return model.isComplete() && model.isIdle() && model.isWatching(); }, kTimeout));
    QCOMPARE(model.rowCount(), 600);
    QSignalSpy resets(&model, &QAbstractItemModel::modelAboutToBeReset);
    model.setVisibleRows(440, 470);
    QVERIFY(QTest::qWaitFor([&] { return fired.load() && model.isIdle(); }, kTimeout));
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 600, kTimeout);
    QCOMPARE(keyAt(model, 450), QStringLiteral("k0000450"));
    QCOMPARE(keyAt(model, 451), QStringLiteral("k0000450x"));
    QCOMPARE(keyAt(model, 460), QStringLiteral("k0000459"));
    QCOMPARE(keyAt(model, 461), QStringLiteral("k0000461"));  // k0000460 is gone
    QCOMPARE(resets.count(), 0);
  }

  // Writes into pages whose rows are not in memory: their keys are read
  // again, so the row count stays right without loading them.
  void changesInUnloadedPagesKeepTheCount() {
    many_level::MemoryDatabase db;
    seedNumbered(db, "k", 2000);
    KeyListModel model(db);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setMaxLoadedPages(1);
    model.setVisibleRows(0, 10);
    QVERIFY(QTest::qWaitFor([&] { return model.isComplete() && model.isIdle() && model.isWatching(); }, kTimeout));
    QCOMPARE(model.loadedPageCount(), size_t(1));
    seedNumbered(db, numbered("k", 1500) + "-", 50);  // 50 new keys in page 7
    db.put(numbered("k", 900), "overwritten", kRawWrite);  // no new row
    db.del(numbered("k", 1999), kRawWrite);
    QTRY_VERIFY_WITH_TIMEOUT(model.rowCount() == 2049 && model.isIdle(), kTimeout);
    // (The tester reads the rows inserted, which loads their page: one more
    // than the budget while the visible one is pinned.)
    QVERIFY(model.loadedPageCount() <= 2);
    model.setVisibleRows(1500, 1560);
    QCOMPARE(keyAt(model, 1501), QString::fromStdString(numbered(numbered("k", 1500) + "-", 0)));
    QCOMPARE(keyAt(model, 1551), QStringLiteral("k0001501"));
  }
};

QTEST_MAIN(TestKeyListModel)
#include "test_key_list_model.moc"

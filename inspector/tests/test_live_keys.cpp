// The key browser kept live by the host's change feed, against a host in a
// process of its own (`many-level serve --memory`) that other processes
// (`many-level put`, `del`, `batch`, `clear`) write to: rows appear, change
// and vanish without a reload or a page read, highlighted for a moment;
// changes in pages that are not loaded keep the row count right; and a burst
// of ten thousand writes a second does not freeze the window.
#include <QAbstractItemModelTester>
#include <QElapsedTimer>
#include <QSignalSpy>
#include <QTableView>
#include <QtTest>

#include <atomic>
#include <thread>

#include "key_browser.h"
#include "key_list_model.h"
#include "prompter.h"
#include "many_level/transport/fd_transport.hpp"
#include "test_support.h"

using namespace inspector_test;

namespace {

QString keyAt(KeyListModel& model, int row) {
  QString key;
  (void)QTest::qWaitFor([&] {
    const QModelIndex index = model.index(row, KeyListModel::KeyColumn);
    if (!index.data(KeyListModel::LoadedRole).toBool()) return false;
    key = index.data().toString();
    return true;
  }, kTimeout);
  return key;
}

// Every key of the model, loading pages as needed.
QStringList allKeys(KeyListModel& model) {
  QStringList keys;
  for (int row = 0; row < model.rowCount(); ++row) {
    model.setVisibleRows(row, row);
    keys << keyAt(model, row);
  }
  return keys;
}

// A JSON array of puts of `count` numbered keys, as `many-level batch` reads it.
QByteArray seedBatch(const std::string& prefix, size_t count, size_t first = 0) {
  QByteArray json = "[";
  for (size_t i = first; i < first + count; ++i) {
    if (i > first) json += ",";
    json += QByteArray("{\"type\":\"put\",\"key\":\"") + numbered(prefix, i).c_str() + "\",\"value\":\"value " +
            QByteArray::number(qulonglong(i)) + "\"}";
  }
  return json + "]";
}

class NoPrompter : public Prompter {
 public:
  bool confirm(QWidget*, const QString&, const QString&) override { return false; }
  std::optional<EntryEdit> editEntry(QWidget*, const EntryEdit&, bool) override { return std::nullopt; }
};

}  // namespace

class TestLiveKeys : public QObject {
  Q_OBJECT

 private:
  std::unique_ptr<ProgramHost> host_;
  std::optional<Endpoint> endpoint_;

  // `many-level ARGS --connect <the host>`, which must succeed.
  bool ml(QStringList args, const QByteArray& input = {}) {
    QString errors;
    const int status = runProgram(args << QStringLiteral("--connect") << host_->address(), input, &errors);
    if (status != 0) qWarning("many-level %s: status %d: %s", qPrintable(args.join(' ')), status, qPrintable(errors));
    return status == 0;
  }

 private slots:
  void init() {
    host_ = std::make_unique<ProgramHost>();
    endpoint_ = host_->endpoint();
    QVERIFY(endpoint_);
  }

  void cleanup() { host_.reset(); }

  void rowsAppearChangeAndVanishWithoutReload() {
    QVERIFY(ml({QStringLiteral("batch")}, seedBatch("k", 20, 10)));  // k0000010 .. k0000029
    auto session = connectedSession(*endpoint_);
    QVERIFY(session);
    KeyListModel model(session->guest(), session->queryHooks());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setHighlightDuration(60000);  // the checks below must see every highlight
    model.setVisibleRows(0, 40);
    QVERIFY(QTest::qWaitFor([&] { return model.isComplete() && model.isIdle() && model.isWatching(); }, kTimeout));
    QCOMPARE(model.liveText(), QStringLiteral("Live: following the host's change feed"));
    QCOMPARE(keyAt(model, 0), QStringLiteral("k0000010"));
    QCOMPARE(model.rowCount(), 20);

    // From here on nothing is read again: every change comes from the feed.
    QSignalSpy resets(&model, &QAbstractItemModel::modelAboutToBeReset);
    QSignalSpy reads(&model, &KeyListModel::pageLoaded);

    QVERIFY(ml({QStringLiteral("put"), QString::fromStdString(numbered("k", 5)), QStringLiteral("new")}));
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 21, kTimeout);
    QCOMPARE(keyAt(model, 0), QStringLiteral("k0000005"));
    QVERIFY(model.index(0, 0).data(KeyListModel::HighlightedRole).toBool());
    QVERIFY(model.index(0, 0).data(Qt::BackgroundRole).isValid());
    QVERIFY(!model.index(1, 0).data(KeyListModel::HighlightedRole).toBool());

    QVERIFY(ml({QStringLiteral("put"), QString::fromStdString(numbered("k", 20)), QStringLiteral("changed")}));
    QTRY_COMPARE_WITH_TIMEOUT(model.index(11, KeyListModel::ValueColumn).data().toString(), QStringLiteral("changed"),
                              kTimeout);
    QVERIFY(model.index(11, 0).data(KeyListModel::HighlightedRole).toBool());
    QCOMPARE(model.rowCount(), 21);  // a change in place

    QVERIFY(ml({QStringLiteral("del"), QString::fromStdString(numbered("k", 29))}));
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 20, kTimeout);

    // A batch is one commit: its puts and dels land together.
    QVERIFY(ml({QStringLiteral("batch")},
               QByteArray("[{\"type\":\"put\",\"key\":\"k0000015b\",\"value\":\"b\"},"
                          "{\"type\":\"del\",\"key\":\"k0000010\"},"
                          "{\"type\":\"put\",\"key\":\"k0000011\",\"value\":\"batch\"}]")));
    QTRY_VERIFY_WITH_TIMEOUT(model.rowCount() == 20 && keyAt(model, 1) == QStringLiteral("k0000011") &&
                                 model.index(1, KeyListModel::ValueColumn).data().toString() == QStringLiteral("batch"),
                             kTimeout);
    // A clear comes as the deletes it did.
    QVERIFY(ml({QStringLiteral("clear"), QStringLiteral("--gte"), QStringLiteral("k0000025"), QStringLiteral("--lt"),
                QStringLiteral("k0000029")}));
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 16, kTimeout);

    QStringList expected = {QStringLiteral("k0000005"), QStringLiteral("k0000011"), QStringLiteral("k0000012"),
                            QStringLiteral("k0000013"), QStringLiteral("k0000014"), QStringLiteral("k0000015"),
                            QStringLiteral("k0000015b")};
    for (int i = 16; i <= 24; ++i) expected << QString::fromStdString(numbered("k", static_cast<size_t>(i)));
    QCOMPARE(allKeys(model), expected);
    QCOMPARE(resets.count(), 0);
    QCOMPARE(reads.count(), 0);

    // Highlights fade.
    model.setHighlightDuration(200);
    QTRY_VERIFY_WITH_TIMEOUT(!model.index(0, 0).data(KeyListModel::HighlightedRole).toBool(), kTimeout);
    QVERIFY(!model.index(0, 0).data(Qt::BackgroundRole).isValid());
  }

  // Pages whose rows are not in memory know only their size: a change there
  // is checked by reading that page's keys again, so the count stays right.
  void changesInPagesNotLoadedKeepTheCountRight() {
    QVERIFY(ml({QStringLiteral("batch"), QStringLiteral("--prefix"), QStringLiteral("big")}, seedBatch("k", 3000)));
    auto session = connectedSession(*endpoint_);
    QVERIFY(session);
    KeyListModel model(session->guest(), session->queryHooks());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setMaxLoadedPages(2);
    model.setBasePrefix("!big!");
    model.setVisibleRows(0, 10);
    QVERIFY(QTest::qWaitFor([&] { return model.isComplete() && model.isIdle() && model.isWatching(); }, kTimeout));
    QCOMPARE(model.rowCount(), 3000);
    QVERIFY(model.loadedPageCount() <= 2);
    QSignalSpy resets(&model, &QAbstractItemModel::modelAboutToBeReset);

    // Far from what is loaded: a new key, an overwrite (no new row), two
    // deletions and one of a key that is not there.
    QVERIFY(ml({QStringLiteral("batch"), QStringLiteral("--prefix"), QStringLiteral("big")},
               QByteArray("[{\"type\":\"put\",\"key\":\"k0002500x\",\"value\":\"new\"},"
                          "{\"type\":\"put\",\"key\":\"k0001000\",\"value\":\"changed\"},"
                          "{\"type\":\"del\",\"key\":\"k0002000\"},"
                          "{\"type\":\"del\",\"key\":\"k0002001\"},"
                          "{\"type\":\"del\",\"key\":\"nothere\"}]")));
    QTRY_VERIFY_WITH_TIMEOUT(model.rowCount() == 2999 && model.isIdle(), kTimeout);
    QVERIFY(model.loadedPageCount() <= 3);
    model.setVisibleRows(2490, 2510);
    QCOMPARE(keyAt(model, 2498), QStringLiteral("k0002500"));
    QCOMPARE(keyAt(model, 2499), QStringLiteral("k0002500x"));
    model.setVisibleRows(995, 1005);
    QCOMPARE(keyAt(model, 1000), QStringLiteral("k0001000"));
    QCOMPARE(model.index(1000, KeyListModel::ValueColumn).data().toString(), QStringLiteral("changed"));
    model.setVisibleRows(1995, 2005);
    QCOMPARE(keyAt(model, 2000), QStringLiteral("k0002002"));
    QCOMPARE(resets.count(), 0);
  }

  // Ten thousand puts a second for two seconds, from a guest of its own,
  // into the very rows on screen: the window keeps answering (its event
  // loop never stalls long), and ends with every row.
  void aBurstDoesNotFreezeTheWindow() {
    auto session = connectedSession(*endpoint_);
    QVERIFY(session);
    NoPrompter prompter;
    KeyBrowser browser(session->guest(), session->queryHooks(), prompter);
    browser.resize(1000, 700);
    browser.show();
    KeyListModel& model = *browser.model();
    QVERIFY(QTest::qWaitFor([&] { return model.isComplete() && model.isIdle() && model.isWatching(); }, kTimeout));
    QSignalSpy resets(&model, &QAbstractItemModel::modelAboutToBeReset);

    constexpr size_t kWrites = 20000;
    std::atomic<bool> done{false};
    std::string writer_error;
    std::thread writer([&] {
      try {
        many_level::Guest guest;
        auto stream = guest.connect();
        auto connection = many_level::connect_fd(host_->address().toStdString(), *stream);
        const auto start = std::chrono::steady_clock::now();
        for (size_t i = 0; i < kWrites; i += 100) {
          std::vector<many_level::BatchOperation> batch;
          for (size_t k = i; k < i + 100; ++k) batch.push_back(many_level::BatchOperation::put(numbered("w", k), "v"));
          guest.batch(batch);
          // 100 every 10 ms: 10,000 a second.
          std::this_thread::sleep_until(start + std::chrono::milliseconds(10 * (i / 100 + 1)));
        }
        guest.close();
      } catch (const std::exception& e) {
        writer_error = e.what();
      }
      done = true;
    });

    QElapsedTimer clock;
    clock.start();
    qint64 last = clock.elapsed();
    qint64 longest_stall = 0;
    QTimer ticker;
    ticker.setInterval(5);
    connect(&ticker, &QTimer::timeout, [&] {
      const qint64 now = clock.elapsed();
      longest_stall = std::max(longest_stall, now - last);
      last = now;
    });
    ticker.start();
    const bool finished = QTest::qWaitFor([&] { return done.load(); }, 60000);
    writer.join();
    QVERIFY(finished);
    QVERIFY2(writer_error.empty(), writer_error.c_str());
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), int(kWrites), kTimeout);
    ticker.stop();
    qInfo("20,000 puts in 2 s: the event loop stalled at most %lld ms; %zu of %zu pages in memory", longest_stall,
          model.loadedPageCount(), model.pageCount());
    QVERIFY2(longest_stall < 750, qPrintable(QStringLiteral("stalled %1 ms").arg(longest_stall)));
    QCOMPARE(resets.count(), 0);
    // What is on screen is right.
    QCOMPARE(keyAt(model, 0), QStringLiteral("w0000000"));
    model.setVisibleRows(int(kWrites) - 10, int(kWrites) - 1);
    QCOMPARE(keyAt(model, int(kWrites) - 1), QString::fromStdString(numbered("w", kWrites - 1)));
  }
};

QTEST_MAIN(TestLiveKeys)
#include "test_live_keys.moc"

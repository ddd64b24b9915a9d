// The Inspector against the Node reference host (many-level 2.0.0 over
// memory-level, tests/interop/node-host.js): counting and paging keys, live
// refresh by polling (a Node host has no change feed, and the status bar
// says so), the host tab saying it has no statistics, the frame log decoding
// Node's frames, a dropped connection and the iterator resuming, and a
// read-only Node host turning editing off.
// Skipped when node or the interop packages are not installed.
#include <QAbstractItemModelTester>
#include <QLabel>
#include <QTabWidget>
#include <QProcess>
#include <QRegularExpression>
#include <QStandardPaths>
#include <QtTest>

#include "frame_log_model.h"
#include "host_stats_model.h"
#include "host_view.h"
#include "key_browser.h"
#include "key_list_model.h"
#include "main_window.h"
#include "prompter.h"
#include "sublevel_tree_model.h"
#include "many_level/transport/fd_transport.hpp"
#include "test_support.h"

using namespace inspector_test;

namespace {

// A Node host on a free port, stopped (SIGTERM, then SIGKILL) when it goes.
class NodeHost {
 public:
  NodeHost(const QStringList& extra) {
    const QString script = QStringLiteral(MANY_LEVEL_SOURCE_DIR "/tests/interop/node-host.js");
    process_.setProgram(QStandardPaths::findExecutable(QStringLiteral("node")));
    process_.setArguments(QStringList{script, QStringLiteral("--listen"), QStringLiteral("tcp://127.0.0.1:0")} + extra);
    process_.setProcessChannelMode(QProcess::SeparateChannels);
    process_.start();
  }
  ~NodeHost() {
    if (process_.state() == QProcess::NotRunning) return;
    process_.terminate();
    if (!process_.waitForFinished(5000)) {
      process_.kill();
      process_.waitForFinished(5000);
    }
  }
  // Where it listens, once it says so.
  std::optional<Endpoint> endpoint() {
    QString out;
    const bool ready = QTest::qWaitFor([&] {
      out += QString::fromUtf8(process_.readAllStandardOutput());
      return out.contains(QLatin1Char('\n')) || process_.state() == QProcess::NotRunning;
    }, 60000);
    const auto match = QRegularExpression(QStringLiteral("listening (\\S+)")).match(out);
    if (!ready || !match.hasMatch()) {
      qWarning("node host did not start: %s %s", qPrintable(out), process_.readAllStandardError().constData());
      return std::nullopt;
    }
    return Endpoint::parse(match.captured(1));
  }

 private:
  QProcess process_;
};

bool nodeAvailable() {
  return !QStandardPaths::findExecutable(QStringLiteral("node")).isEmpty() &&
         QFileInfo::exists(QStringLiteral(MANY_LEVEL_SOURCE_DIR "/tests/interop/node_modules/many-level/package.json"));
}

QString keyAt(KeyListModel& model, int row) {
  QString key;
  (void)QTest::qWaitFor([&] {
    const QModelIndex index = model.index(row, 0);
    if (!index.data(KeyListModel::LoadedRole).toBool()) return false;
    key = index.data().toString();
    return true;
  }, kTimeout);
  return key;
}

class YesPrompter : public Prompter {
 public:
  EntryEdit next;
  bool confirm(QWidget*, const QString&, const QString&) override { return true; }
  std::optional<EntryEdit> editEntry(QWidget*, const EntryEdit&, bool) override { return next; }
};

}  // namespace

class TestNodeHost : public QObject {
  Q_OBJECT

 private slots:
  void init() {
    if (!nodeAvailable()) QSKIP("node or tests/interop/node_modules is not installed");
  }

  void browsesAndFollowsANodeHost() {
    NodeHost node({QStringLiteral("--seed"), QStringLiteral("3000")});
    auto endpoint = node.endpoint();
    QVERIFY(endpoint);
    auto session = connectedSession(*endpoint);
    QVERIFY(session);

    KeyListModel model(session->guest(), session->queryHooks());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setCountChunk(1000);
    model.setRefreshInterval(50);
    QVERIFY(QTest::qWaitFor([&] { return model.isComplete() && model.isIdle(); }, kTimeout));
    QCOMPARE(model.rowCount(), 3000);
    QCOMPARE(keyAt(model, 0), QStringLiteral("seed:00000000"));
    model.setVisibleRows(2990, 2999);
    QCOMPARE(keyAt(model, 2999), QStringLiteral("seed:00002999"));
    QVERIFY(model.index(2999, KeyListModel::ValueColumn).data().toString().startsWith(QStringLiteral("value:2999...")));

    // A write of our own shows up in the visible page.
    auto put = session->guest().put_async("seed:00002999x", "new");
    QVERIFY(QTest::qWaitFor([&] { return put.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }, kTimeout));
    put.get();
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 3001, kTimeout);
    QCOMPARE(keyAt(model, 3000), QStringLiteral("seed:00002999x"));

    // Node's frames, decoded: its first data frame carries one entry.
    FrameLogModel frames(session->frames(), 10000);
    frames.setPollInterval(0);
    frames.poll();
    bool saw_data = false;
    for (int row = 0; row < frames.rowCount(); ++row) {
      if (frames.index(row, FrameLogModel::TagColumn).data().toString() == QLatin1String("iteratorData")) saw_data = true;
    }
    QVERIFY(saw_data);

    // No sublevels in the seed data; the tree says so.
    SublevelTreeModel tree(session->guest());
    tree.fetchMore(tree.databaseIndex());
    QVERIFY(QTest::qWaitFor([&] { return !tree.canFetchMore(tree.databaseIndex()) && tree.isIdle(); }, kTimeout));
    QCOMPARE(tree.rowCount(tree.databaseIndex()), 0);

    // Drop the connection mid-iteration: the iterator resumes from its bookmark.
    auto iterator = std::shared_ptr<many_level::Iterator>(session->guest().iterator());
    std::vector<std::string> keys;
    const auto step = [&] {
      auto batch = std::async(std::launch::async, [&] { return iterator->nextv(500); });
      if (!QTest::qWaitFor([&] { return batch.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }, kTimeout)) return false;
      for (auto& entry : batch.get()) keys.push_back(entry.key);
      return true;
    };
    QVERIFY(step());
    QVERIFY(session->dropConnection());
    size_t before = 0;
    do {
      before = keys.size();
      QVERIFY(step());
    } while (keys.size() > before);
    QCOMPARE(keys.size(), size_t(3001));
    QCOMPARE(keys[1500], std::string("seed:00001500"));
    session->pollStats();
    QVERIFY(session->reconnects() >= 1);
    iterator->close();
  }

  // No change feed: the key view polls, and says so; the host tab has no
  // statistics, and says so.
  void fallsBackToPollingAndSaysSo() {
    NodeHost node({QStringLiteral("--seed"), QStringLiteral("50")});
    auto endpoint = node.endpoint();
    QVERIFY(endpoint);
    auto session = connectedSession(*endpoint);
    QVERIFY(session);
    YesPrompter prompter;
    MainWindowOptions options;
    options.prompter = &prompter;
    MainWindow window(*session, options);
    window.resize(1100, 700);
    window.show();
    window.tabs()->setCurrentIndex(MainWindow::KeysTab);
    KeyListModel* model = window.keyBrowser()->model();
    QAbstractItemModelTester tester(model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QTRY_VERIFY_WITH_TIMEOUT(model->isComplete() && model->rowCount() == 50, kTimeout);
    QTRY_COMPARE_WITH_TIMEOUT(model->liveState(), LiveFeed::State::unsupported, kTimeout);
    QTRY_COMPARE_WITH_TIMEOUT(window.liveLabel()->text(), QStringLiteral("Host has no change feed: polling every second"),
                              kTimeout);
    QVERIFY(!model->isWatching());

    // Polling still shows what another guest writes, in place.
    many_level::Guest writer;
    auto stream = writer.connect();
    auto connection = many_level::connect_fd(endpoint->toString().toStdString(), *stream);
    writer.put("seed:00000010x", "from another guest");
    writer.del("seed:00000003");
    QTRY_VERIFY_WITH_TIMEOUT(model->rowCount() == 50 && keyAt(*model, 10) == QStringLiteral("seed:00000010x"), kTimeout);
    QVERIFY(model->index(10, 0).data(KeyListModel::HighlightedRole).toBool());
    writer.close();

    // The host tab asks once, learns there is nothing to ask for, and says so.
    window.tabs()->setCurrentIndex(MainWindow::HostTab);
    HostView* host = window.hostView();
    QTRY_VERIFY_WITH_TIMEOUT(!host->isAvailable(), kTimeout);
    QVERIFY(host->noteLabel()->text().contains(QStringLiteral("no statistics")));
    QCOMPARE(host->model()->rowCount(), 0);
  }

  void readOnlyNodeHost() {
    NodeHost node({QStringLiteral("--seed"), QStringLiteral("10"), QStringLiteral("--readonly")});
    auto endpoint = node.endpoint();
    QVERIFY(endpoint);
    auto session = connectedSession(*endpoint);
    QVERIFY(session);
    YesPrompter prompter;
    prompter.next = {"x", "y"};
    KeyBrowser browser(session->guest(), session->queryHooks(), prompter);
    QSignalSpy written(&browser, &KeyBrowser::writeFinished);
    browser.newEntry();
    QVERIFY(written.wait(kTimeout));
    QVERIFY(!written.at(0).at(0).toBool());
    QVERIFY(written.at(0).at(1).toString().contains(QStringLiteral("LEVEL_READONLY")));
    QVERIFY(browser.isReadOnly());
  }
};

QTEST_MAIN(TestNodeHost)
#include "test_node_host.moc"

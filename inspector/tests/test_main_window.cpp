// The main window's wiring, driven through its widgets against a real host:
// connect from the connection tab, browse keys and sublevels, put and delete
// through the UI (confirmations answered by a test prompter), a read-only
// host turning editing off, the drop button and the reconnect count, the
// playground, the load generator, the frame log and the charts.
#include <QAbstractItemModelTester>
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTableView>
#include <QTreeView>
#include <QtTest>

#include "charts_view.h"
#include "connection_view.h"
#include "demo_data.h"
#include "frame_filter_model.h"
#include "frame_log_model.h"
#include "frame_log_view.h"
#include "iterator_playground.h"
#include "iterators_model.h"
#include "iterators_view.h"
#include "key_browser.h"
#include "key_list_model.h"
#include "load_generator.h"
#include "main_window.h"
#include "pending_model.h"
#include "pending_view.h"
#include "prompter.h"
#include "sublevel_tree_model.h"
#include "test_support.h"
#include "time_series_chart.h"

using namespace inspector_test;

// Answers as a user who clicks OK, and remembers what was asked.
class AutoPrompter : public Prompter {
 public:
  bool accept = true;
  EntryEdit next;
  QStringList asked;

  bool confirm(QWidget*, const QString& title, const QString& text) override {
    asked << title + QStringLiteral(": ") + text;
    return accept;
  }
  std::optional<EntryEdit> editEntry(QWidget*, const EntryEdit& initial, bool existing) override {
    asked << (existing ? QStringLiteral("edit ") : QStringLiteral("new ")) + QString::fromStdString(initial.key);
    if (!accept) return std::nullopt;
    return next;
  }
};

class TestMainWindow : public QObject {
  Q_OBJECT

 private:
  struct App {
    std::unique_ptr<HostFixture> fixture;
    std::unique_ptr<InspectorSession> session;
    AutoPrompter prompter;
    std::unique_ptr<MainWindow> window;

    explicit App(many_level::HostOptions options = {}) {
      fixture = std::make_unique<HostFixture>(std::move(options));
      seedDemoData(fixture->db, 500);
      session = std::make_unique<InspectorSession>();
      session->setBackoff(20, 200);
      session->setStatsInterval(50);
      MainWindowOptions window_options;
      window_options.prompter = &prompter;
      window = std::make_unique<MainWindow>(*session, window_options);
      window->resize(1100, 750);
      window->show();
    }
    ~App() {
      window.reset();
      session.reset();
    }

    // Connects the way a user does: types the address, clicks Connect.
    bool connectByHand() {
      auto* view = window->connectionView();
      view->addressEdit()->setText(fixture->endpoint.toString());
      QTest::mouseClick(view->connectButton(), Qt::LeftButton);
      return QTest::qWaitFor([&] { return session->state() == InspectorSession::State::connected; }, kTimeout);
    }
  };

  static int rowOfKey(KeyListModel& model, const QString& key) {
    for (int row = 0; row < model.rowCount(); ++row) {
      if (model.index(row, 0).data().toString() == key) return row;
    }
    return -1;
  }

 private slots:
  void connectBrowseAndShowValues() {
    App app;
    QVERIFY(app.connectByHand());
    QTRY_VERIFY_WITH_TIMEOUT(app.window->connectionView()->log()->toPlainText().contains(QStringLiteral("connected to tcp://127.0.0.1:")), kTimeout);
    QCOMPARE(app.window->connectionView()->stateLabel()->text(), QStringLiteral("connected"));

    app.window->tabs()->setCurrentIndex(MainWindow::KeysTab);
    KeyBrowser* browser = app.window->keyBrowser();
    KeyListModel* model = browser->model();
    QAbstractItemModelTester tester(model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    // 4 plain keys, 20 users, 12 sessions, 60 orders, 500 bulk.
    QTRY_VERIFY_WITH_TIMEOUT(model->isComplete() && model->rowCount() == 596, kTimeout);

    // The sublevel tree, expanded by hand.
    SublevelTreeModel* tree = browser->treeModel();
    const QModelIndex database = tree->databaseIndex();
    browser->tree()->expand(database);
    QTRY_COMPARE_WITH_TIMEOUT(tree->rowCount(database), 3, kTimeout);
    const QModelIndex users = tree->index(2, 0, database);
    QCOMPARE(users.data().toString(), QStringLiteral("users"));
    browser->tree()->setCurrentIndex(users);
    QTRY_VERIFY_WITH_TIMEOUT(model->isComplete() && model->rowCount() == 32, kTimeout);
    QCOMPARE(model->basePrefix(), std::string("!users!"));
    browser->tree()->expand(users);
    QTRY_COMPARE_WITH_TIMEOUT(tree->rowCount(users), 1, kTimeout);

    // Select alice: her JSON shows pretty in the value pane, and in hex.
    int alice = -1;
    QTRY_VERIFY_WITH_TIMEOUT((alice = rowOfKey(*model, QStringLiteral("alice"))) >= 0, kTimeout);
    QSignalSpy shown(browser, &KeyBrowser::valueShown);
    browser->selectRow(alice);
    QTRY_VERIFY_WITH_TIMEOUT(browser->valueView()->toPlainText().contains(QStringLiteral("\"name\": \"Alice\"")) ||
                                 browser->valueView()->toPlainText().contains(QStringLiteral("\"name\":\"alice\"")),
                             kTimeout);
    browser->setValueFormat(ValueFormat::json);
    QVERIFY(browser->valueView()->toPlainText().contains(QStringLiteral("\n  \"age\": ")));
    browser->setValueFormat(ValueFormat::hex);
    QVERIFY(browser->valueView()->toPlainText().startsWith(QStringLiteral("00000000  7b 22")));

    // Filters typed in the bar.
    browser->prefixEdit()->setText(QStringLiteral("!sessions!"));
    browser->applyFilter();
    QTRY_VERIFY_WITH_TIMEOUT(model->isComplete() && model->rowCount() == 12, kTimeout);
  }

  void putEditAndDeleteThroughTheUi() {
    App app;
    QVERIFY(app.connectByHand());
    KeyBrowser* browser = app.window->keyBrowser();
    KeyListModel* model = browser->model();
    browser->browsePrefix("!orders!");
    QTRY_VERIFY_WITH_TIMEOUT(model->isComplete() && model->rowCount() == 60, kTimeout);
    QSignalSpy written(browser, &KeyBrowser::writeFinished);

    // New: the key typed is inside the browsed sublevel.
    app.prompter.next = {"2025-0001", "{\"customer\":\"zed\"}"};
    QVERIFY(browser->newButton()->isEnabled());
    QTest::mouseClick(browser->newButton(), Qt::LeftButton);
    QVERIFY(written.wait(kTimeout));
    QVERIFY(written.last().at(0).toBool());
    QCOMPARE(app.fixture->db.get("!orders!2025-0001", kRawRead), std::string("{\"customer\":\"zed\"}"));
    QVERIFY(app.prompter.asked.last().startsWith(QStringLiteral("Put: Put !orders!2025-0001")));
    QTRY_VERIFY_WITH_TIMEOUT(rowOfKey(*model, QStringLiteral("2025-0001")) == 60, kTimeout);

    // Edit it.
    browser->selectRow(60);
    QTRY_VERIFY_WITH_TIMEOUT(browser->editButton()->isEnabled(), kTimeout);
    app.prompter.next = {"2025-0001", "{\"customer\":\"amy\"}"};
    QTest::mouseClick(browser->editButton(), Qt::LeftButton);
    QVERIFY(written.wait(kTimeout));
    QCOMPARE(app.fixture->db.get("!orders!2025-0001", kRawRead), std::string("{\"customer\":\"amy\"}"));

    // Cancelled delete: nothing happens.
    app.prompter.accept = false;
    QTest::mouseClick(browser->deleteButton(), Qt::LeftButton);
    QVERIFY(app.fixture->db.has("!orders!2025-0001", kRawRead));
    app.prompter.accept = true;

    // Delete, confirmed.
    browser->selectRow(60);
    QTest::mouseClick(browser->deleteButton(), Qt::LeftButton);
    QVERIFY(written.wait(kTimeout));
    QVERIFY(!app.fixture->db.has("!orders!2025-0001", kRawRead));
    QVERIFY(app.prompter.asked.last().startsWith(QStringLiteral("Delete: Delete !orders!2025-0001")));
    QTRY_COMPARE_WITH_TIMEOUT(model->rowCount(), 60, kTimeout);
  }

  void readOnlyHostTurnsEditingOff() {
    many_level::HostOptions options;
    options.readonly = true;
    App app(options);
    QVERIFY(app.connectByHand());
    KeyBrowser* browser = app.window->keyBrowser();
    QVERIFY(!browser->isReadOnly());
    QSignalSpy written(browser, &KeyBrowser::writeFinished);
    app.prompter.next = {"nope", "v"};
    QTest::mouseClick(browser->newButton(), Qt::LeftButton);
    QVERIFY(written.wait(kTimeout));
    QVERIFY(!written.last().at(0).toBool());
    QVERIFY(written.last().at(1).toString().contains(QStringLiteral("LEVEL_READONLY")));
    QVERIFY(browser->isReadOnly());
    QVERIFY(!browser->newButton()->isEnabled());
    QVERIFY(!browser->deleteButton()->isEnabled());
    QVERIFY(!app.fixture->db.has("nope", kRawRead));
  }

  void dropButtonReconnects() {
    App app;
    QVERIFY(app.connectByHand());
    ConnectionView* view = app.window->connectionView();
    QCOMPARE(view->reconnectsLabel()->text(), QStringLiteral("0"));
    QTRY_VERIFY_WITH_TIMEOUT(view->dropButton()->isEnabled(), kTimeout);
    QTest::mouseClick(view->dropButton(), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(view->reconnectsLabel()->text(), QStringLiteral("1"), kTimeout);
    QTRY_COMPARE_WITH_TIMEOUT(app.session->state(), InspectorSession::State::connected, kTimeout);
    const QString log = view->log()->toPlainText();
    QVERIFY2(log.contains(QStringLiteral("dropped on request")), qPrintable(log));
    QVERIFY(log.contains(QStringLiteral("retrying in")));
    QTRY_VERIFY_WITH_TIMEOUT(view->dropButton()->isEnabled(), kTimeout);
    QTest::mouseClick(view->dropButton(), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(view->reconnectsLabel()->text(), QStringLiteral("2"), kTimeout);
  }

  void iteratorsPendingFramesAndCharts() {
    App app;
    QVERIFY(app.connectByHand());

    // The playground's iterator shows in the iterators tab.
    IteratorsView* iterators = app.window->iteratorsView();
    IteratorPlayground* playground = iterators->playground();
    QSignalSpy opened(playground, &IteratorPlayground::opened);
    QSignalSpy stepped(playground, &IteratorPlayground::stepped);
    many_level::IteratorOptions options;
    options.gte = "!bulk!";
    options.lt = "!bulk\"";
    playground->open(options);
    QVERIFY(opened.wait(kTimeout));
    playground->nextv(5);
    QVERIFY(stepped.wait(kTimeout));
    QVERIFY(stepped.last().at(0).toInt() >= 1);  // what has arrived: the first frame holds one entry
    QTRY_VERIFY_WITH_TIMEOUT(iterators->model()->rowOfId(playground->iteratorId()) >= 0, kTimeout);

    // Load: the pending tab's generator, started by its button.
    PendingView* pending = app.window->pendingView();
    pending->rateBox()->setValue(500);
    QTest::mouseClick(pending->startButton(), Qt::LeftButton);
    QVERIFY(app.window->loadGenerator()->isRunning());
    QTRY_VERIFY_WITH_TIMEOUT(app.window->loadGenerator()->totalCompleted() > 100, kTimeout);
    // The charts fill in, once a second.
    ChartsView* charts = app.window->chartsView();
    QTRY_VERIFY_WITH_TIMEOUT(charts->latencyChart()->pointCount(0) >= 1, kTimeout);
    QTRY_VERIFY_WITH_TIMEOUT(charts->throughputChart()->lastValue(0) > 0, kTimeout);
    QVERIFY(charts->bandwidthChart()->pointCount(0) >= 1);
    QTest::mouseClick(pending->startButton(), Qt::LeftButton);
    QVERIFY(!app.window->loadGenerator()->isRunning());

    // The frame log saw it all.
    FrameLogModel* frames = app.window->frameLogView()->model();
    QTRY_VERIFY_WITH_TIMEOUT(frames->rowCount() > 100, kTimeout);
    app.window->frameLogView()->filterEdit()->setText(QStringLiteral("iteratorData"));
    QTRY_VERIFY_WITH_TIMEOUT(app.window->frameLogView()->filter()->rowCount() >= 1, kTimeout);
    QTest::mouseClick(app.window->frameLogView()->pauseButton(), Qt::LeftButton);
    QVERIFY(frames->isPaused());

    // Every tab renders.
    for (int tab = 0; tab < app.window->tabs()->count(); ++tab) {
      app.window->tabs()->setCurrentIndex(tab);
      const QPixmap shot = app.window->grab();
      QVERIFY(!shot.isNull());
      QCOMPARE(shot.size(), app.window->size());
    }
    playground->close();
  }
};

QTEST_MAIN(TestMainWindow)
#include "test_main_window.moc"

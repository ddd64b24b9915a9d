// inspector-screenshots: seeds an in-process host, drives each view of the
// real Inspector window the way a teacher would (browse a sublevel, step an
// iterator, hold a snapshot, run load, drop the connection, let other guests
// connect and write), and saves every tab as <dir>/inspector-<view>.png.
// Runs on the offscreen platform:
//
//   QT_QPA_PLATFORM=offscreen inspector-screenshots [--out DIR] [--keys N]
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableView>
#include <QTest>
#include <QTreeView>

#include <cstdio>

#include "charts_view.h"
#include "connection_view.h"
#include "demo_data.h"
#include "dialog_prompter.h"
#include "frame_filter_model.h"
#include "frame_log_model.h"
#include "frame_log_view.h"
#include "host_stats_model.h"
#include "host_view.h"
#include "inspector_session.h"
#include "iterator_playground.h"
#include "iterators_model.h"
#include "iterators_view.h"
#include "key_browser.h"
#include "key_list_model.h"
#include "load_generator.h"
#include "main_window.h"
#include "many_level/memory_database.hpp"
#include "many_level/transport/fd_transport.hpp"
#include "pending_model.h"
#include "pending_view.h"
#include "served_host.h"
#include "snapshots_model.h"
#include "sublevel_tree_model.h"
#include "watches_model.h"

using namespace inspector;

static bool waitFor(const std::function<bool()>& condition, int ms = 20000) {
  return QTest::qWaitFor(condition, ms);
}

static void save(MainWindow& window, MainWindow::Tab tab, const QString& dir, const QString& name) {
  window.tabs()->setCurrentIndex(tab);
  QTest::qWait(50);  // let the tab lay out and paint
  const QString path = QDir(dir).filePath(QStringLiteral("inspector-%1.png").arg(name));
  if (!window.grab().save(path)) {
    std::fprintf(stderr, "inspector-screenshots: cannot write %s\n", qPrintable(path));
    std::exit(1);
  }
  std::printf("%s\n", qPrintable(path));
}

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QCommandLineParser parser;
  parser.addHelpOption();
  QCommandLineOption out_option(QStringLiteral("out"), QStringLiteral("Where to save the PNGs."), QStringLiteral("DIR"),
                                QStringLiteral("docs"));
  QCommandLineOption keys_option(QStringLiteral("keys"), QStringLiteral("Keys in the bulk sublevel."), QStringLiteral("N"),
                                 QStringLiteral("100000"));
  parser.addOption(out_option);
  parser.addOption(keys_option);
  parser.process(app);
  const QString dir = parser.value(out_option);
  QDir().mkpath(dir);

  many_level::MemoryDatabase db;
  seedDemoData(db, parser.value(keys_option).toULongLong());
  ServedHost host(db);
  const Endpoint endpoint = host.listen();

  InspectorSession session;
  session.setBackoff(1500, 1500);  // a visible gap, so the queue has time to grow
  DialogPrompter prompter;
  MainWindowOptions options;
  options.prompter = &prompter;
  MainWindow window(session, options);
  window.resize(1280, 820);
  window.show();

  window.connectionView()->addressEdit()->setText(endpoint.toString());
  QTest::mouseClick(window.connectionView()->connectButton(), Qt::LeftButton);
  if (!waitFor([&] { return session.state() == InspectorSession::State::connected; })) return 1;

  // Keys: the users sublevel, alice's value as pretty JSON.
  window.tabs()->setCurrentIndex(MainWindow::KeysTab);
  KeyBrowser* keys = window.keyBrowser();
  SublevelTreeModel* tree = keys->treeModel();
  const QModelIndex database = tree->databaseIndex();
  waitFor([&] { return tree->rowCount(database) >= 3 && tree->isIdle(); });
  QModelIndex users;
  for (int row = 0; row < tree->rowCount(database); ++row) {
    if (tree->index(row, 0, database).data().toString() == QLatin1String("users")) users = tree->index(row, 0, database);
  }
  if (!users.isValid()) return 1;
  keys->tree()->expand(users);
  waitFor([&] { return tree->rowCount(users) >= 1; });
  keys->tree()->setCurrentIndex(users);
  keys->setValueFormat(ValueFormat::json);
  waitFor([&] { return keys->model()->isComplete() && keys->model()->isIdle(); });
  keys->gotoEdit()->setText(QStringLiteral("carol"));
  keys->model()->locateKey("!users!carol");
  waitFor([&] { return keys->valueView()->toPlainText().contains(QLatin1String("\"carol\"")); });

  // Other guests, so the host tab has company: one reading (an iterator, a
  // snapshot and a watch of its own), one without the extension (as a Node
  // guest looks to the host).
  many_level::Guest reader;
  auto reader_stream = reader.connect();
  auto reader_connection = many_level::connect_fd(endpoint.toString().toStdString(), *reader_stream);
  auto reader_iterator = reader.iterator();
  reader_iterator->next();
  auto reader_snapshot = reader.snapshot();
  auto reader_watch = reader.watch(many_level::WatchOptions{}, [](std::optional<many_level::Error>,
                                                                  const many_level::Commit&) {});
  many_level::GuestOptions plain_options;
  plain_options.extension = false;
  many_level::Guest plain(plain_options);
  auto plain_stream = plain.connect();
  auto plain_connection = many_level::connect_fd(endpoint.toString().toStdString(), *plain_stream);
  plain.put("!orders!2024-0061", "{\"customer\":\"trent\",\"items\":1,\"total\":9.99,\"status\":\"open\"}");

  // Iterators: a playground iterator stepped a little; the host has read
  // ahead and paused, which the unacked column shows. Beside it, the key
  // browser's watch and a snapshot this guest holds.
  IteratorPlayground* playground = window.iteratorsView()->playground();
  many_level::IteratorOptions range;
  range.gte = "!bulk!";
  range.lt = "!bulk\"";
  playground->open(range);
  waitFor([&] { return playground->isOpen(); });
  playground->next();
  waitFor([&] { return !playground->isBusy(); });
  playground->nextv(20);
  waitFor([&] { return !playground->isBusy(); });
  // Shown before the load below, while the host's read-ahead sits in the guest.
  waitFor([&] {
    const int row = window.iteratorsView()->model()->rowOfId(playground->iteratorId());
    return row >= 0 && window.iteratorsView()->model()->iterators()[row].buffered_entries > 1;
  }, 5000);
  auto snapshot = session.guest().snapshot();
  waitFor([&] {
    return window.iteratorsView()->watchesModel()->rowCount() >= 1 &&
           window.iteratorsView()->snapshotsModel()->rowCount() >= 1;
  }, 5000);
  save(window, MainWindow::IteratorsTab, dir, QStringLiteral("iterators"));

  // Host: every connection of the host, this one included.
  window.tabs()->setCurrentIndex(MainWindow::HostTab);
  waitFor([&] { return window.hostView()->model()->rowCount() >= 3; }, 5000);
  QTest::qWait(1200);  // one more refresh: counters that moved
  save(window, MainWindow::HostTab, dir, QStringLiteral("host"));
  snapshot->close();

  // Load, then a drop: the queue grows while the guest waits to reconnect.
  window.chartsView()->setWindow(30);
  PendingView* pending = window.pendingView();
  pending->rateBox()->setValue(1500);
  QTest::mouseClick(pending->startButton(), Qt::LeftButton);
  QTest::qWait(6000);  // the charts need some history
  session.dropConnection();
  waitFor([&] { return pending->model()->rowCount() > 300; }, 5000);
  save(window, MainWindow::PendingTab, dir, QStringLiteral("pending"));
  waitFor([&] { return session.state() == InspectorSession::State::connected; });
  // Freeze the frame log just after the reconnect, while the playground's
  // iterator, asked for again from its bookmark, is still among its frames.
  FrameLogView* frames = window.frameLogView();
  QTest::qWait(300);
  QTest::mouseClick(frames->pauseButton(), Qt::LeftButton);
  QTest::qWait(5000);
  save(window, MainWindow::ChartsTab, dir, QStringLiteral("charts"));
  QTest::mouseClick(pending->startButton(), Qt::LeftButton);
  save(window, MainWindow::ConnectionTab, dir, QStringLiteral("connection"));

  // Keys, live: another guest rewrites carol and adds dan; both rows light
  // up where they are (the highlight fades over a second; held longer here
  // so that the picture catches it).
  window.tabs()->setCurrentIndex(MainWindow::KeysTab);
  keys->model()->setHighlightDuration(5000);
  waitFor([&] { return keys->model()->isWatching(); });
  reader.batch({many_level::BatchOperation::put("!users!carol", "{\"name\":\"carol\",\"age\":30,\"roles\":[\"reader\",\"admin\"],\"active\":true}"),
                many_level::BatchOperation::put("!users!dan", "{\"name\":\"dan\",\"age\":41,\"roles\":[\"reader\"],\"active\":true}")});
  waitFor([&] {
    for (int row = 0; row < keys->model()->rowCount(); ++row) {
      const QModelIndex index = keys->model()->index(row, 0);
      if (index.data().toString() == QLatin1String("dan")) return index.data(KeyListModel::HighlightedRole).toBool();
    }
    return false;
  }, 5000);
  QTest::qWait(400);
  save(window, MainWindow::KeysTab, dir, QStringLiteral("keys"));

  // Frames: the playground's iterator: opened, its first frame of one entry,
  // acks, and after the drop the same iterator asked for again from its bookmark.
  frames->filterEdit()->setText(QStringLiteral("id=%1 iterator").arg(playground->iteratorId()));
  waitFor([&] { return frames->filter()->rowCount() > 0; });
  int chosen = -1;
  for (int row = 0; row < frames->filter()->rowCount(); ++row) {
    const QString summary = frames->filter()->index(row, FrameLogModel::SummaryColumn).data().toString();
    if (summary.contains(QLatin1String("bookmark"))) chosen = row;
  }
  if (chosen >= 0) {
    frames->table()->selectRow(chosen);
    frames->table()->scrollTo(frames->filter()->index(chosen, 0), QAbstractItemView::PositionAtCenter);
  }
  save(window, MainWindow::FramesTab, dir, QStringLiteral("frames"));
  reader_watch->close();
  reader_snapshot->close();
  reader_iterator->close();
  reader.close();
  plain.close();
  return 0;
}

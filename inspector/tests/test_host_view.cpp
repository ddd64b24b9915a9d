// The Host tab: HostStatsModel's diff by connection id, and the view against
// a real host with several guests connected, one holding an iterator, a
// watch and a snapshot, one without the extension (shown as a Node guest).
#include <QAbstractItemModelTester>
#include <QLabel>
#include <QSignalSpy>
#include <QtTest>

#include "host_stats_model.h"
#include "host_view.h"
#include "many_level/transport/fd_transport.hpp"
#include "test_support.h"

using namespace inspector_test;
using many_level::HostConnectionStats;

namespace {

HostConnectionStats connection(uint64_t id, uint64_t requests, const std::string& address = "tcp://127.0.0.1:1") {
  HostConnectionStats c;
  c.id = id;
  c.address = address;
  c.requests = requests;
  c.extended = id % 2 == 1;
  return c;
}

}  // namespace

class TestHostView : public QObject {
  Q_OBJECT

 private slots:
  void diffsConnectionsById() {
    HostStatsModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QVERIFY(!model.hasStats());
    many_level::HostStats stats;
    stats.version = "0.1.0";
    stats.uptime_ms = 125000;
    stats.connections_total = 9;
    stats.database_kind = "sqlite";
    stats.database_path = "/tmp/x.db";
    stats.database_bytes = 3 << 20;
    stats.seq = 42;
    stats.connections = {connection(7, 1), connection(3, 5), connection(4, 0)};
    model.update(stats);
    QVERIFY(model.hasStats());
    QCOMPARE(model.rowCount(), 3);
    QCOMPARE(model.index(0, HostStatsModel::IdColumn).data().toULongLong(), qulonglong(3));
    QCOMPARE(model.index(0, HostStatsModel::GuestColumn).data().toString(), QStringLiteral("C++"));
    QCOMPARE(model.index(1, HostStatsModel::GuestColumn).data().toString(), QStringLiteral("Node"));
    QCOMPARE(model.stats().seq, uint64_t(42));
    QVERIFY(model.stats().connections.empty());  // they are the rows
    const QString summary = model.summaryText();
    QVERIFY2(summary.contains(QStringLiteral("many-level 0.1.0")), qPrintable(summary));
    QVERIFY(summary.contains(QStringLiteral("up 2m 05s")));
    QVERIFY2(summary.contains(QStringLiteral("sqlite /tmp/x.db (3.0 MiB)")), qPrintable(summary));
    QVERIFY(summary.contains(QStringLiteral("commit seq 42")));
    QVERIFY(summary.contains(QStringLiteral("3 open, 9 accepted")));

    QPersistentModelIndex seven = model.index(2, 0);
    QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
    stats.connections = {connection(4, 0), connection(7, 2), connection(8, 0)};
    model.update(stats);
    QCOMPARE(model.rowCount(), 3);
    QCOMPARE(model.rowOfId(3), -1);
    QCOMPARE(model.rowOfId(8), 2);
    QCOMPARE(seven.row(), 1);  // kept its identity
    QCOMPARE(model.index(1, HostStatsModel::RequestsColumn).data().toULongLong(), qulonglong(2));
    QCOMPARE(changed.count(), 1);  // only connection 7 moved
    model.clear();
    QCOMPARE(model.rowCount(), 0);
    QVERIFY(!model.hasStats());
  }

  void guestsOfARealHost() {
    HostFixture fixture;
    seedNumbered(fixture.db, "k", 3000);
    auto inspector = connectedSession(fixture.endpoint);
    QVERIFY(inspector);
    // A second guest, holding an iterator, a watch and a snapshot.
    auto other = connectedSession(fixture.endpoint);
    QVERIFY(other);
    auto iterator = other->guest().iterator();
    QVERIFY(iterator->next());
    auto snapshot = other->guest().snapshot();
    auto watch = other->guest().watch(many_level::WatchOptions{}, [](std::optional<many_level::Error>,
                                                                     const many_level::Commit&) {});
    // A third without the extension: to the host, a Node guest.
    many_level::GuestOptions plain_options;
    plain_options.extension = false;
    many_level::Guest plain(plain_options);
    auto plain_stream = plain.connect();
    auto plain_connection = many_level::connect_fd(fixture.endpoint.toString().toStdString(), *plain_stream);
    plain.put("from-plain", "1");

    HostView view(*inspector);
    HostStatsModel* model = view.model();
    QAbstractItemModelTester tester(model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    view.setAlwaysRefresh(true);
    QTRY_COMPARE_WITH_TIMEOUT(model->rowCount(), 3, kTimeout);
    QVERIFY(view.isAvailable());
    QTRY_VERIFY_WITH_TIMEOUT([&] {
      for (const auto& c : model->rows()) {
        if (c.iterators == 1 && c.watches == 1 && c.snapshots == 1) return true;
      }
      return false;
    }(), kTimeout);
    int node_guests = 0;
    for (int row = 0; row < model->rowCount(); ++row) {
      const QString address = model->index(row, HostStatsModel::AddressColumn).data().toString();
      QVERIFY2(address.startsWith(QStringLiteral("tcp://127.0.0.1:")), qPrintable(address));
      if (model->index(row, HostStatsModel::GuestColumn).data().toString() == QLatin1String("Node")) ++node_guests;
      QVERIFY(model->index(row, HostStatsModel::SinceColumn).data().toString().startsWith(QStringLiteral("20")));
    }
    QCOMPARE(node_guests, 1);
    QVERIFY(model->stats().connections_total >= 3);
    QCOMPARE(model->stats().database_kind, std::string("memory"));
    QVERIFY(view.summaryLabel()->text().contains(QStringLiteral("memory")));
    QVERIFY(view.summaryLabel()->text().contains(QStringLiteral(MANY_LEVEL_VERSION_STRING)));

    // Guests leave: their rows go.
    watch->close();
    snapshot->close();
    iterator->close();
    other.reset();
    plain.close();
    QTRY_COMPARE_WITH_TIMEOUT(model->rowCount(), 1, kTimeout);
  }
};

QTEST_MAIN(TestHostView)
#include "test_host_view.moc"

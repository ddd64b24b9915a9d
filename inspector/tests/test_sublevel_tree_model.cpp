// SublevelTreeModel against a real host: sublevels found lazily, nested,
// in budgeted steps, under QAbstractItemModelTester.
#include <QAbstractItemModelTester>
#include <QSignalSpy>
#include <QtTest>

#include "sublevel_tree_model.h"
#include "test_support.h"

using namespace inspector_test;

class TestSublevelTreeModel : public QObject {
  Q_OBJECT

 private:
  static QStringList childNames(const QAbstractItemModel& model, const QModelIndex& parent) {
    QStringList names;
    for (int row = 0; row < model.rowCount(parent); ++row) names << model.index(row, 0, parent).data().toString();
    return names;
  }

  static bool fetchAll(SublevelTreeModel& model, const QModelIndex& parent) {
    return QTest::qWaitFor([&] {
      if (model.canFetchMore(parent)) model.fetchMore(parent);
      return !model.canFetchMore(parent) && model.isIdle();
    }, kTimeout);
  }

 private slots:
  void findsNestedSublevelsLazily() {
    HostFixture fixture;
    seedNumbered(fixture.db, "!users!u", 5000);  // a large sublevel costs one seek
    for (const char* key : {"!users!!sessions!s1", "!users!!sessions!!tokens!t", "!orders!o", "!logs!l", "top",
                            "!notasublevel", "!with space!k"}) {
      fixture.db.put(key, "v", kRawWrite);
    }
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    SublevelTreeModel model(session->guest(), session->queryHooks());
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);

    QCOMPARE(model.rowCount(), 1);
    const QModelIndex database = model.databaseIndex();
    QCOMPARE(database.data().toString(), QStringLiteral("(database)"));
    QCOMPARE(model.prefixOf(database), std::string());
    QVERIFY(model.hasChildren(database));
    QCOMPARE(model.rowCount(database), 0);  // nothing is known before a search answers

    QVERIFY(fetchAll(model, database));
    QCOMPARE(childNames(model, database), (QStringList{"logs", "orders", "users"}));
    const QModelIndex users = model.index(2, 0, database);
    QCOMPARE(model.prefixOf(users), std::string("!users!"));
    QCOMPARE(users.data(SublevelTreeModel::PrefixRole).toByteArray(), QByteArray("!users!"));
    QVERIFY(fetchAll(model, users));
    QCOMPARE(childNames(model, users), (QStringList{"sessions"}));
    const QModelIndex sessions = model.index(0, 0, users);
    QVERIFY(fetchAll(model, sessions));
    QCOMPARE(childNames(model, sessions), (QStringList{"tokens"}));
    QCOMPARE(model.prefixOf(model.index(0, 0, sessions)), std::string("!users!!sessions!!tokens!"));
    QCOMPARE(model.parent(model.index(0, 0, sessions)), sessions);

    // A leaf, once searched, has no children.
    const QModelIndex orders = model.index(1, 0, database);
    QVERIFY(fetchAll(model, orders));
    QVERIFY(!model.hasChildren(orders));
    QCOMPARE(model.indexOfPrefix("!users!!sessions!"), sessions);
  }

  void findsInSteps() {
    HostFixture fixture;
    for (int i = 0; i < 30; ++i) fixture.db.put("!s" + std::to_string(100 + i) + "!k", "v", kRawWrite);
    auto session = connectedSession(fixture.endpoint);
    QVERIFY(session);
    SublevelTreeModel model(session->guest());
    model.setScanBudget(7);
    QSignalSpy fetched(&model, &SublevelTreeModel::childrenFetched);
    // The tester fetches what it can as it checks the model (and again on
    // every change), so it starts the first step itself.
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    const QModelIndex database = model.databaseIndex();
    model.fetchMore(database);
    QVERIFY(fetched.wait(kTimeout));
    QCOMPARE(model.rowCount(database), 7);
    QVERIFY(model.canFetchMore(database));
    QVERIFY(fetchAll(model, database));
    QCOMPARE(model.rowCount(database), 30);
    QCOMPARE(model.index(29, 0, database).data().toString(), QStringLiteral("s129"));

    model.reload();  // indexes from before are gone with the nodes
    QCOMPARE(model.rowCount(model.databaseIndex()), 0);
    QVERIFY(fetchAll(model, model.databaseIndex()));
    QCOMPARE(model.rowCount(model.databaseIndex()), 30);
  }
};

QTEST_MAIN(TestSublevelTreeModel)
#include "test_sublevel_tree_model.moc"

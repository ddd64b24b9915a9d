// ChangeJournal and apply_changes: what brings a read that was under way
// up to date with the changes applied meanwhile. Plain templates: Qt Test only.
#include <QtTest>

#include <optional>
#include <string>
#include <vector>

#include "change_journal.hpp"

using inspector::apply_changes;

namespace {

struct Row {
  std::string key;
  std::string value;
  bool operator==(const Row& other) const { return key == other.key && value == other.value; }
};

using Journal = inspector::ChangeJournal<Row>;

Journal::Change put(const std::string& key, const std::string& value) { return {key, Row{key, value}, value.size()}; }
Journal::Change del(const std::string& key) { return {key, std::nullopt, 0}; }

std::string text(const std::vector<Row>& rows) {
  std::string out;
  for (const auto& row : rows) out += row.key + "=" + row.value + " ";
  return out;
}

const std::string& key_of(const Row& row) { return row.key; }

}  // namespace

class TestChangeJournal : public QObject {
  Q_OBJECT

 private slots:
  void latestPerKeyInKeyOrderWithinARange() {
    Journal journal;
    QCOMPARE(journal.end(), uint64_t(0));
    journal.append(put("b", "1"));
    const uint64_t mark = journal.end();
    journal.append(put("d", "1"));
    journal.append(put("b", "2"));
    journal.append(del("d"));
    journal.append(put("a", "1"));
    journal.append(put("z", "1"));
    QCOMPARE(journal.end(), uint64_t(6));

    auto changes = journal.latest(mark, "b", std::string("y"));
    QCOMPARE(changes.size(), size_t(2));
    QCOMPARE(changes[0]->key, std::string("b"));
    QCOMPARE(changes[0]->row->value, std::string("2"));  // the last of b
    QCOMPARE(changes[1]->key, std::string("d"));
    QVERIFY(!changes[1]->row);  // d's last change is its deletion

    // From the start, open above: b's first put is overridden too.
    changes = journal.latest(0, "", std::nullopt);
    QCOMPARE(changes.size(), size_t(4));
    QCOMPARE(changes[0]->key, std::string("a"));
    QCOMPARE(changes[3]->key, std::string("z"));
  }

  void applyInsertsReplacesAndRemoves() {
    Journal journal;
    journal.append(put("a", "new"));   // before every row
    journal.append(put("c", "again"));  // replaces c
    journal.append(del("e"));           // removes e
    journal.append(del("f"));           // not there: nothing
    journal.append(put("d2", "x"));     // between d and e
    journal.append(put("h", "last"));   // after every row
    const std::vector<Row> rows = {{"b", "1"}, {"c", "1"}, {"d", "1"}, {"e", "1"}, {"g", "1"}};
    const auto out = apply_changes(rows, journal.latest(0, "", std::nullopt), key_of);
    QCOMPARE(text(out), std::string("a=new b=1 c=again d=1 d2=x g=1 h=last "));
  }

  // The point of the journal: replaying changes a read may already have
  // seen gives the same rows as replaying those it had not.
  void replayIsIdempotent() {
    Journal journal;
    const uint64_t submitted = journal.end();
    journal.append(put("k1", "v1"));
    journal.append(del("k2"));
    journal.append(put("k3", "v3"));
    const auto changes = journal.latest(submitted, "", std::nullopt);
    // The read ran before any of them...
    const std::vector<Row> before = {{"k2", "old"}, {"k3", "old"}};
    // ... or after the first two.
    const std::vector<Row> between = {{"k1", "v1"}, {"k3", "old"}};
    // ... or after all of them.
    const std::vector<Row> after = {{"k1", "v1"}, {"k3", "v3"}};
    const auto expected = std::string("k1=v1 k3=v3 ");
    QCOMPARE(text(apply_changes(before, changes, key_of)), expected);
    QCOMPARE(text(apply_changes(between, changes, key_of)), expected);
    QCOMPARE(text(apply_changes(after, changes, key_of)), expected);
  }

  void boundedInChangesAndBytes() {
    Journal by_count(3, 1 << 20);
    for (int i = 0; i < 5; ++i) by_count.append(put("k" + std::to_string(i), "v"));
    QCOMPARE(by_count.size(), size_t(3));
    QCOMPARE(by_count.begin(), uint64_t(2));
    QVERIFY(!by_count.reaches(1));
    QVERIFY(by_count.reaches(2));
    QCOMPARE(by_count.latest(0, "", std::nullopt).size(), size_t(3));  // what is left

    Journal by_bytes(1000, 4096);
    for (int i = 0; i < 10; ++i) by_bytes.append(put("k" + std::to_string(i), std::string(1000, 'x')));
    QVERIFY(by_bytes.bytes() <= 4096);
    QVERIFY(by_bytes.size() < 10);
    QCOMPARE(by_bytes.end(), uint64_t(10));

    by_bytes.clear();
    QCOMPARE(by_bytes.size(), size_t(0));
    QCOMPARE(by_bytes.bytes(), size_t(0));
    QCOMPARE(by_bytes.begin(), uint64_t(10));  // positions go on
    QVERIFY(!by_bytes.reaches(9));
  }
};

QTEST_APPLESS_MAIN(TestChangeJournal)
#include "test_change_journal.moc"

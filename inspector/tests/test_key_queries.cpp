// The Qt-free helpers of the key browser: bounds, paging reads, the counting
// index, the sublevel skip scan, byte escaping and the sorted diff. Each read
// runs twice: on a MemoryDatabase, and through a Guest on a real host (where
// seeks and iterator frames really travel).
#include <QtTest>

#include "bytes_text.hpp"
#include "key_queries.hpp"
#include "sorted_diff.hpp"
#include "test_support.h"

using namespace inspector_test;
using inspector::KeyBounds;

class TestKeyQueries : public QObject {
  Q_OBJECT

 private:
  std::unique_ptr<HostFixture> fixture_;
  std::unique_ptr<InspectorSession> session_;

  // The database to read: the host's own, or the guest of it.
  many_level::Database& db(bool remote) { return remote ? static_cast<many_level::Database&>(session_->guest()) : fixture_->db; }

 private slots:
  void initTestCase() {
    fixture_ = std::make_unique<HostFixture>();
    seedNumbered(fixture_->db, "!bulk!k", 1000);
    for (const char* key : {"!users!alice", "!users!bob", "!users!!sessions!s1", "!users!!sessions!s2",
                            "!users!!prefs!p1", "!orders!o1", "!x", "!!", "!bad name!k", "!a\"b!k", "plain",
                            "zz"}) {
      fixture_->db.put(key, "v", kRawWrite);
    }
    session_ = connectedSession(fixture_->endpoint);
    QVERIFY(session_);
  }

  void cleanupTestCase() {
    session_.reset();
    fixture_.reset();
  }

  void prefixUpperBound() {
    QCOMPARE(inspector::prefix_upper_bound("!a!"), std::optional<std::string>("!a\""));
    QCOMPARE(inspector::prefix_upper_bound("ab\xff"), std::optional<std::string>("ac"));
    QCOMPARE(inspector::prefix_upper_bound("\xff\xff"), std::optional<std::string>());
    QCOMPARE(inspector::prefix_upper_bound(""), std::optional<std::string>());
    KeyBounds bounds = inspector::intersect(inspector::prefix_bounds("!a!"), KeyBounds{std::string("!a!m"), std::nullopt});
    QCOMPARE(*bounds.gte, std::string("!a!m"));
    QCOMPARE(*bounds.lt, std::string("!a\""));
    QVERIFY(!bounds.empty());
    QVERIFY((KeyBounds{std::string("b"), std::string("a")}).empty());
    QVERIFY(bounds.contains("!a!z"));
    QVERIFY(!bounds.contains("!a!a"));
  }

  void readRange_data() {
    QTest::addColumn<bool>("remote");
    QTest::newRow("memory") << false;
    QTest::newRow("guest") << true;
  }
  void readRange() {
    QFETCH(bool, remote);
    auto entries = inspector::read_range(db(remote), numbered("!bulk!k", 10), numbered("!bulk!k", 20), 5);
    QCOMPARE(entries.size(), size_t(6));  // the limit, and one more to tell there is more
    QCOMPARE(entries.front().key, numbered("!bulk!k", 10));
    QCOMPARE(entries.front().value, std::string("value 10"));
    entries = inspector::read_range(db(remote), numbered("!bulk!k", 10), numbered("!bulk!k", 20), 50);
    QCOMPARE(entries.size(), size_t(10));
    QCOMPARE(entries.back().key, numbered("!bulk!k", 19));
  }

  void indexRange_data() { readRange_data(); }
  void indexRange() {
    QFETCH(bool, remote);
    auto chunk = inspector::index_range(db(remote), "!bulk!", std::string("!bulk\""), 100, 450);
    QCOMPARE(chunk.pages.size(), size_t(5));
    QCOMPARE(chunk.pages[0].anchor, std::string("!bulk!"));  // the range start, not the first key
    QCOMPARE(chunk.pages[0].size, size_t(100));
    QCOMPARE(chunk.pages[1].anchor, numbered("!bulk!k", 100));
    QCOMPARE(chunk.pages[4].anchor, numbered("!bulk!k", 400));
    QCOMPARE(chunk.pages[4].size, size_t(50));
    QCOMPARE(chunk.next, std::optional<std::string>(numbered("!bulk!k", 450)));
    // The rest, to the end of the range.
    chunk = inspector::index_range(db(remote), *chunk.next, std::string("!bulk\""), 100, 10000);
    size_t total = 0;
    for (const auto& page : chunk.pages) total += page.size;
    QCOMPARE(total, size_t(550));
    QVERIFY(!chunk.next);
    // An empty range is one empty page.
    chunk = inspector::index_range(db(remote), "q", std::string("r"), 100, 1000);
    QCOMPARE(chunk.pages.size(), size_t(1));
    QCOMPARE(chunk.pages[0].size, size_t(0));
    QVERIFY(!chunk.next);
  }

  void discoverSublevels_data() { readRange_data(); }
  void discoverSublevels() {
    QFETCH(bool, remote);
    auto scan = inspector::discover_sublevels(db(remote), "", std::nullopt, 100);
    // "!x" has no closing '!', "!!" no name, "!bad name!" a space, "!a\"b!" a '"': not sublevels.
    QCOMPARE(scan.names, (std::vector<std::string>{"bulk", "orders", "users"}));
    QVERIFY(!scan.resume);
    scan = inspector::discover_sublevels(db(remote), "!users!", std::nullopt, 100);
    QCOMPARE(scan.names, (std::vector<std::string>{"prefs", "sessions"}));
    scan = inspector::discover_sublevels(db(remote), "!orders!", std::nullopt, 100);
    QVERIFY(scan.names.empty());
    // A small budget: found in steps, resuming where the last step stopped.
    std::vector<std::string> names;
    std::optional<std::string> resume;
    int steps = 0;
    do {
      scan = inspector::discover_sublevels(db(remote), "", resume, 1);
      names.insert(names.end(), scan.names.begin(), scan.names.end());
      resume = scan.resume;
      QVERIFY(++steps < 20);
    } while (resume);
    QCOMPARE(names, (std::vector<std::string>{"bulk", "orders", "users"}));
  }

  void labelsSeeGuestIterators() {
    inspector::IteratorLabels labels;
    inspector::read_range(session_->guest(), "", std::nullopt, 1, labels.hooks());
    // The guest's iterators are numbered from 1 and never reused while open.
    bool found = false;
    for (uint32_t id = 1; id < 100 && !found; ++id) {
      if (auto label = labels.get(id)) found = label->purpose == "key browser: page";
    }
    QVERIFY(found);
  }

  void escapeRoundTrip() {
    const std::string bytes("a\\b\x00\x01\xff\xc3\xa9z", 9);
    const std::string shown = inspector::escape_bytes(bytes);
    QCOMPARE(shown, std::string("a\\\\b\\x00\\x01\\xff\xc3\xa9z"));
    QCOMPARE(inspector::unescape_bytes(shown), std::optional<std::string>(bytes));
    QVERIFY(!inspector::unescape_bytes("\\q"));
    QVERIFY(inspector::is_utf8("h\xc3\xa9llo"));
    QVERIFY(!inspector::is_utf8("\xc3"));
    QVERIFY(!inspector::is_utf8("\xed\xa0\x80"));  // a surrogate
    QCOMPARE(inspector::escape_bytes("abcdef", 3), std::string("abc\xe2\x80\xa6"));
    QCOMPARE(inspector::from_hex("de ad"), std::optional<std::string>("\xde\xad"));
    QCOMPARE(inspector::to_hex("\xde\xad"), std::string("dead"));
    QVERIFY(inspector::pretty_json("{\"a\":[1,2]}")->find("\n") != std::string::npos);
    QVERIFY(!inspector::pretty_json("{nope"));
  }

  void sortedDiff() {
    struct Steps {
      std::vector<std::string> log;
      void remove(size_t at, size_t count) { log.push_back("-" + std::to_string(at) + "x" + std::to_string(count)); }
      void insert(size_t at, size_t from, size_t count) {
        log.push_back("+" + std::to_string(at) + "<" + std::to_string(from) + "x" + std::to_string(count));
      }
      void change(size_t at, size_t from) { log.push_back("~" + std::to_string(at) + "<" + std::to_string(from)); }
    };
    using Item = std::pair<std::string, int>;
    const std::vector<Item> before{{"a", 1}, {"b", 1}, {"c", 1}, {"e", 1}, {"f", 1}};
    const std::vector<Item> after{{"a", 1}, {"c", 2}, {"d", 1}, {"d2", 1}, {"f", 1}, {"g", 1}};
    Steps steps;
    inspector::sorted_diff(
        before, after, [](const Item& x, const Item& y) { return x.first < y.first; },
        [](const Item& x, const Item& y) { return x.second == y.second; }, steps);
    // b removed at 1; c changed at 1; d, d2 inserted at 2; e removed at 4; g inserted at 5.
    QCOMPARE(steps.log, (std::vector<std::string>{"-1x1", "~1<1", "+2<2x2", "-4x1", "+5<5x1"}));

    // Applying the steps in order turns before into after.
    std::vector<Item> current = before;
    struct Apply {
      std::vector<Item>& rows;
      const std::vector<Item>& target;
      void remove(size_t at, size_t count) { rows.erase(rows.begin() + at, rows.begin() + at + count); }
      void insert(size_t at, size_t from, size_t count) {
        rows.insert(rows.begin() + at, target.begin() + from, target.begin() + from + count);
      }
      void change(size_t at, size_t from) { rows[at] = target[from]; }
    } apply{current, after};
    inspector::sorted_diff(
        before, after, [](const Item& x, const Item& y) { return x.first < y.first; },
        [](const Item& x, const Item& y) { return x.second == y.second; }, apply);
    QCOMPARE(current, after);
  }
};

QTEST_MAIN(TestKeyQueries)
#include "test_key_queries.moc"

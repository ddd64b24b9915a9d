// SparseRowCache is a plain template: these tests need no Qt beyond Qt Test.
#include <QtTest>

#include <string>

#include "sparse_row_cache.hpp"

using inspector::SparseRowCache;
using Cache = SparseRowCache<std::string>;

static std::vector<std::string> rows(const std::string& prefix, size_t count) {
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

class TestSparseRowCache : public QObject {
  Q_OBJECT

 private slots:
  void empty() {
    Cache cache;
    QCOMPARE(cache.row_count(), size_t(0));
    QCOMPARE(cache.page_count(), size_t(0));
    QCOMPARE(cache.first_uncounted(), Cache::npos);
    QCOMPARE(cache.page_at_or_before("a"), Cache::npos);
  }

  void locateAcrossPagesAndEmptyOnes() {
    Cache cache;
    cache.append_page("a", 3);
    cache.append_page("b", 0);
    cache.append_page("c", 2);
    cache.append_page("d", 0);
    QCOMPARE(cache.row_count(), size_t(5));
    QCOMPARE(cache.first_row(0), size_t(0));
    QCOMPARE(cache.first_row(1), size_t(3));
    QCOMPARE(cache.first_row(2), size_t(3));
    QCOMPARE(cache.first_row(3), size_t(5));
    QCOMPARE(cache.locate(0).page, size_t(0));
    QCOMPARE(cache.locate(2).offset, size_t(2));
    QCOMPARE(cache.locate(3).page, size_t(2));  // not the empty page "b"
    QCOMPARE(cache.locate(3).offset, size_t(0));
    QCOMPARE(cache.locate(4).page, size_t(2));
    QVERIFY_THROWS_EXCEPTION(std::out_of_range, cache.locate(5));
  }

  void anchors() {
    Cache cache;
    cache.append_page("", 2);
    cache.append_page("k10", 2);
    cache.append_page("k20", 0, false);
    QCOMPARE(cache.find_page("k10"), size_t(1));
    QCOMPARE(cache.find_page("k15"), Cache::npos);
    QCOMPARE(cache.page_at_or_before("k15"), size_t(1));
    QCOMPARE(cache.page_at_or_before("a"), size_t(0));
    QCOMPARE(cache.page_at_or_before("z"), size_t(2));
    QCOMPARE(cache.first_uncounted(), size_t(2));
    QCOMPARE(cache.page(2).size, size_t(0));
  }

  void loadedRowsAndPlaceholders() {
    Cache cache;
    cache.append_page("a", 2);
    cache.append_page("b", 2);
    QVERIFY(cache.row(0) == nullptr);
    cache.load(1, {"b0", "b1"});
    QVERIFY(cache.row(0) == nullptr);
    QCOMPARE(*cache.row(3), std::string("b1"));
    QCOMPARE(*cache.peek(2), std::string("b0"));
    QVERIFY_THROWS_EXCEPTION(std::logic_error, cache.load(0, {"only one"}));
    QCOMPARE(cache.loaded_page_count(), size_t(1));
    QCOMPARE(cache.loaded_row_count(), size_t(2));
  }

  void evictsLeastRecentlyUsedButNotPinned() {
    Cache cache(2);
    for (int i = 0; i < 4; ++i) cache.append_page(std::string(1, char('a' + i)), 1);
    cache.pin(0, 0);
    cache.load(0, {"a"});
    cache.load(1, {"b"});
    cache.load(2, {"c"});  // over budget: b is the oldest not pinned
    QVERIFY(cache.loaded(0));
    QVERIFY(!cache.loaded(1));
    QVERIFY(cache.loaded(2));
    QVERIFY(cache.row(2) != nullptr);  // a use of page 2
    cache.pin(3, 3);
    cache.load(3, {"d"});  // page 0 is no longer pinned and is the oldest
    QVERIFY(!cache.loaded(0));
    QVERIFY(cache.loaded(2));
    QVERIFY(cache.loaded(3));
    QCOMPARE(cache.loaded_page_count(), size_t(2));
    // Sizes survive eviction: the row space does not move.
    QCOMPARE(cache.row_count(), size_t(4));
  }

  void insertAndEraseRowsShiftLaterPages() {
    Cache cache;
    cache.append_page("a", 3);
    cache.append_page("b", 2);
    cache.load(0, rows("a", 3));
    cache.insert_rows(0, 1, {"x", "y"});
    QCOMPARE(cache.row_count(), size_t(7));
    QCOMPARE(*cache.peek(1), std::string("x"));
    QCOMPARE(*cache.peek(3), std::string("a1"));
    QCOMPARE(cache.first_row(1), size_t(5));
    cache.erase_rows(0, 0, 3);
    QCOMPARE(cache.row_count(), size_t(4));
    QCOMPARE(*cache.peek(0), std::string("a1"));
    QCOMPARE(cache.first_row(1), size_t(2));
    cache.set_row(0, 0, "z");
    QCOMPARE(*cache.peek(0), std::string("z"));
    QVERIFY_THROWS_EXCEPTION(std::logic_error, cache.insert_rows(1, 0, {"q"}));  // not loaded
  }

  void resizeUnloaded() {
    Cache cache;
    cache.append_page("a", 3);
    cache.append_page("b", 2);
    cache.resize_unloaded(0, 10);
    QCOMPARE(cache.row_count(), size_t(12));
    QCOMPARE(cache.locate(10).page, size_t(1));
    cache.load(1, {"b0", "b1"});
    QVERIFY_THROWS_EXCEPTION(std::logic_error, cache.resize_unloaded(1, 4));
  }

  void replaceUncountedStretch() {
    Cache cache;
    cache.append_page("", 2);
    cache.append_page("m", 0, false);
    QCOMPARE(cache.row_count(), size_t(2));
    std::vector<Cache::Page> pages(3);
    pages[0].anchor = "m";
    pages[0].size = 5;
    pages[1].anchor = "p";
    pages[1].size = 5;
    pages[2].anchor = "t";
    pages[2].counted = false;
    cache.replace_page(1, std::move(pages));
    QCOMPARE(cache.page_count(), size_t(4));
    QCOMPARE(cache.row_count(), size_t(12));
    QCOMPARE(cache.first_uncounted(), size_t(3));
    QCOMPARE(cache.locate(7).page, size_t(2));
  }

  void splitKeepsRowsInPlace() {
    Cache cache;
    cache.append_page("k", 5);
    cache.append_page("z", 1);
    cache.load(0, {"k", "l", "m", "n", "o"});
    QCOMPARE(cache.split_page(0, 2, [](const std::string& row) { return row; }), size_t(3));
    QCOMPARE(cache.page_count(), size_t(4));
    QCOMPARE(cache.page(0).anchor, std::string("k"));
    QCOMPARE(cache.page(1).anchor, std::string("m"));
    QCOMPARE(cache.page(2).anchor, std::string("o"));
    QCOMPARE(cache.page(2).size, size_t(1));
    QCOMPARE(cache.row_count(), size_t(6));
    QCOMPARE(*cache.peek(3), std::string("n"));
    QCOMPARE(cache.locate(5).page, size_t(3));
  }

  void manyPagesStayCheap() {
    // A million rows in 5000 pages: locating is a binary search.
    Cache cache(8);
    for (int i = 0; i < 5000; ++i) cache.append_page("k" + std::to_string(100000 + i), 200);
    QCOMPARE(cache.row_count(), size_t(1000000));
    QCOMPARE(cache.locate(999999).page, size_t(4999));
    QCOMPARE(cache.locate(123456).page, size_t(617));
    QCOMPARE(cache.locate(123456).offset, size_t(56));
  }
};

QTEST_APPLESS_MAIN(TestSparseRowCache)
#include "test_sparse_row_cache.moc"

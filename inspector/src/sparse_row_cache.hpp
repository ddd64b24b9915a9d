// A sparse cache of rows for models over more data than memory holds, in the
// spirit of DB Browser for SQLite's RowCache: the rows are split into pages,
// each known by an anchor (for keys: the smallest key it may hold) and a row
// count; only some pages have their rows loaded, and the least recently used
// are evicted beyond a budget. Qt-free, so it is unit-tested on its own.
//
// A page may also be "uncounted": a stretch of data not indexed yet (it holds
// 0 rows until it is replaced by counted pages). The model announces every
// change of row count to its views before making it here, so each mutation
// is one small step: resize, insert rows, erase rows, replace pages.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace inspector {

template <typename Row, typename Anchor = std::string>
class SparseRowCache {
 public:
  static constexpr size_t npos = static_cast<size_t>(-1);

  struct Page {
    Anchor anchor{};
    size_t size = 0;      // rows in the page, known even when they are not loaded
    bool counted = true;  // false: not indexed yet, so it holds no rows
    std::optional<std::vector<Row>> rows;  // when loaded, rows->size() == size
    uint64_t used = 0;                     // last use, for eviction
  };

  struct Location {
    size_t page = 0;
    size_t offset = 0;
  };

  explicit SparseRowCache(size_t max_loaded_pages = 64) : max_loaded_(std::max<size_t>(1, max_loaded_pages)) {}

  // ---- shape ----------------------------------------------------------
  size_t page_count() const { return pages_.size(); }
  const Page& page(size_t index) const { return pages_.at(index); }

  size_t row_count() const {
    refresh_starts();
    return starts_.empty() ? 0 : starts_.back();
  }

  size_t first_row(size_t page) const {
    refresh_starts();
    return starts_.at(page);
  }

  // The page holding `row` (which must be below row_count()).
  Location locate(size_t row) const {
    refresh_starts();
    if (row >= row_count()) throw std::out_of_range("SparseRowCache::locate: row out of range");
    // The last page starting at or before `row` that is not empty.
    auto it = std::upper_bound(starts_.begin(), starts_.end() - 1, row);
    size_t page = static_cast<size_t>(it - starts_.begin()) - 1;
    while (pages_[page].size == 0) ++page;  // empty pages share their start with the next one
    return {page, row - starts_[page]};
  }

  // The page whose anchor equals `anchor`, or npos. Anchors are sorted.
  size_t find_page(const Anchor& anchor) const {
    size_t page = page_at_or_before(anchor);
    return page != npos && pages_[page].anchor == anchor ? page : npos;
  }

  // The last page whose anchor is at or before `anchor` (the page a key falls
  // in), or npos when every anchor is after it.
  size_t page_at_or_before(const Anchor& anchor) const {
    auto it = std::upper_bound(pages_.begin(), pages_.end(), anchor,
                               [](const Anchor& a, const Page& p) { return a < p.anchor; });
    return it == pages_.begin() ? npos : static_cast<size_t>(it - pages_.begin()) - 1;
  }

  // The first uncounted page, or npos.
  size_t first_uncounted() const {
    for (size_t i = 0; i < pages_.size(); ++i) {
      if (!pages_[i].counted) return i;
    }
    return npos;
  }

  bool loaded(size_t page) const { return pages_.at(page).rows.has_value(); }

  size_t loaded_page_count() const {
    return static_cast<size_t>(std::count_if(pages_.begin(), pages_.end(), [](const Page& p) { return p.rows.has_value(); }));
  }

  size_t loaded_row_count() const {
    size_t rows = 0;
    for (const auto& p : pages_) rows += p.rows ? p.rows->size() : 0;
    return rows;
  }

  size_t max_loaded_pages() const { return max_loaded_; }
  void set_max_loaded_pages(size_t pages) {
    max_loaded_ = std::max<size_t>(1, pages);
    evict_beyond_budget(npos);
  }

  // ---- rows -----------------------------------------------------------
  // The row, or nullptr when its page is not loaded. Counts as a use.
  const Row* row(size_t r) {
    Location at = locate(r);
    Page& p = pages_[at.page];
    if (!p.rows) return nullptr;
    p.used = ++tick_;
    return &(*p.rows)[at.offset];
  }

  // The row without counting a use.
  const Row* peek(size_t r) const {
    Location at = locate(r);
    const Page& p = pages_[at.page];
    return p.rows ? &(*p.rows)[at.offset] : nullptr;
  }

  // ---- mutations --------------------------------------------------------
  void clear() {
    pages_.clear();
    dirty_ = true;
  }

  void append_page(Anchor anchor, size_t size, bool counted = true) {
    Page p;
    p.anchor = std::move(anchor);
    p.size = counted ? size : 0;
    p.counted = counted;
    pages_.push_back(std::move(p));
    dirty_ = true;
  }

  // Puts `pages` in the place of page `index` (e.g. an uncounted stretch that
  // has just been indexed, or a page split in two).
  void replace_page(size_t index, std::vector<Page> pages) {
    pages_.at(index);
    for (auto& p : pages) {
      if (!p.counted) p.size = 0;
      if (p.rows && p.rows->size() != p.size) throw std::logic_error("SparseRowCache: rows do not match size");
    }
    pages_.erase(pages_.begin() + static_cast<std::ptrdiff_t>(index));
    pages_.insert(pages_.begin() + static_cast<std::ptrdiff_t>(index), std::make_move_iterator(pages.begin()),
                  std::make_move_iterator(pages.end()));
    dirty_ = true;
    evict_beyond_budget(npos);
  }

  void insert_page(size_t index, Page page) {
    std::vector<Page> pages;
    pages.push_back(std::move(page));
    pages_.insert(pages_.begin() + static_cast<std::ptrdiff_t>(index), std::make_move_iterator(pages.begin()),
                  std::make_move_iterator(pages.end()));
    dirty_ = true;
  }

  // Changes the row count of a page that is not loaded.
  void resize_unloaded(size_t index, size_t size) {
    Page& p = pages_.at(index);
    if (p.rows) throw std::logic_error("SparseRowCache: resize of a loaded page");
    if (!p.counted) throw std::logic_error("SparseRowCache: resize of an uncounted page");
    p.size = size;
    dirty_ = true;
  }

  // Gives a page its rows; their number must already be the page's size.
  // Evicts the least recently used other pages beyond the budget.
  void load(size_t index, std::vector<Row> rows) {
    Page& p = pages_.at(index);
    if (rows.size() != p.size) throw std::logic_error("SparseRowCache: loaded rows do not match size");
    p.rows = std::move(rows);
    p.used = ++tick_;
    evict_beyond_budget(index);
  }

  void unload(size_t index) { pages_.at(index).rows.reset(); }

  void insert_rows(size_t index, size_t offset, std::vector<Row> rows) {
    Page& p = loaded_page(index);
    if (offset > p.size) throw std::out_of_range("SparseRowCache::insert_rows");
    p.rows->insert(p.rows->begin() + static_cast<std::ptrdiff_t>(offset), std::make_move_iterator(rows.begin()),
                   std::make_move_iterator(rows.end()));
    p.size = p.rows->size();
    dirty_ = true;
  }

  void erase_rows(size_t index, size_t offset, size_t count) {
    Page& p = loaded_page(index);
    if (offset + count > p.size) throw std::out_of_range("SparseRowCache::erase_rows");
    auto first = p.rows->begin() + static_cast<std::ptrdiff_t>(offset);
    p.rows->erase(first, first + static_cast<std::ptrdiff_t>(count));
    p.size = p.rows->size();
    dirty_ = true;
  }

  void set_row(size_t index, size_t offset, Row row) { loaded_page(index).rows->at(offset) = std::move(row); }

  Row* mutable_row(size_t index, size_t offset) { return &loaded_page(index).rows->at(offset); }

  // Splits a loaded page into pages of at most `max_rows` rows, each anchored
  // at its first row's anchor. Rows do not move, so views need not know.
  // Returns how many pages it became.
  size_t split_page(size_t index, size_t max_rows, const std::function<Anchor(const Row&)>& anchor_of) {
    Page& p = loaded_page(index);
    if (max_rows == 0 || p.size <= max_rows) return 1;
    std::vector<Page> pieces;
    std::vector<Row>& rows = *p.rows;
    for (size_t start = 0; start < rows.size(); start += max_rows) {
      Page piece;
      piece.anchor = start == 0 ? p.anchor : anchor_of(rows[start]);
      size_t end = std::min(rows.size(), start + max_rows);
      piece.rows.emplace(std::make_move_iterator(rows.begin() + static_cast<std::ptrdiff_t>(start)),
                         std::make_move_iterator(rows.begin() + static_cast<std::ptrdiff_t>(end)));
      piece.size = piece.rows->size();
      piece.used = p.used;
      pieces.push_back(std::move(piece));
    }
    size_t count = pieces.size();
    pages_.erase(pages_.begin() + static_cast<std::ptrdiff_t>(index));
    pages_.insert(pages_.begin() + static_cast<std::ptrdiff_t>(index), std::make_move_iterator(pieces.begin()),
                  std::make_move_iterator(pieces.end()));
    dirty_ = true;
    pinned_last_ = pinned_last_ == npos ? npos : pinned_last_ + count - 1;
    evict_beyond_budget(npos);
    return count;
  }

  // Pages in [first, last] are never evicted (what the view shows).
  void pin(size_t first, size_t last) {
    pinned_first_ = first;
    pinned_last_ = last;
  }

 private:
  Page& loaded_page(size_t index) {
    Page& p = pages_.at(index);
    if (!p.rows) throw std::logic_error("SparseRowCache: page not loaded");
    return p;
  }

  bool pinned(size_t index) const {
    return pinned_first_ != npos && index >= pinned_first_ && index <= pinned_last_;
  }

  void evict_beyond_budget(size_t keep) {
    size_t loaded = loaded_page_count();
    while (loaded > max_loaded_) {
      size_t victim = npos;
      for (size_t i = 0; i < pages_.size(); ++i) {
        if (!pages_[i].rows || i == keep || pinned(i)) continue;
        if (victim == npos || pages_[i].used < pages_[victim].used) victim = i;
      }
      if (victim == npos) return;  // everything loaded is pinned: over budget for now
      pages_[victim].rows.reset();
      --loaded;
    }
  }

  void refresh_starts() const {
    if (!dirty_) return;
    starts_.resize(pages_.size() + 1);
    size_t total = 0;
    for (size_t i = 0; i < pages_.size(); ++i) {
      starts_[i] = total;
      total += pages_[i].size;
    }
    starts_[pages_.size()] = total;
    dirty_ = false;
  }

  std::vector<Page> pages_;
  size_t max_loaded_;
  uint64_t tick_ = 0;
  size_t pinned_first_ = npos;
  size_t pinned_last_ = npos;
  // starts_[i]: the first row of page i; starts_.back(): the row count.
  mutable std::vector<size_t> starts_;
  mutable bool dirty_ = true;
};

}  // namespace inspector

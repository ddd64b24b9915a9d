// The key browser's table: the keys of a range (a sublevel, a prefix, a
// from/to filter) with their values, for keyspaces far larger than memory.
//
// Nothing is ever loaded whole. A background loader (BackgroundLoader, one
// thread) does two kinds of bounded reads:
//  - count: a keys-only scan of up to countChunk() keys that keeps only every
//    pageSize()-th key as a page anchor. The row count grows chunk by chunk
//    ("partial", shown as "≥ N keys") until the end of the range is seen; with
//    autoCount off it grows only when a view asks (canFetchMore/fetchMore).
//  - page: the entries of one page, [anchor, next anchor), read when a view
//    asks for a row of it (data()), kept in a SparseRowCache of a bounded
//    number of pages; the least recently used are evicted.
// Live: the model watches its range (the host's change feed, LiveFeed) and
// applies each burst of changes where it falls: in a loaded page row by row
// (insert, remove, dataChanged, highlighted for a moment, fading); in a page
// counted but not loaded by reading that page's keys again, so the row count
// stays right; in a stretch not counted yet, not at all (its count will see
// them). Reads under way when changes arrive are brought up to date from a
// ChangeJournal. A host without a change feed (the Node reference) is
// polled instead: every second the pages in view are read again and diffed
// against what is shown.
#pragma once

#include <QAbstractTableModel>
#include <QTimer>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "background_loader.h"
#include "change_journal.hpp"
#include "key_queries.hpp"
#include "live_feed.h"
#include "many_level/database.hpp"
#include "sparse_row_cache.hpp"

namespace inspector {

class KeyListModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { KeyColumn, ValueColumn, SizeColumn, ColumnCount };
  enum Role {
    RawKeyRole = Qt::UserRole + 1,  // QByteArray: the whole key, prefix included
    ValuePreviewRole,               // QByteArray: the first kPreviewBytes of the value
    ValueSizeRole,                  // qulonglong
    LoadedRole,                     // bool: the row's page is loaded
    HighlightedRole,                // bool: changed by a recent refresh
  };

  struct Row {
    std::string key;
    std::string value;  // the first kPreviewBytes of it
    size_t value_size = 0;
    size_t value_hash = 0;
    qint64 changed_at = 0;  // when a live update found it new or changed (ms), 0: not
  };

  // Relative to the base prefix; empty strings are open bounds.
  struct Filter {
    std::string prefix;
    std::string from;  // gte
    std::string to;    // lt
  };

  static constexpr size_t kPreviewBytes = 1024;
  static constexpr int kHighlightMs = 1000;  // a changed row's highlight fades over this

  explicit KeyListModel(many_level::Database& db, QueryHooks hooks = {}, QObject* parent = nullptr);
  ~KeyListModel() override;

  // What to browse. Each of these starts over (a model reset).
  void setBasePrefix(const std::string& prefix);
  const std::string& basePrefix() const { return base_; }
  void setFilter(const Filter& filter);
  const Filter& filter() const { return filter_; }
  // The raw range browsed: base prefix, filter prefix and from/to together.
  const KeyBounds& bounds() const { return bounds_; }

  void setPageSize(size_t rows);
  size_t pageSize() const { return page_size_; }
  void setMaxLoadedPages(size_t pages);
  void setCountChunk(size_t keys) { count_chunk_ = std::max(page_size_, keys); }
  size_t countChunk() const { return count_chunk_; }
  void setAutoCount(bool on);
  bool autoCount() const { return auto_count_; }
  // Live updates on (the default) or off. On: the change feed when the host
  // has one, else polling; off: nothing is read again until a reload.
  void setLive(bool on);
  bool liveWanted() const { return live_wanted_; }
  LiveFeed::State liveState() const { return live_.state(); }
  // True while the change feed drives the model.
  bool isWatching() const { return live_.state() == LiveFeed::State::live; }
  // For the status bar: live, polling (and why), or off.
  QString liveText() const;
  // After a reconnect: a host that had no change feed may have one now.
  void retryLive();
  // The polling period, for a host without a change feed; 0 turns polling off.
  void setRefreshInterval(int ms);
  // How often bursts of changes are applied (75 ms by default).
  void setCoalesceInterval(int ms) { live_.setInterval(ms); }
  void setHighlightDuration(int ms) { highlight_ms_ = std::max(1, ms); }

  // Which rows the view shows: their pages are loaded first, kept from
  // eviction, and refreshed live.
  void setVisibleRows(int first, int last);
  // Reads the visible pages again now (after a write of our own).
  void refresh();
  // Forgets everything and counts from the start.
  void reload();
  // Finds the first row at or after `raw_key`, loading what it needs;
  // answers with keyLocated(row).
  void locateKey(const std::string& raw_key);

  // ---- state, for views and tests ------------------------------------
  bool isComplete() const;
  bool isIdle() const { return loader_.idle(); }
  size_t pageCount() const { return cache_.page_count(); }
  size_t loadedPageCount() const { return cache_.loaded_page_count(); }
  size_t loadedRowCount() const { return cache_.loaded_row_count(); }
  // The row if its page is loaded (does not load it).
  const Row* peekRow(int row) const;
  // A key as the table shows it: without the base prefix, escaped.
  QString displayKey(const std::string& raw_key) const;
  QString statusText() const;
  QString lastError() const { return last_error_; }

  // ---- QAbstractItemModel ----------------------------------------------
  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
  bool canFetchMore(const QModelIndex& parent) const override;
  void fetchMore(const QModelIndex& parent) override;

 signals:
  void statusChanged();
  void liveChanged();
  void pageLoaded(int first_row, int last_row);
  void keyLocated(int row);
  void loadFailed(const QString& message);

 private:
  using Cache = SparseRowCache<Row>;
  using Entries = std::vector<many_level::Entry>;

  void recomputeBounds();
  std::optional<std::string> upperOf(size_t page) const;
  std::string jobKey(const char* kind, const std::string& anchor) const;
  void requestPage(size_t page, int priority) const;
  void requestCount(size_t page, int priority = BackgroundLoader::background);
  void requestRecount(size_t page);
  void applyPage(uint64_t generation, const std::string& anchor, const std::optional<std::string>& upper,
                 Entries& entries, size_t limit, uint64_t since);
  void applyCount(uint64_t generation, const std::string& anchor, const std::optional<std::string>& upper,
                  IndexChunk& chunk, uint64_t since);
  void applyRecount(uint64_t generation, const std::string& anchor, const std::optional<std::string>& upper,
                    std::vector<std::string>& keys, size_t limit, uint64_t since);
  // Gives a page its rows: row by row for a loaded page (`highlight` marks
  // what is new or changed), else its size and then its rows.
  void replaceRows(size_t page, std::vector<Row> rows, bool highlight);
  // Makes the rest of a page, from `first_key` on, a stretch to count again.
  void splitOffOverflow(size_t page, std::string first_key);
  void splitIfLarge(size_t page);
  void failed(uint64_t generation, const std::string& message);
  void continueCounting();
  void tryLocate();
  void startLive();
  void onLiveChanges();
  // Applies the journal's changes from `from` on to the pages they fall in.
  void applyJournal(uint64_t from);
  void onRefreshTimer();
  void onFadeTimer();
  // Pages that hold the visible rows (empty pages around them included).
  std::pair<size_t, size_t> visiblePages() const;
  void pinVisible();
  Row makeRow(std::string key, std::string value) const;
  static qint64 nowMs();

  many_level::Database& db_;
  QueryHooks hooks_;
  mutable Cache cache_;
  std::string base_;
  Filter filter_;
  KeyBounds bounds_;
  uint64_t generation_ = 0;
  size_t page_size_ = 200;
  size_t count_chunk_ = 20000;
  bool auto_count_ = true;
  int visible_first_ = 0;
  int visible_last_ = 199;
  QTimer refresh_timer_;  // polling, for a host without a change feed
  QTimer fade_timer_;     // runs while rows are highlighted
  int highlight_ms_ = kHighlightMs;
  bool live_wanted_ = true;
  bool resumable_ = false;  // live was turned off; turning it on resumes the watch
  LiveFeed live_;
  ChangeJournal<Row> journal_;
  std::optional<std::string> locate_target_;
  QString last_error_;
  // Set while a result is applied: a fetchMore from inside its row
  // insertion (views and QAbstractItemModelTester do that) would count the
  // stretch being applied a second time.
  bool applying_ = false;
  // Last member: destroyed first, so no job outlives what it reports to.
  mutable BackgroundLoader loader_{"key-loader"};
};

}  // namespace inspector

#include "key_list_model.h"

#include <QColor>
#include <QLocale>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>

#include "bytes_text.hpp"
#include "sorted_diff.hpp"

namespace inspector {

namespace {

bool keyLess(const KeyListModel::Row& a, const KeyListModel::Row& b) { return a.key < b.key; }
bool sameValue(const KeyListModel::Row& a, const KeyListModel::Row& b) {
  return a.value_size == b.value_size && a.value_hash == b.value_hash;
}

}  // namespace

KeyListModel::KeyListModel(many_level::Database& db, QueryHooks hooks, QObject* parent)
    : QAbstractTableModel(parent), db_(db), hooks_(std::move(hooks)), live_(db) {
  refresh_timer_.setInterval(1000);
  connect(&refresh_timer_, &QTimer::timeout, this, &KeyListModel::onRefreshTimer);
  refresh_timer_.start();
  fade_timer_.setInterval(100);
  connect(&fade_timer_, &QTimer::timeout, this, &KeyListModel::onFadeTimer);
  connect(&live_, &LiveFeed::changesReady, this, &KeyListModel::onLiveChanges);
  connect(&live_, &LiveFeed::lost, this, &KeyListModel::reload);
  connect(&live_, &LiveFeed::stateChanged, this, [this] {
    emit liveChanged();
    emit statusChanged();
  });
  recomputeBounds();
  reload();
}

KeyListModel::~KeyListModel() { loader_.cancel_all(); }

qint64 KeyListModel::nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// ---- configuration --------------------------------------------------------

void KeyListModel::setBasePrefix(const std::string& prefix) {
  base_ = prefix;
  recomputeBounds();
  reload();
}

void KeyListModel::setFilter(const Filter& filter) {
  filter_ = filter;
  recomputeBounds();
  reload();
}

void KeyListModel::recomputeBounds() {
  KeyBounds bounds = prefix_bounds(base_);
  if (!filter_.prefix.empty()) bounds = intersect(bounds, prefix_bounds(base_ + filter_.prefix));
  KeyBounds range;
  if (!filter_.from.empty()) range.gte = base_ + filter_.from;
  if (!filter_.to.empty()) range.lt = base_ + filter_.to;
  bounds_ = intersect(bounds, range);
}

void KeyListModel::setPageSize(size_t rows) {
  page_size_ = std::max<size_t>(1, rows);
  count_chunk_ = std::max(count_chunk_, page_size_);
  reload();
}

void KeyListModel::setMaxLoadedPages(size_t pages) { cache_.set_max_loaded_pages(pages); }

void KeyListModel::setAutoCount(bool on) {
  auto_count_ = on;
  if (on) continueCounting();
}

void KeyListModel::setRefreshInterval(int ms) {
  if (ms <= 0) {
    refresh_timer_.stop();
  } else {
    refresh_timer_.start(ms);
  }
}

// ---- live updates -----------------------------------------------------------

void KeyListModel::setLive(bool on) {
  if (on == live_wanted_) return;
  live_wanted_ = on;
  if (!on) {
    live_.stop();
    resumable_ = true;
  } else if (resumable_ && live_.resumeSeq()) {
    // Resumed after the last change applied: what was written meanwhile
    // arrives now, or, if the host's history no longer has it, lost() reloads.
    resumable_ = false;
    live_.start(bounds_, live_.resumeSeq());
  } else {
    reload();
  }
  emit liveChanged();
  emit statusChanged();
}

void KeyListModel::retryLive() {
  if (!live_wanted_) return;
  const auto state = live_.state();
  if (state == LiveFeed::State::unsupported || state == LiveFeed::State::failed) reload();
}

void KeyListModel::startLive() {
  resumable_ = false;
  if (live_wanted_) {
    live_.start(bounds_);
  } else {
    live_.stop();
  }
}

QString KeyListModel::liveText() const {
  if (!live_wanted_) return tr("Live updates off");
  switch (live_.state()) {
    case LiveFeed::State::live: return tr("Live: following the host's change feed");
    case LiveFeed::State::starting: return tr("Live: starting the change feed…");
    case LiveFeed::State::unsupported: {
      const int ms = refresh_timer_.isActive() ? refresh_timer_.interval() : 0;
      if (ms == 0) return tr("Host has no change feed: not polling");
      if (ms == 1000) return tr("Host has no change feed: polling every second");
      return tr("Host has no change feed: polling every %1 ms").arg(ms);
    }
    case LiveFeed::State::failed:
      return tr("Change feed failed (%1): polling every second").arg(live_.errorText());
    case LiveFeed::State::off: return tr("Live updates off");
  }
  return {};
}

void KeyListModel::onLiveChanges() {
  const auto commits = live_.take();
  const uint64_t from = journal_.end();
  for (const auto& commit : commits) {
    for (const auto& op : commit.operations) {
      ChangeJournal<Row>::Change change;
      change.key = op.key;
      if (op.type == many_level::BatchOperation::Type::put) {
        change.row = makeRow(op.key, op.value);
        change.weight = change.row->value.size();
      }
      journal_.append(std::move(change));
    }
  }
  if (!journal_.reaches(from)) {
    reload();  // one burst larger than the journal: cheaper to start over
    return;
  }
  applyJournal(from);
}

void KeyListModel::applyJournal(uint64_t from) {
  const auto changes = journal_.latest(from, bounds_.gte.value_or(std::string()), bounds_.lt);
  if (changes.empty()) return;
  std::vector<size_t> grown;
  for (size_t i = 0; i < changes.size();) {
    size_t page = cache_.page_at_or_before(changes[i]->key);
    if (page == Cache::npos) page = 0;
    const auto upper = upperOf(page);
    size_t end = i;
    while (end < changes.size() && (!upper || changes[end]->key < *upper)) ++end;
    if (end == i) ++end;  // (cannot happen: the page was found by this key)
    const auto& p = cache_.page(page);
    if (!p.counted) {
      // Not indexed yet: the count under way or to come sees these (a count
      // under way replays them, see applyCount).
    } else if (p.rows) {
      std::vector<const ChangeJournal<Row>::Change*> slice(changes.begin() + static_cast<std::ptrdiff_t>(i),
                                                            changes.begin() + static_cast<std::ptrdiff_t>(end));
      replaceRows(page, apply_changes(*p.rows, slice, [](const Row& row) -> const std::string& { return row.key; }),
                  true);
      if (cache_.page(page).size > 2 * page_size_) grown.push_back(page);
    } else {
      // Only the row count is known here, and a put may be new or not: read
      // this page's keys again.
      requestRecount(page);
    }
    i = end;
  }
  // Splitting renumbers the pages after it: the last first.
  for (auto it = grown.rbegin(); it != grown.rend(); ++it) splitIfLarge(*it);
  pinVisible();
  emit statusChanged();
}

// ---- the index ------------------------------------------------------------

void KeyListModel::reload() {
  beginResetModel();
  ++generation_;
  loader_.cancel_all();
  cache_.clear();
  journal_.clear();
  locate_target_.reset();
  last_error_.clear();
  const std::string lower = bounds_.gte.value_or(std::string());
  if (bounds_.empty()) {
    cache_.append_page(lower, 0, true);
  } else {
    cache_.append_page(lower, 0, false);
  }
  endResetModel();
  pinVisible();
  // The watch first: a guest sends it before the count's iterator, so the
  // host registers it before it reads, and nothing falls between the two.
  if (!bounds_.empty()) {
    startLive();
  } else {
    live_.stop();
  }
  if (!bounds_.empty()) requestCount(0, BackgroundLoader::visible);
  emit statusChanged();
}

bool KeyListModel::isComplete() const { return cache_.first_uncounted() == Cache::npos; }

std::optional<std::string> KeyListModel::upperOf(size_t page) const {
  if (page + 1 < cache_.page_count()) return cache_.page(page + 1).anchor;
  return bounds_.lt;
}

std::string KeyListModel::jobKey(const char* kind, const std::string& anchor) const {
  // The generation is part of the key: a job of a range we left must not
  // stop the same anchor from being asked for in the new one.
  return std::to_string(generation_) + ":" + kind + ":" + anchor;
}

void KeyListModel::requestCount(size_t page, int priority) {
  if (page >= cache_.page_count() || cache_.page(page).counted) return;
  const std::string anchor = cache_.page(page).anchor;
  const std::string key = jobKey("count", anchor);
  if (loader_.pending(key)) return;
  const auto upper = upperOf(page);
  const uint64_t generation = generation_;
  const size_t page_size = page_size_;
  const size_t chunk_keys = count_chunk_;
  const uint64_t since = journal_.end();
  many_level::Database* db = &db_;
  QueryHooks hooks = hooks_;
  loader_.submit(this, key, priority, [=]() -> BackgroundLoader::Delivery {
    try {
      auto chunk = std::make_shared<IndexChunk>(index_range(*db, anchor, upper, page_size, chunk_keys, hooks));
      return [this, generation, anchor, upper, chunk, since] { applyCount(generation, anchor, upper, *chunk, since); };
    } catch (const std::exception& e) {
      std::string message = e.what();
      return [this, generation, message] { failed(generation, message); };
    }
  });
}

void KeyListModel::applyCount(uint64_t generation, const std::string& anchor, const std::optional<std::string>& upper,
                              IndexChunk& chunk, uint64_t since) {
  if (generation != generation_) return;
  const size_t page = cache_.find_page(anchor);
  if (page == Cache::npos || cache_.page(page).counted) return;
  if (upperOf(page) != upper || !journal_.reaches(since)) {
    // The stretch changed shape meanwhile, or more changed than the journal
    // keeps: count it again.
    requestCount(page);
    return;
  }
  // Changes applied while the count was under way may or may not be in it;
  // the pages they fall in are read again (their keys) to know.
  const auto counted_upper = chunk.next ? chunk.next : upper;
  const auto changes = journal_.latest(since, anchor, counted_upper);
  std::vector<Cache::Page> pages;
  size_t total = 0;
  for (auto& counted : chunk.pages) {
    Cache::Page p;
    p.anchor = std::move(counted.anchor);
    p.size = counted.size;
    total += counted.size;
    pages.push_back(std::move(p));
  }
  if (chunk.next) {
    Cache::Page rest;
    rest.anchor = std::move(*chunk.next);
    rest.counted = false;
    pages.push_back(std::move(rest));
  }
  const int first = static_cast<int>(cache_.first_row(page));
  applying_ = true;
  if (total > 0) {
    beginInsertRows(QModelIndex(), first, first + static_cast<int>(total) - 1);
    cache_.replace_page(page, std::move(pages));
    endInsertRows();
  } else {
    cache_.replace_page(page, std::move(pages));
  }
  applying_ = false;
  size_t last_recounted = Cache::npos;
  for (const auto* change : changes) {
    const size_t target = cache_.page_at_or_before(change->key);
    if (target != Cache::npos && target != last_recounted) requestRecount(target);
    last_recounted = target;
  }
  pinVisible();
  emit statusChanged();
  continueCounting();
  tryLocate();
}

void KeyListModel::continueCounting() {
  if (!auto_count_) return;
  const size_t page = cache_.first_uncounted();
  if (page != Cache::npos) requestCount(page);
}

bool KeyListModel::canFetchMore(const QModelIndex& parent) const {
  return !parent.isValid() && !isComplete();
}

void KeyListModel::fetchMore(const QModelIndex& parent) {
  if (parent.isValid() || applying_) return;
  const size_t page = cache_.first_uncounted();
  if (page != Cache::npos) requestCount(page, BackgroundLoader::visible);
}

// ---- pages ----------------------------------------------------------------

KeyListModel::Row KeyListModel::makeRow(std::string key, std::string value) const {
  Row row;
  row.key = std::move(key);
  row.value_size = value.size();
  row.value_hash = std::hash<std::string>{}(value);
  if (value.size() > kPreviewBytes) value.resize(kPreviewBytes);
  row.value = std::move(value);
  return row;
}

void KeyListModel::requestPage(size_t page, int priority) const {
  if (page >= cache_.page_count() || !cache_.page(page).counted) return;
  const std::string anchor = cache_.page(page).anchor;
  const std::string key = jobKey("page", anchor);
  if (loader_.pending(key)) return;
  const auto upper = upperOf(page);
  // Room for keys written since the page was counted; more than that and
  // the rest is split off and counted on its own.
  const size_t limit = std::max(page_size_ * 4, cache_.page(page).size * 2);
  const uint64_t generation = generation_;
  const uint64_t since = journal_.end();
  many_level::Database* db = &db_;
  QueryHooks hooks = hooks_;
  auto* self = const_cast<KeyListModel*>(this);
  loader_.submit(self, key, priority, [=]() -> BackgroundLoader::Delivery {
    try {
      auto entries = std::make_shared<Entries>(read_range(*db, anchor, upper, limit, hooks));
      return [self, generation, anchor, upper, entries, limit, since] {
        self->applyPage(generation, anchor, upper, *entries, limit, since);
      };
    } catch (const std::exception& e) {
      std::string message = e.what();
      return [self, generation, message] { self->failed(generation, message); };
    }
  });
}

void KeyListModel::applyPage(uint64_t generation, const std::string& anchor, const std::optional<std::string>& upper,
                             Entries& entries, size_t limit, uint64_t since) {
  if (generation != generation_) return;
  const size_t page = cache_.find_page(anchor);
  if (page == Cache::npos || !cache_.page(page).counted || upperOf(page) != upper) return;
  if (!journal_.reaches(since)) {
    requestPage(page, BackgroundLoader::visible);  // older than what the journal keeps: read again
    return;
  }

  std::optional<std::string> overflow;
  if (entries.size() > limit) {
    overflow = std::move(entries[limit].key);
    entries.resize(limit);
  }
  std::vector<Row> rows;
  rows.reserve(entries.size());
  for (auto& entry : entries) rows.push_back(makeRow(std::move(entry.key), std::move(entry.value)));
  // Changes applied since the read was asked for: the read may predate them.
  const auto changes = journal_.latest(since, anchor, overflow ? overflow : upper);
  if (!changes.empty()) rows = apply_changes(rows, changes, [](const Row& row) -> const std::string& { return row.key; });

  const int first = static_cast<int>(cache_.first_row(page));
  // A page read again (polling) shows what changed; a first load does not.
  replaceRows(page, std::move(rows), cache_.loaded(page));
  if (overflow) splitOffOverflow(page, std::move(*overflow));
  splitIfLarge(page);
  const size_t size = cache_.page(page).size;
  pinVisible();
  if (size > 0) emit pageLoaded(first, first + static_cast<int>(size) - 1);
  emit statusChanged();
  tryLocate();
}

void KeyListModel::replaceRows(size_t page, std::vector<Row> rows, bool highlight) {
  const int first = static_cast<int>(cache_.first_row(page));
  applying_ = true;
  if (cache_.loaded(page)) {
    // Row by row, so views keep their selection and scroll position.
    const std::vector<Row> old_rows = *cache_.page(page).rows;
    const qint64 stamp = highlight ? nowMs() : 0;
    struct Apply {
      KeyListModel& model;
      Cache& cache;
      size_t page;
      int first;
      std::vector<Row>& rows;
      qint64 stamp;

      void remove(size_t position, size_t count) {
        const int at = first + static_cast<int>(position);
        model.beginRemoveRows(QModelIndex(), at, at + static_cast<int>(count) - 1);
        cache.erase_rows(page, position, count);
        model.endRemoveRows();
      }
      void insert(size_t position, size_t from, size_t count) {
        const int at = first + static_cast<int>(position);
        std::vector<Row> inserted(std::make_move_iterator(rows.begin() + static_cast<std::ptrdiff_t>(from)),
                                  std::make_move_iterator(rows.begin() + static_cast<std::ptrdiff_t>(from + count)));
        for (auto& row : inserted) row.changed_at = stamp;
        model.beginInsertRows(QModelIndex(), at, at + static_cast<int>(count) - 1);
        cache.insert_rows(page, position, std::move(inserted));
        model.endInsertRows();
      }
      void change(size_t position, size_t from) {
        Row row = std::move(rows[from]);
        row.changed_at = stamp;
        cache.set_row(page, position, std::move(row));
        const int at = first + static_cast<int>(position);
        emit model.dataChanged(model.index(at, 0), model.index(at, ColumnCount - 1));
      }
    } apply{*this, cache_, page, first, rows, stamp};
    sorted_diff(old_rows, rows, keyLess, sameValue, apply);
    if (stamp != 0 && !fade_timer_.isActive()) fade_timer_.start();
  } else {
    const size_t old_size = cache_.page(page).size;
    const size_t size = rows.size();
    if (size > old_size) {
      beginInsertRows(QModelIndex(), first + static_cast<int>(old_size), first + static_cast<int>(size) - 1);
      cache_.resize_unloaded(page, size);
      endInsertRows();
    } else if (size < old_size) {
      beginRemoveRows(QModelIndex(), first + static_cast<int>(size), first + static_cast<int>(old_size) - 1);
      cache_.resize_unloaded(page, size);
      endRemoveRows();
    }
    cache_.load(page, std::move(rows));
    if (size > 0) emit dataChanged(index(first, 0), index(first + static_cast<int>(size) - 1, ColumnCount - 1));
  }
  applying_ = false;
}

void KeyListModel::splitOffOverflow(size_t page, std::string first_key) {
  // More keys arrived in this page than one read takes: the rest becomes a
  // stretch of its own, counted like the end of the range.
  Cache::Page rest;
  rest.anchor = std::move(first_key);
  rest.counted = false;
  cache_.insert_page(page + 1, std::move(rest));
  requestCount(page + 1, BackgroundLoader::visible);
}

void KeyListModel::splitIfLarge(size_t page) {
  if (cache_.loaded(page) && cache_.page(page).size > 2 * page_size_) {
    cache_.split_page(page, page_size_, [](const Row& row) { return row.key; });
  }
}

// ---- recounts: a page whose rows are not loaded, after changes in it --------

void KeyListModel::requestRecount(size_t page) {
  if (page >= cache_.page_count() || !cache_.page(page).counted || cache_.loaded(page)) return;
  const std::string anchor = cache_.page(page).anchor;
  const std::string key = jobKey("recount", anchor);
  // One under way replays what is applied before it lands (the journal).
  if (loader_.pending(key)) return;
  const auto upper = upperOf(page);
  const size_t limit = std::max(page_size_ * 4, cache_.page(page).size * 2);
  const uint64_t generation = generation_;
  const uint64_t since = journal_.end();
  many_level::Database* db = &db_;
  QueryHooks hooks = hooks_;
  loader_.submit(this, key, BackgroundLoader::refresh, [=]() -> BackgroundLoader::Delivery {
    try {
      auto keys = std::make_shared<std::vector<std::string>>(read_keys(*db, anchor, upper, limit, hooks));
      return [this, generation, anchor, upper, keys, limit, since] {
        applyRecount(generation, anchor, upper, *keys, limit, since);
      };
    } catch (const std::exception& e) {
      std::string message = e.what();
      return [this, generation, message] { failed(generation, message); };
    }
  });
}

void KeyListModel::applyRecount(uint64_t generation, const std::string& anchor,
                                const std::optional<std::string>& upper, std::vector<std::string>& keys,
                                size_t limit, uint64_t since) {
  if (generation != generation_) return;
  const size_t page = cache_.find_page(anchor);
  if (page == Cache::npos || !cache_.page(page).counted || upperOf(page) != upper) return;
  if (cache_.loaded(page)) return;  // loaded meanwhile: its rows are exact
  if (!journal_.reaches(since)) {
    requestRecount(page);
    return;
  }
  std::optional<std::string> overflow;
  if (keys.size() > limit) {
    overflow = std::move(keys[limit]);
    keys.resize(limit);
  }
  std::vector<Row> rows(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) rows[i].key = std::move(keys[i]);
  const auto changes = journal_.latest(since, anchor, overflow ? overflow : upper);
  if (!changes.empty()) rows = apply_changes(rows, changes, [](const Row& row) -> const std::string& { return row.key; });

  const int first = static_cast<int>(cache_.first_row(page));
  const size_t old_size = cache_.page(page).size;
  const size_t size = rows.size();
  applying_ = true;
  if (size > old_size) {
    beginInsertRows(QModelIndex(), first + static_cast<int>(old_size), first + static_cast<int>(size) - 1);
    cache_.resize_unloaded(page, size);
    endInsertRows();
  } else if (size < old_size) {
    beginRemoveRows(QModelIndex(), first + static_cast<int>(size), first + static_cast<int>(old_size) - 1);
    cache_.resize_unloaded(page, size);
    endRemoveRows();
  }
  applying_ = false;
  if (overflow) splitOffOverflow(page, std::move(*overflow));
  pinVisible();
  emit statusChanged();
}

void KeyListModel::failed(uint64_t generation, const std::string& message) {
  if (generation != generation_) return;
  last_error_ = QString::fromStdString(message);
  emit loadFailed(last_error_);
  emit statusChanged();
}

// ---- what is in view --------------------------------------------------------

void KeyListModel::setVisibleRows(int first, int last) {
  visible_first_ = std::max(0, first);
  visible_last_ = std::max(visible_first_, last);
  pinVisible();
  const auto [first_page, last_page] = visiblePages();
  if (first_page == Cache::npos) return;
  // Loads queued for pages scrolled past are not worth waiting for.
  std::vector<std::string> wanted;
  for (size_t page = first_page; page <= last_page; ++page) wanted.push_back(jobKey("page", cache_.page(page).anchor));
  const std::string page_jobs = std::to_string(generation_) + ":page:";
  loader_.cancel_if([&](const std::string& key) {
    return key.rfind(page_jobs, 0) == 0 && std::find(wanted.begin(), wanted.end(), key) == wanted.end();
  });
  for (size_t page = first_page; page <= last_page; ++page) {
    if (!cache_.loaded(page)) requestPage(page, BackgroundLoader::visible);
  }
}

std::pair<size_t, size_t> KeyListModel::visiblePages() const {
  const size_t pages = cache_.page_count();
  if (pages == 0) return {Cache::npos, Cache::npos};
  const size_t rows = cache_.row_count();
  size_t first_page = 0;
  size_t last_page = 0;
  if (rows > 0) {
    const size_t first = std::min<size_t>(static_cast<size_t>(visible_first_), rows - 1);
    const size_t last = std::min<size_t>(static_cast<size_t>(visible_last_), rows - 1);
    first_page = cache_.locate(first).page;
    last_page = cache_.locate(last).page;
    while (first_page > 0 && cache_.page(first_page - 1).size == 0 && cache_.page(first_page - 1).counted) --first_page;
  }
  // Empty pages right after the visible ones are in view too: keys written
  // there would appear on screen.
  while (last_page + 1 < pages && cache_.page(last_page + 1).size == 0 && cache_.page(last_page + 1).counted) {
    ++last_page;
  }
  return {first_page, last_page};
}

void KeyListModel::pinVisible() {
  const auto [first_page, last_page] = visiblePages();
  if (first_page != Cache::npos) cache_.pin(first_page, last_page);
}

void KeyListModel::refresh() {
  if (isWatching()) return;  // our own writes come back through the change feed
  const auto [first_page, last_page] = visiblePages();
  if (first_page == Cache::npos) return;
  for (size_t page = first_page; page <= last_page; ++page) requestPage(page, BackgroundLoader::visible);
}

void KeyListModel::onRefreshTimer() {
  // Polling is the fallback: only when live updates are wanted and the host
  // has no change feed (or it failed).
  const auto state = live_.state();
  if (!live_wanted_ || (state != LiveFeed::State::unsupported && state != LiveFeed::State::failed)) return;
  const auto [first_page, last_page] = visiblePages();
  if (first_page == Cache::npos) return;
  for (size_t page = first_page; page <= last_page; ++page) {
    const auto& p = cache_.page(page);
    // Pages not loaded yet are on their way; empty ones are read to see new keys.
    if (p.counted && (p.rows || p.size == 0)) requestPage(page, BackgroundLoader::refresh);
  }
}

void KeyListModel::onFadeTimer() {
  // Highlighted rows are repainted as they fade, a page's span at a time;
  // those whose time is up lose their mark.
  const qint64 now = nowMs();
  bool any = false;
  for (size_t page = 0; page < cache_.page_count(); ++page) {
    if (!cache_.loaded(page)) continue;
    const size_t size = cache_.page(page).size;
    size_t first = Cache::npos;
    size_t last = 0;
    for (size_t offset = 0; offset < size; ++offset) {
      Row* row = cache_.mutable_row(page, offset);
      if (row->changed_at == 0) continue;
      if (now - row->changed_at >= highlight_ms_) {
        row->changed_at = 0;
      } else {
        any = true;
      }
      if (first == Cache::npos) first = offset;
      last = offset;
    }
    if (first == Cache::npos) continue;
    const int top = static_cast<int>(cache_.first_row(page) + first);
    const int bottom = static_cast<int>(cache_.first_row(page) + last);
    emit dataChanged(index(top, 0), index(bottom, ColumnCount - 1), {Qt::BackgroundRole, HighlightedRole});
  }
  if (!any) fade_timer_.stop();
}

// ---- locating a key -------------------------------------------------------

void KeyListModel::locateKey(const std::string& raw_key) {
  locate_target_ = raw_key;
  tryLocate();
}

void KeyListModel::tryLocate() {
  if (!locate_target_) return;
  const std::string& target = *locate_target_;
  size_t page = cache_.page_at_or_before(target);
  if (page == Cache::npos) page = 0;
  if (page >= cache_.page_count()) return;
  if (!cache_.page(page).counted) {
    requestCount(page, BackgroundLoader::user);
    return;
  }
  if (!cache_.loaded(page)) {
    requestPage(page, BackgroundLoader::user);
    return;
  }
  const auto& rows = *cache_.page(page).rows;
  auto at = std::lower_bound(rows.begin(), rows.end(), target,
                             [](const Row& row, const std::string& key) { return row.key < key; });
  size_t row = cache_.first_row(page) + static_cast<size_t>(at - rows.begin());
  locate_target_.reset();
  const size_t rows_total = cache_.row_count();
  if (rows_total == 0) return;
  emit keyLocated(static_cast<int>(std::min(row, rows_total - 1)));
}

// ---- QAbstractItemModel -----------------------------------------------------

int KeyListModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(cache_.row_count());
}

int KeyListModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

const KeyListModel::Row* KeyListModel::peekRow(int row) const {
  if (row < 0 || static_cast<size_t>(row) >= cache_.row_count()) return nullptr;
  return cache_.peek(static_cast<size_t>(row));
}

QString KeyListModel::displayKey(const std::string& raw_key) const {
  std::string_view key = raw_key;
  if (!base_.empty() && key.substr(0, base_.size()) == base_) key.remove_prefix(base_.size());
  return QString::fromStdString(escape_bytes(key));
}

QVariant KeyListModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount() || index.column() >= ColumnCount) return {};
  const size_t r = static_cast<size_t>(index.row());
  const Row* row = cache_.row(r);
  if (!row) {
    requestPage(cache_.locate(r).page, BackgroundLoader::visible);
    if (role == Qt::DisplayRole && index.column() == KeyColumn) return QStringLiteral("…");
    if (role == LoadedRole) return false;
    if (role == Qt::ForegroundRole) return QColor(Qt::gray);
    return {};
  }
  switch (role) {
    case Qt::DisplayRole:
      switch (index.column()) {
        case KeyColumn: return displayKey(row->key);
        case ValueColumn: return QString::fromStdString(escape_bytes(row->value, 120));
        case SizeColumn: return QVariant::fromValue<qulonglong>(row->value_size);
      }
      break;
    case Qt::ToolTipRole:
      if (index.column() == KeyColumn) return QString::fromStdString(escape_bytes(row->key));
      if (index.column() == ValueColumn) return QString::fromStdString(escape_bytes(row->value, 400));
      break;
    case Qt::TextAlignmentRole:
      if (index.column() == SizeColumn) return QVariant::fromValue<int>(Qt::AlignRight | Qt::AlignVCenter);
      break;
    case Qt::BackgroundRole:
      if (row->changed_at != 0) {
        // Full strength when it changed, fading to nothing over highlight_ms_.
        const double left = 1.0 - static_cast<double>(nowMs() - row->changed_at) / highlight_ms_;
        if (left <= 0) break;
        QColor color(255, 214, 92);
        color.setAlphaF(static_cast<float>(std::min(1.0, 0.15 + left)));
        return color;
      }
      break;
    case RawKeyRole: return QByteArray(row->key.data(), static_cast<qsizetype>(row->key.size()));
    case ValuePreviewRole: return QByteArray(row->value.data(), static_cast<qsizetype>(row->value.size()));
    case ValueSizeRole: return QVariant::fromValue<qulonglong>(row->value_size);
    case LoadedRole: return true;
    case HighlightedRole: return row->changed_at != 0;
  }
  return {};
}

QVariant KeyListModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole) return {};
  if (orientation == Qt::Vertical) return section + 1;
  switch (section) {
    case KeyColumn: return tr("Key");
    case ValueColumn: return tr("Value");
    case SizeColumn: return tr("Bytes");
  }
  return {};
}

QString KeyListModel::statusText() const {
  const QString count = QLocale().toString(static_cast<qulonglong>(cache_.row_count()));
  QString text;
  if (isComplete()) {
    text = tr("%1 keys").arg(count);
  } else if (auto_count_) {
    text = tr("≥ %1 keys, counting…").arg(count);
  } else {
    text = tr("≥ %1 keys so far (scroll down for more)").arg(count);
  }
  text += tr(" · %1 of %2 pages in memory").arg(cache_.loaded_page_count()).arg(cache_.page_count());
  if (!last_error_.isEmpty()) text += tr(" · error: %1").arg(last_error_);
  return text;
}

}  // namespace inspector

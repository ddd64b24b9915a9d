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
    : QAbstractTableModel(parent), db_(db), hooks_(std::move(hooks)) {
  refresh_timer_.setInterval(1000);
  connect(&refresh_timer_, &QTimer::timeout, this, &KeyListModel::onRefreshTimer);
  refresh_timer_.start();
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

// ---- the index ------------------------------------------------------------

void KeyListModel::reload() {
  beginResetModel();
  ++generation_;
  loader_.cancel_all();
  cache_.clear();
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
  many_level::Database* db = &db_;
  QueryHooks hooks = hooks_;
  loader_.submit(this, key, priority, [=]() -> BackgroundLoader::Delivery {
    try {
      auto chunk = std::make_shared<IndexChunk>(index_range(*db, anchor, upper, page_size, chunk_keys, hooks));
      return [this, generation, anchor, upper, chunk] { applyCount(generation, anchor, upper, *chunk); };
    } catch (const std::exception& e) {
      std::string message = e.what();
      return [this, generation, message] { failed(generation, message); };
    }
  });
}

void KeyListModel::applyCount(uint64_t generation, const std::string& anchor, const std::optional<std::string>& upper,
                              IndexChunk& chunk) {
  if (generation != generation_) return;
  const size_t page = cache_.find_page(anchor);
  if (page == Cache::npos || cache_.page(page).counted) return;
  if (upperOf(page) != upper) {
    // The stretch changed shape meanwhile; count it again.
    requestCount(page);
    return;
  }
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

KeyListModel::Row KeyListModel::makeRow(many_level::Entry& entry) const {
  Row row;
  row.key = std::move(entry.key);
  row.value_size = entry.value.size();
  row.value_hash = std::hash<std::string>{}(entry.value);
  if (entry.value.size() > kPreviewBytes) entry.value.resize(kPreviewBytes);
  row.value = std::move(entry.value);
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
  many_level::Database* db = &db_;
  QueryHooks hooks = hooks_;
  auto* self = const_cast<KeyListModel*>(this);
  loader_.submit(self, key, priority, [=]() -> BackgroundLoader::Delivery {
    try {
      auto entries = std::make_shared<Entries>(read_range(*db, anchor, upper, limit, hooks));
      return [self, generation, anchor, upper, entries, limit] {
        self->applyPage(generation, anchor, upper, *entries, limit);
      };
    } catch (const std::exception& e) {
      std::string message = e.what();
      return [self, generation, message] { self->failed(generation, message); };
    }
  });
}

void KeyListModel::applyPage(uint64_t generation, const std::string& anchor, const std::optional<std::string>& upper,
                             Entries& entries, size_t limit) {
  if (generation != generation_) return;
  const size_t page = cache_.find_page(anchor);
  if (page == Cache::npos || !cache_.page(page).counted || upperOf(page) != upper) return;

  std::optional<std::string> overflow;
  if (entries.size() > limit) {
    overflow = std::move(entries[limit].key);
    entries.resize(limit);
  }
  std::vector<Row> rows;
  rows.reserve(entries.size());
  for (auto& entry : entries) rows.push_back(makeRow(entry));

  const int first = static_cast<int>(cache_.first_row(page));
  applying_ = true;
  if (cache_.loaded(page)) {
    // A refresh: apply the difference row by row, so views keep their
    // selection and scroll position, and mark what changed.
    const std::vector<Row> old_rows = *cache_.page(page).rows;
    const qint64 now = nowMs();
    struct Apply {
      KeyListModel& model;
      Cache& cache;
      size_t page;
      int first;
      std::vector<Row>& rows;
      qint64 now;

      void remove(size_t position, size_t count) {
        const int at = first + static_cast<int>(position);
        model.beginRemoveRows(QModelIndex(), at, at + static_cast<int>(count) - 1);
        cache.erase_rows(page, position, count);
        model.endRemoveRows();
      }
      void insert(size_t position, size_t from, size_t count) {
        const int at = first + static_cast<int>(position);
        std::vector<Row> inserted(rows.begin() + static_cast<std::ptrdiff_t>(from),
                                  rows.begin() + static_cast<std::ptrdiff_t>(from + count));
        for (auto& row : inserted) row.changed_at = now;
        model.beginInsertRows(QModelIndex(), at, at + static_cast<int>(count) - 1);
        cache.insert_rows(page, position, std::move(inserted));
        model.endInsertRows();
      }
      void change(size_t position, size_t from) {
        Row row = rows[from];
        row.changed_at = now;
        cache.set_row(page, position, std::move(row));
        const int at = first + static_cast<int>(position);
        emit model.dataChanged(model.index(at, 0), model.index(at, ColumnCount - 1));
      }
    } apply{*this, cache_, page, first, rows, now};
    sorted_diff(old_rows, rows, keyLess, sameValue, apply);
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

  const size_t size = cache_.page(page).size;
  if (overflow) {
    // More keys arrived in this page than one read takes: the rest becomes
    // a stretch of its own, counted like the end of the range.
    Cache::Page rest;
    rest.anchor = std::move(*overflow);
    rest.counted = false;
    cache_.insert_page(page + 1, std::move(rest));
    requestCount(page + 1, BackgroundLoader::visible);
  }
  if (size > 2 * page_size_) cache_.split_page(page, page_size_, [](const Row& row) { return row.key; });
  pinVisible();
  if (size > 0) emit pageLoaded(first, first + static_cast<int>(size) - 1);
  emit statusChanged();
  tryLocate();
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
  const auto [first_page, last_page] = visiblePages();
  if (first_page == Cache::npos) return;
  for (size_t page = first_page; page <= last_page; ++page) requestPage(page, BackgroundLoader::visible);
}

void KeyListModel::onRefreshTimer() {
  expireHighlights();
  const auto [first_page, last_page] = visiblePages();
  if (first_page == Cache::npos) return;
  for (size_t page = first_page; page <= last_page; ++page) {
    const auto& p = cache_.page(page);
    // Pages not loaded yet are on their way; empty ones are read to see new keys.
    if (p.counted && (p.rows || p.size == 0)) requestPage(page, BackgroundLoader::refresh);
  }
}

void KeyListModel::expireHighlights() {
  const qint64 now = nowMs();
  for (size_t page = 0; page < cache_.page_count(); ++page) {
    if (!cache_.loaded(page)) continue;
    const size_t size = cache_.page(page).size;
    for (size_t offset = 0; offset < size; ++offset) {
      Row* row = cache_.mutable_row(page, offset);
      if (row->changed_at != 0 && now - row->changed_at >= kHighlightMs) {
        row->changed_at = 0;
        const int at = static_cast<int>(cache_.first_row(page) + offset);
        emit dataChanged(index(at, 0), index(at, ColumnCount - 1), {Qt::BackgroundRole, HighlightedRole});
      }
    }
  }
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
      if (row->changed_at != 0) return QColor(255, 236, 150);
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

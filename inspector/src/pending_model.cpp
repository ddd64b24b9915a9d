#include "pending_model.h"

#include <QColor>

#include <algorithm>

#include "bytes_text.hpp"
#include "sorted_diff.hpp"

namespace inspector {

PendingModel::PendingModel(QObject* parent) : QAbstractTableModel(parent) {}

void PendingModel::update(const std::vector<many_level::PendingRequestInfo>& pending) {
  std::vector<Row> next;
  next.reserve(pending.size());
  for (const auto& info : pending) {
    Row row;
    row.id = info.id;
    row.operation = QString::fromLatin1(info.operation);
    row.key = QString::fromStdString(escape_bytes(info.key, 80));
    row.age_ms = std::chrono::duration_cast<std::chrono::milliseconds>(info.age).count();
    next.push_back(std::move(row));
  }
  std::sort(next.begin(), next.end(), [](const Row& a, const Row& b) { return a.id < b.id; });

  struct Apply {
    PendingModel& model;
    std::vector<Row>& next;
    void remove(size_t position, size_t count) {
      model.beginRemoveRows(QModelIndex(), static_cast<int>(position), static_cast<int>(position + count) - 1);
      model.rows_.erase(model.rows_.begin() + static_cast<std::ptrdiff_t>(position),
                        model.rows_.begin() + static_cast<std::ptrdiff_t>(position + count));
      model.endRemoveRows();
    }
    void insert(size_t position, size_t from, size_t count) {
      model.beginInsertRows(QModelIndex(), static_cast<int>(position), static_cast<int>(position + count) - 1);
      model.rows_.insert(model.rows_.begin() + static_cast<std::ptrdiff_t>(position),
                         next.begin() + static_cast<std::ptrdiff_t>(from),
                         next.begin() + static_cast<std::ptrdiff_t>(from + count));
      model.endInsertRows();
    }
    // A request id reused for another request (ids restart at 1 once the
    // guest is idle) shows up as a change.
    void change(size_t position, size_t from) { model.rows_[position] = next[from]; }
  } apply{*this, next};
  const std::vector<Row> old_rows = rows_;
  sorted_diff(
      old_rows, next, [](const Row& a, const Row& b) { return a.id < b.id; },
      [](const Row& a, const Row& b) { return a.operation == b.operation && a.key == b.key; }, apply);
  // Every age moves: one signal for the rows that stayed.
  for (size_t i = 0; i < rows_.size() && i < next.size(); ++i) rows_[i].age_ms = next[i].age_ms;
  if (!rows_.empty()) emit dataChanged(index(0, 0), index(static_cast<int>(rows_.size()) - 1, ColumnCount - 1));
}

int PendingModel::oldestAgeMs() const {
  qint64 oldest = 0;
  for (const auto& row : rows_) oldest = std::max(oldest, row.age_ms);
  return static_cast<int>(oldest);
}

int PendingModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int PendingModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant PendingModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const Row& row = rows_[static_cast<size_t>(index.row())];
  switch (role) {
    case IdRole: return row.id;
    case AgeMsRole: return row.age_ms;
    case Qt::BackgroundRole:
      if (row.age_ms >= 1000) return QColor(255, 214, 153);  // stuck behind a dropped connection, say
      return {};
    case Qt::TextAlignmentRole:
      if (index.column() == IdColumn || index.column() == AgeColumn) {
        return QVariant::fromValue<int>(Qt::AlignRight | Qt::AlignVCenter);
      }
      return {};
    case Qt::DisplayRole:
      switch (index.column()) {
        case IdColumn: return row.id;
        case OperationColumn: return row.operation;
        case KeyColumn: return row.key;
        case AgeColumn: return QStringLiteral("%1 ms").arg(row.age_ms);
      }
  }
  return {};
}

QVariant PendingModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole || orientation != Qt::Horizontal) return {};
  switch (section) {
    case IdColumn: return tr("Id");
    case OperationColumn: return tr("Operation");
    case KeyColumn: return tr("Key");
    case AgeColumn: return tr("Age");
  }
  return {};
}

}  // namespace inspector

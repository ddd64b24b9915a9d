#include "iterators_model.h"

#include <QColor>

#include <algorithm>

#include "sorted_diff.hpp"

namespace inspector {

using many_level::GuestIteratorInfo;

IteratorsModel::IteratorsModel(const IteratorLabels* labels, QObject* parent)
    : QAbstractTableModel(parent), labels_(labels) {}

static bool sameIterator(const GuestIteratorInfo& a, const GuestIteratorInfo& b) {
  return a.seq == b.seq && a.consumed == b.consumed && a.buffered_entries == b.buffered_entries &&
         a.unacknowledged_frames == b.unacknowledged_frames && a.ended == b.ended && a.errored == b.errored &&
         a.reverse == b.reverse && a.limit == b.limit;
}

void IteratorsModel::update(const std::vector<GuestIteratorInfo>& iterators) {
  std::vector<GuestIteratorInfo> sorted = iterators;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  struct Apply {
    IteratorsModel& model;
    const std::vector<GuestIteratorInfo>& next;
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
    void change(size_t position, size_t from) {
      model.rows_[position] = next[from];
      const int row = static_cast<int>(position);
      emit model.dataChanged(model.index(row, 0), model.index(row, ColumnCount - 1));
    }
  } apply{*this, sorted};
  const std::vector<GuestIteratorInfo> old_rows = rows_;
  sorted_diff(old_rows, sorted, [](const auto& a, const auto& b) { return a.id < b.id; }, sameIterator, apply);
}

int IteratorsModel::rowOfId(uint32_t id) const {
  auto found = std::lower_bound(rows_.begin(), rows_.end(), id, [](const auto& info, uint32_t v) { return info.id < v; });
  if (found == rows_.end() || found->id != id) return -1;
  return static_cast<int>(found - rows_.begin());
}

QString IteratorsModel::stateText(const GuestIteratorInfo& info) {
  if (info.errored) return tr("error");
  if (info.ended) return info.buffered_entries > 0 ? tr("ended (draining)") : tr("ended");
  if (info.unacknowledged_frames > 1) return tr("host paused");
  if (info.buffered_entries > 0) return tr("buffered");
  return tr("waiting for data");
}

int IteratorsModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int IteratorsModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant IteratorsModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const GuestIteratorInfo& info = rows_[static_cast<size_t>(index.row())];
  const auto label = labels_ ? labels_->get(info.id) : std::nullopt;
  if (role == IdRole) return info.id;
  if (role == Qt::BackgroundRole && index.column() == UnackedColumn && info.unacknowledged_frames > 1) {
    return QColor(255, 214, 153);  // the host has stopped reading ahead
  }
  if (role == Qt::TextAlignmentRole && index.column() != PurposeColumn && index.column() != OptionsColumn &&
      index.column() != StateColumn) {
    return QVariant::fromValue<int>(Qt::AlignRight | Qt::AlignVCenter);
  }
  if (role != Qt::DisplayRole && role != Qt::ToolTipRole) return {};
  switch (index.column()) {
    case IdColumn: return info.id;
    case PurposeColumn: return label ? QString::fromStdString(label->purpose) : tr("(unlabelled)");
    case SeqColumn: return info.seq;
    case OptionsColumn: {
      if (label) return QString::fromStdString(label->options);
      QString text = info.reverse ? tr("reverse") : tr("forward");
      if (info.limit >= 0) text += tr(" limit=%1").arg(info.limit);
      return text;
    }
    case ConsumedColumn: return QVariant::fromValue<qulonglong>(info.consumed);
    case BufferedColumn: return QVariant::fromValue<qulonglong>(info.buffered_entries);
    case UnackedColumn: return QVariant::fromValue<qulonglong>(info.unacknowledged_frames);
    case StateColumn: return stateText(info);
  }
  return {};
}

QVariant IteratorsModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole || orientation != Qt::Horizontal) return {};
  switch (section) {
    case IdColumn: return tr("Id");
    case PurposeColumn: return tr("Opened by");
    case SeqColumn: return tr("Seq");
    case OptionsColumn: return tr("Options");
    case ConsumedColumn: return tr("Consumed");
    case BufferedColumn: return tr("Buffered entries");
    case UnackedColumn: return tr("Unacked frames");
    case StateColumn: return tr("State");
  }
  return {};
}

}  // namespace inspector

#include "iterators_model.h"

#include <QColor>

namespace inspector {

using many_level::GuestIteratorInfo;

IteratorsModel::IteratorsModel(const IteratorLabels* labels, QObject* parent)
    : IdRowsModel(parent), labels_(labels) {}

static bool sameIterator(const GuestIteratorInfo& a, const GuestIteratorInfo& b) {
  return a.seq == b.seq && a.consumed == b.consumed && a.buffered_entries == b.buffered_entries &&
         a.unacknowledged_frames == b.unacknowledged_frames && a.ended == b.ended && a.errored == b.errored &&
         a.reverse == b.reverse && a.limit == b.limit;
}

void IteratorsModel::update(const std::vector<GuestIteratorInfo>& iterators) { replaceRows(iterators, sameIterator); }

QString IteratorsModel::stateText(const GuestIteratorInfo& info) {
  if (info.errored) return tr("error");
  if (info.ended) return info.buffered_entries > 0 ? tr("ended (draining)") : tr("ended");
  if (info.unacknowledged_frames > 1) return tr("host paused");
  if (info.buffered_entries > 0) return tr("buffered");
  return tr("waiting for data");
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

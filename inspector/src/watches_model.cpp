#include "watches_model.h"

#include <QColor>

namespace inspector {

using many_level::GuestWatchInfo;

WatchesModel::WatchesModel(QObject* parent) : IdRowsModel(parent) {}

void WatchesModel::update(const std::vector<GuestWatchInfo>& watches) {
  replaceRows(watches, [](const GuestWatchInfo& a, const GuestWatchInfo& b) {
    return a.seq == b.seq && a.commits == b.commits && a.unacknowledged_frames == b.unacknowledged_frames &&
           a.errored == b.errored;
  });
}

QString WatchesModel::stateText(const GuestWatchInfo& info) {
  if (info.errored) return tr("error");
  if (info.unacknowledged_frames > 1) return tr("host paused");
  return tr("following");
}

int WatchesModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant WatchesModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const GuestWatchInfo& info = rows_[static_cast<size_t>(index.row())];
  if (role == Qt::BackgroundRole && index.column() == UnackedColumn && info.unacknowledged_frames > 1) {
    return QColor(255, 214, 153);  // the host has stopped sending
  }
  if (role == Qt::TextAlignmentRole && index.column() != StateColumn) {
    return QVariant::fromValue<int>(Qt::AlignRight | Qt::AlignVCenter);
  }
  if (role != Qt::DisplayRole && role != Qt::ToolTipRole) return {};
  switch (index.column()) {
    case IdColumn: return info.id;
    case SeqColumn: return QVariant::fromValue<qulonglong>(info.seq);
    case CommitsColumn: return QVariant::fromValue<qulonglong>(info.commits);
    case UnackedColumn: return QVariant::fromValue<qulonglong>(info.unacknowledged_frames);
    case StateColumn: return stateText(info);
  }
  return {};
}

QVariant WatchesModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole || orientation != Qt::Horizontal) return {};
  switch (section) {
    case IdColumn: return tr("Watch");
    case SeqColumn: return tr("Seq");
    case CommitsColumn: return tr("Commits");
    case UnackedColumn: return tr("Unacked frames");
    case StateColumn: return tr("State");
  }
  return {};
}

}  // namespace inspector

#include "snapshots_model.h"

namespace inspector {

using many_level::GuestSnapshotInfo;

SnapshotsModel::SnapshotsModel(QObject* parent) : IdRowsModel(parent) {}

void SnapshotsModel::update(const std::vector<GuestSnapshotInfo>& snapshots) {
  replaceRows(snapshots, [](const GuestSnapshotInfo& a, const GuestSnapshotInfo& b) { return a.open == b.open; });
}

int SnapshotsModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant SnapshotsModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const GuestSnapshotInfo& info = rows_[static_cast<size_t>(index.row())];
  if (role == Qt::TextAlignmentRole && index.column() == IdColumn) {
    return QVariant::fromValue<int>(Qt::AlignRight | Qt::AlignVCenter);
  }
  if (role != Qt::DisplayRole && role != Qt::ToolTipRole) return {};
  switch (index.column()) {
    case IdColumn: return info.id;
    case StateColumn: return info.open ? tr("open") : tr("released");
  }
  return {};
}

QVariant SnapshotsModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole || orientation != Qt::Horizontal) return {};
  switch (section) {
    case IdColumn: return tr("Snapshot");
    case StateColumn: return tr("State");
  }
  return {};
}

}  // namespace inspector

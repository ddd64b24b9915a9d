// The guest's explicit snapshots (GuestStats::snapshots), live: id and
// whether it is still open. A snapshot holds the host's view of the data as
// it was; reads that name it see nothing written since.
#pragma once

#include <vector>

#include "id_rows_model.h"
#include "many_level/guest/guest_core.hpp"

namespace inspector {

class SnapshotsModel : public IdRowsModel<many_level::GuestSnapshotInfo> {
  Q_OBJECT

 public:
  enum Column { IdColumn, StateColumn, ColumnCount };

  explicit SnapshotsModel(QObject* parent = nullptr);

  void update(const std::vector<many_level::GuestSnapshotInfo>& snapshots);

  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
};

}  // namespace inspector

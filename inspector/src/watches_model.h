// The guest's open watches (GuestStats::watches), live: id, the sequence of
// the last commit delivered, commits delivered, data frames not yet
// acknowledged and state. Flow control shows as for iterators: the host
// stops sending to a watch with two frames unacknowledged.
#pragma once

#include <vector>

#include "id_rows_model.h"
#include "many_level/guest/guest_core.hpp"

namespace inspector {

class WatchesModel : public IdRowsModel<many_level::GuestWatchInfo> {
  Q_OBJECT

 public:
  enum Column { IdColumn, SeqColumn, CommitsColumn, UnackedColumn, StateColumn, ColumnCount };

  explicit WatchesModel(QObject* parent = nullptr);

  void update(const std::vector<many_level::GuestWatchInfo>& watches);
  static QString stateText(const many_level::GuestWatchInfo& info);

  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
};

}  // namespace inspector

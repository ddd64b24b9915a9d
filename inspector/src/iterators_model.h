// Every open iterator of the guest, from GuestStats::iterators, updated live:
// id, what it is for, seq, options, entries consumed, entries buffered,
// unacknowledged data frames and state. A row per iterator id, diffed on
// each update, so a view keeps its selection while the numbers move. The
// buffered and unacknowledged columns are where backpressure shows: the host
// stops reading ahead while more than one data frame is unacknowledged.
#pragma once

#include <vector>

#include "id_rows_model.h"
#include "iterator_labels.hpp"
#include "many_level/guest/guest_core.hpp"

namespace inspector {

class IteratorsModel : public IdRowsModel<many_level::GuestIteratorInfo> {
  Q_OBJECT

 public:
  enum Column { IdColumn, PurposeColumn, SeqColumn, OptionsColumn, ConsumedColumn, BufferedColumn,
                UnackedColumn, StateColumn, ColumnCount };
  enum Role { IdRole = Qt::UserRole + 1 };

  // `labels` (may be null) says what each iterator is for; it must outlive the model.
  explicit IteratorsModel(const IteratorLabels* labels = nullptr, QObject* parent = nullptr);

  void update(const std::vector<many_level::GuestIteratorInfo>& iterators);
  const std::vector<many_level::GuestIteratorInfo>& iterators() const { return rows_; }

  static QString stateText(const many_level::GuestIteratorInfo& info);

  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  const IteratorLabels* labels_;
};

}  // namespace inspector

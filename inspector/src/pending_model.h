// Every request of the guest waiting for its answer, from
// GuestStats::pending: id, operation, key and age. A row per request id,
// diffed on each update; ages move every update. While the connection is
// down the rows pile up (the guest retries), and they drain on reconnect.
#pragma once

#include <QAbstractTableModel>

#include <chrono>
#include <vector>

#include "many_level/guest/guest_core.hpp"

namespace inspector {

class PendingModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { IdColumn, OperationColumn, KeyColumn, AgeColumn, ColumnCount };
  enum Role { IdRole = Qt::UserRole + 1, AgeMsRole };

  explicit PendingModel(QObject* parent = nullptr);

  void update(const std::vector<many_level::PendingRequestInfo>& pending);
  int oldestAgeMs() const;

  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  struct Row {
    uint32_t id = 0;
    QString operation;
    QString key;
    qint64 age_ms = 0;
  };
  std::vector<Row> rows_;  // sorted by id
};

}  // namespace inspector

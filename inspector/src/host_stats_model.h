// The host's statistics (many_level::HostStats, from Guest::host_stats): a
// row per open connection (address, since when, requests, bytes and frames
// in and out, iterators, watches, snapshots, pending requests, C++ or Node
// guest), diffed by connection id; the host-wide numbers (uptime,
// connections accepted, database, commit sequence, version) beside them.
#pragma once

#include <QString>

#include <vector>

#include "id_rows_model.h"
#include "many_level/host_stats.hpp"

namespace inspector {

class HostStatsModel : public IdRowsModel<many_level::HostConnectionStats> {
  Q_OBJECT

 public:
  enum Column {
    IdColumn,
    AddressColumn,
    SinceColumn,
    RequestsColumn,
    BytesInColumn,
    BytesOutColumn,
    FramesInColumn,
    FramesOutColumn,
    IteratorsColumn,
    WatchesColumn,
    SnapshotsColumn,
    PendingColumn,
    GuestColumn,
    ColumnCount
  };

  explicit HostStatsModel(QObject* parent = nullptr);

  void update(const many_level::HostStats& stats);
  // Forgets everything (a host without statistics).
  void clear();
  bool hasStats() const { return has_stats_; }
  // The host-wide numbers of the latest update (its connections are the rows).
  const many_level::HostStats& stats() const { return stats_; }
  // "many-level 0.1.0 · up 3m 12s · sqlite ./db (1.2 MiB) · seq 42 · 2 open, 7 accepted"
  QString summaryText() const;

  static QString bytesText(quint64 bytes);
  static QString durationText(quint64 ms);

  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  many_level::HostStats stats_;  // connections left empty: they are rows_
  bool has_stats_ = false;
};

}  // namespace inspector

#include "host_stats_model.h"

#include <QDateTime>
#include <QLocale>

namespace inspector {

using many_level::HostConnectionStats;

HostStatsModel::HostStatsModel(QObject* parent) : IdRowsModel(parent) {}

void HostStatsModel::update(const many_level::HostStats& stats) {
  stats_ = stats;
  stats_.connections.clear();
  has_stats_ = true;
  replaceRows(stats.connections, [](const HostConnectionStats& a, const HostConnectionStats& b) {
    return a.address == b.address && a.since_ms == b.since_ms && a.requests == b.requests &&
           a.bytes_in == b.bytes_in && a.bytes_out == b.bytes_out && a.frames_in == b.frames_in &&
           a.frames_out == b.frames_out && a.iterators == b.iterators && a.watches == b.watches &&
           a.snapshots == b.snapshots && a.pending == b.pending && a.extended == b.extended;
  });
}

void HostStatsModel::clear() {
  replaceRows({}, [](const HostConnectionStats&, const HostConnectionStats&) { return true; });
  stats_ = {};
  has_stats_ = false;
}

QString HostStatsModel::bytesText(quint64 bytes) {
  return QLocale().formattedDataSize(static_cast<qint64>(bytes), 1, QLocale::DataSizeIecFormat);
}

QString HostStatsModel::durationText(quint64 ms) {
  const quint64 seconds = ms / 1000;
  if (seconds >= 86400) return tr("%1d %2h").arg(seconds / 86400).arg(seconds / 3600 % 24);
  if (seconds >= 3600) return tr("%1h %2m").arg(seconds / 3600).arg(seconds / 60 % 60, 2, 10, QLatin1Char('0'));
  if (seconds >= 60) return tr("%1m %2s").arg(seconds / 60).arg(seconds % 60, 2, 10, QLatin1Char('0'));
  return tr("%1s").arg(seconds);
}

QString HostStatsModel::summaryText() const {
  if (!has_stats_) return QString();
  QString database = QString::fromStdString(stats_.database_kind.empty() ? "?" : stats_.database_kind);
  if (!stats_.database_path.empty()) database += QLatin1Char(' ') + QString::fromStdString(stats_.database_path);
  if (stats_.database_bytes > 0) database += QStringLiteral(" (%1)").arg(bytesText(stats_.database_bytes));
  return tr("many-level %1 · up %2 · %3 · commit seq %4 · %5 open, %6 accepted since start")
      .arg(QString::fromStdString(stats_.version), durationText(stats_.uptime_ms), database)
      .arg(stats_.seq)
      .arg(rows_.size())
      .arg(stats_.connections_total);
}

int HostStatsModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant HostStatsModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const HostConnectionStats& c = rows_[static_cast<size_t>(index.row())];
  const QDateTime since = QDateTime::fromMSecsSinceEpoch(static_cast<qint64>(c.since_ms));
  if (role == Qt::TextAlignmentRole && index.column() != AddressColumn && index.column() != SinceColumn &&
      index.column() != GuestColumn) {
    return QVariant::fromValue<int>(Qt::AlignRight | Qt::AlignVCenter);
  }
  if (role == Qt::ToolTipRole) {
    if (index.column() == SinceColumn) return since.toString(Qt::ISODateWithMs);
    if (index.column() == GuestColumn) {
      return c.extended ? tr("Said Hello: a C++ guest, with the extension")
                        : tr("Never said Hello: a Node guest (or a C++ guest with the extension off)");
    }
    if (index.column() == BytesInColumn) return QLocale().toString(static_cast<qulonglong>(c.bytes_in));
    if (index.column() == BytesOutColumn) return QLocale().toString(static_cast<qulonglong>(c.bytes_out));
    return {};
  }
  if (role != Qt::DisplayRole) return {};
  switch (index.column()) {
    case IdColumn: return QVariant::fromValue<qulonglong>(c.id);
    case AddressColumn: return QString::fromStdString(c.address);
    case SinceColumn: return since.toString(QStringLiteral("yyyy-MM-dd HH:mm:ss"));
    case RequestsColumn: return QVariant::fromValue<qulonglong>(c.requests);
    case BytesInColumn: return bytesText(c.bytes_in);
    case BytesOutColumn: return bytesText(c.bytes_out);
    case FramesInColumn: return QVariant::fromValue<qulonglong>(c.frames_in);
    case FramesOutColumn: return QVariant::fromValue<qulonglong>(c.frames_out);
    case IteratorsColumn: return c.iterators;
    case WatchesColumn: return c.watches;
    case SnapshotsColumn: return c.snapshots;
    case PendingColumn: return c.pending;
    case GuestColumn: return c.extended ? QStringLiteral("C++") : QStringLiteral("Node");
  }
  return {};
}

QVariant HostStatsModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole || orientation != Qt::Horizontal) return {};
  switch (section) {
    case IdColumn: return tr("Id");
    case AddressColumn: return tr("Address");
    case SinceColumn: return tr("Since");
    case RequestsColumn: return tr("Requests");
    case BytesInColumn: return tr("Bytes in");
    case BytesOutColumn: return tr("Bytes out");
    case FramesInColumn: return tr("Frames in");
    case FramesOutColumn: return tr("Frames out");
    case IteratorsColumn: return tr("Iterators");
    case WatchesColumn: return tr("Watches");
    case SnapshotsColumn: return tr("Snapshots");
    case PendingColumn: return tr("Pending");
    case GuestColumn: return tr("Guest");
  }
  return {};
}

}  // namespace inspector

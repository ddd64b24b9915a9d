// The frame log: every frame in and out, decoded, the way a protocol
// analyser lists packets. poll() drains the FrameRecorder (filled by the
// guest's frame observer on the network and caller threads) and decodes on
// the UI thread; the log is a ring of at most capacity() frames, the oldest
// dropped first. Pausing stops capture (the recorder counts what it skips).
#pragma once

#include <QAbstractTableModel>
#include <QTimer>

#include <deque>

#include "frame_recorder.hpp"
#include "frame_summary.hpp"

namespace inspector {

class FrameLogModel : public QAbstractTableModel {
  Q_OBJECT

 public:
  enum Column { NumberColumn, TimeColumn, DirectionColumn, TagColumn, IdColumn, SeqColumn, SizeColumn,
                SummaryColumn, ColumnCount };
  enum Role { DirectionRole = Qt::UserRole + 1, TagRole, IdRole, DetailRole };

  explicit FrameLogModel(FrameRecorder& recorder, size_t capacity = 10000, QObject* parent = nullptr);

  // Drains the recorder now (a timer does it every pollInterval ms).
  void poll();
  void setPollInterval(int ms);
  void clear();
  void setPaused(bool paused);
  bool isPaused() const { return !recorder_.capturing(); }

  size_t capacity() const { return capacity_; }
  const FrameSummary& frame(int row) const { return frames_.at(static_cast<size_t>(row)); }
  // Frames decoded since the start (including those the ring has dropped).
  uint64_t decodedCount() const { return decoded_; }

  static QString directionText(many_level::FrameDirection direction);

  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 signals:
  void framesAppended(int count);

 private:
  FrameRecorder& recorder_;
  const size_t capacity_;
  std::deque<FrameSummary> frames_;
  uint64_t decoded_ = 0;
  QTimer timer_;
};

}  // namespace inspector

#include "frame_log_model.h"

#include <QColor>

#include <chrono>

namespace inspector {

FrameLogModel::FrameLogModel(FrameRecorder& recorder, size_t capacity, QObject* parent)
    : QAbstractTableModel(parent), recorder_(recorder), capacity_(std::max<size_t>(1, capacity)) {
  timer_.setInterval(100);
  connect(&timer_, &QTimer::timeout, this, &FrameLogModel::poll);
  timer_.start();
}

void FrameLogModel::setPollInterval(int ms) {
  if (ms <= 0) {
    timer_.stop();
  } else {
    timer_.start(ms);
  }
}

void FrameLogModel::poll() {
  std::vector<CapturedFrame> captured = recorder_.drain();
  if (captured.empty()) return;
  // Only the newest `capacity_` can stay.
  size_t skip = captured.size() > capacity_ ? captured.size() - capacity_ : 0;
  decoded_ += skip;
  std::vector<FrameSummary> decoded;
  decoded.reserve(captured.size() - skip);
  for (size_t i = skip; i < captured.size(); ++i) {
    const CapturedFrame& frame = captured[i];
    FrameSummary summary;
    if (frame.truncated) {
      summary.direction = frame.direction;
      summary.payload_size = frame.size;
      summary.truncated = true;
      summary.tag_name = "?";
      summary.summary = "too large to keep (" + std::to_string(frame.size) + " B)";
    } else {
      summary = summarize(frame.direction, frame.payload);
    }
    summary.number = frame.number;
    summary.time_us =
        std::chrono::duration_cast<std::chrono::microseconds>(frame.time - recorder_.epoch()).count();
    decoded.push_back(std::move(summary));
  }
  decoded_ += decoded.size();

  const size_t overflow = frames_.size() + decoded.size() > capacity_ ? frames_.size() + decoded.size() - capacity_ : 0;
  if (overflow > 0) {
    beginRemoveRows(QModelIndex(), 0, static_cast<int>(overflow) - 1);
    frames_.erase(frames_.begin(), frames_.begin() + static_cast<std::ptrdiff_t>(overflow));
    endRemoveRows();
  }
  const int first = static_cast<int>(frames_.size());
  beginInsertRows(QModelIndex(), first, first + static_cast<int>(decoded.size()) - 1);
  for (auto& summary : decoded) frames_.push_back(std::move(summary));
  endInsertRows();
  emit framesAppended(static_cast<int>(decoded.size()));
}

void FrameLogModel::clear() {
  recorder_.drain();
  beginResetModel();
  frames_.clear();
  endResetModel();
}

void FrameLogModel::setPaused(bool paused) {
  if (paused) poll();  // what was captured before the pause still shows
  recorder_.set_capturing(!paused);
}

QString FrameLogModel::directionText(many_level::FrameDirection direction) {
  return direction == many_level::FrameDirection::out ? tr("out →") : tr("← in");
}

int FrameLogModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(frames_.size());
}

int FrameLogModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant FrameLogModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= rowCount()) return {};
  const FrameSummary& f = frames_[static_cast<size_t>(index.row())];
  switch (role) {
    case DirectionRole: return f.direction == many_level::FrameDirection::out ? QStringLiteral("out") : QStringLiteral("in");
    case TagRole: return QString::fromStdString(f.tag_name);
    case IdRole: return f.id ? QVariant(*f.id) : QVariant();
    case DetailRole: {
      QString text = QStringLiteral("#%1  %2  %3  id=%4%5\npayload %6 bytes\n%7\n")
                         .arg(f.number)
                         .arg(directionText(f.direction))
                         .arg(QString::fromStdString(f.tag_name))
                         .arg(f.id ? QString::number(*f.id) : QStringLiteral("-"))
                         .arg(f.seq ? QStringLiteral(" seq=%1").arg(*f.seq) : QString())
                         .arg(f.payload_size)
                         .arg(QString::fromStdString(f.summary));
      if (!f.detail.empty()) text += QStringLiteral("\n") + QString::fromStdString(f.detail);
      return text;
    }
    case Qt::ForegroundRole:
      if (f.malformed || f.tag_name == "iteratorError" || f.summary.rfind("error", 0) == 0) return QColor(Qt::darkRed);
      return f.direction == many_level::FrameDirection::out ? QColor(0, 70, 160) : QColor(0, 110, 40);
    case Qt::TextAlignmentRole:
      if (index.column() == NumberColumn || index.column() == IdColumn || index.column() == SeqColumn ||
          index.column() == SizeColumn || index.column() == TimeColumn) {
        return QVariant::fromValue<int>(Qt::AlignRight | Qt::AlignVCenter);
      }
      return {};
    case Qt::DisplayRole:
      switch (index.column()) {
        case NumberColumn: return QVariant::fromValue<qulonglong>(f.number);
        case TimeColumn: return QString::number(static_cast<double>(f.time_us) / 1e6, 'f', 6);
        case DirectionColumn: return directionText(f.direction);
        case TagColumn: return QString::fromStdString(f.tag_name);
        case IdColumn: return f.id ? QVariant(*f.id) : QVariant(QString());
        case SeqColumn: return f.seq ? QVariant::fromValue<qulonglong>(*f.seq) : QVariant(QString());
        case SizeColumn: return QVariant::fromValue<qulonglong>(f.payload_size);
        case SummaryColumn: return QString::fromStdString(f.summary);
      }
  }
  return {};
}

QVariant FrameLogModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole || orientation != Qt::Horizontal) return {};
  switch (section) {
    case NumberColumn: return tr("#");
    case TimeColumn: return tr("Time (s)");
    case DirectionColumn: return tr("Dir");
    case TagColumn: return tr("Message");
    case IdColumn: return tr("Id");
    case SeqColumn: return tr("Seq");
    case SizeColumn: return tr("Bytes");
    case SummaryColumn: return tr("Summary");
  }
  return {};
}

}  // namespace inspector

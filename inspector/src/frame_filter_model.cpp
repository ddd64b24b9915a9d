#include "frame_filter_model.h"

#include "frame_log_model.h"

namespace inspector {

FrameFilterModel::FrameFilterModel(QObject* parent) : QSortFilterProxyModel(parent) {}

void FrameFilterModel::setDirection(Direction direction) {
  direction_ = direction;
  invalidateFilter();
}

void FrameFilterModel::setText(const QString& text) {
  words_.clear();
  id_.reset();
  for (const QString& word : text.split(QLatin1Char(' '), Qt::SkipEmptyParts)) {
    if (word.startsWith(QLatin1String("id="))) {
      bool ok = false;
      uint id = word.mid(3).toUInt(&ok);
      if (ok) {
        id_ = id;
        continue;
      }
    }
    words_ << word;
  }
  invalidateFilter();
}

bool FrameFilterModel::filterAcceptsRow(int source_row, const QModelIndex& source_parent) const {
  const QAbstractItemModel* source = sourceModel();
  const QModelIndex index = source->index(source_row, 0, source_parent);
  if (direction_ != Direction::both) {
    const QString direction = index.data(FrameLogModel::DirectionRole).toString();
    if (direction != (direction_ == Direction::in ? QLatin1String("in") : QLatin1String("out"))) return false;
  }
  if (id_) {
    const QVariant id = index.data(FrameLogModel::IdRole);
    if (!id.isValid() || id.toUInt() != *id_) return false;
  }
  if (words_.isEmpty()) return true;
  const QString tag = index.data(FrameLogModel::TagRole).toString();
  const QString summary = source->index(source_row, FrameLogModel::SummaryColumn, source_parent).data().toString();
  for (const QString& word : words_) {
    if (!tag.contains(word, Qt::CaseInsensitive) && !summary.contains(word, Qt::CaseInsensitive)) return false;
  }
  return true;
}

}  // namespace inspector

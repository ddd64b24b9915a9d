// Filters the frame log as an analyser's display filter does: by direction,
// and by text matched against the message name and summary, or "id=N" for
// one request or iterator.
#pragma once

#include <QSortFilterProxyModel>

#include <optional>

namespace inspector {

class FrameFilterModel : public QSortFilterProxyModel {
  Q_OBJECT

 public:
  enum class Direction { both, in, out };

  explicit FrameFilterModel(QObject* parent = nullptr);

  void setDirection(Direction direction);
  // "put", "iterator", "error", "id=7" (words must all match).
  void setText(const QString& text);

 protected:
  bool filterAcceptsRow(int source_row, const QModelIndex& source_parent) const override;

 private:
  Direction direction_ = Direction::both;
  QStringList words_;
  std::optional<uint> id_;
};

}  // namespace inspector

// A table of records that each carry an id (the guest's iterators, watches
// and snapshots, a host's connections), kept sorted by id and updated by
// diffing against the latest list: rows come and go as inserts and removes,
// and a row whose values moved gets dataChanged, so a view keeps its
// selection and scroll position while the numbers move.
#pragma once

#include <QAbstractTableModel>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "sorted_diff.hpp"

namespace inspector {

template <typename Row>
class IdRowsModel : public QAbstractTableModel {
 public:
  using QAbstractTableModel::QAbstractTableModel;

  const std::vector<Row>& rows() const { return rows_; }

  // The row of the record with this id, or -1.
  int rowOfId(uint64_t id) const {
    auto found = std::lower_bound(rows_.begin(), rows_.end(), id,
                                  [](const Row& row, uint64_t value) { return row.id < value; });
    if (found == rows_.end() || found->id != id) return -1;
    return static_cast<int>(found - rows_.begin());
  }

  int rowCount(const QModelIndex& parent = QModelIndex()) const override {
    return parent.isValid() ? 0 : static_cast<int>(rows_.size());
  }

 protected:
  // Makes `next` (in any order) the rows. `same(old, new)`: whether a row
  // shows the same values as before.
  template <typename Same>
  void replaceRows(std::vector<Row> next, Same same) {
    std::sort(next.begin(), next.end(), [](const Row& a, const Row& b) { return a.id < b.id; });
    struct Apply {
      IdRowsModel& model;
      const std::vector<Row>& next;
      void remove(size_t position, size_t count) {
        model.beginRemoveRows(QModelIndex(), static_cast<int>(position), static_cast<int>(position + count) - 1);
        model.rows_.erase(model.rows_.begin() + static_cast<std::ptrdiff_t>(position),
                          model.rows_.begin() + static_cast<std::ptrdiff_t>(position + count));
        model.endRemoveRows();
      }
      void insert(size_t position, size_t from, size_t count) {
        model.beginInsertRows(QModelIndex(), static_cast<int>(position), static_cast<int>(position + count) - 1);
        model.rows_.insert(model.rows_.begin() + static_cast<std::ptrdiff_t>(position),
                           next.begin() + static_cast<std::ptrdiff_t>(from),
                           next.begin() + static_cast<std::ptrdiff_t>(from + count));
        model.endInsertRows();
      }
      void change(size_t position, size_t from) {
        model.rows_[position] = next[from];
        const int row = static_cast<int>(position);
        emit model.dataChanged(model.index(row, 0), model.index(row, model.columnCount() - 1));
      }
    } apply{*this, next};
    const std::vector<Row> old_rows = rows_;
    sorted_diff(old_rows, next, [](const Row& a, const Row& b) { return a.id < b.id; }, same, apply);
  }

  std::vector<Row> rows_;  // sorted by id
};

}  // namespace inspector

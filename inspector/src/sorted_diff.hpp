// The difference between two sorted sequences as the steps a Qt model takes
// to turn one into the other: remove a run, insert a run, change one element.
// Steps come in increasing position order and each position is one of the
// evolving sequence, so a model applies every step at once between its
// begin/end signals. Used for keys (sorted bytes) and for requests and
// iterators (sorted ids). Qt-free.
#pragma once

#include <cstddef>

namespace inspector {

// `less(a, b)` orders elements of both sequences by identity (key or id);
// `same(old, new)` tells whether an element kept its payload. The visitor has
//   remove(position, count)
//   insert(position, first_new_index, count)
//   change(position, new_index)
template <typename Old, typename New, typename Less, typename Same, typename Visitor>
void sorted_diff(const Old& old_items, const New& new_items, Less less, Same same, Visitor&& visitor) {
  size_t i = 0;
  size_t j = 0;
  size_t position = 0;
  const size_t old_size = old_items.size();
  const size_t new_size = new_items.size();
  while (i < old_size || j < new_size) {
    if (j == new_size || (i < old_size && less(old_items[i], new_items[j]))) {
      size_t end = i;
      while (end < old_size && (j == new_size || less(old_items[end], new_items[j]))) ++end;
      visitor.remove(position, end - i);
      i = end;
    } else if (i == old_size || less(new_items[j], old_items[i])) {
      size_t end = j;
      while (end < new_size && (i == old_size || less(new_items[end], old_items[i]))) ++end;
      visitor.insert(position, j, end - j);
      position += end - j;
      j = end;
    } else {
      if (!same(old_items[i], new_items[j])) visitor.change(position, j);
      ++i;
      ++j;
      ++position;
    }
  }
}

}  // namespace inspector

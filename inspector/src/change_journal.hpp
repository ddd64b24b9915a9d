// The changes a live key list has applied, numbered, kept for a while so that
// a read that was under way meanwhile can be brought up to date. Qt-free.
//
// Why it is needed: a page read (an iterator on a loader thread) and the
// change feed (a watch on the network thread) share no clock. A read
// submitted at journal position P saw every change applied before P (those
// reached the host before the read was sent) and some of those applied
// after. Replaying every change from P on, in order, over the read's rows
// gives the state now: a put or a del of one key is idempotent, and the last
// one of a key wins, whether or not the read had already seen it.
//
// Bounded in changes and in bytes; a read older than what is kept is read
// again rather than trusted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace inspector {

template <typename Row>
class ChangeJournal {
 public:
  struct Change {
    std::string key;
    std::optional<Row> row;  // the row it now is; nullopt: the key was deleted
    size_t weight = 0;       // bytes it holds, for the budget
  };

  explicit ChangeJournal(size_t max_changes = 100000, size_t max_bytes = size_t{32} << 20)
      : max_changes_(max_changes), max_bytes_(max_bytes) {}

  // The position the next change gets; what a read records when submitted.
  uint64_t end() const { return begin_ + changes_.size(); }
  // The oldest position still kept.
  uint64_t begin() const { return begin_; }
  // Whether every change from `position` on is still kept.
  bool reaches(uint64_t position) const { return position >= begin_; }
  size_t size() const { return changes_.size(); }
  size_t bytes() const { return bytes_; }

  void append(Change change) {
    change.weight += change.key.size() + sizeof(Change);
    bytes_ += change.weight;
    changes_.push_back(std::move(change));
    while (!changes_.empty() && (changes_.size() > max_changes_ || bytes_ > max_bytes_)) {
      bytes_ -= changes_.front().weight;
      changes_.pop_front();
      ++begin_;
    }
  }

  // Forgets everything (a reload): positions go on from end().
  void clear() {
    begin_ = end();
    changes_.clear();
    bytes_ = 0;
  }

  // The changes from `position` on (which must be reached) whose key is in
  // [from, upper), the last one of each key, in key order.
  std::vector<const Change*> latest(uint64_t position, std::string_view from,
                                    const std::optional<std::string>& upper) const {
    std::map<std::string_view, const Change*> last;
    for (size_t i = position > begin_ ? static_cast<size_t>(position - begin_) : 0; i < changes_.size(); ++i) {
      const Change& change = changes_[i];
      if (change.key < from || (upper && !(change.key < *upper))) continue;
      last[change.key] = &change;
    }
    std::vector<const Change*> out;
    out.reserve(last.size());
    for (const auto& [key, change] : last) out.push_back(change);
    return out;
  }

 private:
  const size_t max_changes_;
  const size_t max_bytes_;
  uint64_t begin_ = 0;
  size_t bytes_ = 0;
  std::deque<Change> changes_;
};

// `rows` (sorted by key, unique) with `changes` (sorted by key, one per key,
// as ChangeJournal::latest gives them) applied: puts replace or insert, dels
// remove. `key_of(row)` names a row's key.
template <typename Row, typename Change, typename KeyOf>
std::vector<Row> apply_changes(const std::vector<Row>& rows, const std::vector<const Change*>& changes, KeyOf key_of) {
  std::vector<Row> out;
  out.reserve(rows.size() + changes.size());
  size_t i = 0;
  size_t j = 0;
  while (i < rows.size() || j < changes.size()) {
    if (j == changes.size() || (i < rows.size() && key_of(rows[i]) < changes[j]->key)) {
      out.push_back(rows[i++]);
      continue;
    }
    const Change& change = *changes[j++];
    if (i < rows.size() && key_of(rows[i]) == change.key) ++i;  // replaced or deleted
    if (change.row) out.push_back(*change.row);
  }
  return out;
}

}  // namespace inspector

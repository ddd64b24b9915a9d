// A guest's explicit snapshot: a slot on the host, named by an id the guest
// chose (as for iterators) and opened by a SnapshotRequest. Reads that name
// it carry the id (the `snapshot` field of Get, GetMany, Has and Iterator);
// close() releases it. A host releases every snapshot of a stream when the
// stream ends, so after a reconnect the snapshot is gone: reads that name it
// fail with LEVEL_SNAPSHOT_NOT_OPEN, and the guest never sends its id again
// (another snapshot may have it on the new stream).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../database.hpp"
#include "../options.hpp"
#include "../prefixed_iterator.hpp"
#include "../snapshot.hpp"
#include "../version.hpp"
#include "id_allocator.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// The guest's record of one snapshot, guarded by GuestCore's lock.
struct SnapshotSlot {
  uint32_t id = 0;
  bool open = false;      // the host made it (its Callback came)
  bool lost = false;      // its stream ended
  bool released = false;  // close() was called
  uint64_t stream = 0;    // the stream (GuestCore's connect count) it lives on
};

struct GuestSnapshotInfo {
  uint32_t id = 0;
  bool open = false;  // false once lost with its stream
};

// Every snapshot a guest holds, by id. Bookkeeping only: GuestCore calls it
// with its lock held and does the sending.
class SnapshotTable {
 public:
  // A new slot with a free id, for a SnapshotRequest about to go out.
  std::shared_ptr<SnapshotSlot> reserve() {
    auto slot = std::make_shared<SnapshotSlot>();
    slot->id = ids_.next([&](uint32_t id) { return slots_.count(id) > 0; });
    slots_[slot->id] = slot;
    return slot;
  }

  // The host made it, on stream `stream`.
  static void opened(SnapshotSlot& slot, uint64_t stream) {
    slot.open = true;
    slot.stream = stream;
  }

  // Frees the slot's id: refused by the host, or closed. A lost slot keeps
  // its id until closed, so that its reads can never name another snapshot.
  void forget(const SnapshotSlot& slot) {
    auto found = slots_.find(slot.id);
    if (found != slots_.end() && found->second.get() == &slot) slots_.erase(found);
  }

  // close(): true when the host still holds it on `current`, so a release must go.
  bool release(SnapshotSlot& slot, uint64_t current) {
    if (slot.released) return false;
    slot.released = true;
    forget(slot);
    return slot.open && !slot.lost && slot.stream == current;
  }

  // The stream ended: the host released them all.
  void lose_all() {
    for (auto& [id, slot] : slots_) slot->lost = true;
  }

  // Why a read at `slot` cannot go out on stream `current` (nullptr: it can).
  static const char* unusable(const SnapshotSlot& slot, uint64_t current) {
    if (slot.released) return "Snapshot is not open";
    if (slot.lost || slot.stream != current) return "The snapshot was lost with the connection to the host";
    return nullptr;
  }

  std::vector<GuestSnapshotInfo> info() const {
    std::vector<GuestSnapshotInfo> out;
    for (const auto& [id, slot] : slots_) {
      if (slot->open) out.push_back({id, !slot->lost});
    }
    return out;
  }

  // Forgets everything (the guest closed).
  void clear() { slots_.clear(); }

 private:
  IdAllocator ids_;
  std::map<uint32_t, std::shared_ptr<SnapshotSlot>> slots_;
};

class GuestSnapshot final : public Snapshot {
 public:
  // `owner` is the guest that made it (reads go through it: it knows the
  // stream); `release` tells the core it is closed.
  GuestSnapshot(Database& owner, std::shared_ptr<SnapshotSlot> slot, std::function<void()> release)
      : owner_(owner), slot_(std::move(slot)), release_(std::move(release)) {}

  ~GuestSnapshot() override { close(); }

  uint32_t id() const { return slot_->id; }
  const std::shared_ptr<SnapshotSlot>& slot() const { return slot_; }
  // Whether `database` is the guest that made it.
  bool made_by(const Database& database) const { return &owner_ == &database; }

 protected:
  // Reached only if a caller bypasses the guest's routing of reads at a
  // snapshot; they go through it all the same.
  std::optional<std::string> do_get(std::string_view key) override { return owner_.try_get(key, at()); }
  std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) override {
    return owner_.get_many(keys, at());
  }
  std::vector<bool> do_has_many(const std::vector<std::string>& keys) override { return owner_.has_many(keys, at()); }
  std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                        std::shared_ptr<const Encoding> key_encoding,
                                        std::shared_ptr<const Encoding> value_encoding) override {
    IteratorOptions inner = PrefixedIterator::inner_options(options, options);
    inner.snapshot = self();
    return std::make_unique<PrefixedIterator>(owner_.iterator(inner), "", options, std::move(key_encoding),
                                              std::move(value_encoding));
  }
  void do_close() override {
    if (release_) release_();
  }

 private:
  // Reads name the snapshot by shared_ptr; a non-owning one to this object,
  // which the caller of the read holds for its duration.
  std::shared_ptr<Snapshot> self() { return std::shared_ptr<Snapshot>(std::shared_ptr<Snapshot>(), this); }
  ReadOptions at() {
    ReadOptions options{"buffer", "buffer"};
    options.snapshot = self();
    return options;
  }

  Database& owner_;
  std::shared_ptr<SnapshotSlot> slot_;
  std::function<void()> release_;
};

MANY_LEVEL_NAMESPACE_END

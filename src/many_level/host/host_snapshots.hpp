// The explicit snapshots one guest holds open on a host, by the ids it chose
// (the extension's SnapshotRequest / SnapshotRelease). Making, reading from
// and releasing them all happen in request order on the session's drain;
// statistics and the stream's end come from other threads, hence its own lock.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../database.hpp"
#include "../error.hpp"
#include "../snapshot.hpp"
#include "../version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

class HostSnapshots {
 public:
  explicit HostSnapshots(size_t limit) : limit_(limit) {}

  HostSnapshots(const HostSnapshots&) = delete;
  HostSnapshots& operator=(const HostSnapshots&) = delete;

  // Makes snapshot `id` of `db`. Returns "" when it is open, else the LEVEL_*
  // code it was refused with, and in `why` words for the host's log.
  std::string open(uint32_t id, Database& db, std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return codes::database_not_open;  // the stream ended
      if (snapshots_.count(id)) {
        why = "snapshot id " + std::to_string(id) + " is in use";
        return codes::invalid_argument;
      }
      if (snapshots_.size() >= limit_) {
        why = std::to_string(limit_) + " snapshots are open on this connection";
        return codes::limit_reached;
      }
    }
    if (!db.supports().explicit_snapshots) {
      why = "the database has no explicit snapshots";
      return codes::not_supported;
    }
    std::shared_ptr<Snapshot> snapshot;
    try {
      snapshot = db.snapshot();
    } catch (const std::exception& e) {
      why = e.what();
      return wire_error_code(e);
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (closed_) {
      lock.unlock();
      snapshot->close();
      return codes::database_not_open;
    }
    snapshots_.emplace(id, std::move(snapshot));
    return {};
  }

  // Snapshot `id`; throws LEVEL_SNAPSHOT_NOT_OPEN when no such one is open.
  std::shared_ptr<Snapshot> at(uint32_t id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = snapshots_.find(id);
    if (found == snapshots_.end() || !found->second->is_open()) {
      throw Error(codes::snapshot_not_open, "Snapshot " + std::to_string(id) + " is not open");
    }
    return found->second;
  }

  // Closes snapshot `id`, if open. Closing may wait on the store: call it on a worker.
  void release(uint32_t id) {
    std::shared_ptr<Snapshot> released;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto found = snapshots_.find(id);
      if (found == snapshots_.end()) return;
      released = std::move(found->second);
      snapshots_.erase(found);
    }
    released->close();
  }

  // Takes every snapshot out, to close, and refuses new ones from now on.
  std::vector<std::shared_ptr<Snapshot>> take_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    std::vector<std::shared_ptr<Snapshot>> all;
    for (auto& [id, snapshot] : snapshots_) all.push_back(std::move(snapshot));
    snapshots_.clear();
    return all;
  }

  std::vector<uint32_t> ids() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<uint32_t> ids;
    for (const auto& [id, snapshot] : snapshots_) ids.push_back(id);
    return ids;
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return snapshots_.size();
  }

 private:
  const size_t limit_;
  mutable std::mutex mutex_;
  std::map<uint32_t, std::shared_ptr<Snapshot>> snapshots_;
  bool closed_ = false;
};

MANY_LEVEL_NAMESPACE_END

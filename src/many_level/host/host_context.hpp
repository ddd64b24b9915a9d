// What the sessions of one host share: when the host started, how many
// connections it accepted, and which are open, so that any session can
// answer a HostStatsRequest with the whole host's statistics; and the views
// of the database that guests confined to a sublevel see. Sessions hold
// it by shared_ptr rather than a reference to the Host: a statistics job
// still running on a worker while the Host is destroyed finds it alive.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "../database.hpp"
#include "../host_stats.hpp"
#include "../sublevel.hpp"
#include "../version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// Who a connection is: its number on this host, its peer, when it began.
struct HostConnectionIdentity {
  uint64_t id = 0;
  std::string address;  // as the transport names the peer; "" when unknown
  uint64_t since_ms = 0;  // ms since the Unix epoch
};

// What the context asks of each open connection (a HostSession).
class HostConnection {
 public:
  // Its statistics, or nullopt once its stream has ended.
  virtual std::optional<HostConnectionStats> connection_stats() const = 0;

 protected:
  ~HostConnection() = default;
};

class HostContext {
 public:
  // `db` must outlive every session that holds the context (Host ends its
  // sessions before it goes).
  explicit HostContext(Database& db) : db_(db), started_(std::chrono::steady_clock::now()) {}

  HostContext(const HostContext&) = delete;
  HostContext& operator=(const HostContext&) = delete;

  // Counts a new connection and names it.
  HostConnectionIdentity accept(std::string address) {
    HostConnectionIdentity identity;
    identity.id = ++connections_total_;
    identity.address = std::move(address);
    identity.since_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::system_clock::now().time_since_epoch())
                                                  .count());
    return identity;
  }

  // Lists a connection while it is alive.
  void add(std::weak_ptr<HostConnection> connection) {
    std::lock_guard<std::mutex> lock(mutex_);
    connections_.erase(std::remove_if(connections_.begin(), connections_.end(),
                                      [](const std::weak_ptr<HostConnection>& c) { return c.expired(); }),
                       connections_.end());
    connections_.push_back(std::move(connection));
  }

  // The connections still alive, as the type they were added as.
  template <class T>
  std::vector<std::shared_ptr<T>> connections() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::shared_ptr<T>> alive;
    for (const auto& weak : connections_) {
      if (auto connection = weak.lock()) alive.push_back(std::static_pointer_cast<T>(connection));
    }
    return alive;
  }

  // The host's statistics now. Asks each connection for its own (taking its
  // lock), so it must not be called with a session's lock held.
  HostStats stats() const {
    HostStats stats;
    stats.uptime_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::steady_clock::now() - started_)
                                                .count());
    stats.connections_total = connections_total_.load();
    for (const auto& connection : connections<const HostConnection>()) {
      if (auto connection_stats = connection->connection_stats()) stats.connections.push_back(std::move(*connection_stats));
    }
    std::sort(stats.connections.begin(), stats.connections.end(),
              [](const HostConnectionStats& a, const HostConnectionStats& b) { return a.id < b.id; });
    try {
      StorageInfo storage = db_.storage_info();
      stats.database_kind = std::move(storage.kind);
      stats.database_path = std::move(storage.path);
      stats.database_bytes = storage.bytes;
      if (auto source = db_.change_source()) stats.seq = source->feed->last_seq();
    } catch (const std::exception&) {
      // A store that cannot say (closed, say) leaves these empty: the rest still helps.
    }
    stats.version = MANY_LEVEL_VERSION_STRING;
    return stats;
  }

  Database& database() const { return db_; }

  // What a guest confined to sublevel `name` sees as its whole database: one
  // view per name, made at first use and kept while the host lives (there
  // are as many as the token file names). Throws LEVEL_INVALID_PREFIX.
  Database& confined(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& view = confined_[name];
    if (!view) view = std::make_unique<Sublevel>(db_, name);
    return *view;
  }

 private:
  Database& db_;
  std::map<std::string, std::unique_ptr<Sublevel>> confined_;
  const std::chrono::steady_clock::time_point started_;
  std::atomic<uint64_t> connections_total_{0};
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<HostConnection>> connections_;
};

MANY_LEVEL_NAMESPACE_END

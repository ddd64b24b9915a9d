// A host exposes any Database to guests: one HostSession per stream, all of
// them sharing one worker pool. The counterpart of many-level's ManyLevelHost.
#pragma once

#include <algorithm>
#include <memory>
#include <mutex>
#include <vector>

#include "../database.hpp"
#include "../version.hpp"
#include "host_options.hpp"
#include "host_session.hpp"
#include "worker_pool.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

class Host {
 public:
  // `db` must outlive the host. The host opens it passively when a session
  // starts, as the reference does (db.open({ passive: true })): a database
  // that is closed stays closed and its requests fail with LEVEL_DATABASE_NOT_OPEN.
  explicit Host(Database& db, HostOptions options = {}, size_t worker_threads = WorkerPool::default_size())
      : db_(db), options_(std::move(options)), pool_(worker_threads) {}

  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // Ends every session still alive, so none can reach the database or the
  // pool after this; then the pool finishes the jobs already queued.
  ~Host() {
    for (auto& session : sessions()) session->end();
  }

  // A new session for one stream (many-level's createRpcStream). Hand it to
  // a transport; it ends when the stream does.
  std::shared_ptr<HostSession> create_session() {
    auto session = std::make_shared<HostSession>(db_, options_, pool_);
    std::lock_guard<std::mutex> lock(mutex_);
    sessions_.erase(std::remove_if(sessions_.begin(), sessions_.end(),
                                   [](const std::weak_ptr<HostSession>& s) { return s.expired(); }),
                    sessions_.end());
    sessions_.push_back(session);
    return session;
  }

  // The sessions that are still alive, for introspection.
  std::vector<std::shared_ptr<HostSession>> sessions() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::shared_ptr<HostSession>> alive;
    for (const auto& weak : sessions_) {
      if (auto session = weak.lock()) alive.push_back(std::move(session));
    }
    return alive;
  }

  Database& database() { return db_; }
  const HostOptions& options() const { return options_; }

 private:
  Database& db_;
  HostOptions options_;
  WorkerPool pool_;
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<HostSession>> sessions_;
};

MANY_LEVEL_NAMESPACE_END

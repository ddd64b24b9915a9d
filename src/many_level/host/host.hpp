// A host exposes any Database to guests: one HostSession per stream, all of
// them sharing one worker pool. The counterpart of many-level's ManyLevelHost.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../database.hpp"
#include "../host_stats.hpp"
#include "../version.hpp"
#include "host_context.hpp"
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
      : db_(db), options_(std::move(options)), pool_(worker_threads), context_(std::make_shared<HostContext>(db)) {}

  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // Ends every session still alive, so none can reach the database or the
  // pool after this; then the pool finishes the jobs already queued.
  ~Host() {
    for (auto& session : sessions()) session->end();
  }

  // A new session for one stream (many-level's createRpcStream). Hand it to
  // a transport; it ends when the stream does. `address` names the peer in
  // the host's statistics, e.g. an EventLoop's ConnectionInfo::peer.
  std::shared_ptr<HostSession> create_session(std::string address = {}) {
    return create_session(std::move(address), options_.access);
  }

  // The same with the access of one listener instead of HostOptions::access:
  // say, tokens on a TCP port and anonymous guests on a unix socket.
  std::shared_ptr<HostSession> create_session(std::string address, HostAccess access) {
    auto session = std::make_shared<HostSession>(db_, options_, pool_, context_, context_->accept(std::move(address)),
                                                 std::move(access));
    context_->add(session);
    return session;
  }

  // The same for a connection that an EventLoop accepted: named by its
  // ConnectionInfo's peer. (A template over anything with a `peer`, so that
  // the host does not pull in the POSIX event loop.)
  template <class Connection, class = decltype(std::string(std::declval<const Connection&>().peer))>
  std::shared_ptr<HostSession> create_session(const Connection& connection) {
    return create_session(std::string(connection.peer));
  }

  template <class Connection, class = decltype(std::string(std::declval<const Connection&>().peer))>
  std::shared_ptr<HostSession> create_session(const Connection& connection, HostAccess access) {
    return create_session(std::string(connection.peer), std::move(access));
  }

  // The sessions that are still alive, for introspection.
  std::vector<std::shared_ptr<HostSession>> sessions() const { return context_->connections<HostSession>(); }

  // Uptime, connections (every open one with its counters), the database
  // and its commit sequence: what a guest's HostStatsRequest is answered with.
  HostStats stats() const { return context_->stats(); }

  Database& database() { return db_; }
  const HostOptions& options() const { return options_; }

 private:
  Database& db_;
  HostOptions options_;
  WorkerPool pool_;
  std::shared_ptr<HostContext> context_;
};

MANY_LEVEL_NAMESPACE_END

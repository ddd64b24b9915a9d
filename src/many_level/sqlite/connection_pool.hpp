// Read connections of one SQLite store, lent out one caller at a time. Readers
// never wait for each other or for the writer: when every connection is lent,
// a new one opens, and at most `max_idle` stay open once they come back.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "../version.hpp"
#include "connection.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

namespace detail {
namespace sqlite {

class ConnectionPool {
 public:
  using Factory = std::function<std::unique_ptr<Connection>()>;

  // A connection on loan; it goes back to the pool when the lease ends.
  class Lease {
   public:
    Lease() = default;
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        release();
        pool_ = other.pool_;
        connection_ = std::move(other.connection_);
      }
      return *this;
    }
    ~Lease() { release(); }

    Connection* operator->() const { return connection_.get(); }
    Connection& operator*() const { return *connection_; }
    explicit operator bool() const { return connection_ != nullptr; }

    void release() {
      if (connection_) pool_->give_back(std::move(connection_));
    }

   private:
    ConnectionPool* pool_ = nullptr;
    std::unique_ptr<Connection> connection_;
  };

  ConnectionPool(Factory factory, size_t max_idle) : factory_(std::move(factory)), max_idle_(max_idle) {}

  Lease acquire() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        auto connection = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(connection));
      }
    }
    // Opened outside the lock: opening touches the file and may wait.
    auto connection = factory_();
    std::lock_guard<std::mutex> lock(mutex_);
    ++open_;
    return Lease(this, std::move(connection));
  }

  // Closes the idle connections (the store closes only once none is lent).
  void close_idle() {
    std::vector<std::unique_ptr<Connection>> closing;
    std::lock_guard<std::mutex> lock(mutex_);
    closing.swap(idle_);
    open_ -= closing.size();
  }

  // Connections open right now, lent or idle.
  size_t open_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return open_;
  }

 private:
  // A connection comes back outside any transaction, or not at all: a lease
  // may end by an exception in the middle of a read transaction.
  void give_back(std::unique_ptr<Connection> connection) {
    connection->reset_statements();
    if (connection->in_transaction()) {
      try {
        connection->execute("ROLLBACK");
      } catch (const Error&) {
      }
    }
    std::unique_ptr<Connection> surplus;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!connection->in_transaction() && idle_.size() < max_idle_) {
        idle_.push_back(std::move(connection));
      } else {
        surplus = std::move(connection);
        --open_;
      }
    }
    // surplus closes here, outside the lock.
  }

  Factory factory_;
  size_t max_idle_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
  size_t open_ = 0;
};

}  // namespace sqlite
}  // namespace detail

MANY_LEVEL_NAMESPACE_END

// A thin RAII face over one SQLite connection and its prepared statements, so
// the store above never calls sqlite3_* by hand and every SQLite failure
// becomes a many_level::Error naming the file, SQLite's message and the cause.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "../error.hpp"
#include "../version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

namespace detail {
namespace sqlite {

// Busy means another connection (usually another process) holds the lock we
// waited for past the busy timeout; the other codes are the store's own files.
inline const char* level_code(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return codes::locked;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return codes::corruption;
    default:
      return codes::io_error;
  }
}

// "<what> '<file>': <SQLite's message> [(<OS error>)]". The OS error is what
// tells a missing directory from a directory from a permission problem.
[[noreturn]] inline void fail(int rc, std::string_view what, std::string_view file, sqlite3* db) {
  std::string message(what);
  message += " '";
  message += file;
  message += "': ";
  message += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  int os_error = db ? sqlite3_system_errno(db) : 0;
  if (os_error != 0 && (rc & 0xff) == SQLITE_CANTOPEN) {
    message += " (";
    message += std::strerror(os_error);
    message += ")";
  }
  throw Error(level_code(rc), message);
}

inline std::string_view file_of(sqlite3* db) {
  const char* name = sqlite3_db_filename(db, "main");
  return name ? name : "";
}

// A prepared statement owned by its Connection's cache. Blobs are bound
// SQLITE_STATIC: callers keep the bytes alive until the statement is reset.
class Statement {
 public:
  explicit Statement(sqlite3_stmt* statement) : statement_(statement) {}
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Always a BLOB, even when empty: a null pointer would bind NULL instead.
  void bind(int index, std::string_view bytes) {
    static const char empty = 0;
    const char* data = bytes.empty() ? &empty : bytes.data();
    check(sqlite3_bind_blob64(statement_, index, data, bytes.size(), SQLITE_STATIC), "cannot bind to");
  }

  void bind(int index, int64_t number) { check(sqlite3_bind_int64(statement_, index, number), "cannot bind to"); }

  // True with a row to read, false when done.
  bool step() {
    int rc = sqlite3_step(statement_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    check(rc, "cannot query");
    return false;
  }

  // Steps through a statement that returns no rows.
  void run() {
    while (step()) {
    }
  }

  // Ends the current execution, releasing what it holds in the database.
  void reset() { sqlite3_reset(statement_); }

  std::string_view blob(int column) const {
    // Size after the pointer: that order is the one SQLite documents as safe.
    const void* data = sqlite3_column_blob(statement_, column);
    size_t size = static_cast<size_t>(sqlite3_column_bytes(statement_, column));
    return size == 0 ? std::string_view() : std::string_view(static_cast<const char*>(data), size);
  }

 private:
  void check(int rc, const char* what) {
    if (rc == SQLITE_OK) return;
    sqlite3* db = sqlite3_db_handle(statement_);
    fail(rc, what, file_of(db), db);
  }

  sqlite3_stmt* statement_;
};

// Resets a statement when leaving a scope, so neither an exception nor an
// early return leaves it holding a read lock or dangling bound bytes.
class Resetting {
 public:
  explicit Resetting(Statement& statement) : statement_(statement) {}
  ~Resetting() { statement_.reset(); }
  Resetting(const Resetting&) = delete;
  Resetting& operator=(const Resetting&) = delete;

 private:
  Statement& statement_;
};

// One sqlite3 handle. Used by one thread at a time (the store guarantees it),
// so it is opened without SQLite's own per-connection mutex.
class Connection {
 public:
  Connection(const std::string& path, int flags, std::chrono::milliseconds busy_timeout) {
    if (sqlite3_threadsafe() == 0) {
      throw Error(codes::io_error, "SQLite was built single-threaded (SQLITE_THREADSAFE=0); many-level needs threads");
    }
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      // The handle carries the message; it must be closed even on failure.
      std::unique_ptr<sqlite3, int (*)(sqlite3*)> doomed(db_, sqlite3_close_v2);
      db_ = nullptr;
      fail(rc, "cannot open SQLite database", path, doomed.get());
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
  }

  ~Connection() {
    statements_.clear();  // finalized first, so the close below cannot fail
    sqlite3_close_v2(db_);
  }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The statement for `sql`, prepared once per connection and reused.
  Statement& statement(const std::string& sql) {
    auto found = statements_.find(sql);
    if (found != statements_.end()) return *found->second;
    return *statements_.emplace(sql, prepare(sql)).first->second;
  }

  // A statement of the caller's own, outside the cache: for two executions
  // of one SQL text at once on this connection (two iterators at one
  // snapshot). The caller finalizes it (destroys it) before the connection.
  std::unique_ptr<Statement> prepare(const std::string& sql) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &raw,
                                nullptr);
    if (rc != SQLITE_OK) fail(rc, "cannot prepare '" + sql + "' on", file(), db_);
    return std::make_unique<Statement>(raw);
  }

  // Runs a statement without rows through the cache (BEGIN, COMMIT, PRAGMA ...).
  void execute(const std::string& sql) {
    Statement& s = statement(sql);
    Resetting done(s);
    s.run();
  }

  // A one-row answer as text (PRAGMA journal_mode and friends).
  std::string query_text(const std::string& sql) {
    Statement& s = statement(sql);
    Resetting done(s);
    if (!s.step()) return {};
    return std::string(s.blob(0));
  }

  // Ends every execution in progress, e.g. before the connection is lent again.
  void reset_statements() {
    for (auto& entry : statements_) entry.second->reset();
  }

  sqlite3* handle() const { return db_; }
  bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }
  int64_t changes() const { return sqlite3_changes64(db_); }
  std::string_view file() const { return file_of(db_); }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Statement>> statements_;
};

}  // namespace sqlite
}  // namespace detail

MANY_LEVEL_NAMESPACE_END

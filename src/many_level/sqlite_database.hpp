// The default store: one SQLite file in WAL mode holding a single table of
// BLOB keys, which SQLite orders as LevelDB does (memcmp, then length).
//
// Concurrency. Every method is thread-safe. Reads (get, get_many, has,
// has_many) run on pooled read connections, in parallel with each other and
// with writes. Each open iterator holds a read connection of its own inside a
// read transaction begun when the iterator is created: that transaction is its
// snapshot. Writes (put, del, batch, clear) go through one write connection
// with group commit: a caller that finds no commit running commits everything
// queued meanwhile in one transaction; the others wait. Every write call
// returns only once its transaction is committed. The writer whose commit
// filled the WAL then checkpoints it, beside the other writers rather than
// in their way (sqlite/checkpointer.hpp).
//
// Durability. With durable_fsync off (synchronous=NORMAL, the default, as
// LevelDB's default sync=false), an acknowledged write survives the process
// being killed (it is in the WAL file, which the OS keeps); a power loss or
// OS crash may lose the last commits, never the database's consistency. With
// durable_fsync on (synchronous=FULL) every commit is fsynced first and
// survives power loss too, at the cost of one fsync per group.
//
// Explicit snapshots (snapshot()): a pooled read connection inside a read
// transaction, pinned by a first read when the snapshot is made. Reads at a
// snapshot take turns on its connection (a mutex of the snapshot); iterators
// made at it step statements of their own on that connection, and keep it:
// closing the snapshot ends the transaction once its last iterator is done.
//
// The change feed (watch()): the group commit leader publishes each write
// request it applied, in group order, once the group's COMMIT has succeeded
// (a request that failed alone is left out; a group that failed publishes
// nothing). A clear chunk appears as exactly the keys it deleted (DELETE ...
// RETURNING). Only this object's writes are seen: writes another process (or
// another SqliteDatabase) makes to the same file are neither numbered nor
// delivered to watchers.
//
// Costs to know: an open iterator keeps a connection (three file handles) and
// holds its snapshot, so the WAL cannot be checkpointed past it; close
// iterators you no longer need (an explicit snapshot too). clear() deletes in
// chunks of clear_chunk keys, one write transaction each, so a large clear
// does not stall other writers; like abstract-level's clear() it is not
// atomic.
#pragma once

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "database.hpp"
#include "error.hpp"
#include "iterator.hpp"
#include "options.hpp"
#include "range.hpp"
#include "sqlite/checkpointer.hpp"
#include "sqlite/connection.hpp"
#include "sqlite/connection_pool.hpp"
#include "sqlite/group_commit.hpp"
#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

struct SqliteOptions : DatabaseOptions {
  // synchronous=FULL instead of NORMAL: commits survive power loss, not only
  // a killed process (see the top of this file).
  bool durable_fsync = false;
  // How long a connection waits for a lock another process holds before the
  // call fails with LEVEL_LOCKED.
  std::chrono::milliseconds busy_timeout{5000};
  // Idle read connections kept open for reuse; more open when needed.
  size_t read_pool_size = 4;
  // Keys one clear() deletes per write transaction.
  size_t clear_chunk = 10000;
  // WAL pages written between checkpoints (SQLite's own default). The
  // checkpoint runs beside the writers, not inside a commit.
  int checkpoint_pages = 1000;
};

// Counters since construction, for monitoring and benchmarks.
struct SqliteStats {
  uint64_t writes = 0;           // write requests committed (a chunked clear counts per chunk)
  uint64_t commits = 0;          // write transactions committed: writes / commits is the group size
  uint64_t checkpoints = 0;      // WAL checkpoints run
  size_t read_connections = 0;   // read connections open now, lent (iterators, reads) or idle
  size_t committing_writes = 0;  // write calls in the group commit running now
  size_t queued_writes = 0;      // write calls waiting for the next group commit
};

namespace detail {
namespace sqlite {

// A range as SQLite scans it: lower bound inclusive, upper bound exclusive.
// Every KeyRange has this shape, because in byte order the key right after k
// is k + '\0'; so one SQL text serves gt, gte, lt and lte alike.
struct ScanRange {
  std::string lower;  // "" is at or below every key
  std::optional<std::string> upper;

  static ScanRange from(const KeyRange& range) {
    ScanRange scan;
    if (range.lower) scan.lower = range.lower->inclusive ? range.lower->key : after(range.lower->key);
    if (range.upper) scan.upper = range.upper->inclusive ? after(range.upper->key) : range.upper->key;
    return scan;
  }

  // This range from `target` on (a forward seek).
  ScanRange from_key(std::string_view target) const {
    ScanRange scan = *this;
    if (compare_keys(target, lower) > 0) scan.lower = std::string(target);
    return scan;
  }

  // This range up to and including `target` (a reverse seek).
  ScanRange up_to_key(std::string_view target) const {
    ScanRange scan = *this;
    std::string end = after(target);
    if (!upper || compare_keys(end, *upper) < 0) scan.upper = std::move(end);
    return scan;
  }

  // Binds ?1 and ?2 of a statement made with scan_clause(bounded()).
  void bind(Statement& statement) const {
    statement.bind(1, lower);
    if (upper) statement.bind(2, *upper);
  }

  bool bounded() const { return upper.has_value(); }

 private:
  static std::string after(std::string_view key) {
    std::string next(key);
    next.push_back('\0');
    return next;
  }
};

// The scan shared by iterators and clear(); bounds as ScanRange binds them.
inline std::string scan_clause(bool bounded, bool reverse) {
  std::string sql = " WHERE key >= ?1";
  if (bounded) sql += " AND key < ?2";
  sql += reverse ? " ORDER BY key DESC" : " ORDER BY key";
  return sql;
}

// Only the columns asked for: with values=false the value is never read.
inline std::string select_sql(bool keys, bool values, bool bounded, bool reverse) {
  const char* columns = keys && values ? "key, value" : keys ? "key" : values ? "value" : "NULL";
  return std::string("SELECT ") + columns + " FROM kv" + scan_clause(bounded, reverse);
}

// Returns the keys it deleted (SQLite 3.35+), for the change feed.
inline std::string clear_sql(bool bounded, bool reverse) {
  return "DELETE FROM kv WHERE key IN (SELECT key FROM kv" + scan_clause(bounded, reverse) + " LIMIT ?3) RETURNING key";
}

inline constexpr const char* create_table_sql =
    "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID";

// The statements of the hot paths, as std::string keys of the statement
// cache: made once, so no lookup allocates, and in a function static, so no
// static initialization order can catch them unmade.
enum class Query { get, has, put, del };

inline const std::string& sql(Query query) {
  static const std::string texts[] = {
      "SELECT value FROM kv WHERE key = ?1",
      "SELECT 1 FROM kv WHERE key = ?1",
      "INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)",
      "DELETE FROM kv WHERE key = ?1",
  };
  return texts[static_cast<int>(query)];
}

}  // namespace sqlite
}  // namespace detail

class SqliteDatabase final : public Database {
 public:
  // Nothing touches `path` until the database opens (on open() or first use).
  explicit SqliteDatabase(std::string path, SqliteOptions options = {})
      : Database(manifest(), options),
        path_(std::move(path)),
        options_(std::move(options)),
        readers_([this] { return open_reader(); }, options_.read_pool_size),
        writes_([this](std::vector<WriteQueue::Ticket*>& group) { commit(group); }) {
    enable_change_feed(options_.change_history);
  }

  ~SqliteDatabase() override {
    try {
      close();
    } catch (...) {
    }
  }

  const std::string& path() const { return path_; }

  SqliteStats stats() const {
    SqliteStats stats;
    stats.writes = writes_committed_.load(std::memory_order_relaxed);
    stats.commits = commits_.load(std::memory_order_relaxed);
    stats.checkpoints = checkpoints_.load(std::memory_order_relaxed);
    stats.read_connections = readers_.open_count();
    stats.committing_writes = writes_.committing();
    stats.queued_writes = writes_.queued();
    return stats;
  }

  // The file and its WAL, as they are on disk now.
  StorageInfo storage_info() const override {
    uint64_t bytes = 0;
    for (const auto& file : {path_, path_ + "-wal"}) {
      std::error_code missing;
      auto size = std::filesystem::file_size(file, missing);
      if (!missing) bytes += size;
    }
    return {"sqlite", path_, bytes};
  }

 protected:
  void do_open(const OpenOptions& open) override {
    if (path_.empty() || path_ == ":memory:") {
      // Each connection would get a database of its own.
      throw Error(codes::invalid_argument, "SqliteDatabase needs a file path, not '" + path_ + "'");
    }
    std::error_code ignored;  // when stat fails, SQLite reports the cause below
    bool exists = std::filesystem::exists(path_, ignored);
    // Worded as abstract-level's tests expect ("does not exist", "exists").
    if (!exists && !open.create_if_missing) {
      throw Error(codes::database_not_open,
                  "SQLite database '" + path_ + "' does not exist (create_if_missing is false)");
    }
    if (exists && open.error_if_exists) {
      throw Error(codes::database_not_open,
                  "SQLite database '" + path_ + "' already exists (error_if_exists is true)");
    }

    int flags = SQLITE_OPEN_READWRITE | (open.create_if_missing ? SQLITE_OPEN_CREATE : 0);
    auto writer = std::make_unique<Connection>(path_, flags, options_.busy_timeout);
    // The first statement reads the file: garbage fails here as LEVEL_CORRUPTION.
    std::string mode = writer->query_text("PRAGMA journal_mode = WAL");
    std::transform(mode.begin(), mode.end(), mode.begin(), [](unsigned char c) { return std::tolower(c); });
    if (mode != "wal") {
      throw Error(codes::io_error, "cannot use WAL journal mode for SQLite database '" + path_ + "' (got '" +
                                       mode + "')");
    }
    writer->execute(options_.durable_fsync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    // Taking the write lock at open reports a database another process is
    // writing as LEVEL_LOCKED now rather than at the first write.
    writer->execute("BEGIN IMMEDIATE");
    writer->execute(detail::sqlite::create_table_sql);
    writer->execute("COMMIT");
    // Prepared now so a foreign 'kv' table fails open(), not the first write.
    writer->statement(sql(Query::put));
    writer->statement(sql(Query::del));
    auto checkpointer = std::make_unique<detail::sqlite::Checkpointer>(
        std::make_unique<Connection>(path_, SQLITE_OPEN_READWRITE, options_.busy_timeout), *writer,
        options_.checkpoint_pages);
    readers_.acquire();  // a reader that cannot open fails open() too; it stays idle
    writer_ = std::move(writer);
    checkpointer_ = std::move(checkpointer);
  }

  void do_close() override {
    // Iterators and reads have returned their connections by now. Readers
    // close first, so the writer is last and checkpoints the WAL away.
    readers_.close_idle();
    checkpointer_.reset();
    writer_.reset();
  }

  std::optional<std::string> do_get(std::string_view key) override {
    auto reader = readers_.acquire();
    return read_value(*reader, key);
  }

  std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) override {
    return read_many<std::optional<std::string>>(keys, &SqliteDatabase::read_value);
  }

  bool do_has(std::string_view key) override {
    auto reader = readers_.acquire();
    return read_presence(*reader, key);
  }

  std::vector<bool> do_has_many(const std::vector<std::string>& keys) override {
    return read_many<bool>(keys, &SqliteDatabase::read_presence);
  }

  void do_put(std::string_view key, std::string_view value) override {
    WriteRequest request;
    request.kind = WriteRequest::Kind::put;
    request.key = key;
    request.value = value;
    write(request);
  }

  void do_del(std::string_view key) override {
    WriteRequest request;
    request.kind = WriteRequest::Kind::del;
    request.key = key;
    write(request);
  }

  void do_batch(const std::vector<BatchOperation>& operations) override {
    if (operations.empty()) return;
    WriteRequest request;
    request.kind = WriteRequest::Kind::batch;
    request.operations = &operations;
    write(request);
  }

  void do_clear(const RangeOptions& options) override {
    KeyRange range = KeyRange::from(options);
    if (range.empty()) return;
    auto scan = detail::sqlite::ScanRange::from(range);
    uint64_t left = options.limit < 0 ? UINT64_MAX : static_cast<uint64_t>(options.limit);
    const uint64_t chunk = std::max<uint64_t>(1, options_.clear_chunk);
    while (left > 0) {
      WriteRequest request;
      request.kind = WriteRequest::Kind::clear;
      request.range = &scan;
      request.reverse = options.reverse;
      request.limit = static_cast<int64_t>(std::min(left, chunk));
      write(request);
      left -= static_cast<uint64_t>(request.deleted);
      if (request.deleted < request.limit) break;  // the range is empty now
    }
  }

  inline std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                               std::shared_ptr<const Encoding> key_encoding,
                                               std::shared_ptr<const Encoding> value_encoding) override;

  inline std::shared_ptr<Snapshot> do_snapshot() override;

 private:
  using Connection = detail::sqlite::Connection;
  using ConnectionPool = detail::sqlite::ConnectionPool;
  using Statement = detail::sqlite::Statement;
  using Resetting = detail::sqlite::Resetting;
  using Query = detail::sqlite::Query;
  static const std::string& sql(Query query) { return detail::sqlite::sql(query); }

  // One write call, as the group commit leader applies it. It points into the
  // caller's arguments: the caller waits until it is applied.
  struct WriteRequest {
    enum class Kind { put, del, batch, clear };
    Kind kind = Kind::put;
    std::string_view key;
    std::string_view value;
    const std::vector<BatchOperation>* operations = nullptr;
    const detail::sqlite::ScanRange* range = nullptr;
    bool reverse = false;
    int64_t limit = 0;
    int64_t deleted = 0;                    // out: keys a clear chunk deleted
    std::vector<std::string> deleted_keys;  // out: which, in the order SQLite returned them
  };
  using WriteQueue = detail::sqlite::GroupCommit<WriteRequest>;

  // An explicit snapshot's read transaction, shared by the snapshot and the
  // iterators made at it: it ends (the lease goes back to the pool, which
  // rolls it back) when the last of them lets go.
  struct PinnedRead {
    std::mutex mutex;  // one thread at a time on the connection
    ConnectionPool::Lease reader;
  };

  class Cursor;
  class SnapshotReads;

  static Supports manifest() {
    Supports supports;
    supports.permanence = true;
    supports.snapshots = true;
    supports.create_if_missing = true;
    supports.error_if_exists = true;
    supports.explicit_snapshots = true;
    return supports;
  }

  std::unique_ptr<Connection> open_reader() {
    auto reader = std::make_unique<Connection>(path_, SQLITE_OPEN_READWRITE, options_.busy_timeout);
    reader->execute("PRAGMA query_only = 1");
    return reader;
  }

  static std::optional<std::string> read_value(Connection& reader, std::string_view key) {
    Statement& statement = reader.statement(sql(Query::get));
    Resetting done(statement);
    statement.bind(1, key);
    if (!statement.step()) return std::nullopt;
    return std::string(statement.blob(0));
  }

  static bool read_presence(Connection& reader, std::string_view key) {
    Statement& statement = reader.statement(sql(Query::has));
    Resetting done(statement);
    statement.bind(1, key);
    return statement.step();
  }

  // Reads every key in one read transaction, so they come from one snapshot.
  template <typename T, typename Read>
  std::vector<T> read_many(const std::vector<std::string>& keys, Read read) {
    std::vector<T> results;
    results.reserve(keys.size());
    if (keys.empty()) return results;
    auto reader = readers_.acquire();
    reader->execute("BEGIN");
    for (const auto& key : keys) results.push_back(read(*reader, key));
    reader->execute("COMMIT");  // on an exception, the pool rolls back instead
    return results;
  }

  // Returns once the request is committed (see GroupCommit); then, with its
  // own write done, the caller checkpoints if one is due.
  void write(WriteRequest& request) {
    writes_.submit(request);
    // The leader recorded the commit; watchers run here, on the writer's
    // thread with no lock held (with none, this is one atomic load).
    feed()->notify();
    if (checkpointer_->run_if_due()) checkpoints_.fetch_add(1, std::memory_order_relaxed);
  }

  // The group commit leader's work: one transaction for the whole group.
  void commit(std::vector<WriteQueue::Ticket*>& group) {
    Connection& writer = *writer_;
    writer.execute("BEGIN IMMEDIATE");
    try {
      uint64_t applied = 0;
      for (auto* ticket : group) {
        try {
          apply(writer, *ticket->request, group.size() == 1);
          ++applied;
        } catch (...) {
          // Most failures undo one statement; some (disk full, I/O) end the
          // whole transaction, and then the whole group has failed. Alone,
          // the request has no savepoint: rolling back all keeps it atomic.
          if (!writer.in_transaction() || group.size() == 1) throw;
          ticket->error = std::current_exception();
        }
      }
      writer.execute("COMMIT");
      commits_.fetch_add(1, std::memory_order_relaxed);
      writes_committed_.fetch_add(applied, std::memory_order_relaxed);
    } catch (...) {
      if (writer.in_transaction()) {
        try {
          writer.execute("ROLLBACK");
        } catch (const Error&) {
        }
      }
      throw;
    }
    record(group);
  }

  // The group's commits, in its order, still as its leader: the next group
  // waits, so the feed's order is the database's.
  void record(std::vector<WriteQueue::Ticket*>& group) {
    for (auto* ticket : group) {
      if (ticket->error) continue;
      WriteRequest& request = *ticket->request;
      if (request.kind == WriteRequest::Kind::clear && request.deleted_keys.empty()) continue;
      feed()->record_with([&] { return operations_of(request); });
    }
  }

  // A request as watchers see it. A clear chunk's deletes come in the order
  // its scan went (SQLite returns them in no promised order).
  static std::vector<BatchOperation> operations_of(WriteRequest& request) {
    using Kind = WriteRequest::Kind;
    std::vector<BatchOperation> operations;
    switch (request.kind) {
      case Kind::put:
        operations.push_back(BatchOperation::put(std::string(request.key), std::string(request.value)));
        break;
      case Kind::del:
        operations.push_back(BatchOperation::del(std::string(request.key)));
        break;
      case Kind::batch:
        operations = *request.operations;
        break;
      case Kind::clear: {
        auto& keys = request.deleted_keys;
        std::sort(keys.begin(), keys.end(), [reverse = request.reverse](const std::string& a, const std::string& b) {
          return reverse ? compare_keys(b, a) < 0 : compare_keys(a, b) < 0;
        });
        operations.reserve(keys.size());
        for (auto& key : keys) operations.push_back(BatchOperation::del(std::move(key)));
        break;
      }
    }
    return operations;
  }

  // `alone`: the request is the whole transaction, so a failure can roll all
  // of it back and a batch needs no savepoint of its own.
  static void apply(Connection& writer, WriteRequest& request, bool alone) {
    using Kind = WriteRequest::Kind;
    switch (request.kind) {
      case Kind::put:
        return write_one(writer, BatchOperation::Type::put, request.key, request.value);
      case Kind::del:
        return write_one(writer, BatchOperation::Type::del, request.key, {});
      case Kind::batch:
        return apply_batch(writer, *request.operations, alone);
      case Kind::clear: {
        const auto& range = *request.range;
        Statement& statement = writer.statement(detail::sqlite::clear_sql(range.bounded(), request.reverse));
        Resetting done(statement);
        range.bind(statement);
        statement.bind(3, request.limit);
        request.deleted_keys.clear();
        while (statement.step()) request.deleted_keys.emplace_back(statement.blob(0));
        request.deleted = static_cast<int64_t>(request.deleted_keys.size());
        return;
      }
    }
  }

  static void write_one(Connection& writer, BatchOperation::Type type, std::string_view key,
                        std::string_view value) {
    bool put = type == BatchOperation::Type::put;
    Statement& statement = writer.statement(put ? sql(Query::put) : sql(Query::del));
    Resetting done(statement);
    statement.bind(1, key);
    if (put) statement.bind(2, value);
    statement.run();
  }

  static void apply_batch(Connection& writer, const std::vector<BatchOperation>& operations, bool alone) {
    bool savepoint = !alone && operations.size() > 1;
    if (savepoint) writer.execute("SAVEPOINT batch");
    try {
      for (const auto& op : operations) write_one(writer, op.type, op.key, op.value);
    } catch (...) {
      if (savepoint && writer.in_transaction()) {
        try {
          writer.execute("ROLLBACK TO batch");
          writer.execute("RELEASE batch");
        } catch (const Error&) {
        }
      }
      throw;
    }
    if (savepoint) writer.execute("RELEASE batch");
  }

  std::string path_;
  SqliteOptions options_;
  ConnectionPool readers_;
  std::unique_ptr<Connection> writer_;  // used only by the group commit leader
  std::unique_ptr<detail::sqlite::Checkpointer> checkpointer_;
  WriteQueue writes_;
  std::atomic<uint64_t> writes_committed_{0};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> checkpoints_{0};
};

// An iterator: a statement stepping through a read transaction's snapshot.
// Made by do_iterator(), it has a read connection and transaction of its own,
// given back to the pool when it closes. Made at an explicit snapshot, it
// shares the snapshot's connection: it steps statements of its own (the
// connection's cache holds one statement per SQL text, which two iterators
// would fight over), under the snapshot's mutex, and keeps the transaction
// alive until it closes.
class SqliteDatabase::Cursor final : public Iterator {
 public:
  Cursor(ConnectionPool::Lease reader, const IteratorOptions& options, std::shared_ptr<const Encoding> key_encoding,
         std::shared_ptr<const Encoding> value_encoding)
      : Cursor(options, std::move(key_encoding), std::move(value_encoding)) {
    reader_ = std::move(reader);
    connection_ = &*reader_;
    reader_->execute("BEGIN");
    start();
  }

  Cursor(std::shared_ptr<PinnedRead> pinned, const IteratorOptions& options,
         std::shared_ptr<const Encoding> key_encoding, std::shared_ptr<const Encoding> value_encoding)
      : Cursor(options, std::move(key_encoding), std::move(value_encoding)) {
    pinned_ = std::move(pinned);
    connection_ = &*pinned_->reader;
    auto lock = turn();
    try {
      start();
    } catch (...) {
      owned_[0].reset();  // finalized while the connection is still ours
      owned_[1].reset();
      throw;
    }
  }

  ~Cursor() override { close(); }

 protected:
  bool do_next(Entry& entry) override {
    auto lock = turn();
    if (!advance()) return false;
    read(entry);
    return true;
  }

  void do_nextv(size_t size, std::vector<Entry>& entries) override {
    auto lock = turn();
    // Only a fresh vector: all() calls this again and again on one vector,
    // where an exact reserve each time would defeat geometric growth.
    if (entries.empty()) entries.reserve(std::min<size_t>(size, 1024));
    for (size_t i = 0; i < size && advance(); ++i) {
      entries.emplace_back();
      read(entries.back());
    }
  }

  void do_seek(std::string_view target) override {
    auto lock = turn();
    position(reverse_ ? range_.up_to_key(target) : range_.from_key(target));
    pending_ = false;
    finished_ = false;
  }

  void do_close() override {
    {
      auto lock = turn();
      statement_ = nullptr;
      statements_[0] = statements_[1] = nullptr;
      owned_[0].reset();  // finalized while the connection is surely ours
      owned_[1].reset();
    }
    reader_.release();  // resets the statement and ends the read transaction
    pinned_.reset();    // the snapshot's transaction ends with its last user
  }

 private:
  Cursor(const IteratorOptions& options, std::shared_ptr<const Encoding> key_encoding,
         std::shared_ptr<const Encoding> value_encoding)
      : Iterator(options, std::move(key_encoding), std::move(value_encoding)),
        range_(detail::sqlite::ScanRange::from(KeyRange::from(options))),
        reverse_(options.reverse),
        key_column_(wants_keys() ? 0 : -1),
        value_column_(wants_values() ? (wants_keys() ? 1 : 0) : -1) {}

  // A deferred transaction starts reading at its first step: stepping now
  // pins the snapshot at creation rather than at the first next().
  void start() {
    position(range_);
    pending_ = statement_->step();
    finished_ = !pending_;
  }

  // The connection to ourselves: the snapshot's mutex when it is shared.
  std::unique_lock<std::mutex> turn() {
    return pinned_ ? std::unique_lock<std::mutex>(pinned_->mutex) : std::unique_lock<std::mutex>();
  }

  // Aims the statement at `scan` within the iterator's transaction. A reverse
  // seek can add an upper bound, hence a statement for each shape, both
  // prepared once (per connection, or per iterator at a snapshot).
  void position(detail::sqlite::ScanRange scan) {
    if (statement_) statement_->reset();
    const int shape = scan.bounded() ? 1 : 0;
    Statement*& slot = statements_[shape];
    if (!slot) {
      std::string sql = detail::sqlite::select_sql(wants_keys(), wants_values(), scan.bounded(), reverse_);
      if (pinned_) {
        owned_[shape] = connection_->prepare(sql);
        slot = owned_[shape].get();
      } else {
        slot = &connection_->statement(sql);
      }
    }
    statement_ = slot;
    bound_ = std::move(scan);  // the statement reads these bytes until reset
    bound_.bind(*statement_);
  }

  bool advance() {
    if (finished_) return false;
    if (pending_) {
      pending_ = false;
      return true;
    }
    if (statement_->step()) return true;
    finished_ = true;  // stepping again would restart the query
    return false;
  }

  void read(Entry& entry) const {
    if (key_column_ >= 0) entry.key.assign(statement_->blob(key_column_));
    if (value_column_ >= 0) entry.value.assign(statement_->blob(value_column_));
  }

  ConnectionPool::Lease reader_;        // its own connection, or
  std::shared_ptr<PinnedRead> pinned_;  // an explicit snapshot's
  Connection* connection_ = nullptr;
  std::unique_ptr<Statement> owned_[2];  // at a snapshot: its own statements
  const detail::sqlite::ScanRange range_;
  detail::sqlite::ScanRange bound_;
  Statement* statements_[2] = {nullptr, nullptr};
  Statement* statement_ = nullptr;
  bool reverse_;
  int key_column_;
  int value_column_;
  bool pending_ = false;   // the statement holds a row next() has not taken yet
  bool finished_ = false;  // the statement has no more rows
};

inline std::unique_ptr<Iterator> SqliteDatabase::do_iterator(const IteratorOptions& options,
                                                              std::shared_ptr<const Encoding> key_encoding,
                                                              std::shared_ptr<const Encoding> value_encoding) {
  return std::make_unique<Cursor>(readers_.acquire(), options, std::move(key_encoding), std::move(value_encoding));
}

// An explicit snapshot: reads take turns on its pinned read transaction.
class SqliteDatabase::SnapshotReads final : public Snapshot {
 public:
  explicit SnapshotReads(std::shared_ptr<PinnedRead> pinned) : pinned_(std::move(pinned)) {}

 protected:
  std::optional<std::string> do_get(std::string_view key) override {
    auto pinned = held();
    std::lock_guard<std::mutex> lock(pinned->mutex);
    return read_value(*pinned->reader, key);
  }

  std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) override {
    return read_all<std::optional<std::string>>(keys, &SqliteDatabase::read_value);
  }

  std::vector<bool> do_has_many(const std::vector<std::string>& keys) override {
    return read_all<bool>(keys, &SqliteDatabase::read_presence);
  }

  std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options, std::shared_ptr<const Encoding> key_encoding,
                                        std::shared_ptr<const Encoding> value_encoding) override {
    return std::make_unique<Cursor>(held(), options, std::move(key_encoding), std::move(value_encoding));
  }

  void do_close() override {
    std::lock_guard<std::mutex> lock(mutex_);
    pinned_.reset();
  }

 private:
  template <typename T, typename Read>
  std::vector<T> read_all(const std::vector<std::string>& keys, Read read) {
    auto pinned = held();
    std::vector<T> results;
    results.reserve(keys.size());
    std::lock_guard<std::mutex> lock(pinned->mutex);
    for (const auto& key : keys) results.push_back(read(*pinned->reader, key));
    return results;
  }

  // The transaction, kept by the caller for its read: a close() on another
  // thread meanwhile only drops the snapshot's own reference.
  std::shared_ptr<PinnedRead> held() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!pinned_) throw Error(codes::snapshot_not_open, "Snapshot is not open");
    return pinned_;
  }

  std::mutex mutex_;
  std::shared_ptr<PinnedRead> pinned_;
};

inline std::shared_ptr<Snapshot> SqliteDatabase::do_snapshot() {
  auto pinned = std::make_shared<PinnedRead>();
  pinned->reader = readers_.acquire();
  pinned->reader->execute("BEGIN");
  // A deferred transaction takes its snapshot at its first read: read now.
  read_presence(*pinned->reader, "");
  return std::make_shared<SnapshotReads>(std::move(pinned));
}

MANY_LEVEL_NAMESPACE_END

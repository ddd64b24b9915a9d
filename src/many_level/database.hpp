// The storage contract: an abstract database over raw bytes with the
// semantics of Node's abstract-level. Memory, SQLite, a remote guest and a
// sublevel are all one of these, so one test suite proves them all.
//
// Concurrency: every public method is thread-safe and blocking. A new
// database has status "opening" and opens on first use (deferred open), or on
// an explicit open(); calls made while another thread opens it wait for that.
// close() stops new calls, waits for running ones, closes open iterators and
// then the store. No callback of the library runs with an internal lock held.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include "batch_operation.hpp"
#include "change_feed.hpp"
#include "encoding.hpp"
#include "error.hpp"
#include "iterator.hpp"
#include "local_watch.hpp"
#include "options.hpp"
#include "snapshot.hpp"
#include "watch.hpp"
#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

enum class Status { opening, open, closing, closed };

inline const char* to_string(Status status) {
  switch (status) {
    case Status::opening: return "opening";
    case Status::open: return "open";
    case Status::closing: return "closing";
    case Status::closed: return "closed";
  }
  return "unknown";
}

// What a database can do: abstract-level's `supports` manifest.
struct Supports {
  bool permanence = false;  // data survives a restart
  bool snapshots = false;   // iterators see the data as of their creation
  bool seek = true;
  bool clear = true;
  bool get_many = true;
  bool has = true;  // has / has_many, from abstract-level 2
  bool deferred_open = true;
  bool create_if_missing = false;
  bool error_if_exists = false;
  bool status = true;
  bool explicit_snapshots = false;  // snapshot(), as abstract-level 2/3
  bool watch = false;               // watch(): a change feed (this project's)
};

// What a database stores its data in, for a host's statistics.
struct StorageInfo {
  std::string kind;  // "memory", "sqlite", "guest", ...
  std::string path;  // its file, if it has one
  uint64_t bytes = 0;  // its size on disk (or in memory), as far as known
};

struct OpenOptions {
  bool create_if_missing = true;
  bool error_if_exists = false;
  // Never reopen a closed database: wait for an open in progress, or do the
  // deferred open of a new one, as abstract-level's passive open does.
  bool passive = false;
};

class ChainedBatch;
class Sublevel;
struct SublevelOptions;

namespace detail {

// What Database::watch() puts between a store's watch (local, a guest's, a
// sublevel's) and the user's callback: it decodes commits, and it lets the
// database end any kind of watch when it closes (with LEVEL_DATABASE_NOT_OPEN)
// while keeping watch.hpp's promises: one error at most, and then nothing.
class WatchGate {
 public:
  using Decode = std::function<Commit(const Commit&)>;  // empty: raw bytes go as they are

  WatchGate(WatchCallback callback, Decode decode) : callback_(std::move(callback)), decode_(std::move(decode)) {}

  // The store's watch, once do_watch() returned it.
  void attach(std::unique_ptr<Watch> inner) {
    std::lock_guard<std::mutex> lock(mutex_);
    inner_ = std::move(inner);
  }

  // A call of the store's watch (which never overlaps itself).
  void deliver(std::optional<Error> error, const Commit& commit) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (over_) return;
      calling_.push_back(std::this_thread::get_id());
    }
    struct Leave {
      WatchGate& gate;
      ~Leave() { gate.leave(); }
    } leave{*this};
    if (error || !decode_) return pass(std::move(error), commit);
    std::optional<Commit> decoded;
    try {
      decoded = decode_(commit);
    } catch (const Error& e) {
      error = e;
    }
    if (decoded) return pass(std::nullopt, *decoded);
    // Undecodable: the watch ends with that error, as any other would.
    pass(std::move(error), commit);
    if (auto* inner = inner_watch()) inner->close();
  }

  // Ends the watch: delivers `error` (if it has not ended already), closes the
  // store's watch, and returns with no call running on another thread.
  void end(std::optional<Error> error) {
    Watch* inner;
    bool was_over;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      was_over = over_;
      over_ = true;
      const auto self = std::this_thread::get_id();
      left_.wait(lock, [&] {
        return std::all_of(calling_.begin(), calling_.end(), [&](std::thread::id id) { return id == self; });
      });
      inner = inner_.get();
    }
    if (inner) inner->close();
    if (error && !was_over) call(std::move(error), Commit{inner ? inner->seq() : 0, {}});
  }

  uint64_t seq() {
    auto* inner = inner_watch();
    return inner ? inner->seq() : 0;
  }

 private:
  // Passes a call on; an error is the last one.
  void pass(std::optional<Error> error, const Commit& commit) {
    if (error) {
      std::lock_guard<std::mutex> lock(mutex_);
      over_ = true;
    }
    call(std::move(error), commit);
  }

  void call(std::optional<Error> error, const Commit& commit) {
    try {
      callback_(std::move(error), commit);
    } catch (...) {
      // Dropped, as local_watch.hpp explains: the caller is some writer.
    }
  }

  Watch* inner_watch() {
    std::lock_guard<std::mutex> lock(mutex_);
    return inner_.get();
  }

  void leave() {
    std::lock_guard<std::mutex> lock(mutex_);
    calling_.erase(std::find(calling_.begin(), calling_.end(), std::this_thread::get_id()));
    left_.notify_all();
  }

  const WatchCallback callback_;
  const Decode decode_;
  std::mutex mutex_;
  std::condition_variable left_;
  bool over_ = false;                     // ended: nothing more is passed on
  std::vector<std::thread::id> calling_;  // threads inside deliver()
  std::unique_ptr<Watch> inner_;
};

// The Watch that Database::watch() returns.
class GatedWatch final : public Watch {
 public:
  explicit GatedWatch(std::shared_ptr<WatchGate> gate) : gate_(std::move(gate)) {}
  ~GatedWatch() override { close(); }
  void close() override { gate_->end(std::nullopt); }
  uint64_t seq() const override { return gate_->seq(); }

 private:
  std::shared_ptr<WatchGate> gate_;
};

}  // namespace detail

class Database {
 public:
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  // Subclasses call close() in their own destructor: by the time this one
  // runs, their do_close() can no longer be reached.
  virtual ~Database() = default;

  // ---- lifecycle -------------------------------------------------------
  void open(const OpenOptions& options = {}) {
    std::unique_lock<std::mutex> lock(mutex_);
    wait_while_opening(lock);
    while (status_ == Status::closing) changed_.wait(lock);
    if (status_ == Status::open) return;
    if (options.passive) {
      // A new database is as good as opening (abstract-level starts its
      // deferred open at once): do what its first operation would.
      if (status_ != Status::opening) throw Error(codes::database_not_open, "Database is not open");
      return open_locked(lock, OpenOptions{});
    }
    open_locked(lock, options);
  }

  void close() {
    std::unique_lock<std::mutex> lock(mutex_);
    wait_while_opening(lock);
    if (status_ == Status::closing) {
      changed_.wait(lock, [&] { return status_ == Status::closed; });
      return;
    }
    if (status_ != Status::open) {
      status_ = Status::closed;
      changed_.notify_all();
      return;
    }
    status_ = Status::closing;
    lock.unlock();
    on_closing();
    lock.lock();
    changed_.wait(lock, [&] { return running_ == 0; });
    auto snapshots = std::move(snapshots_);
    auto watches = std::move(watches_);
    lock.unlock();
    iterators_->close_all();
    for (auto& weak : snapshots) {
      if (auto snapshot = weak.lock()) snapshot->close();
    }
    for (auto& weak : watches) {
      if (auto gate = weak.lock()) gate->end(Error(codes::database_not_open, "Database closed"));
    }
    std::string failure;
    try {
      do_close();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    lock.lock();
    status_ = Status::closed;
    changed_.notify_all();
    if (!failure.empty()) throw Error(codes::io_error, "close failed: " + failure);
  }

  Status status() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return status_;
  }

  const Supports& supports() const { return supports_; }

  // ---- reads -----------------------------------------------------------
  // The value of `key`; a missing key throws LEVEL_NOT_FOUND (abstract-level 1).
  std::string get(std::string_view key, const ReadOptions& options = {}) {
    auto value = try_get(key, options);
    if (!value) throw Error(codes::not_found, "Key not found in database");
    return std::move(*value);
  }

  // The value of `key`, or nullopt when it is missing.
  std::optional<std::string> try_get(std::string_view key, const ReadOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    Operation operation(*this);
    auto value = options.snapshot ? do_get_at(*options.snapshot, codecs.key_bytes(key))
                                  : do_get(codecs.key_bytes(key));
    if (value) *value = codecs.value_text(std::move(*value));
    return value;
  }

  std::vector<std::optional<std::string>> get_many(const std::vector<std::string>& keys,
                                                   const ReadOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    auto read = [&](const std::vector<std::string>& raw) {
      return options.snapshot ? do_get_many_at(*options.snapshot, raw) : do_get_many(raw);
    };
    auto values = codecs.key_identity() ? run([&] { return read(keys); })
                                        : run([&] { return read(codecs.keys_bytes(keys)); });
    for (auto& value : values) {
      if (value) *value = codecs.value_text(std::move(*value));
    }
    return values;
  }

  bool has(std::string_view key, const ReadOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    Operation operation(*this);
    if (options.snapshot) return do_has_many_at(*options.snapshot, {codecs.key_bytes(key)}).front();
    return do_has(codecs.key_bytes(key));
  }

  std::vector<bool> has_many(const std::vector<std::string>& keys, const ReadOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    auto read = [&](const std::vector<std::string>& raw) {
      return options.snapshot ? do_has_many_at(*options.snapshot, raw) : do_has_many(raw);
    };
    if (codecs.key_identity()) return run([&] { return read(keys); });
    return run([&] { return read(codecs.keys_bytes(keys)); });
  }

  // ---- writes ----------------------------------------------------------
  void put(std::string_view key, std::string_view value, const WriteOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    if (codecs.identity()) return run([&] { do_put(key, value); });
    std::string key_bytes = codecs.key_bytes(key);
    std::string value_bytes = codecs.value_bytes(value);
    run([&] { do_put(key_bytes, value_bytes); });
  }

  void del(std::string_view key, const WriteOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    Operation operation(*this);
    do_del(codecs.key_bytes(key));
  }

  // Applies every operation atomically, in order.
  void batch(const std::vector<BatchOperation>& operations, const WriteOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    if (codecs.identity()) return run([&] { do_batch(operations); });
    std::vector<BatchOperation> encoded;
    encoded.reserve(operations.size());
    for (const auto& op : operations) {
      encoded.push_back({op.type, codecs.key_bytes(op.key),
                         op.type == BatchOperation::Type::put ? codecs.value_bytes(op.value) : std::string()});
    }
    run([&] { do_batch(encoded); });
  }

  // A chained batch: put/del/clear, then write() (see chained_batch.hpp).
  inline ChainedBatch batch();

  // Deletes every key in the range (all keys by default), honouring limit and reverse.
  void clear(const ClearOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, {});
    RangeOptions range = codecs.range_bytes(options);
    run([&] { do_clear(range); });
  }

  // ---- iteration -------------------------------------------------------
  std::unique_ptr<Iterator> iterator(const IteratorOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    IteratorOptions raw = options;
    static_cast<RangeOptions&>(raw) = codecs.range_bytes(options);
    Operation operation(*this);
    auto iterator = options.snapshot ? do_iterator_at(*options.snapshot, raw, codecs.key, codecs.value)
                                     : do_iterator(raw, codecs.key, codecs.value);
    iterator->attach(iterators_);
    return iterator;
  }

  KeyIterator keys(IteratorOptions options = {}) {
    options.keys = true;
    options.values = false;
    return KeyIterator(iterator(options));
  }

  ValueIterator values(IteratorOptions options = {}) {
    options.keys = false;
    options.values = true;
    return ValueIterator(iterator(options));
  }

  // ---- snapshots -------------------------------------------------------
  // An explicit snapshot: pass it in ReadOptions or IteratorOptions to read
  // the database as it is now. Close it when done (the database's close()
  // does too): it holds resources, such as a SQLite read transaction that
  // keeps the WAL from being checkpointed. LEVEL_NOT_SUPPORTED unless
  // supports().explicit_snapshots.
  std::shared_ptr<Snapshot> snapshot() {
    Operation operation(*this);
    auto snapshot = do_snapshot();
    if (!snapshot->owner_) snapshot->owner_ = this;  // a sublevel hands out its root's
    std::lock_guard<std::mutex> lock(mutex_);
    snapshots_.erase(std::remove_if(snapshots_.begin(), snapshots_.end(),
                                    [](const std::weak_ptr<Snapshot>& s) { return s.expired(); }),
                     snapshots_.end());
    snapshots_.push_back(snapshot);
    return snapshot;
  }

  // ---- watching --------------------------------------------------------
  // Calls `callback` with every commit that touches the range, from now on
  // (or from options.since), until the returned Watch is closed or
  // destroyed. See watch.hpp for the callback's contract; where it runs
  // depends on the database (a local store: a committing thread, see
  // local_watch.hpp; a guest: the stream's thread). Closing the database
  // ends its watches with LEVEL_DATABASE_NOT_OPEN; do not close it from a
  // watch callback (the write that runs the callback is still in progress).
  // LEVEL_NOT_SUPPORTED unless supports().watch.
  std::unique_ptr<Watch> watch(const WatchOptions& options, WatchCallback callback) {
    if (options.limit >= 0 || options.reverse) {
      throw Error(codes::invalid_argument, "limit and reverse do not apply to a watch");
    }
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    WatchOptions raw = options;
    static_cast<RangeOptions&>(raw) = codecs.range_bytes(options);
    raw.key_encoding = "buffer";
    raw.value_encoding = "buffer";
    detail::WatchGate::Decode decode;
    if (!codecs.identity()) {
      decode = [codecs](const Commit& commit) {
        Commit decoded;
        decoded.seq = commit.seq;
        decoded.operations.reserve(commit.operations.size());
        for (const auto& op : commit.operations) {
          decoded.operations.push_back({op.type, codecs.key_text(op.key),
                                        op.type == BatchOperation::Type::put ? codecs.value_text(op.value) : ""});
        }
        return decoded;
      };
    }
    Operation operation(*this);
    auto gate = std::make_shared<detail::WatchGate>(std::move(callback), std::move(decode));
    std::weak_ptr<detail::WatchGate> weak = gate;
    gate->attach(do_watch(raw, [weak](std::optional<Error> error, const Commit& commit) {
      if (auto gate = weak.lock()) gate->deliver(std::move(error), commit);
    }));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      watches_.erase(std::remove_if(watches_.begin(), watches_.end(),
                                    [](const std::weak_ptr<detail::WatchGate>& w) { return w.expired(); }),
                     watches_.end());
      watches_.push_back(gate);
    }
    return std::make_unique<detail::GatedWatch>(std::move(gate));
  }

  // Where this database's commits are published, if anywhere: what a host
  // serves watches from. A sublevel answers with its parent's feed.
  virtual std::optional<ChangeSource> change_source() {
    if (!feed_) return std::nullopt;
    return ChangeSource{feed_, ""};
  }

  // What the data is kept in, for statistics.
  virtual StorageInfo storage_info() const { return {}; }

  // ---- sublevels -------------------------------------------------------
  // A prefixed view of this database (see sublevel.hpp). It must not outlive it.
  inline std::unique_ptr<Sublevel> sublevel(std::string_view name);
  inline std::unique_ptr<Sublevel> sublevel(std::string_view name, const SublevelOptions& options);

  // ---- introspection ---------------------------------------------------
  size_t open_iterator_count() const { return iterators_->size(); }
  const std::string& default_key_encoding() const { return defaults_.key_encoding; }
  const std::string& default_value_encoding() const { return defaults_.value_encoding; }

 protected:
  explicit Database(Supports supports, DatabaseOptions defaults = {})
      : supports_(supports),
        defaults_(std::move(defaults)),
        default_key_(find_encoding(defaults_.key_encoding)),
        default_value_(find_encoding(defaults_.value_encoding)) {}

  // Stores implement these over raw bytes. They may be called from several
  // threads at once, and never before do_open() or after do_close().
  virtual void do_open(const OpenOptions&) {}
  virtual void do_close() {}
  // Runs when close() begins, before it waits for running calls: a store
  // whose calls can block indefinitely (a guest) aborts them here.
  virtual void on_closing() {}
  virtual std::optional<std::string> do_get(std::string_view key) = 0;
  virtual std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) {
    std::vector<std::optional<std::string>> values;
    values.reserve(keys.size());
    for (const auto& key : keys) values.push_back(do_get(key));
    return values;
  }
  virtual bool do_has(std::string_view key) { return do_get(key).has_value(); }
  virtual std::vector<bool> do_has_many(const std::vector<std::string>& keys) {
    std::vector<bool> found;
    found.reserve(keys.size());
    for (const auto& key : keys) found.push_back(do_has(key));
    return found;
  }
  virtual void do_put(std::string_view key, std::string_view value) = 0;
  virtual void do_del(std::string_view key) = 0;
  virtual void do_batch(const std::vector<BatchOperation>& operations) = 0;
  virtual void do_clear(const RangeOptions& range) = 0;
  // Bounds in `options` are raw bytes. The limit is enforced by Iterator; a
  // store may use it as a hint. The encodings go to the Iterator constructor.
  virtual std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                                std::shared_ptr<const Encoding> key_encoding,
                                                std::shared_ptr<const Encoding> value_encoding) = 0;

  // Snapshots: a store that sets supports.explicit_snapshots makes them here.
  virtual std::shared_ptr<Snapshot> do_snapshot() {
    throw Error(codes::not_supported, "This database has no explicit snapshots");
  }
  // Reads at a snapshot. By default the snapshot must be this database's own
  // and reads itself; a sublevel overrides these to pass its root's on.
  virtual std::optional<std::string> do_get_at(Snapshot& snapshot, std::string_view key) {
    return own(snapshot).do_get(key);
  }
  virtual std::vector<std::optional<std::string>> do_get_many_at(Snapshot& snapshot,
                                                                 const std::vector<std::string>& keys) {
    return own(snapshot).do_get_many(keys);
  }
  virtual std::vector<bool> do_has_many_at(Snapshot& snapshot, const std::vector<std::string>& keys) {
    return own(snapshot).do_has_many(keys);
  }
  virtual std::unique_ptr<Iterator> do_iterator_at(Snapshot& snapshot, const IteratorOptions& options,
                                                   std::shared_ptr<const Encoding> key_encoding,
                                                   std::shared_ptr<const Encoding> value_encoding) {
    return own(snapshot).do_iterator(options, std::move(key_encoding), std::move(value_encoding));
  }

  // Watching: bounds in `options` are raw bytes, and so are the commits the
  // callback is given (watch() decodes them). The default serves a store
  // that publishes to a feed (change_source()); others refuse.
  inline virtual std::unique_ptr<Watch> do_watch(const WatchOptions& options, WatchCallback callback);

  // A store that publishes its commits calls this in its constructor, then
  // feed()->publish_with(...) after each commit, in commit order.
  void enable_change_feed(ChangeHistoryOptions history = {}) {
    feed_ = std::make_shared<ChangeFeed>(history);
    supports_.watch = true;
  }
  const std::shared_ptr<ChangeFeed>& feed() const { return feed_; }

  // `snapshot` checked to be this database's and open.
  Snapshot& own(Snapshot& snapshot) const {
    if (snapshot.owner_ != this) {
      throw Error(codes::invalid_argument, "The snapshot belongs to another database");
    }
    if (!snapshot.is_open()) throw Error(codes::snapshot_not_open, "Snapshot is not open");
    return snapshot;
  }

  void set_supports(const Supports& supports) { supports_ = supports; }

  // The encodings of one call, with helpers that report encoding failures
  // under the codes abstract-level uses for them.
  struct Codecs {
    std::shared_ptr<const Encoding> key;
    std::shared_ptr<const Encoding> value;

    bool key_identity() const { return key->identity(); }
    bool identity() const { return key->identity() && value->identity(); }

    std::string key_bytes(std::string_view text) const {
      return convert(*key, text, codes::invalid_key, &Encoding::encode);
    }
    std::string value_bytes(std::string_view text) const {
      return convert(*value, text, codes::invalid_value, &Encoding::encode);
    }
    std::string key_text(std::string bytes) const {
      if (key->identity()) return bytes;
      return convert(*key, bytes, codes::decode_error, &Encoding::decode);
    }
    std::string value_text(std::string bytes) const {
      if (value->identity()) return bytes;
      return convert(*value, bytes, codes::decode_error, &Encoding::decode);
    }
    std::vector<std::string> keys_bytes(const std::vector<std::string>& texts) const {
      std::vector<std::string> out;
      out.reserve(texts.size());
      for (const auto& text : texts) out.push_back(key_bytes(text));
      return out;
    }
    RangeOptions range_bytes(const RangeOptions& options) const {
      RangeOptions range = options;
      if (key_identity()) return range;
      for (auto* bound : {&range.gt, &range.gte, &range.lt, &range.lte}) {
        if (*bound) *bound = key_bytes(**bound);
      }
      return range;
    }

   private:
    static std::string convert(const Encoding& encoding, std::string_view text, const char* code,
                               std::string (Encoding::*method)(std::string_view) const) {
      return detail::transcode(encoding, text, code, method);
    }
  };

  Codecs resolve(const std::string& key_name, const std::string& value_name) const {
    return {key_name.empty() ? default_key_ : find_encoding(key_name),
            value_name.empty() ? default_value_ : find_encoding(value_name)};
  }

  // Marks a call as running for its whole duration, so close() waits for it.
  class Operation {
   public:
    explicit Operation(Database& db) : db_(db) { db_.begin_operation(); }
    ~Operation() { db_.end_operation(); }
    Operation(const Operation&) = delete;
    Operation& operator=(const Operation&) = delete;

   private:
    Database& db_;
  };

  template <typename F>
  std::invoke_result_t<F> run(F&& body) {
    Operation operation(*this);
    return body();
  }

 private:
  friend class ChainedBatch;

  void begin_operation() {
    std::unique_lock<std::mutex> lock(mutex_);
    wait_while_opening(lock);
    if (status_ == Status::opening) open_locked(lock, OpenOptions{});
    if (status_ != Status::open) {
      throw Error(codes::database_not_open,
                  open_failure_.empty() ? std::string("Database is not open")
                                        : "Database failed to open: " + open_failure_);
    }
    ++running_;
  }

  void end_operation() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--running_ == 0) changed_.notify_all();
  }

  void wait_while_opening(std::unique_lock<std::mutex>& lock) {
    changed_.wait(lock, [&] { return !opening_now_; });
  }

  // Opens with the lock released during do_open(), so other callers can wait.
  void open_locked(std::unique_lock<std::mutex>& lock, const OpenOptions& options) {
    opening_now_ = true;
    status_ = Status::opening;
    lock.unlock();
    std::string failure;
    std::string code;
    try {
      do_open(options);
    } catch (const Error& e) {
      failure = e.message();
      code = e.code();
    } catch (const std::exception& e) {
      failure = e.what();
      code = codes::io_error;
    }
    lock.lock();
    opening_now_ = false;
    status_ = failure.empty() ? Status::open : Status::closed;
    open_failure_ = failure;
    changed_.notify_all();
    if (!failure.empty()) throw Error(code, failure);
  }

  Supports supports_;
  DatabaseOptions defaults_;
  std::shared_ptr<const Encoding> default_key_;
  std::shared_ptr<const Encoding> default_value_;
  std::shared_ptr<detail::IteratorRegistry> iterators_ = std::make_shared<detail::IteratorRegistry>();
  std::shared_ptr<ChangeFeed> feed_;                // set by stores that publish commits
  std::vector<std::weak_ptr<Snapshot>> snapshots_;  // closed by close(); guarded by mutex_
  std::vector<std::weak_ptr<detail::WatchGate>> watches_;  // ended by close(); guarded by mutex_

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  Status status_ = Status::opening;
  bool opening_now_ = false;
  size_t running_ = 0;
  std::string open_failure_;
};

// A store with a change feed is watched in process (local_watch.hpp).
inline std::unique_ptr<Watch> Database::do_watch(const WatchOptions& options, WatchCallback callback) {
  auto source = change_source();
  if (!source) throw Error(codes::not_supported, "This database has no change feed");
  return LocalWatch::start(*source, options, options.since, std::move(callback));
}

MANY_LEVEL_NAMESPACE_END

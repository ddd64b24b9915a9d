// A guest: a Database whose data lives behind a stream, on a host. The C++
// counterpart of many-level's ManyLevelGuest, wire-compatible with it.
//
// Concurrency: the Database methods block until the host answers; the
// *_async twins return at once (up to thousands may be in flight), either a
// std::future or, given a callback as their last argument, nothing: the
// callback gets the error or the result. Everything is thread-safe. Replies
// are processed on the thread that drives the stream's transport; futures
// are fulfilled and callbacks run there.
//
// Usage: construct, attach a stream with connect() (a transport pumps the
// returned Session), and use it like any database. Requests made before a
// stream is attached wait for it.
//
// The extension (docs/PROTOCOL.md): against a C++ host, has() and has_many()
// move no values, snapshot() makes a snapshot on the host, watch() follows
// the host's change feed and host_stats() reports on the host. The guest
// says Hello first on every stream and learns from the host's first answer
// whether it has the extension (host_extension()); against the Node
// reference, has() reads values instead and the rest fails with
// LEVEL_NOT_SUPPORTED. GuestOptions::extension = false sends nothing of it.
#pragma once

#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "../database.hpp"
#include "../error.hpp"
#include "../host_stats.hpp"
#include "../prefixed_iterator.hpp"
#include "../version.hpp"
#include "../protocol/messages.hpp"
#include "await_reply.hpp"
#include "guest_core.hpp"
#include "guest_iterator.hpp"
#include "guest_options.hpp"
#include "guest_snapshot.hpp"
#include "guest_watch.hpp"
#include "negotiation.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// What a callback-style async call reports: the error (none on success) and,
// but for writes, the result. It runs on the transport's thread, so it must
// not block; it may make new calls (a pipelining caller starts the next
// request from the completion of the last, as Node code does, and never
// waits for a thread to wake).
template <typename T>
struct GuestCallbackOf {
  using type = std::function<void(std::optional<Error> error, T result)>;
};
template <>
struct GuestCallbackOf<void> {
  using type = std::function<void(std::optional<Error> error)>;
};
template <typename T>
using GuestCallback = typename GuestCallbackOf<T>::type;

class Guest final : public Database {
 public:
  explicit Guest(GuestOptions options = {})
      : Database(manifest(options), options.encodings), core_(std::make_shared<GuestCore>(options)) {}

  ~Guest() override {
    try {
      close();
    } catch (...) {
    }
  }

  // Attaches a stream: hand the session to a transport. Throws if one is
  // already attached (only one rpc stream can be active).
  std::shared_ptr<Session> connect() { return core_->connect(); }
  // many-level's name for connect().
  std::shared_ptr<Session> create_rpc_stream() { return connect(); }

  // Drops the attached stream on purpose (with retry, the guest resumes on
  // the next one). False if none is attached.
  bool drop_connection() { return core_->drop_connection("dropped on request"); }

  // No request or iterator is waiting on the host.
  bool is_flushed() const { return core_->is_flushed(); }
  // Called (on the thread that finished the last one) whenever that becomes true.
  void on_flush(std::function<void()> listener) { core_->on_flush(std::move(listener)); }

  // Sends every later call to `db` instead of the host (many-level's forward()):
  // a process that is itself the host can use one guest API for both.
  void forward(Database& db) { forward_ = &db; }

  GuestStats stats() const { return core_->stats(); }

  // Whether the host of the current stream (or the last one) has the
  // extension: unknown until it answers anything, always unavailable with
  // GuestOptions::extension off.
  HostExtension host_extension() const { return core_->host_extension(); }
  // What the host offered ("has", "snapshots", "watch", "stats"); empty
  // unless host_extension() is available.
  std::vector<std::string> host_features() const { return core_->host_features(); }

  // What a host that speaks the extension grants this guest on this stream:
  // "read-only" or "read-write"; "" before it answered, or from a Node host.
  std::string host_grant() const { return core_->host_grant(); }
  // Set when the host refused this guest on this stream (LEVEL_UNAUTHENTICATED:
  // a host that authenticates, and no token it accepts): every request fails
  // with it. A Node host never refuses; nullopt before the host answered.
  std::optional<Error> host_refusal() const { return core_->host_refusal(); }

  // The host's statistics (uptime, connections, its database). Fails with
  // LEVEL_NOT_SUPPORTED against a host without the extension (the Node one).
  HostStats host_stats() { return wait(host_stats_async()); }
  std::future<HostStats> host_stats_async() {
    return as_future<HostStats>([&](auto done) { host_stats_async(std::move(done)); });
  }
  void host_stats_async(GuestCallback<HostStats> done) {
    RequestScope scope;
    scope.feature = features::stats;
    call<HostStats>(
        protocol::HostStatsRequest{}, "",
        [](Reply& reply) {
          if (!reply.host_stats) throw Error(codes::decode_error, "the host's statistics reply holds none");
          return std::move(*reply.host_stats);
        },
        std::move(done), std::move(scope));
  }

  // Sees every frame's payload in and out, for frame logs. It runs on the
  // thread that sends or receives, possibly with the guest's lock held: it
  // must only record the frame, never call into the guest.
  void set_frame_observer(GuestCore::FrameObserver observer) { core_->set_frame_observer(std::move(observer)); }

  // ---- async twins -----------------------------------------------------
  // Each comes as a future and as a callback (last argument, after the
  // options): see GuestCallback.
  using Value = std::optional<std::string>;
  using Values = std::vector<std::optional<std::string>>;

  std::future<Value> get_async(std::string_view key, const ReadOptions& options = {}) {
    return as_future<Value>([&](auto done) { get_async(key, options, std::move(done)); });
  }
  void get_async(std::string_view key, const ReadOptions& options, GuestCallback<Value> done) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    RequestScope scope = read_scope(options.snapshot);
    protocol::GetRequest request{0, codecs.key_bytes(key), snapshot_id(scope)};
    call<Value>(std::move(request), key,
                [codecs](Reply& reply) -> Value {
                  if (!reply.value) return std::nullopt;
                  return codecs.value_text(std::move(*reply.value));
                },
                std::move(done), std::move(scope));
  }

  std::future<Values> get_many_async(const std::vector<std::string>& keys, const ReadOptions& options = {}) {
    return as_future<Values>([&](auto done) { get_many_async(keys, options, std::move(done)); });
  }
  void get_many_async(const std::vector<std::string>& keys, const ReadOptions& options, GuestCallback<Values> done) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    RequestScope scope = read_scope(options.snapshot);
    protocol::GetManyRequest request{0, codecs.keys_bytes(keys), snapshot_id(scope)};
    call<Values>(
        std::move(request), keys.empty() ? std::string() : keys.front(),
        [codecs](Reply& reply) {
          for (auto& value : reply.values) {
            if (value) *value = codecs.value_text(std::move(*value));
          }
          return std::move(reply.values);
        },
        std::move(done), std::move(scope));
  }

  std::future<void> put_async(std::string_view key, std::string_view value, const WriteOptions& options = {}) {
    return as_future<void>([&](auto done) { put_async(key, value, options, std::move(done)); });
  }
  void put_async(std::string_view key, std::string_view value, const WriteOptions& options,
                 GuestCallback<void> done) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    call(protocol::PutRequest{0, codecs.key_bytes(key), codecs.value_bytes(value)}, key, std::move(done));
  }

  std::future<void> del_async(std::string_view key, const WriteOptions& options = {}) {
    return as_future<void>([&](auto done) { del_async(key, options, std::move(done)); });
  }
  void del_async(std::string_view key, const WriteOptions& options, GuestCallback<void> done) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    call(protocol::DelRequest{0, codecs.key_bytes(key)}, key, std::move(done));
  }

  std::future<void> batch_async(const std::vector<BatchOperation>& operations, const WriteOptions& options = {}) {
    return as_future<void>([&](auto done) { batch_async(operations, options, std::move(done)); });
  }
  void batch_async(const std::vector<BatchOperation>& operations, const WriteOptions& options,
                   GuestCallback<void> done) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    // The frame is encoded from views of the caller's bytes (or of their
    // encoded forms, kept here until then): each key and value is copied once.
    const bool keys_as_is = codecs.key->identity();
    const bool values_as_is = codecs.value->identity();
    std::vector<std::string> encoded;
    encoded.reserve((keys_as_is ? 0 : operations.size()) + (values_as_is ? 0 : operations.size()));
    protocol::BatchRequestView request;
    request.ops.reserve(operations.size());
    for (const auto& op : operations) {
      protocol::BatchOpView wire;
      wire.key = keys_as_is ? std::string_view(op.key) : encoded.emplace_back(codecs.key_bytes(op.key));
      if (op.type == BatchOperation::Type::put) {
        wire.type = protocol::BatchOp::Type::put;
        wire.value = values_as_is ? std::string_view(op.value) : encoded.emplace_back(codecs.value_bytes(op.value));
      } else {
        wire.type = protocol::BatchOp::Type::del;
      }
      request.ops.push_back(wire);
    }
    call(std::move(request), operations.empty() ? std::string() : operations.front().key, std::move(done));
  }

  std::future<void> clear_async(const ClearOptions& options = {}) {
    return as_future<void>([&](auto done) { clear_async(options, std::move(done)); });
  }
  void clear_async(const ClearOptions& options, GuestCallback<void> done) {
    Codecs codecs = resolve(options.key_encoding, {});
    call(protocol::ClearRequest{0, wire_clear_options(codecs.range_bytes(options))}, "", std::move(done));
  }

 protected:
  void do_open(const OpenOptions&) override {
    if (closed_once_) {
      throw Error(codes::not_supported, "Cannot reopen many-level database after close()");
    }
  }

  void on_closing() override {
    closed_once_ = true;
    core_->shutdown();
  }

  std::optional<std::string> do_get(std::string_view key) override {
    if (forward_) return forward_->try_get(key, raw_read);
    return wait(get_async(key, raw_read));
  }

  std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) override {
    if (forward_) return forward_->get_many(keys, raw_read);
    return wait(get_many_async(keys, raw_read));
  }

  bool do_has(std::string_view key) override { return do_has_many({std::string(key)}).front(); }

  std::vector<bool> do_has_many(const std::vector<std::string>& keys) override {
    if (forward_) return forward_->has_many(keys, raw_read);
    return wait(has_many_remote(keys, nullptr));
  }

  void do_put(std::string_view key, std::string_view value) override {
    if (forward_) return forward_->put(key, value, raw_write);
    wait(put_async(key, value, raw_write));
  }

  void do_del(std::string_view key) override {
    if (forward_) return forward_->del(key, raw_write);
    wait(del_async(key, raw_write));
  }

  void do_batch(const std::vector<BatchOperation>& operations) override {
    if (forward_) return forward_->batch(operations, raw_write);
    wait(batch_async(operations, raw_write));
  }

  void do_clear(const RangeOptions& range) override {
    ClearOptions options;
    static_cast<RangeOptions&>(options) = range;
    options.key_encoding = "buffer";
    if (forward_) return forward_->clear(options);
    wait(clear_async(options));
  }

  std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                        std::shared_ptr<const Encoding> key_encoding,
                                        std::shared_ptr<const Encoding> value_encoding) override {
    if (forward_) return forwarded_iterator(options, nullptr, std::move(key_encoding), std::move(value_encoding));
    return remote_iterator(options, nullptr, std::move(key_encoding), std::move(value_encoding));
  }

  // ---- the extension: snapshots and watches ---------------------------------

  // A snapshot on the host: blocks until the host made it. It is lost with
  // the stream (reads at it then fail with LEVEL_SNAPSHOT_NOT_OPEN).
  std::shared_ptr<Snapshot> do_snapshot() override {
    if (forward_) return forward_->snapshot();
    RequestScope scope;
    scope.feature = features::snapshots;
    auto slot = wait(as_future<std::shared_ptr<SnapshotSlot>>([&](auto done) {
      call<std::shared_ptr<SnapshotSlot>>(protocol::SnapshotRequest{}, "", [](Reply& reply) { return reply.snapshot; },
                                          std::move(done), std::move(scope));
    }));
    return std::make_shared<GuestSnapshot>(*this, slot, [core = core_, slot] { core->release_snapshot(*slot); });
  }

  std::optional<std::string> do_get_at(Snapshot& snapshot, std::string_view key) override {
    if (forward_) return forward_->try_get(key, read_at(snapshot));
    return wait(get_async(key, read_at(snapshot)));
  }

  std::vector<std::optional<std::string>> do_get_many_at(Snapshot& snapshot,
                                                         const std::vector<std::string>& keys) override {
    if (forward_) return forward_->get_many(keys, read_at(snapshot));
    return wait(get_many_async(keys, read_at(snapshot)));
  }

  std::vector<bool> do_has_many_at(Snapshot& snapshot, const std::vector<std::string>& keys) override {
    if (forward_) return forward_->has_many(keys, read_at(snapshot));
    return wait(has_many_remote(keys, slot_of(snapshot)));
  }

  std::unique_ptr<Iterator> do_iterator_at(Snapshot& snapshot, const IteratorOptions& options,
                                           std::shared_ptr<const Encoding> key_encoding,
                                           std::shared_ptr<const Encoding> value_encoding) override {
    if (forward_) {
      return forwarded_iterator(options, borrowed(snapshot), std::move(key_encoding), std::move(value_encoding));
    }
    return remote_iterator(options, slot_of(snapshot), std::move(key_encoding), std::move(value_encoding));
  }

  // The host's change feed over the range: the callback runs on the stream's
  // thread. Returns once the host started it (a round trip), so that seq()
  // is where to resume from; the host's refusals (LEVEL_WATCH_TOO_OLD, ...)
  // go to the callback. With retry, a new stream resumes after the last
  // commit delivered.
  std::unique_ptr<Watch> do_watch(const WatchOptions& options, WatchCallback callback) override {
    if (forward_) return forward_->watch(options, std::move(callback));
    protocol::WatchRange range{options.gt, options.gte, options.lt, options.lte};
    auto channel = core_->open_watch(std::move(range), options.since, std::move(callback));
    return std::make_unique<GuestWatch>(channel, [core = core_, channel] { core->close_watch(*channel); });
  }

 private:
  static Supports manifest(const GuestOptions& options) {
    Supports supports;
    supports.permanence = true;
    supports.snapshots = !options.retry;  // a resumed iterator reads the data as it is then
    supports.create_if_missing = false;
    supports.error_if_exists = false;
    // Whether the host has them is known only once it answers: a host
    // without the extension refuses them then (LEVEL_NOT_SUPPORTED).
    supports.explicit_snapshots = options.extension;
    supports.watch = options.extension;
    return supports;
  }

  std::unique_ptr<Iterator> forwarded_iterator(const IteratorOptions& options, std::shared_ptr<Snapshot> snapshot,
                                               std::shared_ptr<const Encoding> key_encoding,
                                               std::shared_ptr<const Encoding> value_encoding) {
    auto inner_options = PrefixedIterator::inner_options(options, options);
    inner_options.snapshot = std::move(snapshot);
    return std::make_unique<PrefixedIterator>(forward_->iterator(inner_options), "", options,
                                              std::move(key_encoding), std::move(value_encoding));
  }

  std::unique_ptr<Iterator> remote_iterator(const IteratorOptions& options, std::shared_ptr<SnapshotSlot> at,
                                            std::shared_ptr<const Encoding> key_encoding,
                                            std::shared_ptr<const Encoding> value_encoding) {
    protocol::IteratorOptions wire;
    wire.keys = options.keys;
    wire.values = options.values;
    wire.gt = options.gt;
    wire.gte = options.gte;
    wire.lt = options.lt;
    wire.lte = options.lte;
    wire.limit = options.limit < 0 ? -1 : options.limit;
    wire.reverse = options.reverse;
    return std::make_unique<GuestIterator>(core_, core_->open_iterator(wire, std::move(at)), options,
                                           std::move(key_encoding), std::move(value_encoding));
  }

  // ---- snapshots: what names them on the wire -------------------------------

  // The host's slot of a snapshot this guest made.
  std::shared_ptr<SnapshotSlot> slot_of(Snapshot& snapshot) const {
    auto* mine = dynamic_cast<GuestSnapshot*>(&snapshot);
    if (!mine || !mine->made_by(*this)) {
      throw Error(codes::invalid_argument, "The snapshot belongs to another database");
    }
    if (!snapshot.is_open()) throw Error(codes::snapshot_not_open, "Snapshot is not open");
    return mine->slot();
  }

  RequestScope read_scope(const std::shared_ptr<Snapshot>& snapshot) const {
    RequestScope scope;
    if (snapshot) scope.at = slot_of(*snapshot);
    return scope;
  }

  static std::optional<uint32_t> snapshot_id(const RequestScope& scope) {
    return scope.at ? std::optional<uint32_t>(scope.at->id) : std::nullopt;
  }

  // A shared_ptr that does not own: reads take the snapshot by shared_ptr,
  // and their caller holds it for as long as they run.
  static std::shared_ptr<Snapshot> borrowed(Snapshot& snapshot) {
    return std::shared_ptr<Snapshot>(std::shared_ptr<Snapshot>(), &snapshot);
  }

  static ReadOptions read_at(Snapshot& snapshot) {
    ReadOptions options = raw_read;
    options.snapshot = borrowed(snapshot);
    return options;
  }

  // has / hasMany over raw keys, at `at` if given: no values travel when the
  // host has the extension; from a reference host, values tell presence.
  std::future<std::vector<bool>> has_many_remote(const std::vector<std::string>& keys,
                                                 std::shared_ptr<SnapshotSlot> at) {
    return as_future<std::vector<bool>>([&](auto done) {
      Operation operation(*this);
      const size_t count = keys.size();
      core_->request_has(keys, keys.empty() ? std::string() : keys.front(),
                         completion<std::vector<bool>>(
                             protocol::tag_name(protocol::HasRequest::tag),
                             [count](Reply& reply) {
                               std::vector<bool> found;
                               found.reserve(count);
                               if (reply.found) {
                                 for (char byte : *reply.found) found.push_back(byte != 0);
                               } else {
                                 for (const auto& value : reply.values) found.push_back(value.has_value());
                               }
                               if (found.size() != count) {
                                 throw Error(codes::decode_error, "the host answered for " +
                                                                      std::to_string(found.size()) + " keys of " +
                                                                      std::to_string(count));
                               }
                               return found;
                             },
                             std::move(done)),
                         std::move(at));
    });
  }

  static protocol::ClearOptions wire_clear_options(const RangeOptions& range) {
    protocol::ClearOptions wire;
    wire.gt = range.gt;
    wire.gte = range.gte;
    wire.lt = range.lt;
    wire.lte = range.lte;
    wire.limit = range.limit < 0 ? -1 : range.limit;
    wire.reverse = range.reverse;
    return wire;
  }

  // Sends a request; `done` gets the host's error, or what `convert` makes
  // of the reply (its decoding error, if it throws). The call counts as
  // running only while it is being sent (deferred open happens here);
  // close() aborts what is still waiting.
  template <typename T, typename M, typename Convert>
  void call(M message, std::string_view key, Convert convert, GuestCallback<T> done, RequestScope scope = {}) {
    Operation operation(*this);
    core_->request(std::move(message), std::string(key),
                   completion<T>(protocol::tag_name(M::tag), std::move(convert), std::move(done)), std::move(scope));
  }

  // What a request's reply becomes for `done`: the host's error, or what
  // `convert` makes of the reply (its decoding error, if it throws).
  template <typename T, typename Convert>
  static GuestCore::Completion completion(const char* operation_name, Convert convert, GuestCallback<T> done) {
    return [convert = std::move(convert), done = std::move(done), operation_name](Reply reply) mutable {
      std::optional<Error> error;
      if (reply.error) {
        error = Error(*reply.error,
                      reply.message.empty() ? std::string(operation_name) + " failed on the host" : reply.message);
      }
      if constexpr (std::is_void_v<T>) {
        done(std::move(error));
      } else {
        T result{};
        if (!error) {
          try {
            result = convert(reply);
          } catch (const Error& e) {
            error = e;
          } catch (const std::exception& e) {
            error = Error(codes::decode_error, e.what());
          }
        }
        done(std::move(error), std::move(result));
      }
    };
  }

  // A write: its reply carries nothing but the error.
  template <typename M>
  void call(M message, std::string_view key, GuestCallback<void> done) {
    call<void>(std::move(message), key, [](Reply&) {}, std::move(done));
  }

  // The future of a callback-style call made by `start(done)`.
  template <typename T, typename Start>
  static std::future<T> as_future(Start&& start) {
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    if constexpr (std::is_void_v<T>) {
      start(GuestCallback<void>([promise](std::optional<Error> error) {
        if (error) {
          promise->set_exception(std::make_exception_ptr(std::move(*error)));
        } else {
          promise->set_value();
        }
      }));
    } else {
      start(GuestCallback<T>([promise](std::optional<Error> error, T result) {
        if (error) {
          promise->set_exception(std::make_exception_ptr(std::move(*error)));
        } else {
          promise->set_value(std::move(result));
        }
      }));
    }
    return future;
  }

  // A missing key is not an error at this level: get() turns nullopt into
  // LEVEL_NOT_FOUND, as for every store.
  static std::optional<std::string> wait(std::future<std::optional<std::string>> future) {
    try {
      return detail::await_reply(future);
    } catch (const Error& e) {
      if (e.is(codes::not_found)) return std::nullopt;
      throw;
    }
  }

  template <typename T>
  static T wait(std::future<T> future) {
    return detail::await_reply(future);
  }


  std::shared_ptr<GuestCore> core_;
  Database* forward_ = nullptr;
  bool closed_once_ = false;
};

MANY_LEVEL_NAMESPACE_END

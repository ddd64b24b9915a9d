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
#include "../prefixed_iterator.hpp"
#include "../version.hpp"
#include "../protocol/messages.hpp"
#include "await_reply.hpp"
#include "guest_core.hpp"
#include "guest_iterator.hpp"
#include "guest_options.hpp"

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
      : Database(manifest(options.retry), options.encodings), core_(std::make_shared<GuestCore>(options)) {}

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
    call<Value>(protocol::GetRequest{0, codecs.key_bytes(key)}, key,
                [codecs](Reply& reply) -> Value {
                  if (!reply.value) return std::nullopt;
                  return codecs.value_text(std::move(*reply.value));
                },
                std::move(done));
  }

  std::future<Values> get_many_async(const std::vector<std::string>& keys, const ReadOptions& options = {}) {
    return as_future<Values>([&](auto done) { get_many_async(keys, options, std::move(done)); });
  }
  void get_many_async(const std::vector<std::string>& keys, const ReadOptions& options, GuestCallback<Values> done) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    call<Values>(
        protocol::GetManyRequest{0, codecs.keys_bytes(keys)}, keys.empty() ? std::string() : keys.front(),
        [codecs](Reply& reply) {
          for (auto& value : reply.values) {
            if (value) *value = codecs.value_text(std::move(*value));
          }
          return std::move(reply.values);
        },
        std::move(done));
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
    if (forward_) {
      auto inner = forward_->iterator(PrefixedIterator::inner_options(options, options));
      return std::make_unique<PrefixedIterator>(std::move(inner), "", options, std::move(key_encoding),
                                                std::move(value_encoding));
    }
    protocol::IteratorOptions wire;
    wire.keys = options.keys;
    wire.values = options.values;
    wire.gt = options.gt;
    wire.gte = options.gte;
    wire.lt = options.lt;
    wire.lte = options.lte;
    wire.limit = options.limit < 0 ? -1 : options.limit;
    wire.reverse = options.reverse;
    return std::make_unique<GuestIterator>(core_, core_->open_iterator(wire), options, std::move(key_encoding),
                                           std::move(value_encoding));
  }

 private:
  static Supports manifest(bool retry) {
    Supports supports;
    supports.permanence = true;
    supports.snapshots = !retry;  // a resumed iterator reads the data as it is then
    supports.create_if_missing = false;
    supports.error_if_exists = false;
    return supports;
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
  void call(M message, std::string_view key, Convert convert, GuestCallback<T> done) {
    Operation operation(*this);
    const char* operation_name = protocol::tag_name(M::tag);
    core_->request(std::move(message), std::string(key),
                   [convert = std::move(convert), done = std::move(done), operation_name](Reply reply) mutable {
                     std::optional<Error> error;
                     if (reply.error) {
                       error = Error(*reply.error, reply.message.empty()
                                                       ? std::string(operation_name) + " failed on the host"
                                                       : reply.message);
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
                   });
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

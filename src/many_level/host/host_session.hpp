// One guest's connection to a host, sans I/O: frames in through receive(),
// replies out through output(). Requests are answered on the host's worker
// pool, so no database call ever runs on the transport's thread.
//
// Order: requests of one connection reach the database in arrival order (a
// guest that pipelines a put and then a get reads its own write), but run
// off the I/O thread; consecutive writes are committed as one batch and
// consecutive gets read as one getMany, which is where a pipelining guest
// gets its speed. Iterators read on their own jobs, so a slow iterator does
// not hold up the requests behind it, and each connection has its own queue,
// so one guest's large clear does not hold up another guest.
//
// The extension (docs/PROTOCOL.md) begins when the guest says Hello, which is
// answered as it is decoded, before the next frame is acted on. Until then
// extension frames are ignored, as the Node reference would, so a Node guest
// sees nothing new. has and snapshots run in request order with the rest;
// watches are pumped from the database's change feed on the worker pool.
//
// Access (access.hpp) is decided at the stream's first frame: a Hello's
// token, or the listener's anonymous grant for a guest without one. A guest
// refused there gets LEVEL_UNAUTHENTICATED for every request and no data; a
// confined one works on a sublevel of the database, which no range, seek or
// clear can leave.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "../database.hpp"
#include "../error.hpp"
#include "../host_stats.hpp"
#include "../version.hpp"
#include "../protocol/codec.hpp"
#include "../protocol/framing.hpp"
#include "../protocol/messages.hpp"
#include "../transport/session.hpp"
#include "host_context.hpp"
#include "host_iterator.hpp"
#include "host_options.hpp"
#include "host_snapshots.hpp"
#include "host_watches.hpp"
#include "worker_pool.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// A snapshot of one remote iterator, for introspection.
struct HostIteratorInfo {
  uint32_t id = 0;
  uint32_t seq = 0;
  uint64_t consumed = 0;
  uint64_t sent = 0;
  unsigned unacknowledged_frames = 0;
  bool busy = false;
  bool ended = false;
  bool reverse = false;
  int64_t limit = -1;
};

struct HostSessionStats {
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t requests = 0;
  uint64_t malformed_frames = 0;
  size_t pending_requests = 0;
  size_t buffered_output = 0;
  bool extended = false;  // the guest said Hello
  std::vector<HostIteratorInfo> iterators;
  std::vector<HostWatchInfo> watches;
  std::vector<uint32_t> snapshots;  // the ids open
};

class HostSession final : public Session,
                          public HostConnection,
                          public std::enable_shared_from_this<HostSession> {
 public:
  // The database, options and pool must outlive the session's work; Host
  // guarantees that by ending its sessions before it goes. `context` is what
  // the host's sessions share (statistics); `identity` names this one in them.
  // `access` is the listener's (HostOptions::access unless the host was told otherwise).
  HostSession(Database& db, const HostOptions& options, WorkerPool& pool, std::shared_ptr<HostContext> context,
              HostConnectionIdentity identity, HostAccess access)
      : db_(&db), options_(options), pool_(pool), context_(std::move(context)), identity_(std::move(identity)),
        access_(std::move(access)), decoder_(options.max_frame_length), output_(options.output_high_water),
        snapshots_(options.max_snapshots) {}

  // A session outside any Host: its statistics list no connections.
  HostSession(Database& db, const HostOptions& options, WorkerPool& pool)
      : HostSession(db, options, pool, std::make_shared<HostContext>(db), {}, options.access) {}

  void receive(const char* data, size_t size) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (ended_ || !failure_.empty()) return;
      bytes_in_ += size;
    }
    try {
      decoder_.feed(data, size, [this](std::string_view payload) { on_payload(payload); });
    } catch (const Error& e) {
      fail(e.what());
    }
  }

  void end() override {
    std::vector<std::unique_ptr<Iterator>> idle;
    bool release_snapshots = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (ended_) return;
      ended_ = true;
      queue_.clear();
      for (auto& [id, iterator] : iterators_) {
        iterator->closed = true;
        if (!iterator->busy && iterator->iterator) idle.push_back(std::move(iterator->iterator));
      }
      iterators_.clear();
      if (watches_) watches_->end_all();
      // A drain in progress may be reading at a snapshot: it releases them
      // when it stops, so none is closed under a read.
      release_snapshots = !draining_;
    }
    output_.close();
    release(std::move(idle));
    if (release_snapshots) release(snapshots_.take_all());
  }

  OutputBuffer& output() override { return output_; }

  // Both are asked by the transport after every read, right when a worker
  // it just woke takes the lock: they read atomics instead.
  std::string failed() const override {
    if (!has_failed_.load()) return {};
    std::lock_guard<std::mutex> lock(mutex_);
    return failure_;
  }

  bool wants_input() override {
    return pending_.load() < options_.max_pending_requests && output_.room() > 0;
  }

  HostSessionStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    HostSessionStats stats;
    stats.frames_in = frames_in_;
    stats.frames_out = frames_out_;
    stats.bytes_in = bytes_in_;
    stats.bytes_out = bytes_out_;
    stats.requests = requests_;
    stats.malformed_frames = malformed_;
    stats.pending_requests = pending_;
    stats.buffered_output = output_.size();
    stats.extended = extended_;
    for (const auto& [id, it] : iterators_) {
      stats.iterators.push_back({it->id, it->seq, it->consumed, it->sent, it->pending_acks, it->busy,
                                 it->ended, it->options.reverse, it->limit});
    }
    if (watches_) stats.watches = watches_->info();
    stats.snapshots = snapshots_.ids();
    return stats;
  }

  // This connection as the host's statistics list it (HostStatsReply).
  std::optional<HostConnectionStats> connection_stats() const override {
    auto session = stats();
    std::lock_guard<std::mutex> lock(mutex_);
    if (ended_) return std::nullopt;
    HostConnectionStats out;
    out.id = identity_.id;
    out.address = identity_.address;
    out.since_ms = identity_.since_ms;
    out.requests = session.requests;
    out.bytes_in = session.bytes_in;
    out.bytes_out = session.bytes_out;
    out.frames_in = session.frames_in;
    out.frames_out = session.frames_out;
    out.iterators = static_cast<uint32_t>(session.iterators.size());
    out.watches = static_cast<uint32_t>(session.watches.size());
    out.snapshots = static_cast<uint32_t>(session.snapshots.size());
    out.pending = static_cast<uint32_t>(session.pending_requests);
    out.extended = session.extended;
    return out;
  }

  const HostConnectionIdentity& identity() const { return identity_; }

 private:
  // An iterator request waiting in the queue, with the slot reserved for it:
  // looking the slot up by id when it runs could find a later iterator that
  // reused the id after this one was closed.
  struct QueuedIterator {
    protocol::IteratorRequest request;
    std::shared_ptr<HostIterator> iterator;
  };

  // Requests that reach the database in arrival order.
  using Request = std::variant<protocol::GetRequest, protocol::PutRequest, protocol::DelRequest,
                               protocol::BatchRequest, protocol::ClearRequest, protocol::GetManyRequest,
                               QueuedIterator, protocol::HasRequest, protocol::SnapshotRequest,
                               protocol::SnapshotRelease>;

  // What this host offers in HelloReply.
  static constexpr const char* feature_has = "has";
  static constexpr const char* feature_stats = "stats";
  static constexpr const char* feature_snapshots = "snapshots";
  static constexpr const char* feature_watch = "watch";
  static constexpr uint32_t extension_version = 1;

  // ---- input -------------------------------------------------------------

  void on_payload(std::string_view payload) {
    protocol::GuestMessage message;
    auto status = protocol::decode_payload(payload, message);
    std::unique_lock<std::mutex> lock(mutex_);
    // Once failed, the rest of the chunk is not acted on either: the
    // connection is closing, whichever way its bytes were chunked.
    if (ended_ || !failure_.empty()) return;
    if (status == protocol::DecodeStatus::malformed) {
      if (++malformed_ >= options_.max_malformed_frames) {
        lock.unlock();
        fail("closing a connection that sent " + std::to_string(malformed_) + " malformed frames");
      }
      return;
    }
    if (status != protocol::DecodeStatus::ok) return;
    ++frames_in_;
    if (admission_ == Admission::waiting) {
      const auto* hello = std::get_if<protocol::Hello>(&message);
      admit(hello ? hello->token : std::nullopt, hello != nullptr);
    }
    bool start_drain = std::visit([&](auto& m) { return dispatch(lock, std::move(m)); }, message);
    if (start_drain) {
      // Submitted once the lock is released: a worker that wakes at once
      // (the other core is idle) would only block on it.
      lock.unlock();
      pool_.submit([self = shared_from_this()] { self->drain(); });
    }
  }

  // Acts on one message, lock held; true when it queued the first request
  // of a new drain, which the caller then submits.
  template <typename M>
  bool dispatch(std::unique_lock<std::mutex>& lock, M&& message) {
    using T = std::decay_t<M>;
    if constexpr (std::is_same_v<T, protocol::Hello>) {
      on_hello(message);
      return false;
    } else if (admission_ == Admission::refused) {
      return refuse(message);
    } else if constexpr (static_cast<unsigned>(T::tag) >= protocol::first_extension_tag) {
      if (!extended_) return false;  // as the reference does with a tag it does not know
      return dispatch_extension(std::forward<M>(message));
    } else if constexpr (std::is_same_v<T, protocol::IteratorAck>) {
      on_ack(message);
      return false;
    } else if constexpr (std::is_same_v<T, protocol::IteratorSeek>) {
      on_seek(message);
      return false;
    } else if constexpr (std::is_same_v<T, protocol::IteratorClose>) {
      on_close(lock, message.id);
      return false;
    } else {
      ++requests_;
      if constexpr (std::is_same_v<T, protocol::PutRequest> || std::is_same_v<T, protocol::DelRequest> ||
                    std::is_same_v<T, protocol::BatchRequest> || std::is_same_v<T, protocol::ClearRequest>) {
        if (read_only_) {
          send(protocol::Callback{message.id, std::string(codes::readonly), std::nullopt});
          return false;
        }
      }
      if constexpr (std::is_same_v<T, protocol::GetRequest> || std::is_same_v<T, protocol::GetManyRequest> ||
                    std::is_same_v<T, protocol::IteratorRequest>) {
        // The field belongs to the extension: a guest that did not say Hello
        // reads the database as it is, as the reference would.
        if (!extended_) message.snapshot.reset();
      }
      if constexpr (std::is_same_v<T, protocol::IteratorRequest>) {
        auto iterator = open_iterator_slot(message);
        if (!iterator) return false;
        return enqueue(QueuedIterator{std::forward<M>(message), std::move(iterator)});
      } else {
        return enqueue(std::forward<M>(message));
      }
    }
  }

  // An extension message on a stream that said Hello, lock held.
  template <typename M>
  bool dispatch_extension(M&& message) {
    using T = std::decay_t<M>;
    if constexpr (std::is_same_v<T, protocol::WatchRequest>) {
      ++requests_;
      watches().start(message);
      return false;
    } else if constexpr (std::is_same_v<T, protocol::WatchAck>) {
      if (watches_) watches_->acknowledge(message);
      return false;
    } else if constexpr (std::is_same_v<T, protocol::WatchClose>) {
      if (watches_) watches_->close(message.id);
      return false;
    } else if constexpr (std::is_same_v<T, protocol::HostStatsRequest>) {
      ++requests_;
      if (confined_) {
        // The statistics name the other connections and the database file.
        send(protocol::HostStatsReply{message.id, std::string(codes::access_denied), std::nullopt});
      } else {
        answer_host_stats(message.id);
      }
      return false;
    } else {
      // has, snapshot and snapshot release: in request order.
      if constexpr (!std::is_same_v<T, protocol::SnapshotRelease>) ++requests_;
      return enqueue(std::forward<M>(message));
    }
  }

  // Queues a request for the drain; true when the drain must be started.
  bool enqueue(Request request) {
    queue_.push_back(std::move(request));
    ++pending_;
    if (draining_) return false;
    draining_ = true;
    return true;
  }

  // ---- access (I/O thread, lock held) -----------------------------------------

  // Decides at the stream's first frame what this guest may do: with the
  // token of its Hello, or as a guest without one (said no Hello: a Node
  // guest, or a Hello without a token). A wrong token is refused, not let in
  // as anonymous: its user meant to authenticate and should hear it failed.
  void admit(const std::optional<std::string>& token, bool said_hello) {
    std::optional<Grant> grant;
    const bool has_token = token && !token->empty();
    if (access_.authenticates() && has_token) {
      grant = access_.tokens->grant_for(*token);
    } else {
      grant = access_.anonymous;
    }
    if (grant && !grant->prefix.empty()) {
      try {
        db_ = &context_->confined(grant->prefix);
        confined_ = true;
      } catch (const std::exception& e) {
        log("refusing a guest on " + identity_.address + ": its grant's sublevel: " + e.what());
        grant.reset();
      }
    }
    if (!grant) {
      admission_ = Admission::refused;
      log(std::string("refusing a guest") + (identity_.address.empty() ? "" : " on " + identity_.address) + ": " +
          (has_token ? "its token is not accepted"
                     : said_hello ? "it presented no token" : "it said no hello with a token (a Node guest?)"));
      return;
    }
    admission_ = Admission::admitted;
    read_only_ = options_.readonly || grant->read_only;
  }

  // A request of a refused guest: answered with LEVEL_UNAUTHENTICATED and no
  // data. Its replies are paced by the output buffer like any others.
  template <typename T>
  bool refuse(const T& message) {
    const std::string code = codes::unauthenticated;
    if constexpr (std::is_same_v<T, protocol::GetManyRequest>) {
      ++requests_;
      send(protocol::GetManyCallback{message.id, code, {}});
    } else if constexpr (std::is_same_v<T, protocol::IteratorRequest>) {
      ++requests_;
      send(protocol::IteratorError{message.id, message.seq, code});
    } else if constexpr (std::is_same_v<T, protocol::GetRequest> || std::is_same_v<T, protocol::PutRequest> ||
                         std::is_same_v<T, protocol::DelRequest> || std::is_same_v<T, protocol::BatchRequest> ||
                         std::is_same_v<T, protocol::ClearRequest>) {
      ++requests_;
      send(protocol::Callback{message.id, code, std::nullopt});
    }
    // Iterator acks, seeks and closes name nothing open; extension requests
    // are ignored as on a stream that did not say Hello.
    return false;
  }

  // ---- the extension: negotiation and statistics (I/O thread) ----------------

  // Answered here, as the frame is decoded, so the reply goes out before any
  // reply to a later frame: the guest tells a C++ host from the reference by
  // which comes first. A refused guest hears why, and nothing is extended.
  void on_hello(const protocol::Hello&) {
    protocol::HelloReply reply;
    reply.version = extension_version;
    if (admission_ == Admission::refused) {
      reply.error = codes::unauthenticated;
      send(reply);
      return;
    }
    extended_ = true;
    reply.grant = read_only_ ? "read-only" : "read-write";
    reply.confined = confined_;
    reply.features = {feature_has};
    if (!confined_) reply.features.push_back(feature_stats);
    if (db().supports().explicit_snapshots) reply.features.push_back(feature_snapshots);
    auto source = db().change_source();
    if (source) {
      reply.features.push_back(feature_watch);
      reply.seq = source->feed->last_seq();
    }
    send(reply);
  }

  // Answered at once, not in request order, but on a worker: the store's
  // size may take a file system or database call. Counted as pending until
  // then, so a guest that floods them is paused like any other.
  void answer_host_stats(uint32_t id) {
    ++pending_;
    pool_.submit([weak = weak_from_this(), id] {
      auto self = weak.lock();
      if (!self) return;
      protocol::HostStatsReply reply;
      reply.id = id;
      reply.stats = self->context_->stats();
      std::lock_guard<std::mutex> lock(self->mutex_);
      --self->pending_;
      if (!self->ended_) self->send(reply);
    });
  }

  // This connection's watches, made at its first WatchRequest (when the
  // session is owned by a shared_ptr, so its pump can hold it weakly). Lock held.
  HostWatches& watches() {
    if (!watches_) {
      watches_ = std::make_unique<HostWatches>(
          db(), options_, pool_, mutex_,
          [this](protocol::HostMessage message) { std::visit([this](const auto& m) { send(m); }, message); },
          [this](const std::string& line) { log(line); },
          [weak = weak_from_this()] {
            // Set once, before any pump can run, and kept for the session's life.
            if (auto self = weak.lock()) self->watches_->pump();
          });
    }
    return *watches_;
  }

  // Reserves the iterator's id at once, so an ack, seek or close that arrives
  // before the iterator is created finds it.
  std::shared_ptr<HostIterator> open_iterator_slot(const protocol::IteratorRequest& request) {
    if (iterators_.count(request.id)) return nullptr;  // the reference ignores a reused id
    if (iterators_.size() >= options_.max_iterators) {
      send(protocol::IteratorError{request.id, request.seq, "LEVEL_REMOTE_ERROR"});
      log("refusing iterator " + std::to_string(request.id) + ": " + std::to_string(options_.max_iterators) +
          " are open on this connection");
      return nullptr;
    }
    auto iterator = std::make_shared<HostIterator>();
    iterator->id = request.id;
    iterator->seq = request.seq;
    iterator->options = request.options;
    iterator->limit = request.options.limit < 0 ? -1 : request.options.limit;
    iterator->consumed = iterator->sent = request.consumed;
    iterators_[request.id] = iterator;
    return iterator;
  }

  // ---- ordered requests (worker threads) -----------------------------------

  void drain() {
    size_t answered = 0;
    for (;;) {
      std::deque<Request> batch;
      {
        // One lock a round: the answers of the last batch are counted with
        // the look for more, so that a guest's next request, which the
        // reply may already have brought in, rarely finds the lock taken.
        std::unique_lock<std::mutex> lock(mutex_);
        pending_ -= std::min(pending_.load(), answered);
        if (queue_.empty() || ended_) {
          draining_ = false;
          if (ended_) {
            // end() left the snapshots to the drain it found running.
            lock.unlock();
            for (auto& snapshot : snapshots_.take_all()) snapshot->close();
          }
          return;
        }
        batch.swap(queue_);
      }
      answered = batch.size();
      while (!batch.empty()) {
        if (std::holds_alternative<protocol::GetRequest>(batch.front())) {
          run_gets(batch);
        } else if (is_write(batch.front())) {
          run_writes(batch);
        } else {
          std::visit([this](auto& request) { run(request); }, batch.front());
          batch.pop_front();
        }
      }
    }
  }

  static bool is_write(const Request& request) {
    return std::holds_alternative<protocol::PutRequest>(request) ||
           std::holds_alternative<protocol::DelRequest>(request) ||
           std::holds_alternative<protocol::BatchRequest>(request);
  }

  // Consecutive gets, read together as one getMany (one read transaction),
  // as long as they read at the same snapshot (or none).
  void run_gets(std::deque<Request>& batch) {
    std::vector<uint32_t> ids;
    std::vector<std::string> keys;
    const std::optional<uint32_t> snapshot = std::get<protocol::GetRequest>(batch.front()).snapshot;
    while (!batch.empty() && std::holds_alternative<protocol::GetRequest>(batch.front()) &&
           std::get<protocol::GetRequest>(batch.front()).snapshot == snapshot) {
      auto& get = std::get<protocol::GetRequest>(batch.front());
      ids.push_back(get.id);
      keys.push_back(std::move(get.key));
      batch.pop_front();
    }
    std::vector<protocol::Callback> replies;
    replies.reserve(ids.size());
    try {
      auto values = db().get_many(keys, read_options(snapshot));
      for (size_t i = 0; i < ids.size(); ++i) {
        if (values[i]) {
          replies.push_back({ids[i], std::nullopt, std::move(values[i])});
        } else {
          replies.push_back({ids[i], std::string(codes::not_found), std::nullopt});
        }
      }
    } catch (const std::exception& e) {
      replies.clear();
      for (uint32_t id : ids) replies.push_back({id, wire_error_code(e), std::nullopt});
    }
    send_all(replies);
  }

  // Consecutive puts, dels and batches, committed as one atomic batch. Each
  // passes its hook first; a rejected one is answered alone and left out.
  void run_writes(std::deque<Request>& batch) {
    std::vector<uint32_t> ids;
    std::vector<BatchOperation> operations;
    while (!batch.empty() && is_write(batch.front())) {
      uint32_t id = 0;
      size_t before = operations.size();
      std::string rejection = std::visit([&](auto& request) { return admit(request, id, operations); },
                                         batch.front());
      batch.pop_front();
      if (!rejection.empty()) {
        operations.resize(before);
        send(protocol::Callback{id, rejection, std::nullopt});
      } else {
        ids.push_back(id);
      }
    }
    std::optional<std::string> error;
    if (!operations.empty()) {
      try {
        db().batch(operations, raw_write);
      } catch (const std::exception& e) {
        error = wire_error_code(e);
      }
    }
    std::vector<protocol::Callback> replies;
    replies.reserve(ids.size());
    for (uint32_t id : ids) replies.push_back({id, error, std::nullopt});
    send_all(replies);
  }

  // Appends a write's operations after its hook; returns an error code to
  // reject it with, or "" to accept it.
  std::string admit(protocol::PutRequest& put, uint32_t& id, std::vector<BatchOperation>& out) {
    id = put.id;
    if (!put.value) return codes::invalid_value;
    return guarded([&] {
      if (options_.preput) options_.preput(put.key, *put.value);
      out.push_back(BatchOperation::put(std::move(put.key), std::move(*put.value)));
    });
  }

  std::string admit(protocol::DelRequest& del, uint32_t& id, std::vector<BatchOperation>& out) {
    id = del.id;
    return guarded([&] {
      if (options_.predel) options_.predel(del.key);
      out.push_back(BatchOperation::del(std::move(del.key)));
    });
  }

  std::string admit(protocol::BatchRequest& request, uint32_t& id, std::vector<BatchOperation>& out) {
    id = request.id;
    std::vector<BatchOperation> operations;
    operations.reserve(request.ops.size());
    for (auto& op : request.ops) {
      if (op.type == protocol::BatchOp::Type::put) {
        if (!op.value) return codes::invalid_value;
        operations.push_back(BatchOperation::put(std::move(op.key), std::move(*op.value)));
      } else {
        operations.push_back(BatchOperation::del(std::move(op.key)));
      }
    }
    return guarded([&] {
      if (options_.prebatch) options_.prebatch(operations);
      std::move(operations.begin(), operations.end(), std::back_inserter(out));
    });
  }

  template <typename M>
  std::string admit(M&, uint32_t&, std::vector<BatchOperation>&) {
    return codes::not_supported;  // never reached: only writes are admitted
  }

  template <typename F>
  static std::string guarded(F&& body) {
    try {
      body();
      return {};
    } catch (const std::exception& e) {
      return wire_error_code(e);
    } catch (...) {
      // A hook is user code and may throw anything; letting it escape would
      // abort drain() with draining_ still set and wedge the connection.
      return codes::remote_error;
    }
  }

  // Raw reads, at the guest's snapshot `id` if it names one; throws
  // LEVEL_SNAPSHOT_NOT_OPEN for an id that is not open.
  ReadOptions read_options(const std::optional<uint32_t>& id) const {
    ReadOptions options = raw_read;
    if (id) options.snapshot = snapshots_.at(*id);
    return options;
  }

  void run(protocol::GetManyRequest& request) {
    try {
      auto values = db().get_many(request.keys, read_options(request.snapshot));
      send(protocol::GetManyCallback{request.id, std::nullopt, std::move(values)});
    } catch (const std::exception& e) {
      // The reference host throws here and its guest waits forever; ours answers.
      send(protocol::GetManyCallback{request.id, wire_error_code(e), {}});
    }
  }

  void run(protocol::ClearRequest& request) {
    ClearOptions options;
    options.key_encoding = "buffer";
    if (request.options) {
      const auto& wire = *request.options;
      options.gt = wire.gt;
      options.gte = wire.gte;
      options.lt = wire.lt;
      options.lte = wire.lte;
      options.limit = wire.limit < 0 ? -1 : wire.limit;
      options.reverse = wire.reverse;
    }
    std::optional<std::string> error;
    if (!options_.preclear && (options_.predel || options_.prebatch)) {
      error = codes::not_supported;
    } else {
      error = optional_error(guarded([&] {
        if (options_.preclear) options_.preclear(options);
        db().clear(options);
      }));
    }
    send(protocol::Callback{request.id, error, std::nullopt});
  }

  void run(protocol::HasRequest& request) {
    protocol::HasCallback reply;
    reply.id = request.id;
    try {
      auto found = db().has_many(request.keys, read_options(request.snapshot));
      reply.found.reserve(found.size());
      for (bool present : found) reply.found.push_back(present ? '\1' : '\0');
    } catch (const std::exception& e) {
      reply.error = wire_error_code(e);
    }
    send(reply);
  }

  // In request order: the snapshot sees every write the guest sent before it.
  void run(protocol::SnapshotRequest& request) {
    std::string why;
    std::string error = snapshots_.open(request.snapshot, db(), why);
    if (!error.empty() && !why.empty()) {
      log("refusing snapshot " + std::to_string(request.snapshot) + " (" + error + "): " + why);
    }
    send(protocol::Callback{request.id, optional_error(std::move(error)), std::nullopt});
  }

  // In request order, so the reads sent before it have read at it.
  void run(protocol::SnapshotRelease& release) { snapshots_.release(release.snapshot); }

  // Creates the store iterator in request order, so it sees every write the
  // guest sent before it, then starts it as the reference does.
  void run(QueuedIterator& queued) {
    protocol::IteratorRequest& request = queued.request;
    std::shared_ptr<HostIterator> iterator = queued.iterator;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (iterator->closed) return;  // closed before it was created: nothing to release
    }
    std::unique_ptr<Iterator> created;
    std::string error;
    try {
      iterator->snapshot = read_options(request.snapshot).snapshot;
      created = db().iterator(iterator_options(*iterator, request.seek ? std::nullopt : request.bookmark));
    } catch (const std::exception& e) {
      error = wire_error_code(e);
    }
    std::unique_lock<std::mutex> lock(mutex_);
    iterator->busy = false;
    iterator->narrowed = request.bookmark && !request.seek;
    if (iterator->closed) {
      lock.unlock();
      if (created) created->close();
      return;
    }
    if (!error.empty()) {
      iterators_.erase(request.id);
      send(protocol::IteratorError{iterator->id, iterator->seq, error});
      return;
    }
    iterator->iterator = std::move(created);
    if (iterator->pending_seek) {
      auto [target, seq] = std::move(*iterator->pending_seek);
      start_seek(*iterator, std::move(target), seq);
    } else if (request.seek) {
      start_seek(*iterator, std::move(*request.seek), request.seq);
    } else {
      step(iterator, true);
    }
  }

  template <typename M>
  void run(M&) {}  // gets and writes are handled in runs, above

  // ---- iterators -----------------------------------------------------------

  // The store iterator's options for a remote iterator, at its snapshot if any.
  static IteratorOptions iterator_options(const HostIterator& iterator, const std::optional<std::string>& bookmark) {
    IteratorOptions options = store_iterator_options(iterator.options, bookmark);
    options.snapshot = iterator.snapshot;
    return options;
  }

  void on_ack(const protocol::IteratorAck& ack) {
    auto found = iterators_.find(ack.id);
    if (found == iterators_.end() || found->second->seq != ack.seq) return;
    auto& iterator = found->second;
    if (iterator->pending_acks > 0) --iterator->pending_acks;
    iterator->consumed = std::max(iterator->consumed, ack.consumed);
    iterator->sent = std::max(iterator->sent, iterator->consumed);
    step(iterator, false);
  }

  void on_seek(protocol::IteratorSeek& seek) {
    auto found = iterators_.find(seek.id);
    if (found == iterators_.end()) return;
    auto& iterator = *found->second;
    if (iterator.busy) {
      iterator.pending_seek = std::make_pair(std::move(seek.target), seek.seq);
    } else {
      start_seek(iterator, std::move(seek.target), seek.seq);
    }
  }

  void on_close(std::unique_lock<std::mutex>& lock, uint32_t id) {
    auto found = iterators_.find(id);
    if (found == iterators_.end()) return;
    auto iterator = found->second;
    iterators_.erase(found);
    iterator->closed = true;
    if (iterator->busy || !iterator->iterator) return;  // its worker releases it
    std::vector<std::unique_ptr<Iterator>> idle;
    idle.push_back(std::move(iterator->iterator));
    lock.unlock();
    release(std::move(idle));
    lock.lock();
  }

  // Reads the next frame's worth, as the reference does: 1 entry first (cheap
  // early termination), then as many as fit the output buffer's free room, and
  // nothing while more than one frame is unacknowledged. Lock held.
  void step(const std::shared_ptr<HostIterator>& iterator, bool first) {
    if (iterator->busy || iterator->closed || iterator->ended || iterator->pending_acks > 1) return;
    uint64_t size = iterator->budget();
    size_t reservation = 0;
    if (first) {
      size = std::min<uint64_t>(size, 1);
      iterator->read_ahead = false;
    } else {
      // The room left is shared by every iterator of the connection: read-aheads
      // still in flight have claimed part of it, or each would fill it alone.
      size_t room = output_.room();
      room = room > reserved_ ? room - reserved_ : 0;
      // One frame stays about as small as the reference's (its stream buffer
      // is 16 KiB): Node's guest takes entries with Array#shift, which turns
      // quadratic on arrays of more than ~16k items.
      room = std::min(room, options_.iterator_frame_bytes);
      size = std::min<uint64_t>(size, std::max<size_t>(16, std::max<size_t>(1, room) / iterator->max_item_length));
      size = std::min<uint64_t>(size, options_.iterator_frame_entries);
      reservation = static_cast<size_t>(size) * iterator->max_item_length;
      reserved_ += reservation;
      iterator->read_ahead = true;
    }
    iterator->busy = true;
    pool_.submit([self = shared_from_this(), iterator, size, reservation] {
      self->read(iterator, static_cast<size_t>(size), reservation);
    });
  }

  void start_seek(HostIterator& iterator, std::string target, uint32_t seq) {
    iterator.pending_seek.reset();
    iterator.ended = false;
    iterator.seq = seq;
    iterator.pending_acks = 0;
    // Entries sent before the seek but not consumed are dropped by the guest.
    iterator.sent = iterator.consumed;
    iterator.busy = true;
    auto shared = iterators_.at(iterator.id);
    pool_.submit([self = shared_from_this(), shared, target = std::move(target)] { self->seek(shared, target); });
  }

  void seek(const std::shared_ptr<HostIterator>& iterator, const std::string& target) {
    std::string error;
    try {
      if (iterator->narrowed) {
        // The range was cut at a bookmark; a seek may go anywhere in the whole range.
        iterator->iterator = db().iterator(iterator_options(*iterator, std::nullopt));
        iterator->narrowed = false;
      }
      iterator->iterator->seek(target);
    } catch (const std::exception& e) {
      error = wire_error_code(e);
    }
    std::unique_lock<std::mutex> lock(mutex_);
    iterator->busy = false;
    if (settle(lock, iterator)) return;
    if (!error.empty()) {
      send(protocol::IteratorError{iterator->id, iterator->seq, error});
      return;
    }
    step(iterator, true);
  }

  void read(const std::shared_ptr<HostIterator>& iterator, size_t size, size_t reservation) {
    std::vector<Entry> entries;
    std::string error;
    if (size > 0) {
      try {
        entries = iterator->iterator->nextv(size);
      } catch (const std::exception& e) {
        error = wire_error_code(e);
      }
    }
    std::unique_lock<std::mutex> lock(mutex_);
    iterator->busy = false;
    reserved_ -= std::min(reserved_, reservation);
    if (settle(lock, iterator)) return;
    if (!error.empty()) {
      send(protocol::IteratorError{iterator->id, iterator->seq, error});
    } else if (entries.empty()) {
      iterator->ended = true;
      send(protocol::IteratorEnd{iterator->id, iterator->seq});
    } else {
      size_t bytes = send_data(*iterator, entries);
      iterator->sent += entries.size();
      ++iterator->pending_acks;
      iterator->max_item_length = std::max(iterator->max_item_length, (bytes + entries.size() - 1) / entries.size());
      if (iterator->read_ahead) step(iterator, false);
    }
  }

  // After a worker hands an iterator back: releases it if it was closed
  // meanwhile, or runs the seek that waited for it. True if it did either.
  bool settle(std::unique_lock<std::mutex>& lock, const std::shared_ptr<HostIterator>& iterator) {
    if (iterator->closed) {
      std::vector<std::unique_ptr<Iterator>> idle;
      if (iterator->iterator) idle.push_back(std::move(iterator->iterator));
      lock.unlock();
      release(std::move(idle));
      return true;
    }
    if (iterator->pending_seek) {
      auto [target, seq] = std::move(*iterator->pending_seek);
      start_seek(*iterator, std::move(target), seq);
      return true;
    }
    return false;
  }

  size_t send_data(const HostIterator& iterator, const std::vector<Entry>& entries) {
    std::vector<std::string_view> data;
    bool keys = iterator.options.keys;
    bool values = iterator.options.values;
    data.reserve(entries.size() * (keys && values ? 2 : 1));
    for (const auto& entry : entries) {
      if (keys) data.push_back(entry.key);
      if (values) data.push_back(entry.value);
    }
    return write_frames(1, [&](std::string& out) { protocol::encode_iterator_data(out, iterator.id, iterator.seq, data); });
  }

  // Store iterators and snapshots are closed on a worker: closing one can
  // wait on its store.
  void release(std::vector<std::unique_ptr<Iterator>> idle) {
    if (idle.empty()) return;
    auto shared = std::make_shared<std::vector<std::unique_ptr<Iterator>>>(std::move(idle));
    pool_.submit([shared] {
      for (auto& iterator : *shared) iterator->close();
    });
  }

  void release(std::vector<std::shared_ptr<Snapshot>> snapshots) {
    if (snapshots.empty()) return;
    pool_.submit([snapshots = std::move(snapshots)] {
      for (const auto& snapshot : snapshots) snapshot->close();
    });
  }

  // ---- output --------------------------------------------------------------

  template <typename M>
  void send(const M& message) {
    write_frames(1, [&](std::string& out) { protocol::encode(out, message); });
  }

  // The replies of one run in one write: one wake of the transport, or one
  // direct send, for all of them rather than one each.
  void send_all(const std::vector<protocol::Callback>& replies) {
    if (replies.empty()) return;
    write_frames(replies.size(), [&](std::string& out) {
      for (const auto& reply : replies) protocol::encode(out, reply);
    });
  }

  // Every write to the output goes through here, so frames and bytes out are
  // counted in one place. Returns the bytes written.
  template <typename Encode>
  size_t write_frames(size_t frames, Encode&& encode) {
    size_t bytes = 0;
    output_.write([&](std::string& out) {
      size_t before = out.size();
      encode(out);
      bytes = out.size() - before;
    });
    frames_out_ += frames;
    bytes_out_ += bytes;
    return bytes;
  }

  static std::optional<std::string> optional_error(std::string code) {
    if (code.empty()) return std::nullopt;
    return code;
  }

  void fail(const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_.empty()) return;
      failure_ = why;
      has_failed_.store(true);
    }
    log("closing connection: " + why);
  }

  void log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }


  // The database this guest works on: the host's, or the sublevel its grant
  // confines it to. Set once, at admission, before any request is queued.
  Database& db() const { return *db_; }

  Database* db_;
  const HostOptions& options_;
  WorkerPool& pool_;
  const std::shared_ptr<HostContext> context_;
  const HostConnectionIdentity identity_;
  const HostAccess access_;
  protocol::FrameDecoder decoder_;  // used by the transport's thread only
  OutputBuffer output_;
  HostSnapshots snapshots_;  // has its own lock

  mutable std::mutex mutex_;
  std::deque<Request> queue_;
  bool draining_ = false;
  bool ended_ = false;
  std::string failure_;
  std::atomic<bool> has_failed_{false};  // failure_ is set
  std::atomic<size_t> pending_{0};       // changed under mutex_, read without it
  size_t reserved_ = 0;  // output bytes claimed by read-aheads in flight
  std::map<uint32_t, std::shared_ptr<HostIterator>> iterators_;
  bool extended_ = false;  // the guest said Hello
  // What the first frame decided (admit()); lock held.
  enum class Admission { waiting, admitted, refused };
  Admission admission_ = Admission::waiting;
  bool read_only_ = false;  // HostOptions::readonly, or the guest's grant
  bool confined_ = false;   // the grant confines it to a sublevel
  std::unique_ptr<HostWatches> watches_;  // from the first WatchRequest; uses mutex_
  std::atomic<uint64_t> frames_in_{0};
  std::atomic<uint64_t> frames_out_{0};
  std::atomic<uint64_t> bytes_out_{0};  // written by workers without the lock (send_all)
  uint64_t bytes_in_ = 0;
  uint64_t requests_ = 0;
  uint64_t malformed_ = 0;
};

MANY_LEVEL_NAMESPACE_END

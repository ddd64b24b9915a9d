// The state a guest shares with its stream and its iterators: requests
// waiting for replies, remote iterators and their flow control, the one
// stream currently attached, and the extension (docs/PROTOCOL.md): its
// negotiation per stream, remote snapshots and remote watches. Shared
// ownership lets a stream or an iterator outlive the Guest object safely:
// once the guest is closed they only fail.
//
// Locking: the core's mutex guards requests, iterators, snapshots, watches
// and the stream; each iterator channel has its own mutex, always taken
// after the core's. No completion, watch callback or observer runs with
// either held.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../host_stats.hpp"
#include "../version.hpp"
#include "../watch.hpp"
#include "../protocol/codec.hpp"
#include "../protocol/framing.hpp"
#include "../protocol/messages.hpp"
#include "../transport/session.hpp"
#include "guest_options.hpp"
#include "guest_snapshot.hpp"
#include "guest_stats.hpp"
#include "guest_watch.hpp"
#include "id_allocator.hpp"
#include "negotiation.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// What a request gets back: a host reply, or a local failure (connection
// lost, aborted by close) as an error code with a message.
struct Reply {
  std::optional<std::string> error;  // a LEVEL_* code
  std::string message;               // for local failures
  std::optional<std::string> value;  // Callback.value
  std::vector<std::optional<std::string>> values;  // GetManyCallback.values
  std::optional<std::string> found;                // HasCallback.found
  std::optional<HostStats> host_stats;             // HostStatsReply.stats
  std::shared_ptr<SnapshotSlot> snapshot;          // what a SnapshotRequest opened
};

// What a request is beyond its message.
struct RequestScope {
  // An extension request: refused at once while the host has no extension
  // (or lacks this feature), and failed with LEVEL_NOT_SUPPORTED if the
  // stream turns out to be base while it waits.
  const char* feature = nullptr;
  // A read at this snapshot: refused once the snapshot is closed or lost,
  // and failed (never re-sent) when its stream ends.
  std::shared_ptr<SnapshotSlot> at;
};

enum class FrameDirection { in, out };

// One remote iterator's receiving end.
struct IteratorChannel {
  uint32_t id = 0;
  protocol::IteratorOptions options;

  std::mutex mutex;
  std::condition_variable changed;
  uint32_t seq = 0;
  uint64_t consumed = 0;
  std::optional<std::string> bookmark;     // last key yielded (retry only)
  std::optional<std::string> seek_target;  // a seek whose result is not consumed yet
  std::deque<std::vector<std::string>> frames;  // received, not yet consumed
  size_t offset = 0;                            // items consumed of frames.front()
  bool ended = false;
  std::optional<Error> error;
  // The stream (GuestCore's connect count) that last got this iterator's
  // state in an Iterator request; an ack or seek made before a newer stream
  // was attached is already carried by that stream's request.
  uint64_t stream = 0;
  // Reads at this snapshot (the extension); it cannot resume on another stream.
  std::shared_ptr<SnapshotSlot> at;

  size_t buffered_entries() const {
    size_t items = 0;
    for (const auto& frame : frames) items += frame.size();
    items -= offset;
    size_t per_entry = options.keys && options.values ? 2 : 1;
    return items / per_entry;
  }
};

class GuestCore;

namespace detail {
// The core whose frames this thread is delivering right now, if any: a call
// made from a callback must not wait for a frame this very thread delivers.
inline const GuestCore*& delivering_core() {
  static thread_local const GuestCore* core = nullptr;
  return core;
}
}  // namespace detail

// The stream side of a guest: what a transport drives.
class GuestConnection final : public Session {
 public:
  GuestConnection(std::shared_ptr<GuestCore> core, size_t max_frame_length)
      : core_(std::move(core)), decoder_(max_frame_length) {}

  inline void receive(const char* data, size_t size) override;
  inline void end() override;
  OutputBuffer& output() override { return output_; }

  std::string failed() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return failure_;
  }

  // Asks the transport to close the stream (a close() of the guest, or the
  // Inspector's "drop connection" button).
  void drop(const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (failure_.empty()) failure_ = why;
    }
    output_.wake();
  }

 private:
  std::shared_ptr<GuestCore> core_;
  protocol::FrameDecoder decoder_;  // transport thread only
  OutputBuffer output_{SIZE_MAX};   // requests are bounded by the caller, not here
  mutable std::mutex mutex_;
  std::string failure_;
};

class GuestCore : public std::enable_shared_from_this<GuestCore> {
 public:
  using Completion = std::function<void(Reply)>;
  using FrameObserver = std::function<void(FrameDirection, std::string_view payload)>;

  explicit GuestCore(GuestOptions options) : options_(std::move(options)), negotiation_(options_.extension) {}

  bool retry() const { return options_.retry; }

  // Sends a request (now, or when a stream is attached) and calls `done` with
  // its reply, on the thread that receives it; or at once with the reason it
  // cannot go (see RequestScope).
  template <typename M>
  void request(M message, std::string key_for_stats, Completion done, RequestScope scope = {}) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (auto refused = refusal_locked(scope)) {
      lock.unlock();
      done(std::move(*refused));
      return;
    }
    message.id = next_request_id_locked();
    Pending pending = pending_locked(M::tag, std::move(key_for_stats), std::move(done), std::move(scope));
    if constexpr (std::is_same_v<M, protocol::SnapshotRequest>) {
      pending.opens = snapshots_.reserve();
      message.snapshot = pending.opens->id;
    }
    protocol::encode(pending.frame, message);
    enqueue_locked(message.id, std::move(pending));
  }

  // has / hasMany: a HasRequest when this stream's host offers it, else a
  // GetMany, whose values only tell presence (what the reference host can
  // answer). Decided under the lock, for the stream it goes out on; on a
  // later stream, whose host is not known yet, it is re-sent as the GetMany.
  void request_has(std::vector<std::string> keys, std::string key_for_stats, Completion done,
                   std::shared_ptr<SnapshotSlot> at) {
    RequestScope scope;
    scope.at = std::move(at);
    std::unique_lock<std::mutex> lock(mutex_);
    if (auto refused = refusal_locked(scope)) {
      lock.unlock();
      done(std::move(*refused));
      return;
    }
    const uint32_t id = next_request_id_locked();
    const auto snapshot = scope.at ? std::optional<uint32_t>(scope.at->id) : std::nullopt;
    Pending pending = pending_locked(protocol::HasRequest::tag, std::move(key_for_stats), std::move(done),
                                     std::move(scope));
    if (connection_ && negotiation_.offers(features::has)) {
      if (options_.retry && !snapshot) protocol::encode(pending.frame, protocol::GetManyRequest{id, keys, snapshot});
      std::string has;
      protocol::encode(has, protocol::HasRequest{id, std::move(keys), snapshot});
      enqueue_locked(id, std::move(pending), &has);
    } else {
      protocol::encode(pending.frame, protocol::GetManyRequest{id, std::move(keys), snapshot});
      enqueue_locked(id, std::move(pending));
    }
  }

  std::shared_ptr<IteratorChannel> open_iterator(const protocol::IteratorOptions& options,
                                                 std::shared_ptr<SnapshotSlot> at = nullptr) {
    auto channel = std::make_shared<IteratorChannel>();
    channel->options = options;
    // A retrying guest needs keys to know where to resume.
    if (options_.retry) channel->options.keys = true;
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) throw Error(codes::database_not_open, "Database is not open");
    if (at) {
      if (const char* why = SnapshotTable::unusable(*at, connects_)) throw Error(codes::snapshot_not_open, why);
    }
    channel->at = std::move(at);
    channel->id = iterator_ids_.next([&](uint32_t id) { return iterators_.count(id) > 0; });
    channel->stream = connects_;
    iterators_[channel->id] = channel;
    std::string frame;
    protocol::encode(frame, iterator_request(*channel));
    send_locked(frame);
    return channel;
  }

  // Acks and seeks go out only on the current stream: on a new stream the
  // iterator request itself carries the state they would have told. So one
  // made (under the channel's lock) while `stream` was current is dropped
  // once a newer stream is attached: re-sending a seek there would make the
  // host answer it twice, and the guest yield its entries twice.
  template <typename M>
  void send_control(const M& message, const IteratorChannel& channel, uint64_t stream) {
    std::string frame;
    protocol::encode(frame, message);
    std::lock_guard<std::mutex> lock(mutex_);
    if (channel.stream != stream) return;  // written only with mutex_ held
    send_locked(frame);
  }

  // Forgets an iterator; `channel` guards against an id that was forgotten
  // (stream lost) and has since been handed to another iterator.
  void close_iterator(uint32_t id, const IteratorChannel* channel = nullptr) {
    std::function<void()> flushed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto found = iterators_.find(id);
      if (found == iterators_.end() || (channel && found->second.get() != channel)) return;
      iterators_.erase(found);
      send_encoded_locked(protocol::IteratorClose{id});
      flushed = flushed_callback_locked();
    }
    if (flushed) flushed();
  }

  // ---- the extension: snapshots and watches ------------------------------

  // A snapshot's close(): the host releases it, after the reads sent before.
  void release_snapshot(SnapshotSlot& slot) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (snapshots_.release(slot, connects_) && connection_) send_encoded_locked(protocol::SnapshotRelease{slot.id});
  }

  // Starts a watch: its request goes out now, or on the next stream. Throws
  // LEVEL_NOT_SUPPORTED at once when this stream's host has no change feed
  // (while that is not known yet, the callback gets it, as it gets every
  // refusal of the host). With a stream attached, it returns once the host
  // said where the watch starts (or refused it): seq() is then a point to
  // resume from, as a local watch's is. Not from the stream's own thread
  // (a callback), which would deliver that answer: that returns at once.
  std::shared_ptr<WatchChannel> open_watch(protocol::WatchRange range, std::optional<uint64_t> since,
                                           WatchCallback callback) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (closed_) throw Error(codes::database_not_open, "Database is not open");
    if (auto refused = negotiation_.refusal(features::watch)) throw *refused;
    auto channel = watches_.open(std::move(range), since, std::move(callback));
    if (!connection_) return channel;
    send_encoded_locked(channel->request());
    const uint64_t stream = channel->stream = connects_;
    probe_locked();
    if (detail::delivering_core() != this) {
      watch_settled_.wait(lock, [&] {
        return channel->started || channel->errored || channel->closed || closed_ || connects_ != stream ||
               !connection_;
      });
    }
    return channel;
  }

  // A watch's close(): the host stops it, if it still has it.
  void close_watch(WatchChannel& channel) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (channel.closed) return;
    channel.closed = true;
    watch_settled_.notify_all();
    watches_.forget(channel);
    if (!channel.errored && connection_ && channel.stream == connects_) {
      send_encoded_locked(protocol::WatchClose{channel.id});
    }
  }

  HostExtension host_extension() const { return negotiation_.state(); }

  std::vector<std::string> host_features() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return negotiation_.features();
  }

  std::string host_grant() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return negotiation_.grant();
  }

  std::optional<Error> host_refusal() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return negotiation_.refusal();
  }

  // ---- streams -------------------------------------------------------------

  // Attaches a new stream (many-level's createRpcStream / connect) and sends
  // everything that waits: Hello first, then unsent or (with retry)
  // unanswered requests, a request for every open iterator, resuming where
  // it was, and one for every running watch, resuming after the last commit
  // it delivered.
  std::shared_ptr<GuestConnection> connect() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) throw Error(codes::database_not_open, "Database is not open");
    if (connection_) throw Error(codes::not_supported, "Only one rpc stream can be active");
    connection_ = std::make_shared<GuestConnection>(shared_from_this(), options_.max_frame_length);
    ++connects_;
    negotiation_.begin_stream();
    // First, so that a C++ host answers it before any other reply.
    if (negotiation_.enabled()) send_encoded_locked(Negotiation::hello(options_.token), SendMode::queued);
    bool extension_sent = false;
    for (auto& [id, pending] : requests_) {
      if (!pending.frame.empty()) {
        send_locked(pending.frame, SendMode::queued);
        extension_sent = extension_sent || pending.extension;
      }
      if (!options_.retry) {
        pending.frame.clear();
      }
    }
    for (auto& [id, channel] : iterators_) {
      std::string frame;
      {
        std::lock_guard<std::mutex> channel_lock(channel->mutex);
        protocol::encode(frame, iterator_request(*channel));
        channel->stream = connects_;
      }
      send_locked(frame, SendMode::queued);
    }
    for (auto& watch : watches_.running()) {
      send_encoded_locked(watch->request(), SendMode::queued);
      watch->stream = connects_;
      watch->started = false;
      extension_sent = true;
    }
    if (extension_sent) probe_locked();
    return connection_;
  }

  // The attached stream ended, and with it the host's snapshots of it. With
  // retry, everything else waits for the next one (but reads at a snapshot,
  // which fail); without, everything in flight fails with
  // LEVEL_CONNECTION_LOST, and so do watches.
  void stream_ended(GuestConnection* connection) {
    std::vector<Completion> failed;
    std::vector<Completion> lost_snapshot_reads;
    std::vector<std::shared_ptr<WatchChannel>> lost_watches;
    bool forgot = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (connection_.get() != connection) return;
      connection_.reset();
      ++disconnects_;
      watch_settled_.notify_all();
      snapshots_.lose_all();
      if (options_.retry) {
        lost_snapshot_reads = take_requests_locked([](const Pending& pending) { return pending.at != nullptr; });
        for (auto it = iterators_.begin(); it != iterators_.end();) {
          if (it->second->at) {
            lose_snapshot(*it->second);
            it = iterators_.erase(it);
            forgot = true;
          } else {
            forget_unconsumed(*it->second);
            ++it;
          }
        }
        forgot = forgot || !lost_snapshot_reads.empty();
      } else {
        failed = take_requests_locked([](const Pending&) { return true; });
        fail_iterators_locked(Error(codes::connection_lost, "Connection to host lost"));
        // Forgotten, as the reference's abort does: a failed iterator must not
        // be re-sent on the next stream, nor keep the guest from being flushed.
        iterators_.clear();
        lost_watches = watches_.fail([](const WatchChannel&) { return true; });
        forgot = true;
      }
    }
    for (auto& done : lost_snapshot_reads) done(local_failure(codes::snapshot_not_open, snapshot_lost));
    for (auto& done : failed) done(local_failure(codes::connection_lost, "Connection to host lost"));
    tell(lost_watches, Error(codes::connection_lost, "Connection to host lost"));
    if (forgot) notify_flushed();
  }

  // Frames from the host.
  void deliver(protocol::HostMessage& message) {
    // Order is the signal: a base reply before any HelloReply means this
    // stream's host knows no extension.
    if (message.index() < protocol::base_host_messages && negotiation_.state() == HostExtension::unknown) {
      settle([&] { return negotiation_.on_base_reply(); });
    }
    std::visit([this](auto& m) { on_reply(m); }, message);
  }

  // Aborts everything (close of the guest) and drops the stream. Watches
  // stop here; Database::close() then tells their callbacks.
  void shutdown() {
    std::vector<Completion> aborted;
    std::shared_ptr<GuestConnection> connection;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return;
      closed_ = true;
      aborted = take_requests_locked([](const Pending&) { return true; });
      fail_iterators_locked(Error(codes::database_not_open, "Aborted on database close()"));
      iterators_.clear();
      watches_.close_all();
      watch_settled_.notify_all();
      snapshots_.clear();
      connection = std::move(connection_);
    }
    for (auto& done : aborted) done(local_failure(codes::database_not_open, "Aborted on database close()"));
    if (connection) connection->drop("guest closed");
  }

  // Drops the attached stream on purpose; with retry the guest resumes on
  // the next one. Returns false when no stream is attached.
  bool drop_connection(const std::string& why) {
    std::shared_ptr<GuestConnection> connection;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      connection = connection_;
    }
    if (!connection) return false;
    connection->drop(why);
    return true;
  }

  bool is_flushed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_.empty() && iterators_.empty();
  }

  void on_flush(std::function<void()> listener) {
    std::lock_guard<std::mutex> lock(mutex_);
    flush_listener_ = std::move(listener);
  }

  void set_frame_observer(FrameObserver observer) {
    std::lock_guard<std::mutex> lock(mutex_);
    observer_ = std::make_shared<FrameObserver>(std::move(observer));
  }

  void observe(FrameDirection direction, std::string_view payload) {
    std::shared_ptr<FrameObserver> observer;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      observer = observer_;
      if (direction == FrameDirection::in) {
        ++frames_in_;
        bytes_in_ += payload.size();
      }
    }
    if (observer && *observer) (*observer)(direction, payload);
  }

  GuestStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    GuestStats stats;
    stats.connected = connection_ != nullptr;
    stats.connects = connects_;
    stats.disconnects = disconnects_;
    stats.bytes_in = bytes_in_;
    stats.bytes_out = bytes_out_;
    stats.frames_in = frames_in_;
    stats.frames_out = frames_out_;
    auto now = std::chrono::steady_clock::now();
    for (const auto& [id, pending] : requests_) {
      stats.pending.push_back({id, pending.operation, pending.key, now - pending.started});
    }
    for (const auto& [id, channel] : iterators_) {
      std::lock_guard<std::mutex> channel_lock(channel->mutex);
      stats.iterators.push_back({id, channel->seq, channel->consumed, channel->buffered_entries(),
                                 channel->frames.size(), channel->ended, channel->error.has_value(),
                                 channel->options.reverse, channel->options.limit});
    }
    stats.extension = negotiation_.state();
    stats.features = negotiation_.features();
    stats.watches = watches_.info();
    stats.snapshots = snapshots_.info();
    return stats;
  }

 private:
  struct Pending {
    const char* operation = "";
    std::string key;
    std::chrono::steady_clock::time_point started;
    std::string frame;  // kept while it may need (re)sending
    Completion done;
    bool extension = false;               // fails if the stream turns out base
    std::shared_ptr<SnapshotSlot> at;     // a read at this snapshot
    std::shared_ptr<SnapshotSlot> opens;  // a SnapshotRequest's snapshot
  };

  static constexpr const char* snapshot_lost = "The snapshot was lost with the connection to the host";

  static Reply local_failure(std::string code, std::string message) {
    Reply reply;
    reply.error = std::move(code);
    reply.message = std::move(message);
    return reply;
  }

  // Why a request cannot go at all; nullopt when it can.
  std::optional<Reply> refusal_locked(const RequestScope& scope) const {
    if (closed_) return local_failure(codes::database_not_open, "Database is not open");
    if (scope.feature) {
      if (auto refused = negotiation_.refusal(scope.feature)) return local_failure(refused->code(), refused->message());
    }
    if (scope.at) {
      if (const char* why = SnapshotTable::unusable(*scope.at, connects_)) {
        return local_failure(codes::snapshot_not_open, why);
      }
    }
    return std::nullopt;
  }

  uint32_t next_request_id_locked() {
    return request_ids_.next(
        [&](uint32_t id) { return requests_.count(id) > 0 || negotiation_.probe_in_flight(id); });
  }

  static Pending pending_locked(protocol::GuestTag tag, std::string key, Completion done, RequestScope scope) {
    Pending pending;
    pending.operation = protocol::tag_name(tag);
    pending.key = std::move(key);
    pending.started = std::chrono::steady_clock::now();
    pending.done = std::move(done);
    pending.extension = scope.feature != nullptr;
    pending.at = std::move(scope.at);
    return pending;
  }

  // Sends a request's frame (or `now`, its form for this stream) and keeps
  // it until its reply.
  void enqueue_locked(uint32_t id, Pending pending, const std::string* now = nullptr) {
    // A lone request goes out on this thread at once (its caller is likely
    // waiting for it); behind others, it waits for the transport's thread,
    // which sends a pipelining caller's requests many to a write.
    const bool sent = send_locked(now ? *now : pending.frame, requests_.empty() ? SendMode::now : SendMode::queued);
    // Never re-sent without retry, nor a read at a snapshot: no need to keep it.
    if (sent && (!options_.retry || pending.at)) {
      pending.frame.clear();
      pending.frame.shrink_to_fit();
    }
    const bool extension = pending.extension;
    requests_.emplace(id, std::move(pending));
    if (sent && extension) probe_locked();
  }

  // Behind the first extension request of a stream whose host has not
  // answered yet: an empty GetMany, which every host answers, so that the
  // stream is surely settled (a reference host ignores extension requests
  // and would otherwise never say anything). Its reply finds no request.
  void probe_locked() {
    if (!connection_ || !negotiation_.needs_probe()) return;
    const uint32_t id = next_request_id_locked();
    send_encoded_locked(protocol::GetManyRequest{id, {}}, SendMode::queued);
    negotiation_.probe_sent(id);
  }

  // Writes a frame to the attached stream; false when there is none.
  bool send_locked(std::string_view frame, SendMode mode = SendMode::now) {
    if (!connection_) return false;
    connection_->output().write([&](std::string& out) { out.append(frame); }, mode);
    ++frames_out_;
    bytes_out_ += frame.size();
    if (observer_ && *observer_) {
      // The payload, without its length prefix, as the frame log shows it.
      size_t prefix = 1;
      while (prefix < frame.size() && (static_cast<unsigned char>(frame[prefix - 1]) & 0x80)) ++prefix;
      (*observer_)(FrameDirection::out, frame.substr(prefix));
    }
    return true;
  }

  template <typename M>
  bool send_encoded_locked(const M& message, SendMode mode = SendMode::now) {
    if (!connection_) return false;
    std::string frame;
    protocol::encode(frame, message);
    return send_locked(frame, mode);
  }

  static protocol::IteratorRequest iterator_request(const IteratorChannel& channel) {
    protocol::IteratorRequest request;
    request.id = channel.id;
    request.seq = channel.seq;
    request.options = channel.options;
    request.consumed = channel.consumed;
    if (channel.seek_target) {
      request.seek = channel.seek_target;
    } else {
      request.bookmark = channel.bookmark;
    }
    if (channel.at) request.snapshot = channel.at->id;
    return request;
  }

  // Data received but not consumed when a stream dies is dropped: the host
  // sends it again from the bookmark. Keeping it (as the reference does)
  // yields those entries twice.
  static void forget_unconsumed(IteratorChannel& channel) {
    std::lock_guard<std::mutex> lock(channel.mutex);
    if (channel.error) return;
    channel.frames.clear();
    channel.offset = 0;
    channel.ended = false;
  }

  // An iterator at a snapshot cannot resume elsewhere: what it received is
  // still yielded, then (unless it had its end) it fails.
  static void lose_snapshot(IteratorChannel& channel) {
    std::lock_guard<std::mutex> lock(channel.mutex);
    if (!channel.ended && !channel.error) channel.error = Error(codes::snapshot_not_open, snapshot_lost);
    channel.changed.notify_all();
  }

  // Takes the requests `matching` out, for their completions to be called
  // outside the lock. A SnapshotRequest taken frees its snapshot's id.
  template <typename Matching>
  std::vector<Completion> take_requests_locked(Matching&& matching) {
    std::vector<Completion> done;
    for (auto it = requests_.begin(); it != requests_.end();) {
      if (!matching(it->second)) {
        ++it;
        continue;
      }
      if (it->second.opens) snapshots_.forget(*it->second.opens);
      done.push_back(std::move(it->second.done));
      it = requests_.erase(it);
    }
    return done;
  }

  void fail_iterators_locked(const Error& error) {
    for (auto& [id, channel] : iterators_) {
      std::lock_guard<std::mutex> lock(channel->mutex);
      if (!channel->error) channel->error = error;
      channel->changed.notify_all();
    }
  }

  std::function<void()> flushed_callback_locked() {
    if (requests_.empty() && iterators_.empty()) {
      request_ids_.reset();
      return flush_listener_;
    }
    return nullptr;
  }

  void notify_flushed() {
    std::function<void()> flushed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      flushed = flushed_callback_locked();
    }
    if (flushed) flushed();
  }

  // Ends watches with an error, on the stream's thread, no lock held.
  static void tell(const std::vector<std::shared_ptr<WatchChannel>>& watches, const Error& error) {
    for (const auto& watch : watches) watch->callback(error, Commit{watch->seq.load(std::memory_order_acquire), {}});
  }

  // Applies `decide` (a Negotiation transition, true if it settled the
  // stream) and, if the stream turned out to have no extension, fails what
  // waits for it: extension requests and watches.
  template <typename Decide>
  void settle(Decide&& decide) {
    std::vector<Completion> refused;
    std::vector<std::shared_ptr<WatchChannel>> refused_watches;
    std::string reason;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!decide() || negotiation_.state() != HostExtension::unavailable) return;
      reason = negotiation_.unavailable_reason();
      refused = take_requests_locked([](const Pending& pending) { return pending.extension; });
      refused_watches = watches_.fail([](const WatchChannel&) { return true; });
      watch_settled_.notify_all();
    }
    for (auto& done : refused) done(local_failure(codes::not_supported, reason));
    tell(refused_watches, Error(codes::not_supported, reason));
    if (!refused.empty()) notify_flushed();
  }

  void complete(uint32_t id, Reply reply) {
    Completion done;
    std::function<void()> flushed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto found = requests_.find(id);
      if (found == requests_.end()) {
        negotiation_.take_probe_reply(id);  // the probe's, which no caller sees (or a stray)
        return;
      }
      if (auto& opens = found->second.opens) {
        if (reply.error) {
          snapshots_.forget(*opens);
        } else {
          SnapshotTable::opened(*opens, connects_);
          reply.snapshot = opens;
        }
      }
      if (reply.error && reply.message.empty()) reply.message = negotiation_.explain(*reply.error);
      done = std::move(found->second.done);
      requests_.erase(found);
      flushed = flushed_callback_locked();
    }
    done(std::move(reply));
    if (flushed) flushed();
  }

  // The reference guest treats an empty error string as success.
  static std::optional<std::string> error_of(std::optional<std::string>& error) {
    if (error && !error->empty()) return std::move(error);
    return std::nullopt;
  }

  void on_reply(protocol::Callback& callback) {
    Reply reply;
    reply.error = error_of(callback.error);
    reply.value = std::move(callback.value);
    complete(callback.id, std::move(reply));
  }

  void on_reply(protocol::GetManyCallback& callback) {
    Reply reply;
    reply.error = error_of(callback.error);
    reply.values = std::move(callback.values);
    complete(callback.id, std::move(reply));
  }

  std::shared_ptr<IteratorChannel> channel(uint32_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = iterators_.find(id);
    return found == iterators_.end() ? nullptr : found->second;
  }

  void on_reply(protocol::IteratorData& data) {
    auto target = channel(data.id);
    if (!target) return;
    std::lock_guard<std::mutex> lock(target->mutex);
    if (target->seq != data.seq || target->error || data.data.empty()) return;
    target->frames.push_back(std::move(data.data));
    target->changed.notify_all();
  }

  void on_reply(protocol::IteratorEnd& end) {
    auto target = channel(end.id);
    if (!target) return;
    std::lock_guard<std::mutex> lock(target->mutex);
    if (target->seq != end.seq) return;
    target->ended = true;
    target->changed.notify_all();
  }

  void on_reply(protocol::IteratorError& error) {
    auto target = channel(error.id);
    if (!target) return;
    std::string message;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      message = negotiation_.explain(error.error);
    }
    std::lock_guard<std::mutex> lock(target->mutex);
    if (target->seq != error.seq) return;
    target->error = Error(error.error, message.empty() ? "iterator failed on the host" : message);
    target->changed.notify_all();
  }

  // ---- the extension's replies ---------------------------------------------

  void on_reply(protocol::HelloReply& reply) {
    settle([&] { return negotiation_.on_hello_reply(reply); });
  }

  void on_reply(protocol::HasCallback& callback) {
    Reply reply;
    reply.error = error_of(callback.error);
    reply.found = std::move(callback.found);
    complete(callback.id, std::move(reply));
  }

  void on_reply(protocol::HostStatsReply& stats) {
    Reply reply;
    reply.error = error_of(stats.error);
    reply.host_stats = std::move(stats.stats);
    complete(stats.id, std::move(reply));
  }

  // The watch running on this stream with that id, if it still wants frames.
  std::shared_ptr<WatchChannel> live_watch_locked(uint32_t id) const {
    auto watch = watches_.find(id);
    return watch && watch->live_on(connects_) ? watch : nullptr;
  }

  void on_reply(protocol::WatchStarted& started) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto watch = watches_.find(started.id);
    if (!watch || watch->closed || watch->errored || watch->stream != connects_ || !connection_) return;
    watch->started = true;
    watch->seq.store(started.seq, std::memory_order_release);
    watch->seq_known = true;
    watch_settled_.notify_all();
  }

  // Each commit goes to the callback in order, here on the stream's thread
  // with no lock held; the frame is acknowledged once all went. A close()
  // (even from the callback) stops it between two commits.
  void on_reply(protocol::WatchData& data) {
    std::shared_ptr<WatchChannel> watch;
    uint64_t stream;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      watch = live_watch_locked(data.id);
      if (!watch) return;
      stream = connects_;
      ++watch->unacknowledged_frames;
    }
    bool whole = true;
    for (auto& wire : data.commits) {
      Commit commit = to_commit(std::move(wire));
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!watch->live_on(stream)) {
          whole = false;
          break;
        }
        // Before the call, as a local watch does: seq() seen from the
        // callback is the commit it is given.
        watch->seq.store(commit.seq, std::memory_order_release);
        ++watch->commits;
      }
      watch->callback(std::nullopt, commit);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    --watch->unacknowledged_frames;
    if (whole && watch->live_on(stream) && stream == connects_) {
      send_encoded_locked(protocol::WatchAck{watch->id, watch->seq.load(std::memory_order_relaxed)});
    }
  }

  void on_reply(protocol::WatchError& error) {
    std::shared_ptr<WatchChannel> watch;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      watch = watches_.find(error.id);
      if (!watch || watch->closed || watch->errored || watch->stream != connects_) return;
      watch->errored = true;
      watch_settled_.notify_all();
    }
    tell({watch}, Error(error.error, watch_error_message(error.error, watch->seq.load(std::memory_order_acquire))));
  }

  GuestOptions options_;
  Negotiation negotiation_;  // of the current (or last) stream
  mutable std::mutex mutex_;
  bool closed_ = false;
  std::shared_ptr<GuestConnection> connection_;
  IdAllocator request_ids_;
  IdAllocator iterator_ids_;
  std::map<uint32_t, Pending> requests_;
  std::map<uint32_t, std::shared_ptr<IteratorChannel>> iterators_;
  SnapshotTable snapshots_;
  WatchTable watches_;
  std::condition_variable watch_settled_;  // a watch started, failed or lost its stream
  std::function<void()> flush_listener_;
  std::shared_ptr<FrameObserver> observer_;
  uint64_t connects_ = 0;
  uint64_t disconnects_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  uint64_t frames_in_ = 0;
  uint64_t frames_out_ = 0;
};

inline void GuestConnection::receive(const char* data, size_t size) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!failure_.empty()) return;
  }
  struct Delivering {
    const GuestCore* previous = detail::delivering_core();
    explicit Delivering(const GuestCore* core) { detail::delivering_core() = core; }
    ~Delivering() { detail::delivering_core() = previous; }
  } delivering(core_.get());
  try {
    decoder_.feed(data, size, [this](std::string_view payload) {
      core_->observe(FrameDirection::in, payload);
      protocol::HostMessage message;
      if (protocol::decode_payload(payload, message) == protocol::DecodeStatus::ok) core_->deliver(message);
    });
  } catch (const Error& e) {
    drop(e.what());
  }
}

inline void GuestConnection::end() {
  output_.close();
  core_->stream_ended(this);
}

MANY_LEVEL_NAMESPACE_END

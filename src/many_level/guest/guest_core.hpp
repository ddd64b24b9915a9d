// The state a guest shares with its stream and its iterators: requests
// waiting for replies, remote iterators and their flow control, and the one
// stream currently attached. Shared ownership lets a stream or an iterator
// outlive the Guest object safely: once the guest is closed they only fail.
//
// Locking: the core's mutex guards requests, iterators and the stream; each
// iterator channel has its own mutex, always taken after the core's. No
// completion or observer runs with either held.
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
#include "../version.hpp"
#include "../protocol/codec.hpp"
#include "../protocol/framing.hpp"
#include "../protocol/messages.hpp"
#include "../transport/session.hpp"
#include "guest_options.hpp"
#include "id_allocator.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// What a request gets back: a host reply, or a local failure (connection
// lost, aborted by close) as an error code with a message.
struct Reply {
  std::optional<std::string> error;  // a LEVEL_* code
  std::string message;               // for local failures
  std::optional<std::string> value;  // Callback.value
  std::vector<std::optional<std::string>> values;  // GetManyCallback.values
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

  size_t buffered_entries() const {
    size_t items = 0;
    for (const auto& frame : frames) items += frame.size();
    items -= offset;
    size_t per_entry = options.keys && options.values ? 2 : 1;
    return items / per_entry;
  }
};

struct PendingRequestInfo {
  uint32_t id = 0;
  const char* operation = "";
  std::string key;
  std::chrono::steady_clock::duration age{};
};

struct GuestIteratorInfo {
  uint32_t id = 0;
  uint32_t seq = 0;
  uint64_t consumed = 0;
  size_t buffered_entries = 0;
  size_t unacknowledged_frames = 0;
  bool ended = false;
  bool errored = false;
  bool reverse = false;
  int64_t limit = -1;
};

struct GuestStats {
  bool connected = false;
  uint64_t connects = 0;
  uint64_t disconnects = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  std::vector<PendingRequestInfo> pending;
  std::vector<GuestIteratorInfo> iterators;
};

class GuestCore;

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

  explicit GuestCore(GuestOptions options) : options_(std::move(options)) {}

  bool retry() const { return options_.retry; }

  // Sends a request (now, or when a stream is attached) and calls `done` with
  // its reply, on the thread that receives it.
  template <typename M>
  void request(M message, std::string key_for_stats, Completion done) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (closed_) {
      lock.unlock();
      done(local_failure(codes::database_not_open, "Database is not open"));
      return;
    }
    message.id = request_ids_.next([&](uint32_t id) { return requests_.count(id) > 0; });
    Pending pending;
    pending.operation = protocol::tag_name(M::tag);
    pending.key = std::move(key_for_stats);
    pending.started = std::chrono::steady_clock::now();
    pending.done = std::move(done);
    protocol::encode(pending.frame, message);
    // A lone request goes out on this thread at once (its caller is likely
    // waiting for it); behind others, it waits for the transport's thread,
    // which sends a pipelining caller's requests many to a write.
    bool sent = send_locked(pending.frame, requests_.empty() ? SendMode::now : SendMode::queued);
    if (sent && !options_.retry) {
      pending.frame.clear();  // never re-sent: no need to keep it
      pending.frame.shrink_to_fit();
    }
    requests_.emplace(message.id, std::move(pending));
  }

  std::shared_ptr<IteratorChannel> open_iterator(const protocol::IteratorOptions& options) {
    auto channel = std::make_shared<IteratorChannel>();
    channel->options = options;
    // A retrying guest needs keys to know where to resume.
    if (options_.retry) channel->options.keys = true;
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) throw Error(codes::database_not_open, "Database is not open");
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
      std::string frame;
      protocol::encode(frame, protocol::IteratorClose{id});
      send_locked(frame);
      flushed = flushed_callback_locked();
    }
    if (flushed) flushed();
  }

  // Attaches a new stream (many-level's createRpcStream / connect) and sends
  // everything that waits: unsent or (with retry) unanswered requests, and a
  // request for every open iterator, resuming where it was.
  std::shared_ptr<GuestConnection> connect() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) throw Error(codes::database_not_open, "Database is not open");
    if (connection_) throw Error(codes::not_supported, "Only one rpc stream can be active");
    connection_ = std::make_shared<GuestConnection>(shared_from_this(), options_.max_frame_length);
    ++connects_;
    for (auto& [id, pending] : requests_) {
      if (!pending.frame.empty()) send_locked(pending.frame, SendMode::queued);
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
    return connection_;
  }

  // The attached stream ended. With retry, everything waits for the next one;
  // without, everything in flight fails with LEVEL_CONNECTION_LOST.
  void stream_ended(GuestConnection* connection) {
    std::vector<Completion> failed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (connection_.get() != connection) return;
      connection_.reset();
      ++disconnects_;
      if (options_.retry) {
        for (auto& [id, channel] : iterators_) forget_unconsumed(*channel);
        return;
      }
      failed = take_requests_locked();
      fail_iterators_locked(Error(codes::connection_lost, "Connection to host lost"));
      // Forgotten, as the reference's abort does: a failed iterator must not
      // be re-sent on the next stream, nor keep the guest from being flushed.
      iterators_.clear();
    }
    for (auto& done : failed) done(local_failure(codes::connection_lost, "Connection to host lost"));
    notify_flushed();
  }

  // Frames from the host.
  void deliver(protocol::HostMessage& message) {
    std::visit([this](auto& m) { on_reply(m); }, message);
  }

  // Aborts everything (close of the guest) and drops the stream.
  void shutdown() {
    std::vector<Completion> aborted;
    std::shared_ptr<GuestConnection> connection;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return;
      closed_ = true;
      aborted = take_requests_locked();
      fail_iterators_locked(Error(codes::database_not_open, "Aborted on database close()"));
      iterators_.clear();
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
    return stats;
  }

 private:
  struct Pending {
    const char* operation = "";
    std::string key;
    std::chrono::steady_clock::time_point started;
    std::string frame;  // kept while it may need (re)sending
    Completion done;
  };

  static Reply local_failure(const char* code, std::string message) {
    Reply reply;
    reply.error = code;
    reply.message = std::move(message);
    return reply;
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

  std::vector<Completion> take_requests_locked() {
    std::vector<Completion> done;
    for (auto& [id, pending] : requests_) done.push_back(std::move(pending.done));
    requests_.clear();
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

  void complete(uint32_t id, Reply reply) {
    Completion done;
    std::function<void()> flushed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto found = requests_.find(id);
      if (found == requests_.end()) return;
      done = std::move(found->second.done);
      requests_.erase(found);
      flushed = flushed_callback_locked();
    }
    done(std::move(reply));
    if (flushed) flushed();
  }

  void on_reply(protocol::Callback& callback) {
    Reply reply;
    // The reference guest treats an empty error string as success.
    if (callback.error && !callback.error->empty()) reply.error = std::move(callback.error);
    reply.value = std::move(callback.value);
    complete(callback.id, std::move(reply));
  }

  void on_reply(protocol::GetManyCallback& callback) {
    Reply reply;
    if (callback.error && !callback.error->empty()) reply.error = std::move(callback.error);
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
    std::lock_guard<std::mutex> lock(target->mutex);
    if (target->seq != error.seq) return;
    target->error = Error(error.error, "iterator failed on the host");
    target->changed.notify_all();
  }

  template <typename M>
  void on_reply(M&) {}  // the extension's replies: not used yet

  GuestOptions options_;
  mutable std::mutex mutex_;
  bool closed_ = false;
  std::shared_ptr<GuestConnection> connection_;
  IdAllocator request_ids_;
  IdAllocator iterator_ids_;
  std::map<uint32_t, Pending> requests_;
  std::map<uint32_t, std::shared_ptr<IteratorChannel>> iterators_;
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

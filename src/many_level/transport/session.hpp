// The seam between protocol and I/O. A session (host or guest side) is fed
// the bytes that arrive and leaves the bytes to send in its OutputBuffer; it
// owns no socket and no thread. Transports (file descriptors, iostreams, an
// in-memory pair, QIODevice) are thin pumps between a stream and a Session.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "../version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// How a write wants its bytes to leave (see OutputBuffer::write).
enum class SendMode {
  // On the writing thread, if the transport can (a socket it may write to
  // from any thread): a request or reply that someone is waiting for skips
  // the hand-off to the transport's thread, which is most of a round trip's
  // latency on loopback.
  now,
  // By the transport's thread, which wakes and sends whatever accumulated by
  // then in one write: for a writer that is about to write more.
  queued,
};

// Outgoing bytes of one session. Thread-safe: a host's worker threads append
// replies while the transport's thread takes them out.
//
// The transport registers a listener to learn that bytes are waiting (called
// without the buffer's lock held, from whichever thread appended), and may
// register a direct sender, which a SendMode::now write calls first on the
// writer's thread.
class OutputBuffer {
 public:
  using Listener = std::function<void()>;
  // Sends pending bytes on the calling thread, without blocking; returns
  // true when it sent them all and the transport's thread need not be woken.
  // It must never wait for a lock that a session holds while writing: it is
  // called from inside writes made under such locks.
  using DirectSender = std::function<bool()>;

  explicit OutputBuffer(size_t high_water = 1 << 20) : high_water_(high_water) {}

  // Appends bytes produced by `write(std::string&)`, which appends to the
  // buffer directly (frames are encoded in place, never copied twice). When
  // that made the buffer non-empty, the transport is told: by its direct
  // sender (SendMode::now, if it has one) or by waking its thread.
  template <typename Writer>
  void write(Writer&& writer, SendMode mode = SendMode::now) {
    std::shared_ptr<const Listener> notify;
    std::shared_ptr<const DirectSender> send;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return;
      bool was_empty = pending() == 0;
      writer(buffer_);
      if (was_empty && pending() > 0) {
        notify = readable_;
        if (mode == SendMode::now) send = direct_sender_;
      }
    }
    if (send && (*send)()) return;
    if (notify) (*notify)();
  }

  // Moves all pending bytes into `out` (cleared first); returns their count.
  size_t take(std::string& out) {
    std::lock_guard<std::mutex> lock(mutex_);
    out.clear();
    if (read_ == sending_.size()) {
      out.swap(buffer_);
    } else {
      out.assign(sending_, read_, std::string::npos);
      out.append(buffer_);
      buffer_.clear();
    }
    sending_.clear();
    read_ = 0;
    return out.size();
  }

  // Looks at pending bytes without taking them (for transports that write
  // partially): call consume() with what was actually sent. Other threads may
  // keep appending meanwhile: the view stays valid until the consumer's next
  // peek(), consume(), take() (there is one consumer, the transport).
  std::string_view peek() const {
    std::lock_guard<std::mutex> lock(mutex_);
    gather();
    return std::string_view(sending_).substr(read_);
  }

  void consume(size_t count) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (count > sending_.size() - read_) gather();
    read_ += count;
    if (read_ >= sending_.size()) {
      sending_.clear();
      read_ = 0;
    } else if (read_ > (1 << 16) && read_ * 2 > sending_.size()) {
      sending_.erase(0, read_);  // compact, so the buffer never keeps sent bytes
      read_ = 0;
    }
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pending();
  }

  // Room left before the high-water mark (0 when at or over it).
  size_t room() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pending() >= high_water_ ? 0 : high_water_ - pending();
  }

  size_t high_water() const { return high_water_; }

  // Calls the readable listener even with nothing to send: how a session asks
  // its transport to look at it again (e.g. at failed(), to close the stream).
  void wake() {
    std::shared_ptr<const Listener> notify;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      notify = readable_;
    }
    if (notify) (*notify)();
  }

  // Once closed, writes are dropped: the peer is gone.
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    buffer_.clear();
    read_ = sending_.size();  // not freed here: the consumer may be sending from a peek()
  }

  bool is_closed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return closed_;
  }

  // Listeners are held by shared_ptr so that calling one costs no copy of
  // the function (and no allocation) per write. One may still be running on
  // another thread after it was replaced: the transport's own state decides
  // whether it still acts.
  void on_readable(Listener listener) { set(readable_, std::move(listener)); }
  void on_direct_send(DirectSender sender) { set(direct_sender_, std::move(sender)); }

 private:
  size_t pending() const { return sending_.size() - read_ + buffer_.size(); }

  template <typename F>
  void set(std::shared_ptr<const F>& slot, F function) {
    auto held = function ? std::make_shared<const F>(std::move(function)) : nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    slot = std::move(held);
  }

  // Moves appended bytes behind the ones being sent. Writers only ever touch
  // buffer_, so a view into sending_ survives their appends (a view into a
  // string that another thread appends to would dangle once it reallocates).
  void gather() const {
    if (read_ == sending_.size()) {
      sending_.clear();
      read_ = 0;
    }
    if (buffer_.empty()) return;
    if (sending_.empty()) {
      sending_.swap(buffer_);
    } else {
      sending_.append(buffer_);
      buffer_.clear();
    }
  }

  mutable std::mutex mutex_;
  // Pending bytes are sending_[read_..] then buffer_. Mutable because peek()
  // reshuffles them without changing what is pending.
  mutable std::string sending_;
  mutable std::string buffer_;
  mutable size_t read_ = 0;
  size_t high_water_;
  bool closed_ = false;
  std::shared_ptr<const Listener> readable_;
  std::shared_ptr<const DirectSender> direct_sender_;
};

// What a transport drives.
class Session {
 public:
  virtual ~Session() = default;

  // Feeds bytes that arrived, in any chunking. A protocol violation does not
  // throw: the session marks itself failed (see failed()) and the transport
  // closes the stream.
  virtual void receive(const char* data, size_t size) = 0;

  // The stream ended (peer closed, error, or our own close). Called once.
  virtual void end() = 0;

  // Bytes waiting to be sent.
  virtual OutputBuffer& output() = 0;

  // Non-empty once the session wants its stream closed, saying why. The
  // transport checks it after every receive() and every wake of the output,
  // sends what output is pending, then closes the stream.
  virtual std::string failed() const = 0;

  // Whether the transport should read more input now. False pauses reading,
  // which is how a session bounds the memory one peer can make it use: the
  // transport asks again whenever output drains or becomes readable.
  virtual bool wants_input() { return output().room() > 0; }

  // Whether the stream carries this session's own bytes yet: a session that
  // first sets up the stream (TLS: its handshake) says false until that is
  // done, so that whoever connected it (a Connector) does not call a stream
  // up that may still be refused. Safe to call from any thread.
  virtual bool established() const { return true; }
};

MANY_LEVEL_NAMESPACE_END

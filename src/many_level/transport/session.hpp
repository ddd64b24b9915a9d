// The seam between protocol and I/O. A session (host or guest side) is fed
// the bytes that arrive and leaves the bytes to send in its OutputBuffer; it
// owns no socket and no thread. Transports (file descriptors, iostreams, an
// in-memory pair, QIODevice) are thin pumps between a stream and a Session.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "../version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// Outgoing bytes of one session. Thread-safe: a host's worker threads append
// replies while the transport's thread takes them out.
//
// The transport registers a listener to learn that bytes are waiting (called
// without the buffer's lock held, from whichever thread appended), and the
// session registers one to learn that the buffer drained below its low-water
// mark, which is how a host resumes iterators it paused for backpressure.
class OutputBuffer {
 public:
  using Listener = std::function<void()>;

  explicit OutputBuffer(size_t high_water = 1 << 20) : high_water_(high_water) {}

  // Appends bytes produced by `write(std::string&)`, which appends to the
  // buffer directly (frames are encoded in place, never copied twice).
  template <typename Writer>
  void write(Writer&& writer) {
    Listener notify;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return;
      bool was_empty = pending() == 0;
      writer(buffer_);
      if (was_empty && pending() > 0) notify = readable_;
    }
    if (notify) notify();
  }

  // Moves all pending bytes into `out` (cleared first); returns their count.
  size_t take(std::string& out) {
    Listener notify;
    size_t taken;
    {
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
      taken = out.size();
      if (taken > 0) notify = drained_;
    }
    if (notify) notify();
    return taken;
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
    Listener notify;
    {
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
      if (count > 0) notify = drained_;
    }
    if (notify) notify();
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
    Listener notify;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      notify = readable_;
    }
    if (notify) notify();
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

  void on_readable(Listener listener) {
    std::lock_guard<std::mutex> lock(mutex_);
    readable_ = std::move(listener);
  }

  void on_drained(Listener listener) {
    std::lock_guard<std::mutex> lock(mutex_);
    drained_ = std::move(listener);
  }

 private:
  size_t pending() const { return sending_.size() - read_ + buffer_.size(); }

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
  Listener readable_;
  Listener drained_;
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
};

MANY_LEVEL_NAMESPACE_END

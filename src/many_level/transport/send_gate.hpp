// The right to write one descriptor, shared by a transport's thread and the
// threads that send a session's output themselves (SendMode::now): a
// sequential round trip then costs no hand-off to the transport's thread on
// the way out, which on loopback is most of its latency.
//
// Only one thread sends at a time, so the bytes of concurrent writers never
// interleave mid-frame. Writers only ever try the gate: one that finds it
// taken (the transport is sending, or another writer is) wakes the transport
// instead of waiting, so the gate is never waited for under a session's
// lock, and the transport, which does wait for it, holds no session lock
// while it does. After close() no thread touches the descriptor again, so
// the transport may close it (and the number be reused) right after.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>

#include "../version.hpp"
#include "fd.hpp"
#include "session.hpp"
#include "stats.hpp"

MANY_LEVEL_NAMESPACE_BEGIN
namespace detail {

class SendGate {
 public:
  enum class Result {
    all_sent,     // nothing is pending any more
    would_block,  // the descriptor is full: poll it for POLLOUT
    failed,       // a write error; error() says which
  };

  // `stats` must outlive the gate's last send (close() ends them).
  SendGate(int fd, FdKind kind, TransportStats& stats) : fd_(fd), kind_(kind), stats_(stats) {}

  // Whether threads other than the transport's may send: only when a write
  // can never block (a socket, or a descriptor that is non-blocking).
  bool allows_direct_sends() const { return kind_.socket || kind_.nonblocking; }

  // The transport's thread: sends what the descriptor takes now. With
  // `one_write`, at most one write (a blocking pipe takes only PIPE_BUF
  // safely after each poll()).
  Result send(OutputBuffer& output, bool one_write = false) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return Result::all_sent;
    return send_locked(output, one_write);
  }

  // Any thread, as an OutputBuffer direct sender: true only when it sent
  // everything and the transport has no reason to look (its input is not
  // paused, waiting for output to drain). False means: wake the transport.
  bool try_send(OutputBuffer& output) {
    std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock() || closed_) return false;
    return send_locked(output, false) == Result::all_sent && !stats_.input_paused();
  }

  // The transport's thread, before it closes the descriptor: waits for a
  // send in progress, and turns every later one into a no-op.
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }

  // The errno of the last failed write.
  int error() const { return error_.load(); }

 private:
  Result send_locked(OutputBuffer& output, bool one_write) {
    for (;;) {
      std::string_view pending = output.peek();
      if (pending.empty()) return Result::all_sent;
      ssize_t sent = write_some(fd_, kind_, pending.data(), pending.size());
      if (sent > 0) {
        stats_.add_out(static_cast<std::uint64_t>(sent));
        output.consume(static_cast<size_t>(sent));
        if (one_write) return output.size() == 0 ? Result::all_sent : Result::would_block;
        continue;
      }
      if (sent < 0 && would_block(errno)) return Result::would_block;
      error_ = sent < 0 ? errno : EIO;
      return Result::failed;
    }
  }

  std::mutex mutex_;
  const int fd_;
  const FdKind kind_;
  TransportStats& stats_;
  bool closed_ = false;
  std::atomic<int> error_{0};
};

// Lets `output`'s SendMode::now writes be sent through `gate` on the
// writer's thread, when its descriptor allows that.
inline void attach_direct_sends(const std::shared_ptr<SendGate>& gate, OutputBuffer& output) {
  if (gate->allows_direct_sends()) output.on_direct_send([gate, &output] { return gate->try_send(output); });
}

// Undoes attach_direct_sends(). The hook is removed, then the gate closed:
// a writer that copied the hook just before still finds the gate closed, so
// once this returns no other thread writes the descriptor.
inline void detach_direct_sends(SendGate& gate, OutputBuffer& output) {
  output.on_direct_send(nullptr);
  gate.close();
}

}  // namespace detail
MANY_LEVEL_NAMESPACE_END

// Blocking pumps between file descriptors and a Session, one stream each:
// serve_fd() for a host on stdin/stdout or a pipe pair (`--stdio`), and
// FdConnection for a guest that owns one connected socket and a pump thread.
#pragma once

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../version.hpp"
#include "address.hpp"
#include "fd.hpp"
#include "send_gate.hpp"
#include "session.hpp"
#include "stats.hpp"
#include "wakeup.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

struct ServeFdOptions {
  // Counters to fill (optional; must outlive the call).
  TransportStats* stats = nullptr;
  size_t read_chunk = 64 * 1024;
  // How long a failed session's pending output may take to go out.
  std::chrono::milliseconds linger{5000};
};

namespace detail {

// What other threads reach: a stop request and the wakeup that delivers it
// (and the news that output is waiting). Shared, because the output listener
// may fire after the pump returned.
struct FdPumpControl {
  Wakeup wakeup;
  std::atomic<bool> stop{false};

  void request_stop() {
    stop.store(true);
    wakeup.signal();
  }
};

// Pumps until input ends, an I/O error, the session fails, or a stop request;
// returns why. Polls the input (while the session wants input), the output
// (only while bytes wait) and the wakeup, so output written by another
// thread is sent even while no input comes, and failed() is asked on every
// pass, so a wake with nothing to send is enough to close. When the output
// descriptor never blocks (a socket, or non-blocking), other threads'
// SendMode::now writes are sent on their own thread through a SendGate
// shared with the pump (send_gate.hpp). Never changes the descriptors'
// flags (stdin and stdout are shared with other processes); see
// write_some() for how writes stay non-blocking. Neither closes the
// descriptors nor calls end(): the callers do.
inline std::string pump_fd(int read_fd, int write_fd, Session& session,
                           const std::shared_ptr<FdPumpControl>& shared_control, TransportStats& stats,
                           size_t read_chunk, std::chrono::milliseconds linger) {
  using Clock = std::chrono::steady_clock;
  FdPumpControl& control = *shared_control;
  OutputBuffer& output = session.output();
  std::weak_ptr<FdPumpControl> weak = shared_control;
  output.on_readable([weak] {
    if (auto alive = weak.lock()) alive->wakeup.signal();
  });
  const FdKind out_kind = FdKind::of(write_fd);
  // A blocking pipe takes only PIPE_BUF safely after each poll().
  const bool one_write_per_poll = !out_kind.socket && !out_kind.nonblocking;
  auto gate = std::make_shared<SendGate>(write_fd, out_kind, stats);
  attach_direct_sends(gate, output);
  std::vector<char> buffer(std::max<size_t>(read_chunk, 1));

  // Sends what the descriptor takes now; false on a write error (errno set).
  auto send_pending = [&]() -> bool {
    if (gate->send(output, one_write_per_poll) != SendGate::Result::failed) return true;
    errno = gate->error();
    return false;
  };

  // Sends everything pending, stopping early on a write error, a stop
  // request or the deadline (if any); true if all went out.
  auto drain = [&](const Clock::time_point* deadline) -> bool {
    while (output.size() > 0) {
      if (control.stop.load()) return false;
      int timeout = -1;
      if (deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
        if (left <= 0) return false;
        timeout = static_cast<int>(std::min<decltype(left)>(left + 1, 1 << 30));
      }
      pollfd fds[2] = {{control.wakeup.fd(), POLLIN, 0}, {write_fd, POLLOUT, 0}};
      if (::poll(fds, 2, timeout) < 0 && errno != EINTR) return false;
      if (fds[0].revents) control.wakeup.drain();
      if (fds[1].revents && !send_pending()) return false;
    }
    return true;
  };

  std::string reason;
  for (;;) {
    if (control.stop.load()) {
      reason = "closed locally";
      break;
    }
    std::string failure = session.failed();
    if (!failure.empty()) {
      reason = "session failed: " + failure;
      const Clock::time_point deadline = Clock::now() + linger;
      if (!drain(&deadline)) reason += " (output not all sent)";
      break;
    }
    const bool want_write = output.size() > 0;
    const bool reading = session.wants_input();
    stats.set_input_paused(!reading);
    pollfd fds[3];
    nfds_t count = 0;
    fds[count++] = {control.wakeup.fd(), POLLIN, 0};
    int in_index = -1;
    int out_index = -1;
    if (reading) {
      in_index = static_cast<int>(count);
      fds[count++] = {read_fd, POLLIN, 0};
    }
    if (want_write) {
      out_index = static_cast<int>(count);
      fds[count++] = {write_fd, POLLOUT, 0};
    }
    if (::poll(fds, count, -1) < 0) {
      if (errno == EINTR) continue;
      reason = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (fds[0].revents) control.wakeup.drain();
    if (out_index >= 0 && fds[out_index].revents && !send_pending()) {
      reason = std::string("write error: ") + std::strerror(errno);
      break;
    }
    if (in_index < 0 || !fds[in_index].revents) continue;
    ssize_t got = read_some(read_fd, buffer.data(), buffer.size());
    if (got > 0) {
      stats.add_in(static_cast<std::uint64_t>(got));
      try {
        session.receive(buffer.data(), static_cast<size_t>(got));
      } catch (const std::exception& error) {
        reason = std::string("session threw: ") + error.what();
        break;
      }
      continue;  // the next pass asks failed() and sends the replies
    }
    if (got < 0 && (errno == EINTR || would_block(errno))) continue;
    if (got < 0) {
      reason = std::string("read error: ") + std::strerror(errno);
      break;
    }
    // Input ended. What the session has already produced still goes out (a
    // peer may have shut down only its sending side), unless stopped.
    reason = "input ended";
    drain(nullptr);
    break;
  }
  output.on_readable(nullptr);
  detach_direct_sends(*gate, output);
  stats.set_input_paused(false);
  return reason;
}

}  // namespace detail

// Pumps one stream on the calling thread until its input ends (or a read or
// write error, or the session fails); then calls session.end() and returns
// why it stopped. Output pending when input ends is written first (waiting
// as long as that takes); a failed session's, for at most options.linger.
// Output that other threads write meanwhile is sent at once. Reading pauses
// while session.wants_input() is false. The descriptors stay open (the
// caller owns them); read_fd may equal write_fd (a socket). Writes never
// raise SIGPIPE.
inline std::string serve_fd(int read_fd, int write_fd, Session& session, const ServeFdOptions& options = {}) {
  auto control = std::make_shared<detail::FdPumpControl>();
  TransportStats local_stats;
  TransportStats& stats = options.stats ? *options.stats : local_stats;
  std::string reason =
      detail::pump_fd(read_fd, write_fd, session, control, stats, options.read_chunk, options.linger);
  session.end();
  return reason;
}

// A guest's connection: owns a connected socket and a thread that pumps it
// to and from `session`, which must outlive this object.
//
// Threads: the pump thread calls the session (receive, end, failed) and the
// close callback. close() is thread-safe; from any other thread it returns
// after the socket is closed, session.end() was called and the callback ran.
// Called on the pump thread (from the session or the callback), it returns
// at once and the pump ends right after. Destroying the object closes it.
//
// As serve_fd: reading pauses while session.wants_input() is false, and a
// failed session's pending output goes out (for at most 5 s) before closing.
class FdConnection {
 public:
  using CloseCallback = std::function<void(const std::string& reason)>;

  FdConnection() = default;

  FdConnection(UniqueFd fd, Session& session, CloseCallback on_close = nullptr) {
    if (!fd) throw Error(codes::invalid_argument, "FdConnection needs an open descriptor");
    state_ = std::make_shared<State>();
    state_->session = &session;
    state_->on_close = std::move(on_close);
    try {
      state_->peer = peer_address(fd.get()).to_string();
    } catch (const Error&) {
      state_->peer = "fd:" + std::to_string(fd.get());
    }
    state_->fd = std::move(fd);
    thread_ = std::thread([state = state_] { pump(*state); });
  }

  FdConnection(FdConnection&&) noexcept = default;
  FdConnection& operator=(FdConnection&& other) noexcept {
    if (this != &other) {
      close();
      state_ = std::move(other.state_);
      thread_ = std::move(other.thread_);
    }
    return *this;
  }
  FdConnection(const FdConnection&) = delete;
  FdConnection& operator=(const FdConnection&) = delete;

  ~FdConnection() { close(); }

  // Drops the connection on purpose (the close reason is "closed locally").
  void close() {
    if (!state_) return;
    state_->control->request_stop();
    if (!thread_.joinable()) return;
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // the pump holds its own reference to the state
    } else {
      thread_.join();
    }
  }

  bool is_open() const { return state_ && state_->open.load(); }

  // "tcp://127.0.0.1:8000", "unix:/run/db.sock", or "fd:N"; empty when
  // default-constructed.
  const std::string& peer() const {
    static const std::string none;
    return state_ ? state_->peer : none;
  }

  const TransportStats& stats() const {
    static const TransportStats none;
    return state_ ? state_->stats : none;
  }

 private:
  struct State {
    std::shared_ptr<detail::FdPumpControl> control = std::make_shared<detail::FdPumpControl>();
    UniqueFd fd;
    Session* session = nullptr;
    CloseCallback on_close;
    TransportStats stats;
    std::atomic<bool> open{true};
    std::string peer;
  };

  static void pump(State& state) {
    std::string reason = detail::pump_fd(state.fd.get(), state.fd.get(), *state.session, state.control,
                                         state.stats, 64 * 1024, std::chrono::seconds(5));
    // The socket first, so the peer sees the end before anything below runs.
    state.fd.reset();
    state.open.store(false);
    try {
      state.session->end();
    } catch (...) {
    }
    if (state.on_close) {
      try {
        state.on_close(reason);
      } catch (...) {
      }
    }
  }

  std::shared_ptr<State> state_;
  std::thread thread_;
};

// Connects (see connect_to) and starts pumping.
inline FdConnection connect_fd(const Address& address, Session& session,
                               FdConnection::CloseCallback on_close = nullptr,
                               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return FdConnection(connect_to(address, timeout), session, std::move(on_close));
}

inline FdConnection connect_fd(std::string_view address, Session& session,
                               FdConnection::CloseCallback on_close = nullptr,
                               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return connect_fd(parse_address(address), session, std::move(on_close), timeout);
}

MANY_LEVEL_NAMESPACE_END

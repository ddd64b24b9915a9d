// One thread, one poll() over many connections: the host's transport. Each
// connection pumps bytes between a non-blocking socket and its Session, and
// stops reading while the session does not want input (by default: while its
// output is at its high-water mark), so a guest that never reads cannot make
// the host buffer without bound.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
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

// Who a connection is, for logs and the Inspector.
struct ConnectionInfo {
  std::uint64_t id = 0;  // unique within one EventLoop, never reused
  std::string peer;      // "tcp://127.0.0.1:40522"; "unix:" for an unnamed unix client
  std::string local;     // the listening address it came in on
};

struct ConnectionSnapshot {
  ConnectionInfo info;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  bool input_paused = false;
};

struct EventLoopOptions {
  // Bytes read from a socket and fed to its session at once. A session's
  // output can overshoot its high-water mark by what one such chunk makes.
  size_t read_chunk = 64 * 1024;
  // How long a failed session's pending output may take to go out before
  // its connection is closed anyway (a peer that stopped reading).
  std::chrono::milliseconds linger{5000};
};

// Threads:
// - run() drives everything on the calling thread until stop(); start() does
//   the same on a thread of the loop's own. Sessions (receive, end, failed,
//   wants_input), session factories and the connect/disconnect callbacks are all called on
//   that thread, never with a lock of the loop held. They must not block: one
//   loop serves every connection.
// - Thread-safe, from any thread (and from callbacks): post, stop, listen,
//   stop_listening, add_connection, close_connection, connection_count,
//   connections, stats. The ones that change the loop take effect on the
//   loop's thread, soon after they return.
// - A session's output may be written from any thread. A SendMode::now
//   write to a socket is sent on the writing thread when the connection's
//   SendGate is free (send_gate.hpp); otherwise the loop is woken
//   (OutputBuffer::on_readable) and sends it.
// - on_connect/on_disconnect are set before run()/start().
// - The destructor stops the loop, runs tasks still queued, then closes every
//   connection (each session's end() is called, on the destroying thread).
//   Never destroy the loop from its own thread, nor while another thread is
//   still inside run().
//
// A connection ends on EOF, a read or write error, a session that reports
// failed(), or close_connection(): its socket is closed, then its session's
// end() is called exactly once, then on_disconnect. failed() is asked after
// every receive() and every wake of the output; a failed session's pending
// output is still sent (for at most `linger`), with no more input read.
// Reading pauses while the session's wants_input() is false and is asked
// again whenever the loop has sent output or was woken. The loop does not
// close the session's OutputBuffer; ending the session is its own business.
class EventLoop {
 public:
  using SessionFactory = std::function<std::shared_ptr<Session>(const ConnectionInfo&)>;
  using ConnectCallback = std::function<void(const ConnectionInfo&)>;
  using DisconnectCallback = std::function<void(const ConnectionInfo&, const std::string& reason)>;

  EventLoop() : EventLoop(EventLoopOptions{}) {}
  explicit EventLoop(EventLoopOptions options)
      : options_(options), core_(std::make_shared<Core>()), read_buffer_(std::max<size_t>(options.read_chunk, 1)) {}

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  ~EventLoop() {
    stop();
    if (thread_.joinable()) thread_.join();
    handle_wakeup();
    std::vector<Connection*> open;
    for (auto& entry : connections_) open.push_back(entry.second.get());
    for (Connection* connection : open) close(*connection, "event loop destroyed");
    closed_.clear();
    listeners_.clear();
  }

  void on_connect(ConnectCallback callback) { on_connect_ = std::move(callback); }
  void on_disconnect(DisconnectCallback callback) { on_disconnect_ = std::move(callback); }

  // Binds and listens at once, on the calling thread (so errors throw here),
  // and returns the address actually bound: listen on port 0 and read the
  // port from the result. Each accepted connection gets a session from
  // `factory`; one that throws or returns null refuses that connection.
  // A tls:// address is refused: plain sessions there would serve clear text
  // where TLS was asked for. listen_tls() (transport/tls.hpp) serves it.
  Address listen(const Address& address, SessionFactory factory, int backlog = SOMAXCONN) {
    if (address.tls) {
      throw Error(codes::invalid_argument,
                  address.to_string() + " wants TLS: listen with listen_tls(), which wraps every session in it");
    }
    return listen_secured(address, std::move(factory), backlog);
  }

  // listen(), taking tls:// addresses too: for code whose factory makes
  // sessions that secure their own stream (listen_tls()), so that the
  // connections' addresses say tls://.
  Address listen_secured(const Address& address, SessionFactory factory, int backlog = SOMAXCONN) {
    auto listener = std::make_shared<Listener>(Listener{ListeningSocket::open(address, backlog), std::move(factory)});
    Address bound = listener->socket.address();
    post([this, listener] { listeners_.push_back(listener); });
    return bound;
  }

  Address listen(std::string_view address, SessionFactory factory, int backlog = SOMAXCONN) {
    return listen(parse_address(address), std::move(factory), backlog);
  }

  // Closes every listening socket; open connections carry on.
  void stop_listening() {
    post([this] { listeners_.clear(); });
  }

  // Adopts a connected socket (or any stream fd; it is made non-blocking) with
  // its session, e.g. a guest's connection. Returns the connection's id.
  std::uint64_t add_connection(UniqueFd fd, std::shared_ptr<Session> session, std::string peer = {}) {
    if (!fd || !session) throw Error(codes::invalid_argument, "add_connection needs an fd and a session");
    detail::set_nonblocking(fd.get());
    ConnectionInfo info;
    info.id = next_id_.fetch_add(1);
    info.peer = std::move(peer);
    if (info.peer.empty()) {
      try {
        info.peer = peer_address(fd.get()).to_string();
      } catch (const Error&) {
        info.peer = "fd:" + std::to_string(fd.get());
      }
    }
    auto owned = std::make_shared<UniqueFd>(std::move(fd));
    const std::uint64_t id = info.id;
    post([this, owned, session, info]() mutable { adopt(std::move(*owned), std::move(session), std::move(info)); });
    return id;
  }

  // Closes a connection as if it had ended (end(), then on_disconnect with
  // reason "closed locally"). Unknown or already closed ids are ignored.
  void close_connection(std::uint64_t id) {
    post([this, id] {
      auto found = connections_.find(id);
      if (found != connections_.end()) close(*found->second, "closed locally");
    });
  }

  // Runs `task` on the loop's thread, in order of posting. A task that throws
  // is dropped with its exception: it must not take every connection down.
  void post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(core_->mutex);
      core_->tasks.push_back(std::move(task));
    }
    core_->wake();
  }

  // Runs the loop on the calling thread until stop(). A stop() that came
  // before run() makes it return at once.
  void run() {
    if (running_.exchange(true)) throw Error(codes::invalid_argument, "EventLoop is already running");
    loop_thread_.store(std::this_thread::get_id());
    try {
      while (!stop_requested_.load()) iterate();
    } catch (...) {
      finish_run();
      throw;
    }
    finish_run();
  }

  // Runs the loop on a thread of its own (joined by the destructor).
  void start() {
    if (thread_.joinable()) throw Error(codes::invalid_argument, "EventLoop was already started");
    thread_ = std::thread([this] { run(); });
  }

  void stop() {
    stop_requested_.store(true);
    core_->wake();
  }

  bool in_loop_thread() const { return loop_thread_.load() == std::this_thread::get_id(); }

  size_t connection_count() const { return connection_count_.load(); }

  std::vector<ConnectionSnapshot> connections() const {
    std::lock_guard<std::mutex> lock(registry_mutex_);
    std::vector<ConnectionSnapshot> result;
    result.reserve(registry_.size());
    for (const auto& entry : registry_) {
      const TransportStats& stats = *entry.second.stats;
      result.push_back({entry.second.info, stats.bytes_in(), stats.bytes_out(), stats.input_paused()});
    }
    return result;
  }

  // Live counters of an open connection (null for an id not open, or not yet
  // adopted). Whoever holds them can still read them after it closed.
  std::shared_ptr<const TransportStats> stats(std::uint64_t id) const {
    std::lock_guard<std::mutex> lock(registry_mutex_);
    auto found = registry_.find(id);
    return found == registry_.end() ? nullptr : found->second.stats;
  }

 private:
  // What other threads reach: held by shared_ptr so that an output listener
  // that fires after a connection (or the loop) is gone finds nothing to
  // touch but this.
  struct Core {
    detail::Wakeup wakeup;
    std::mutex mutex;
    std::vector<std::function<void()>> tasks;
    std::vector<std::uint64_t> output_ready;
    std::atomic<bool> wake_pending{false};

    // One eventfd write per loop iteration at most, however many outputs
    // become readable.
    void wake() {
      if (!wake_pending.exchange(true)) wakeup.signal();
    }

    void output_readable(std::uint64_t id) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        output_ready.push_back(id);
      }
      wake();
    }
  };

  struct Listener {
    ListeningSocket socket;
    SessionFactory factory;
  };

  using Clock = std::chrono::steady_clock;

  struct Connection {
    ConnectionInfo info;
    UniqueFd fd;
    detail::FdKind kind;
    std::shared_ptr<Session> session;
    std::shared_ptr<TransportStats> stats;
    // Shared with the threads that send this session's output themselves.
    std::shared_ptr<detail::SendGate> gate;
    bool paused = false;      // not reading: the session wants no input now
    bool want_write = false;  // output pending and the socket was full
    bool closed = false;
    std::string failure;      // set: sending what is left, then closing
    Clock::time_point linger_until;
  };

  struct RegistryEntry {
    ConnectionInfo info;
    std::shared_ptr<TransportStats> stats;
  };

  static constexpr int max_reads_per_wakeup = 16;  // fairness between busy connections
  static constexpr int max_accepts_per_wakeup = 64;
  static constexpr int accept_retry_ms = 1000;  // after running out of descriptors

  void finish_run() {
    stop_requested_.store(false);
    loop_thread_.store(std::thread::id());
    running_.store(false);
  }

  void iterate() {
    pollfds_.clear();
    polled_.clear();
    pollfds_.push_back({core_->wakeup.fd(), POLLIN, 0});
    const size_t listeners_begin = pollfds_.size();
    const size_t listener_count = accept_paused_ ? 0 : listeners_.size();
    for (size_t i = 0; i < listener_count; ++i) pollfds_.push_back({listeners_[i]->socket.fd(), POLLIN, 0});
    const size_t connections_begin = pollfds_.size();
    int timeout = accept_paused_ ? accept_retry_ms : -1;
    const Clock::time_point now = Clock::now();
    bool lingering = false;
    for (auto& entry : connections_) {
      Connection& connection = *entry.second;
      if (!connection.failure.empty()) {
        lingering = true;
        timeout = earlier(timeout, connection.linger_until - now);
      } else if (connection.paused) {
        // Asked on every pass, not only after sends: a session may change
        // its mind for reasons of its own (a request finished elsewhere).
        update_paused(connection);
      }
      short events = static_cast<short>((connection.paused ? 0 : POLLIN) | (connection.want_write ? POLLOUT : 0));
      pollfds_.push_back({connection.fd.get(), events, 0});
      polled_.push_back(&connection);
    }

    int ready = ::poll(pollfds_.data(), pollfds_.size(), timeout);
    if (ready < 0) {
      if (errno == EINTR) return;
      throw detail::errno_error("poll");
    }
    if (ready == 0) accept_paused_ = false;

    for (size_t i = 0; i < polled_.size(); ++i) {
      const short revents = pollfds_[connections_begin + i].revents;
      if (revents == 0) continue;
      Connection& connection = *polled_[i];
      if (connection.closed) continue;
      if (revents & POLLNVAL) {
        close(connection, "invalid descriptor");
        continue;
      }
      if ((revents & (POLLOUT | POLLERR)) && !flush(connection)) continue;
      if (revents & (POLLIN | POLLHUP | POLLERR)) {
        if (!connection.paused) {
          read_from(connection);
        } else if (revents & (POLLHUP | POLLERR)) {
          close(connection, connection.failure.empty() ? "hang up" : connection.failure);
        }
      }
    }
    // listeners_ changes only in tasks, which run last, so the indices of
    // the poll set still match here.
    for (size_t i = 0; i < listener_count; ++i) {
      if (pollfds_[listeners_begin + i].revents & POLLIN) accept_all(listeners_[i]);
    }
    if (pollfds_[0].revents & POLLIN) handle_wakeup();
    if (lingering) close_lingering();
    closed_.clear();
  }

  void handle_wakeup() {
    // Drain, then clear the flag, then take the queues: a wake() that lands
    // after the take either signals again or follows one that did.
    core_->wakeup.drain();
    core_->wake_pending.store(false);
    {
      std::lock_guard<std::mutex> lock(core_->mutex);
      tasks_.swap(core_->tasks);
      ready_.swap(core_->output_ready);
    }
    for (auto& task : tasks_) {
      try {
        task();
      } catch (...) {
      }
    }
    tasks_.clear();
    for (std::uint64_t id : ready_) {
      auto found = connections_.find(id);
      if (found == connections_.end()) continue;
      Connection& connection = *found->second;
      // A wake may carry no bytes at all: a session asking to be closed.
      if (!check_failed(connection)) continue;
      flush(connection);
    }
    ready_.clear();
  }

  // Milliseconds for poll() until `left` is over, or the earlier `timeout`.
  static int earlier(int timeout, Clock::duration left) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(left).count() + 1;
    int bounded = static_cast<int>(std::max<decltype(ms)>(0, std::min<decltype(ms)>(ms, 1 << 30)));
    return timeout < 0 ? bounded : std::min(timeout, bounded);
  }

  void close_lingering() {
    const Clock::time_point now = Clock::now();
    std::vector<Connection*> expired;
    for (auto& entry : connections_) {
      Connection& connection = *entry.second;
      if (!connection.failure.empty() && connection.linger_until <= now) expired.push_back(&connection);
    }
    for (Connection* connection : expired) close(*connection, connection->failure + " (output not all sent)");
  }

  void accept_all(const std::shared_ptr<Listener>& listener) {
    for (int i = 0; i < max_accepts_per_wakeup; ++i) {
      sockaddr_storage storage{};
      socklen_t length = sizeof storage;
      int fd = ::accept4(listener->socket.fd(), reinterpret_cast<sockaddr*>(&storage), &length,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        // Out of descriptors: the pending connection would keep the listener
        // readable and spin the loop, so stop accepting until one closes.
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) accept_paused_ = true;
        return;
      }
      UniqueFd owned(fd);
      ConnectionInfo info;
      info.id = next_id_.fetch_add(1);
      info.local = listener->socket.address().to_string();
      try {
        info.peer = address_of(reinterpret_cast<sockaddr*>(&storage), length).to_string();
      } catch (const Error&) {
        info.peer = "unknown";
      }
      if (listener->socket.address().is_tcp()) detail::set_no_delay(fd);
      std::shared_ptr<Session> session;
      try {
        session = listener->factory(info);
      } catch (...) {
      }
      if (session) adopt(std::move(owned), std::move(session), std::move(info));
    }
  }

  void adopt(UniqueFd fd, std::shared_ptr<Session> session, ConnectionInfo info) {
    auto owned = std::make_unique<Connection>();
    Connection& connection = *owned;
    connection.info = std::move(info);
    connection.kind = detail::FdKind::of(fd.get());
    connection.fd = std::move(fd);
    connection.session = std::move(session);
    connection.stats = std::make_shared<TransportStats>();
    connection.gate = std::make_shared<detail::SendGate>(connection.fd.get(), connection.kind, *connection.stats);
    const std::uint64_t id = connection.info.id;
    {
      std::lock_guard<std::mutex> lock(registry_mutex_);
      registry_[id] = RegistryEntry{connection.info, connection.stats};
    }
    connection_count_.fetch_add(1);
    std::weak_ptr<Core> core = core_;
    OutputBuffer& output = connection.session->output();
    output.on_readable([core, id] {
      if (auto alive = core.lock()) alive->output_readable(id);
    });
    detail::attach_direct_sends(connection.gate, output);
    connections_.emplace(id, std::move(owned));
    if (on_connect_) {
      try {
        on_connect_(connection.info);
      } catch (...) {
      }
    }
    // Output written before the listener was registered raised no signal.
    flush(connection);
  }

  void read_from(Connection& connection) {
    for (int round = 0; round < max_reads_per_wakeup; ++round) {
      if (!update_paused(connection)) return;
      ssize_t got = detail::read_some(connection.fd.get(), read_buffer_.data(), read_buffer_.size());
      if (got > 0) {
        connection.stats->add_in(static_cast<std::uint64_t>(got));
        try {
          connection.session->receive(read_buffer_.data(), static_cast<size_t>(got));
        } catch (const std::exception& error) {
          close(connection, std::string("session threw: ") + error.what());
          return;
        } catch (...) {
          close(connection, "session threw");
          return;
        }
        if (!check_failed(connection) || !flush(connection)) return;
        if (static_cast<size_t>(got) < read_buffer_.size()) return;  // likely drained; poll tells if not
        continue;
      }
      if (got == 0) {
        flush(connection);  // best effort: the peer may only have shut down its sending side
        if (!connection.closed) close(connection, "closed by peer");
        return;
      }
      if (detail::would_block(errno)) return;
      close(connection, std::string("read error: ") + std::strerror(errno));
      return;
    }
  }

  // Sends what the socket takes now; false if that closed the connection.
  bool flush(Connection& connection) {
    auto result = connection.gate->send(connection.session->output());
    if (result == detail::SendGate::Result::failed) {
      close(connection, std::string("write error: ") + std::strerror(connection.gate->error()));
      return false;
    }
    connection.want_write = result == detail::SendGate::Result::would_block;
    if (!connection.failure.empty()) {
      if (connection.want_write) return true;
      close(connection, connection.failure);  // all sent
      return false;
    }
    if (connection.paused) update_paused(connection);
    return true;
  }

  // False once the session has failed: then no more input is read, what it
  // has to send goes out, and the connection closes.
  bool check_failed(Connection& connection) {
    if (!connection.failure.empty()) return false;
    std::string failure = connection.session->failed();
    if (failure.empty()) return true;
    connection.failure = "session failed: " + failure;
    connection.linger_until = Clock::now() + options_.linger;
    connection.paused = true;
    flush(connection);
    return false;
  }

  // Asks the session whether it wants input; true if reading goes on.
  bool update_paused(Connection& connection) {
    bool paused = !connection.failure.empty() || !connection.session->wants_input();
    connection.paused = paused;
    connection.stats->set_input_paused(paused);
    return !paused;
  }

  // The one way a connection ends, so end() runs exactly once. The object
  // lives on in closed_ until the iteration is over: the poll set still
  // points at it.
  void close(Connection& connection, const std::string& reason) {
    if (connection.closed) return;
    connection.closed = true;
    connection.session->output().on_readable(nullptr);
    detail::detach_direct_sends(*connection.gate, connection.session->output());
    connection.fd.reset();
    const std::uint64_t id = connection.info.id;
    {
      std::lock_guard<std::mutex> lock(registry_mutex_);
      registry_.erase(id);
    }
    connection_count_.fetch_sub(1);
    auto found = connections_.find(id);
    closed_.push_back(std::move(found->second));
    connections_.erase(found);
    accept_paused_ = false;  // a descriptor was freed
    try {
      connection.session->end();
    } catch (...) {
    }
    if (on_disconnect_) {
      try {
        on_disconnect_(connection.info, reason);
      } catch (...) {
      }
    }
  }

  EventLoopOptions options_;
  std::shared_ptr<Core> core_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<std::thread::id> loop_thread_{};
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<size_t> connection_count_{0};

  ConnectCallback on_connect_;
  DisconnectCallback on_disconnect_;

  mutable std::mutex registry_mutex_;
  std::unordered_map<std::uint64_t, RegistryEntry> registry_;

  // Touched only by the loop's thread.
  std::vector<char> read_buffer_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<std::unique_ptr<Connection>> closed_;
  std::vector<pollfd> pollfds_;
  std::vector<Connection*> polled_;
  std::vector<std::function<void()>> tasks_;
  std::vector<std::uint64_t> ready_;
  bool accept_paused_ = false;
};

MANY_LEVEL_NAMESPACE_END

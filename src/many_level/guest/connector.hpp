// Keeps a guest connected to a host at an address (tcp://HOST:PORT or
// unix:PATH): connects, and after every drop reconnects with exponential
// backoff. With a retrying guest, users see no interruption at all; this is
// the library's answer to the reconnect loop many-level's README leaves to
// its users.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "../error.hpp"
#include "../version.hpp"
#include "../transport/address.hpp"
#include "../transport/fd_transport.hpp"
#include "guest.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

struct ConnectorEvent {
  enum class Kind { connected, disconnected, failed } kind;
  std::string address;
  // connected: the stream is up and set up (TLS: handshake done);
  // failed: no connection, or one refused while being set up (TLS handshake);
  // disconnected: a connection that was up dropped.
  std::string detail;       // why it failed or dropped
  uint64_t connects = 0;    // successful connections so far
  std::chrono::milliseconds next_attempt{0};  // for failed and disconnected
};

struct ConnectorOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds initial_backoff{50};
  std::chrono::milliseconds max_backoff{5000};
  // Called on the connector's thread; must not block for long.
  std::function<void(const ConnectorEvent&)> on_event;
  // Wraps each new stream's session before it is pumped; a tls:// address
  // needs one (transport/tls.hpp: wrap_session = tls_wrapper(context)).
  std::function<std::shared_ptr<Session>(std::shared_ptr<Session>, const Address&)> wrap_session;
};

class Connector {
 public:
  // Starts connecting at once, on a thread of its own. `guest` must outlive
  // the connector.
  Connector(Guest& guest, Address address, ConnectorOptions options = {})
      : guest_(guest), address_(std::move(address)), options_(std::move(options)) {
    if (address_.tls && !options_.wrap_session) {
      throw Error(codes::invalid_argument, address_.to_string() + " wants TLS: set ConnectorOptions::wrap_session");
    }
    thread_ = std::thread([this] { run(); });
  }

  Connector(Guest& guest, std::string_view address, ConnectorOptions options = {})
      : Connector(guest, parse_address(address), std::move(options)) {}

  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  ~Connector() { stop(); }

  // Stops reconnecting and drops the current connection. Idempotent.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  // Waits until a connection is up; false on timeout or after stop().
  bool wait_connected(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return connected_ || stopping_; }) && connected_;
  }

  bool connected() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return connected_;
  }

  uint64_t connects() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return connects_;
  }

  const Address& address() const { return address_; }

 private:
  void run() {
    auto backoff = options_.initial_backoff;
    while (!stopping()) {
      // Declared before the connection: its close callback writes them.
      bool dropped = false;
      std::string reason;
      std::shared_ptr<Session> session;
      FdConnection connection;
      try {
        auto fd = connect_to(address_, options_.connect_timeout);
        session = guest_.connect();
        if (options_.wrap_session) session = options_.wrap_session(session, address_);
        connection = FdConnection(std::move(fd), *session, [&, this](const std::string& why) {
          std::lock_guard<std::mutex> lock(mutex_);
          dropped = true;
          reason = why;
          changed_.notify_all();
        });
        if (!wait_established(*session, dropped)) {
          // Refused while it was being set up (a TLS handshake that failed):
          // an attempt that failed, not a connection that dropped.
          connection.close();
          if (stopping()) return;
          emit({ConnectorEvent::Kind::failed, address_.to_string(), reason, connects(), backoff});
        } else {
          {
            std::unique_lock<std::mutex> lock(mutex_);
            connected_ = true;
            ++connects_;
          }
          changed_.notify_all();
          backoff = options_.initial_backoff;
          emit({ConnectorEvent::Kind::connected, address_.to_string(), "", connects(), {}});
          {
            std::unique_lock<std::mutex> lock(mutex_);
            changed_.wait(lock, [&] { return dropped || stopping_; });
            connected_ = false;
          }
          connection.close();  // joins the pump; the guest has seen end()
          if (stopping()) return;
          emit({ConnectorEvent::Kind::disconnected, address_.to_string(), reason, connects(), backoff});
        }
      } catch (const Error& e) {
        if (e.is(codes::database_not_open)) return;  // the guest was closed
        if (session && !connection.is_open()) session->end();
        emit({ConnectorEvent::Kind::failed, address_.to_string(), e.message(), connects(), backoff});
      } catch (const std::exception& e) {
        if (session && !connection.is_open()) session->end();
        emit({ConnectorEvent::Kind::failed, address_.to_string(), e.what(), connects(), backoff});
      }
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait_for(lock, backoff, [&] { return stopping_; });
      backoff = std::min(options_.max_backoff, backoff * 2);
    }
  }

  // Waits until `session` says its stream is set up (Session::established:
  // at once, but for TLS, whose handshake must finish); false if the stream
  // dropped first or the connector is stopping. The handshake runs on the
  // pump's thread, which does not signal it: a short poll.
  bool wait_established(const Session& session, const bool& dropped) {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!dropped && !stopping_ && !session.established()) {
      changed_.wait_for(lock, std::chrono::milliseconds(2));
    }
    return !dropped && !stopping_;
  }

  bool stopping() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  }

  void emit(const ConnectorEvent& event) {
    if (options_.on_event) options_.on_event(event);
  }

  Guest& guest_;
  Address address_;
  ConnectorOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;
  bool connected_ = false;
  uint64_t connects_ = 0;
  std::thread thread_;
};

MANY_LEVEL_NAMESPACE_END

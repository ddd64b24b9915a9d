#include "guest_connector.h"

#include <QLocalSocket>
#include <QTcpSocket>

#include "many_level/guest/guest.hpp"
#include "session_pump.h"

namespace inspector {

// A stream that lasted this long resets the backoff; one that dies sooner
// (a host that accepts and drops) keeps it growing.
static constexpr qint64 kStableConnectionMs = 2000;

GuestConnector::GuestConnector(many_level::Guest& guest, Endpoint endpoint, QObject* parent)
    : QObject(parent), guest_(guest), endpoint_(std::move(endpoint)), retry_timer_(this), connect_timer_(this) {
  retry_timer_.setSingleShot(true);
  connect_timer_.setSingleShot(true);
  connect(&retry_timer_, &QTimer::timeout, this, &GuestConnector::attempt);
  connect(&connect_timer_, &QTimer::timeout, this, [this] { onAttemptFailed(QStringLiteral("timed out")); });
}

GuestConnector::~GuestConnector() {
  stopped_ = true;
  delete pump_;  // ends the guest's stream if it is still attached
  pump_ = nullptr;
  delete socket_;
  socket_ = nullptr;
}

void GuestConnector::setBackoff(int initial_ms, int max_ms) {
  initial_delay_ms_ = std::max(1, initial_ms);
  max_delay_ms_ = std::max(initial_delay_ms_, max_ms);
  delay_ms_ = initial_delay_ms_;
}

void GuestConnector::start() {
  if (!stopped_) return;
  stopped_ = false;
  attempt_ = 0;
  delay_ms_ = initial_delay_ms_;
  attempt();
}

void GuestConnector::stop() {
  if (stopped_) return;
  stopped_ = true;
  retry_timer_.stop();
  connect_timer_.stop();
  if (pump_) {
    pump_->close(QStringLiteral("disconnected by the user"));  // reports through onStreamEnded
  } else {
    discardSocket();
  }
  report(ConnectionEvent::Kind::stopped, QStringLiteral("no more attempts"));
}

void GuestConnector::attempt() {
  if (stopped_) return;
  if (endpoint_.tls && !wrap_) {
    stopped_ = true;
    report(ConnectionEvent::Kind::stopped, QStringLiteral("%1 wants TLS, and no TLS is set up").arg(endpoint_.toString()));
    return;
  }
  discardSocket();
  ++attempt_;
  report(ConnectionEvent::Kind::connecting);
  if (endpoint_.kind == Endpoint::Kind::local) {
    auto* socket = new QLocalSocket(this);
    socket_ = socket;
    connect(socket, &QLocalSocket::connected, this, &GuestConnector::onSocketConnected);
    connect(socket, &QLocalSocket::errorOccurred, this, [this, socket](QLocalSocket::LocalSocketError) {
      if (socket == socket_ && !pump_) onAttemptFailed(socket->errorString());
    });
    socket->connectToServer(endpoint_.path);
  } else {
    auto* socket = new QTcpSocket(this);
    socket_ = socket;
    connect(socket, &QTcpSocket::connected, this, &GuestConnector::onSocketConnected);
    connect(socket, &QTcpSocket::errorOccurred, this, [this, socket](QAbstractSocket::SocketError) {
      if (socket == socket_ && !pump_) onAttemptFailed(socket->errorString());
    });
    socket->connectToHost(endpoint_.host, endpoint_.port);
  }
  connect_timer_.start(connect_timeout_ms_);
}

void GuestConnector::onSocketConnected() {
  connect_timer_.stop();
  if (stopped_ || pump_) return;
  if (auto* tcp = qobject_cast<QTcpSocket*>(socket_)) tcp->setSocketOption(QAbstractSocket::LowDelayOption, 1);
  std::shared_ptr<many_level::Session> session;
  try {
    session = guest_.connect();
  } catch (const many_level::Error& e) {
    // The guest is closed (or, oddly, still has a stream): nothing to retry for.
    discardSocket();
    stopped_ = true;
    report(ConnectionEvent::Kind::stopped, QString::fromStdString(e.what()));
    return;
  }
  if (wrap_) {
    try {
      auto wrapped = wrap_(session, endpoint_.toAddress());
      if (!wrapped) throw many_level::Error(many_level::codes::invalid_argument, "the stream could not be wrapped");
      session = std::move(wrapped);
    } catch (const std::exception& e) {
      session->end();
      discardSocket();
      stopped_ = true;
      report(ConnectionEvent::Kind::stopped, QStringLiteral("cannot set up TLS: %1").arg(QString::fromUtf8(e.what())));
      return;
    }
  }
  pump_ = new SessionPump(socket_, std::move(session), this);
  connect(pump_, &SessionPump::finished, this, &GuestConnector::onStreamEnded);
  connected_for_.start();
  report(ConnectionEvent::Kind::connected);
  attempt_ = 0;
  pump_->start();
}

void GuestConnector::onAttemptFailed(const QString& reason) {
  connect_timer_.stop();
  if (pump_) return;
  discardSocket();
  if (stopped_) return;
  report(ConnectionEvent::Kind::attempt_failed, reason);
  scheduleRetry();
}

void GuestConnector::onStreamEnded(const QString& reason) {
  pump_->deleteLater();
  pump_ = nullptr;
  discardSocket();
  report(ConnectionEvent::Kind::disconnected, reason);
  if (connected_for_.elapsed() >= kStableConnectionMs) delay_ms_ = initial_delay_ms_;
  if (!stopped_) scheduleRetry();
}

void GuestConnector::scheduleRetry() {
  report(ConnectionEvent::Kind::retry_scheduled, {}, delay_ms_);
  retry_timer_.start(delay_ms_);
  delay_ms_ = std::min(max_delay_ms_, delay_ms_ * 2);
}

void GuestConnector::discardSocket() {
  if (!socket_) return;
  socket_->disconnect(this);
  if (auto* tcp = qobject_cast<QTcpSocket*>(socket_)) tcp->abort();
  if (auto* local = qobject_cast<QLocalSocket*>(socket_)) local->abort();
  socket_->deleteLater();
  socket_ = nullptr;
}

void GuestConnector::report(ConnectionEvent::Kind kind, const QString& text, int delay_ms) {
  ConnectionEvent e;
  e.kind = kind;
  e.address = endpoint_.toString();
  e.text = text;
  e.attempt = attempt_;
  e.delay_ms = delay_ms;
  emit event(e);
}

}  // namespace inspector

// Keeps a Guest connected: opens a socket to the endpoint, attaches it to
// the guest (Guest::connect) through a SessionPump, and when the stream ends
// or an attempt fails, tries again after a backoff (doubling up to a cap).
// The guest is built with retry, so requests and iterators wait across the
// gap and resume on the next stream. Lives on the network thread: every
// method but the constructor runs there (call them queued).
#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QPointer>
#include <QTimer>

#include "connection_event.h"
#include "connect_settings.h"
#include "endpoint.h"

#include "many_level/guest/guest.hpp"

class QIODevice;

namespace inspector {

class SessionPump;

class GuestConnector : public QObject {
  Q_OBJECT

 public:
  GuestConnector(many_level::Guest& guest, Endpoint endpoint, QObject* parent = nullptr);
  ~GuestConnector() override;

  void setBackoff(int initial_ms, int max_ms);
  void setConnectTimeout(int ms) { connect_timeout_ms_ = ms; }
  // Wraps each stream the guest gets (TLS for a tls:// endpoint, which needs
  // one); called before start().
  void setSessionWrapper(SessionWrapper wrap) { wrap_ = std::move(wrap); }

 public slots:
  void start();
  // No more attempts; the stream (if any) is closed.
  void stop();

 signals:
  void event(const inspector::ConnectionEvent& event);

 private:
  void attempt();
  void onSocketConnected();
  void onAttemptFailed(const QString& reason);
  void onStreamEnded(const QString& reason);
  void scheduleRetry();
  void discardSocket();
  void report(ConnectionEvent::Kind kind, const QString& text = {}, int delay_ms = 0);

  many_level::Guest& guest_;
  Endpoint endpoint_;
  SessionWrapper wrap_;
  QIODevice* socket_ = nullptr;
  SessionPump* pump_ = nullptr;
  QTimer retry_timer_;
  QTimer connect_timer_;
  QElapsedTimer connected_for_;
  int initial_delay_ms_ = 100;
  int max_delay_ms_ = 5000;
  int delay_ms_ = 100;
  int connect_timeout_ms_ = 5000;
  int attempt_ = 0;
  bool stopped_ = true;
};

}  // namespace inspector

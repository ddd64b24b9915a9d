// The Inspector's guest and everything that keeps it connected and observed.
//
// Threads:
//  - UI thread: this object, its timers, every model and view.
//  - network thread (a QThread): the GuestConnector, its socket and the
//    SessionPump that feeds the guest's sans-I/O stream. Replies are decoded
//    and futures fulfilled there; nothing on it ever blocks.
//  - worker threads: blocking Guest calls (iterator steps, gets, puts) run
//    on BackgroundLoader threads owned by the models and views, never on the
//    UI thread. The UI thread only calls what cannot block: stats(),
//    drop_connection(), the *_async twins, close().
//
// The guest is built with retry: across a dropped connection its requests
// and iterators wait, and resume on the next stream.
#pragma once

#include <QObject>
#include <QThread>
#include <QTimer>

#include <memory>
#include <optional>

#include "connect_settings.h"
#include "connection_event.h"
#include "endpoint.h"
#include "frame_recorder.hpp"
#include "iterator_labels.hpp"
#include "many_level/guest/guest.hpp"
#include "rate_meter.hpp"

namespace inspector {

class GuestConnector;

// Traffic per second, from the guest's cumulative counters.
struct TrafficRates {
  double bytes_in = 0;
  double bytes_out = 0;
  double frames_in = 0;
  double frames_out = 0;
};

class InspectorSession : public QObject {
  Q_OBJECT

 public:
  enum class State { idle, connecting, connected, waiting, closed };
  Q_ENUM(State)

  explicit InspectorSession(QObject* parent = nullptr);
  // A guest that sends `token` in the Hello of every stream (GuestOptions::
  // token, fixed for the guest's life: the views hold on to the guest).
  explicit InspectorSession(std::optional<std::string> token, QObject* parent = nullptr);
  // Closes the guest (every blocked call returns), then stops the network thread.
  ~InspectorSession() override;

  many_level::Guest& guest() { return *guest_; }
  FrameRecorder& frames() { return recorder_; }
  IteratorLabels& labels() { return labels_; }
  QueryHooks queryHooks() { return labels_.hooks(); }

  // Connects (and keeps reconnecting) to `endpoint`; a different endpoint
  // replaces the current one. Pending requests carry over.
  // A tls:// endpoint wraps each stream with `wrap` (a TLS wrapper), or,
  // when none is given, TLS that trusts the system's CAs.
  void connectTo(const Endpoint& endpoint, SessionWrapper wrap = {});
  // The token the guest sends (nullopt: none).
  const std::optional<std::string>& token() const { return token_; }

  // What the host granted this guest on the current stream: "read-only",
  // "read-write", or "" (not said yet, or a host that does not say).
  QString hostGrant() const { return grant_; }
  // Set when the host refused this guest (LEVEL_UNAUTHENTICATED): why.
  QString accessError() const { return access_error_; }
  // "read-only", "refused: ..." and the like, for the status bar.
  QString accessText() const;
  // Stops connecting; the stream, if any, is closed.
  void disconnectFromHost();
  // The "Drop connection" button: the guest drops its stream on purpose
  // (Guest::drop_connection), and the connector reconnects after its backoff.
  bool dropConnection();
  // Closes the guest for good: blocked calls fail, nothing reconnects.
  void shutdown();

  std::optional<Endpoint> endpoint() const { return endpoint_; }
  State state() const { return state_; }
  static QString stateName(State state);

  // The latest guest.stats(), refreshed every statsInterval() ms.
  const many_level::GuestStats& stats() const { return stats_; }
  const TrafficRates& rates() const { return rates_; }
  // Connections after the first one (from the guest's own counter).
  quint64 reconnects() const { return stats_.connects > 0 ? stats_.connects - 1 : 0; }

  void setStatsInterval(int ms) { stats_timer_.setInterval(ms); }
  void setBackoff(int initial_ms, int max_ms);
  // Polls stats now (tests, and views that want fresh numbers).
  void pollStats();

 signals:
  void connectionEvent(const inspector::ConnectionEvent& event);
  void stateChanged(inspector::InspectorSession::State state);
  void statsUpdated();
  // Once a second.
  void ratesUpdated();
  // hostGrant() or accessError() changed.
  void accessChanged();

 private:
  void onEvent(const ConnectionEvent& event);
  void setState(State state);
  void stopConnector();
  void sampleRates();
  void checkAccess();
  void setAccess(const QString& grant, const QString& error);

  std::optional<std::string> token_;
  std::unique_ptr<many_level::Guest> guest_;
  FrameRecorder recorder_;
  IteratorLabels labels_;
  QThread network_;
  GuestConnector* connector_ = nullptr;  // lives on network_
  std::optional<Endpoint> endpoint_;
  State state_ = State::idle;
  int backoff_initial_ms_ = 100;
  int backoff_max_ms_ = 5000;
  QTimer stats_timer_;
  QTimer rate_timer_;
  many_level::GuestStats stats_;
  TrafficRates rates_;
  RateMeter bytes_in_, bytes_out_, frames_in_, frames_out_;
  QString grant_;
  QString access_error_;
};

}  // namespace inspector

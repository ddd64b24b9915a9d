#include "inspector_session.h"

#include "guest_connector.h"

namespace inspector {

static many_level::GuestOptions guestOptions(std::optional<std::string> token) {
  many_level::GuestOptions options;
  options.token = std::move(token);
  options.retry = true;
  options.encodings.key_encoding = "buffer";
  options.encodings.value_encoding = "buffer";
  return options;
}

InspectorSession::InspectorSession(QObject* parent) : InspectorSession(std::nullopt, parent) {}

InspectorSession::InspectorSession(std::optional<std::string> token, QObject* parent)
    : QObject(parent), token_(std::move(token)), guest_(std::make_unique<many_level::Guest>(guestOptions(token_))) {
  qRegisterMetaType<inspector::ConnectionEvent>();
  guest_->set_frame_observer([this](many_level::FrameDirection direction, std::string_view payload) {
    recorder_.record(direction, payload);
  });
  network_.setObjectName(QStringLiteral("inspector-network"));
  network_.start();
  stats_timer_.setInterval(250);
  connect(&stats_timer_, &QTimer::timeout, this, &InspectorSession::pollStats);
  stats_timer_.start();
  rate_timer_.setInterval(1000);
  connect(&rate_timer_, &QTimer::timeout, this, &InspectorSession::sampleRates);
  rate_timer_.start();
  sampleRates();
}

InspectorSession::~InspectorSession() {
  shutdown();
  stopConnector();
  network_.quit();
  network_.wait();
  guest_->set_frame_observer(nullptr);
}

QString InspectorSession::stateName(State state) {
  switch (state) {
    case State::idle: return QStringLiteral("not connected");
    case State::connecting: return QStringLiteral("connecting");
    case State::connected: return QStringLiteral("connected");
    case State::waiting: return QStringLiteral("waiting to reconnect");
    case State::closed: return QStringLiteral("closed");
  }
  return {};
}

void InspectorSession::setBackoff(int initial_ms, int max_ms) {
  backoff_initial_ms_ = initial_ms;
  backoff_max_ms_ = max_ms;
}

void InspectorSession::connectTo(const Endpoint& endpoint, SessionWrapper wrap) {
  if (state_ == State::closed) return;
  stopConnector();
  endpoint_ = endpoint;
  setAccess({}, {});
  auto* connector = new GuestConnector(*guest_, endpoint);
  if (endpoint.tls && !wrap) {
    QString error;
    wrap = makeTlsWrapper(TlsSettings{}, &error);  // the system's CAs; stops with a reason when it fails
  }
  if (endpoint.tls) connector->setSessionWrapper(std::move(wrap));
  connector->setBackoff(backoff_initial_ms_, backoff_max_ms_);
  connector->moveToThread(&network_);
  connect(connector, &GuestConnector::event, this, &InspectorSession::onEvent);
  connector_ = connector;
  QMetaObject::invokeMethod(connector, &GuestConnector::start, Qt::QueuedConnection);
}

void InspectorSession::disconnectFromHost() {
  stopConnector();
  if (state_ != State::closed) setState(State::idle);
}

bool InspectorSession::dropConnection() { return guest_->drop_connection(); }

void InspectorSession::shutdown() {
  if (state_ == State::closed) return;
  setState(State::closed);
  guest_->close();
}

void InspectorSession::stopConnector() {
  if (!connector_) return;
  GuestConnector* connector = connector_;
  connector_ = nullptr;
  // Stopped and deleted on its own thread, where its socket lives; its
  // last events still arrive here (queued) and are logged.
  QMetaObject::invokeMethod(connector, &GuestConnector::stop, Qt::BlockingQueuedConnection);
  connector->deleteLater();
}

void InspectorSession::onEvent(const ConnectionEvent& event) {
  emit connectionEvent(event);
  if (state_ == State::closed) return;
  switch (event.kind) {
    case ConnectionEvent::Kind::connecting: setState(State::connecting); break;
    case ConnectionEvent::Kind::connected: setState(State::connected); break;
    case ConnectionEvent::Kind::attempt_failed:
    case ConnectionEvent::Kind::disconnected:
    case ConnectionEvent::Kind::retry_scheduled: setState(State::waiting); break;
    case ConnectionEvent::Kind::stopped: setState(State::idle); break;
  }
  pollStats();
}

void InspectorSession::setState(State state) {
  if (state == state_) return;
  state_ = state;
  emit stateChanged(state);
}

void InspectorSession::pollStats() {
  stats_ = guest_->stats();
  checkAccess();
  emit statsUpdated();
}

QString InspectorSession::accessText() const {
  if (!access_error_.isEmpty()) return tr("access refused: %1").arg(access_error_);
  if (!grant_.isEmpty()) return tr("grant: %1").arg(grant_);
  return {};
}

void InspectorSession::setAccess(const QString& grant, const QString& error) {
  if (grant == grant_ && error == access_error_) return;
  grant_ = grant;
  access_error_ = error;
  emit accessChanged();
}

// What the host said of this guest in its answer to the Hello: a grant, or
// that it refuses it (a Node host says neither).
void InspectorSession::checkAccess() {
  if (state_ != State::connected) return;
  if (auto refusal = guest_->host_refusal()) return setAccess({}, QString::fromStdString(refusal->what()));
  setAccess(QString::fromStdString(guest_->host_grant()), {});
}

void InspectorSession::sampleRates() {
  const auto now = RateMeter::Clock::now();
  const auto stats = guest_->stats();
  rates_.bytes_in = bytes_in_.sample(stats.bytes_in, now);
  rates_.bytes_out = bytes_out_.sample(stats.bytes_out, now);
  rates_.frames_in = frames_in_.sample(stats.frames_in, now);
  rates_.frames_out = frames_out_.sample(stats.frames_out, now);
  emit ratesUpdated();
}

}  // namespace inspector

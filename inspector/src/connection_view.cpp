#include "connection_view.h"

#include <QCheckBox>
#include <QFileDialog>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QVBoxLayout>

#include "inspector_session.h"

namespace inspector {

static QString perSecond(double value, bool bytes) {
  if (!bytes) return QObject::tr("%1 /s").arg(value, 0, 'f', value < 10 ? 1 : 0);
  return QLocale().formattedDataSize(static_cast<qint64>(value), 1, QLocale::DataSizeSIFormat) +
         QStringLiteral("/s");
}

ConnectionView::ConnectionView(InspectorSession& session, QWidget* parent) : QWidget(parent), session_(session) {
  address_ = new QLineEdit;
  address_->setPlaceholderText(tr("tcp://HOST:PORT, tls://HOST:PORT or unix:PATH"));
  if (auto endpoint = session.endpoint()) address_->setText(endpoint->toString());
  connect_ = new QPushButton(tr("Connect"));
  disconnect_ = new QPushButton(tr("Disconnect"));
  drop_ = new QPushButton(tr("Drop connection"));
  drop_->setToolTip(tr("The guest drops its stream on purpose; it reconnects after a backoff and resumes "
                       "its pending requests and iterators."));

  auto* top = new QHBoxLayout;
  top->addWidget(new QLabel(tr("Host")));
  top->addWidget(address_, 1);
  top->addWidget(connect_);
  top->addWidget(disconnect_);
  top->addWidget(drop_);

  // TLS, for a tls:// address.
  ca_file_ = new QLineEdit;
  ca_file_->setPlaceholderText(tr("empty: the system's CAs"));
  certificate_ = new QLineEdit;
  certificate_->setPlaceholderText(tr("optional: for a host that asks for one"));
  private_key_ = new QLineEdit;
  private_key_->setPlaceholderText(tr("the client certificate's key"));
  insecure_ = new QCheckBox(tr("insecure (do not verify the host)"));
  insecure_warning_ = new QLabel(
      tr("Warning: the host's certificate is not checked. The traffic is encrypted, but anyone on the path "
         "can pose as the host and read or change everything, the token too. Use it for tests only."));
  insecure_warning_->setWordWrap(true);
  insecure_warning_->setStyleSheet(QStringLiteral("color: darkred; font-weight: bold"));
  insecure_warning_->setVisible(false);
  tls_box_ = new QGroupBox(tr("TLS (tls:// addresses)"));
  auto* tls_form = new QFormLayout(tls_box_);
  tls_form->addRow(tr("CA file"), fileRow(ca_file_, tr("CA certificates (PEM)")));
  tls_form->addRow(tr("Client certificate"), fileRow(certificate_, tr("Client certificate (PEM)")));
  tls_form->addRow(tr("Client key"), fileRow(private_key_, tr("Client private key (PEM)")));
  tls_form->addRow(insecure_);
  tls_form->addRow(insecure_warning_);

  // The token: from a file (never typed here, never saved), else the environment.
  token_file_ = new QLineEdit;
  token_file_->setPlaceholderText(tr("empty: $%1 if set").arg(QLatin1String(kTokenEnvironmentVariable)));
  token_file_->setToolTip(tr("A file whose first line is the token a host that authenticates asks for. "
                             "Empty: the %1 environment variable, if set.")
                              .arg(QLatin1String(kTokenEnvironmentVariable)));
  token_source_ = new QLabel;
  token_source_->setWordWrap(true);
  auto* token_box = new QGroupBox(tr("Access token"));
  auto* token_form = new QFormLayout(token_box);
  token_form->addRow(tr("Token file"), fileRow(token_file_, tr("Token file")));
  token_form->addRow(tr("Guest's token"), token_source_);
  auto* security = new QHBoxLayout;
  security->addWidget(tls_box_, 1);
  security->addWidget(token_box, 1);

  message_ = new QLabel;
  message_->setWordWrap(true);
  message_->setStyleSheet(QStringLiteral("color: darkred"));
  message_->setVisible(false);

  state_ = new QLabel;
  access_ = new QLabel;
  access_->setWordWrap(true);
  reconnects_ = new QLabel(QStringLiteral("0"));
  connects_ = new QLabel;
  bytes_in_ = new QLabel;
  bytes_out_ = new QLabel;
  frames_in_ = new QLabel;
  frames_out_ = new QLabel;
  totals_ = new QLabel;
  QFont big = state_->font();
  big.setPointSizeF(big.pointSizeF() * 1.3);
  big.setBold(true);
  state_->setFont(big);

  auto* status = new QGroupBox(tr("State"));
  auto* form = new QFormLayout(status);
  form->addRow(tr("Connection"), state_);
  form->addRow(tr("Access"), access_);
  form->addRow(tr("Reconnects"), reconnects_);
  form->addRow(tr("Connects / drops"), connects_);
  auto* traffic = new QGroupBox(tr("Traffic"));
  auto* traffic_form = new QFormLayout(traffic);
  traffic_form->addRow(tr("Bytes in"), bytes_in_);
  traffic_form->addRow(tr("Bytes out"), bytes_out_);
  traffic_form->addRow(tr("Frames in"), frames_in_);
  traffic_form->addRow(tr("Frames out"), frames_out_);
  traffic_form->addRow(tr("Totals"), totals_);
  auto* boxes = new QHBoxLayout;
  boxes->addWidget(status, 1);
  boxes->addWidget(traffic, 1);

  log_ = new QPlainTextEdit;
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(2000);
  log_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(top);
  layout->addLayout(security);
  layout->addWidget(message_);
  layout->addLayout(boxes);
  layout->addWidget(new QLabel(tr("Connection log")));
  layout->addWidget(log_, 1);

  connect(connect_, &QPushButton::clicked, this, &ConnectionView::connectClicked);
  connect(address_, &QLineEdit::returnPressed, this, &ConnectionView::connectClicked);
  connect(disconnect_, &QPushButton::clicked, this, &ConnectionView::disconnectClicked);
  connect(drop_, &QPushButton::clicked, this, [this] {
    if (!session_.dropConnection()) appendLog(tr("nothing to drop: not connected"));
  });
  connect(address_, &QLineEdit::textChanged, this, &ConnectionView::updateTlsFields);
  connect(insecure_, &QCheckBox::toggled, this, [this](bool on) { insecure_warning_->setVisible(on); });
  connect(&session, &InspectorSession::accessChanged, this, &ConnectionView::showAccess);
  connect(&session, &InspectorSession::connectionEvent, this, &ConnectionView::onEvent);
  connect(&session, &InspectorSession::stateChanged, this, &ConnectionView::showState);
  connect(&session, &InspectorSession::statsUpdated, this, &ConnectionView::showStats);
  connect(&session, &InspectorSession::ratesUpdated, this, &ConnectionView::showRates);
  if (session.token()) {
    token_source_->setText(tr("this guest sends a token"));
  } else {
    token_source_->setText(tr("none"));
  }
  updateTlsFields();
  showState();
  showStats();
  showRates();
  showAccess();
}

QWidget* ConnectionView::fileRow(QLineEdit* edit, const QString& caption) {
  auto* row = new QWidget;
  auto* layout = new QHBoxLayout(row);
  layout->setContentsMargins(0, 0, 0, 0);
  auto* browse = new QPushButton(tr("…"));
  browse->setToolTip(tr("Choose a file"));
  layout->addWidget(edit, 1);
  layout->addWidget(browse);
  connect(browse, &QPushButton::clicked, this, [this, edit, caption] {
    const QString file = QFileDialog::getOpenFileName(this, caption, edit->text());
    if (!file.isEmpty()) edit->setText(file);
  });
  return row;
}

void ConnectionView::updateTlsFields() {
  const bool wants_tls = address_->text().trimmed().startsWith(QStringLiteral("tls://"), Qt::CaseInsensitive);
  if (!tlsAvailable()) {
    tls_box_->setEnabled(false);
    tls_box_->setToolTip(tr("This build of many-level has no TLS (built without OpenSSL: MANY_LEVEL_NO_OPENSSL)."));
    return;
  }
  tls_box_->setEnabled(wants_tls);
  tls_box_->setToolTip(wants_tls ? QString() : tr("For tls://HOST:PORT addresses only."));
}

void ConnectionView::showMessage(const QString& text) {
  message_->setText(text);
  message_->setVisible(!text.isEmpty());
  if (!text.isEmpty()) appendLog(text);
}

std::optional<ConnectRequest> ConnectionView::connectRequest(QString* error) const {
  auto fail = [&](const QString& reason) -> std::optional<ConnectRequest> {
    if (error) *error = reason;
    return std::nullopt;
  };
  QString reason;
  auto endpoint = Endpoint::parse(address_->text(), &reason);
  if (!endpoint) return fail(tr("not an address: %1").arg(reason));
  ConnectRequest request;
  request.endpoint = *endpoint;
  if (endpoint->tls) {
    if (!tlsAvailable()) return fail(tr("%1 wants TLS, and this build of many-level has no TLS (no OpenSSL)")
                                          .arg(endpoint->toString()));
    TlsSettings tls;
    tls.ca_file = ca_file_->text().trimmed();
    tls.certificate_file = certificate_->text().trimmed();
    tls.private_key_file = private_key_->text().trimmed();
    tls.insecure = insecure_->isChecked();
    request.wrap = makeTlsWrapper(tls, &reason);
    if (!request.wrap) return fail(tr("TLS: %1").arg(reason));
    request.tls = tls;
  }
  request.token_file = token_file_->text().trimmed();
  if (!resolveToken(request.token_file, &request.token, &reason, &request.token_source)) return fail(reason);
  return request;
}

void ConnectionView::showAccess() {
  const QString error = session_.accessError();
  if (!error.isEmpty()) {
    access_->setText(tr("REFUSED by the host: %1").arg(error));
    access_->setStyleSheet(QStringLiteral("color: darkred; font-weight: bold"));
    appendLog(tr("the host refused this guest: %1").arg(error));
    return;
  }
  const QString grant = session_.hostGrant();
  access_->setText(grant.isEmpty() ? tr("—") : grant);
  access_->setStyleSheet(grant == QLatin1String("read-only") ? QStringLiteral("color: darkorange") : QString());
}

void ConnectionView::connectClicked() {
  QString error;
  auto request = connectRequest(&error);
  if (!request) {
    showMessage(error);
    return;
  }
  if (request->token != session_.token()) {
    // GuestOptions::token is fixed when the guest is made, and every view
    // holds on to this guest.
    showMessage(request->token
                    ? tr("This Inspector's guest was started %1; the token (%2) is fixed for its life. Restart "
                         "the Inspector with --token-file FILE (or %3) to use it.")
                          .arg(session_.token() ? tr("with another token") : tr("without a token"),
                               request->token_source, QLatin1String(kTokenEnvironmentVariable))
                    : tr("This Inspector's guest was started with a token, which is fixed for its life; restart "
                         "the Inspector without --token-file (and without %1) to connect without one.")
                          .arg(QLatin1String(kTokenEnvironmentVariable)));
    return;
  }
  showMessage({});
  if (request->tls && request->tls->insecure) {
    appendLog(tr("WARNING: TLS without verifying the host (insecure): anyone on the path can pose as it"));
  }
  session_.connectTo(request->endpoint, request->wrap);
}

void ConnectionView::disconnectClicked() { session_.disconnectFromHost(); }

void ConnectionView::onEvent(const ConnectionEvent& event) {
  if (!address_->hasFocus() && !event.address.isEmpty()) address_->setText(event.address);
  appendLog(event.describe());
}

void ConnectionView::appendLog(const QString& line) { log_->appendPlainText(line); }

void ConnectionView::showState() {
  const auto state = session_.state();
  state_->setText(InspectorSession::stateName(state));
  const char* color = state == InspectorSession::State::connected ? "darkgreen"
                      : state == InspectorSession::State::closed || state == InspectorSession::State::idle
                          ? "gray"
                          : "darkorange";
  state_->setStyleSheet(QStringLiteral("color: %1").arg(QLatin1String(color)));
  drop_->setEnabled(state == InspectorSession::State::connected);
  disconnect_->setEnabled(state != InspectorSession::State::idle && state != InspectorSession::State::closed);
  connect_->setEnabled(state != InspectorSession::State::closed);
}

void ConnectionView::showStats() {
  const auto& stats = session_.stats();
  reconnects_->setText(QString::number(session_.reconnects()));
  connects_->setText(tr("%1 / %2").arg(stats.connects).arg(stats.disconnects));
  QLocale locale;
  totals_->setText(tr("%1 in, %2 out; %3 frames in, %4 out")
                       .arg(locale.formattedDataSize(static_cast<qint64>(stats.bytes_in)),
                            locale.formattedDataSize(static_cast<qint64>(stats.bytes_out)),
                            locale.toString(static_cast<qulonglong>(stats.frames_in)),
                            locale.toString(static_cast<qulonglong>(stats.frames_out))));
}

void ConnectionView::showRates() {
  const auto& rates = session_.rates();
  bytes_in_->setText(perSecond(rates.bytes_in, true));
  bytes_out_->setText(perSecond(rates.bytes_out, true));
  frames_in_->setText(perSecond(rates.frames_in, false));
  frames_out_->setText(perSecond(rates.frames_out, false));
}

}  // namespace inspector

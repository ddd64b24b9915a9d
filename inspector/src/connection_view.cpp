#include "connection_view.h"

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
  address_->setPlaceholderText(tr("tcp://HOST:PORT or unix:PATH"));
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

  state_ = new QLabel;
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
  layout->addLayout(boxes);
  layout->addWidget(new QLabel(tr("Connection log")));
  layout->addWidget(log_, 1);

  connect(connect_, &QPushButton::clicked, this, &ConnectionView::connectClicked);
  connect(address_, &QLineEdit::returnPressed, this, &ConnectionView::connectClicked);
  connect(disconnect_, &QPushButton::clicked, this, &ConnectionView::disconnectClicked);
  connect(drop_, &QPushButton::clicked, this, [this] {
    if (!session_.dropConnection()) appendLog(tr("nothing to drop: not connected"));
  });
  connect(&session, &InspectorSession::connectionEvent, this, &ConnectionView::onEvent);
  connect(&session, &InspectorSession::stateChanged, this, &ConnectionView::showState);
  connect(&session, &InspectorSession::statsUpdated, this, &ConnectionView::showStats);
  connect(&session, &InspectorSession::ratesUpdated, this, &ConnectionView::showRates);
  showState();
  showStats();
  showRates();
}

void ConnectionView::connectClicked() {
  QString error;
  auto endpoint = Endpoint::parse(address_->text(), &error);
  if (!endpoint) {
    appendLog(tr("not an address: %1").arg(error));
    return;
  }
  session_.connectTo(*endpoint);
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

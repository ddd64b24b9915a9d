#include "host_view.h"

#include <QHeaderView>
#include <QLabel>
#include <QTableView>
#include <QVBoxLayout>

#include "host_stats_model.h"
#include "inspector_session.h"

namespace inspector {

HostView::HostView(InspectorSession& session, QWidget* parent) : QWidget(parent), session_(session) {
  model_ = new HostStatsModel(this);
  table_ = new QTableView;
  table_->setModel(model_);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setWordWrap(false);
  summary_ = new QLabel;
  summary_->setWordWrap(true);
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  note_ = new QLabel;
  note_->setWordWrap(true);
  note_->setStyleSheet(QStringLiteral("color: darkred"));
  note_->hide();

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(summary_);
  layout->addWidget(note_);
  layout->addWidget(table_, 1);

  refresh_timer_.setInterval(1000);
  connect(&refresh_timer_, &QTimer::timeout, this, &HostView::refresh);
  poll_timer_.setInterval(100);
  connect(&poll_timer_, &QTimer::timeout, this, &HostView::poll);
  // A host reached anew may be another one, with or without statistics.
  connect(&session, &InspectorSession::stateChanged, this, [this](InspectorSession::State state) {
    if (state == InspectorSession::State::connected && (always_ || isVisible())) refresh();
  });
  summary_->setText(tr("Waiting for the host's statistics…"));
}

void HostView::setAlwaysRefresh(bool on) {
  always_ = on;
  if (on) {
    refresh_timer_.start();
    refresh();
  } else if (!isVisible()) {
    refresh_timer_.stop();
  }
}

void HostView::showEvent(QShowEvent* event) {
  QWidget::showEvent(event);
  refresh_timer_.start();
  refresh();
}

void HostView::hideEvent(QHideEvent* event) {
  QWidget::hideEvent(event);
  if (!always_) refresh_timer_.stop();
}

void HostView::refresh() {
  if (pending_) return;
  auto& guest = session_.guest();
  if (guest.host_extension() == many_level::HostExtension::unavailable) {
    // Known already: a request would only be refused.
    setAvailable(false);
    return;
  }
  // The callback twin would run on the network thread; a future is polled
  // here instead, on the UI thread, so nothing outlives this view.
  try {
    pending_ = guest.host_stats_async();
  } catch (const std::exception& e) {  // a closed guest
    note_->setText(tr("Host statistics failed: %1").arg(QString::fromStdString(e.what())));
    note_->show();
    return;
  }
  poll_timer_.start();
}

void HostView::poll() {
  if (!pending_ || pending_->wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
  poll_timer_.stop();
  auto future = std::move(*pending_);
  pending_.reset();
  try {
    const many_level::HostStats stats = future.get();
    setAvailable(true);
    model_->update(stats);
    summary_->setText(model_->summaryText());
  } catch (const many_level::Error& e) {
    if (e.is(many_level::codes::not_supported)) {
      setAvailable(false);
    } else {
      note_->setText(tr("Host statistics failed: %1").arg(QString::fromStdString(e.what())));
      note_->show();
    }
  } catch (const std::exception& e) {
    note_->setText(tr("Host statistics failed: %1").arg(QString::fromStdString(e.what())));
    note_->show();
  }
  emit updated();
}

void HostView::setAvailable(bool available, const QString& note) {
  available_ = available;
  table_->setEnabled(available);
  if (available) {
    note_->setVisible(!note.isEmpty());
    note_->setText(note);
    return;
  }
  model_->clear();
  summary_->setText(QString());
  note_->setText(tr("This host has no statistics: it does not speak the many-level extension (a Node "
                    "many-level host, or a C++ host with it off). The Host tab needs a C++ many-level host."));
  note_->show();
}

}  // namespace inspector

#include "pending_view.h"

#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>
#include <QTableView>
#include <QVBoxLayout>

#include "inspector_session.h"
#include "load_generator.h"
#include "pending_model.h"

namespace inspector {

PendingView::PendingView(InspectorSession& session, LoadGenerator& load, QWidget* parent)
    : QWidget(parent), session_(session), load_(load) {
  model_ = new PendingModel(this);
  table_ = new QTableView;
  table_->setModel(model_);
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setSectionResizeMode(PendingModel::KeyColumn, QHeaderView::Stretch);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  summary_ = new QLabel;

  const LoadSettings settings = load.settings();
  rate_ = new QSpinBox;
  rate_->setRange(1, 100000);
  rate_->setValue(settings.rate);
  rate_->setSuffix(tr(" ops/s"));
  put_ = new QSpinBox;
  put_->setRange(0, 100);
  put_->setValue(settings.put_percent);
  put_->setSuffix(QStringLiteral(" %"));
  del_ = new QSpinBox;
  del_->setRange(0, 100);
  del_->setValue(settings.del_percent);
  del_->setSuffix(QStringLiteral(" %"));
  get_ = new QLabel;
  keys_ = new QSpinBox;
  keys_->setRange(1, 100000000);
  keys_->setValue(settings.key_space);
  value_size_ = new QSpinBox;
  value_size_->setRange(0, 1 << 20);
  value_size_->setValue(settings.value_size);
  value_size_->setSuffix(tr(" B"));
  start_ = new QPushButton(tr("Start load"));
  start_->setCheckable(true);
  load_stats_ = new QLabel(tr("idle"));
  load_stats_->setWordWrap(true);

  auto* load_box = new QGroupBox(tr("Load generator (keys %1NNNNNN)").arg(QString::fromStdString(settings.prefix)));
  auto* form = new QFormLayout(load_box);
  form->addRow(tr("Rate"), rate_);
  form->addRow(tr("put"), put_);
  form->addRow(tr("del"), del_);
  form->addRow(tr("get"), get_);
  form->addRow(tr("Key space"), keys_);
  form->addRow(tr("Value size"), value_size_);
  form->addRow(start_);
  form->addRow(load_stats_);
  load_box->setMaximumWidth(340);

  auto* left = new QVBoxLayout;
  left->addWidget(summary_);
  left->addWidget(table_, 1);
  auto* layout = new QHBoxLayout(this);
  layout->addLayout(left, 1);
  layout->addWidget(load_box);

  for (QSpinBox* box : {rate_, put_, del_, keys_, value_size_}) {
    connect(box, &QSpinBox::valueChanged, this, &PendingView::applySettings);
  }
  connect(start_, &QPushButton::toggled, this, [this](bool on) {
    if (on) {
      applySettings();
      load_.start();
    } else {
      load_.stop();
    }
  });
  connect(&load, &LoadGenerator::runningChanged, this, [this](bool running) {
    start_->setChecked(running);
    start_->setText(running ? tr("Stop load") : tr("Start load"));
  });
  connect(&load, &LoadGenerator::windowReady, this, &PendingView::onWindow);
  connect(&session, &InspectorSession::statsUpdated, this, &PendingView::onStats);
  applySettings();
  onStats();
}

void PendingView::applySettings() {
  LoadSettings settings = load_.settings();
  settings.rate = rate_->value();
  settings.put_percent = put_->value();
  settings.del_percent = std::min(del_->value(), 100 - put_->value());
  settings.key_space = keys_->value();
  settings.value_size = value_size_->value();
  load_.setSettings(settings);
  get_->setText(QStringLiteral("%1 %").arg(100 - settings.put_percent - settings.del_percent));
}

void PendingView::onStats() {
  model_->update(session_.stats().pending);
  summary_->setText(tr("%1 requests waiting for the host · oldest %2 ms")
                        .arg(model_->rowCount())
                        .arg(model_->oldestAgeMs()));
}

void PendingView::onWindow(const LoadWindow& window) {
  const double seconds = window.seconds > 0 ? window.seconds : 1;
  QString text = tr("issued %1/s · answered %2/s · failed %3 · in flight %4\nlatency p50 %5 ms · p99 %6 ms · max %7 ms")
                     .arg(window.issued / seconds, 0, 'f', 0)
                     .arg(window.completed / seconds, 0, 'f', 0)
                     .arg(window.failed)
                     .arg(window.in_flight)
                     .arg(window.p50_ms, 0, 'f', 2)
                     .arg(window.p99_ms, 0, 'f', 2)
                     .arg(window.max_ms, 0, 'f', 2);
  if (!window.last_error.isEmpty()) text += tr("\nlast error: %1").arg(window.last_error);
  load_stats_->setText(text);
}

}  // namespace inspector

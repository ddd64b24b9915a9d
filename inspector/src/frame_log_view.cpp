#include "frame_log_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSplitter>
#include <QTableView>
#include <QTimer>
#include <QVBoxLayout>

#include "frame_filter_model.h"
#include "frame_log_model.h"
#include "frame_recorder.hpp"

namespace inspector {

FrameLogView::FrameLogView(FrameRecorder& recorder, QWidget* parent) : QWidget(parent), recorder_(recorder) {
  model_ = new FrameLogModel(recorder, 10000, this);
  filter_ = new FrameFilterModel(this);
  filter_->setSourceModel(model_);

  pause_ = new QPushButton(tr("Pause"));
  pause_->setCheckable(true);
  clear_ = new QPushButton(tr("Clear"));
  direction_ = new QComboBox;
  direction_->addItem(tr("in and out"), static_cast<int>(FrameFilterModel::Direction::both));
  direction_->addItem(tr("out (guest → host)"), static_cast<int>(FrameFilterModel::Direction::out));
  direction_->addItem(tr("in (host → guest)"), static_cast<int>(FrameFilterModel::Direction::in));
  text_ = new QLineEdit;
  text_->setPlaceholderText(tr("filter: words in message or summary, id=N"));
  text_->setClearButtonEnabled(true);
  follow_ = new QCheckBox(tr("Follow"));
  follow_->setChecked(true);
  counters_ = new QLabel;

  auto* bar = new QHBoxLayout;
  bar->addWidget(pause_);
  bar->addWidget(clear_);
  bar->addWidget(direction_);
  bar->addWidget(text_, 1);
  bar->addWidget(follow_);
  bar->addWidget(counters_);

  table_ = new QTableView;
  table_->setModel(filter_);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->verticalHeader()->hide();
  table_->verticalHeader()->setDefaultSectionSize(table_->fontMetrics().height() + 4);
  table_->horizontalHeader()->setSectionResizeMode(FrameLogModel::SummaryColumn, QHeaderView::Stretch);
  table_->setWordWrap(false);
  table_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  table_->setColumnWidth(FrameLogModel::NumberColumn, 60);
  table_->setColumnWidth(FrameLogModel::TimeColumn, 90);
  table_->setColumnWidth(FrameLogModel::DirectionColumn, 60);
  table_->setColumnWidth(FrameLogModel::TagColumn, 120);
  table_->setColumnWidth(FrameLogModel::IdColumn, 50);
  table_->setColumnWidth(FrameLogModel::SeqColumn, 40);
  table_->setColumnWidth(FrameLogModel::SizeColumn, 60);

  detail_ = new QPlainTextEdit;
  detail_->setReadOnly(true);
  detail_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));

  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(table_);
  split->addWidget(detail_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 1);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(bar);
  layout->addWidget(split, 1);

  connect(pause_, &QPushButton::toggled, this, [this](bool paused) {
    model_->setPaused(paused);
    pause_->setText(paused ? tr("Resume") : tr("Pause"));
    showCounters();
  });
  connect(clear_, &QPushButton::clicked, model_, &FrameLogModel::clear);
  connect(direction_, &QComboBox::currentIndexChanged, this, [this] {
    filter_->setDirection(static_cast<FrameFilterModel::Direction>(direction_->currentData().toInt()));
  });
  connect(text_, &QLineEdit::textChanged, filter_, &FrameFilterModel::setText);
  connect(model_, &FrameLogModel::framesAppended, this, [this] {
    if (follow_->isChecked()) table_->scrollToBottom();
    showCounters();
  });
  connect(table_->selectionModel(), &QItemSelectionModel::currentRowChanged, this, &FrameLogView::showDetail);
  // While paused nothing is appended, but the counters still move.
  auto* counters = new QTimer(this);
  connect(counters, &QTimer::timeout, this, &FrameLogView::showCounters);
  counters->start(1000);
  showCounters();
}

void FrameLogView::showDetail() {
  const QModelIndex current = table_->currentIndex();
  detail_->setPlainText(current.isValid() ? current.data(FrameLogModel::DetailRole).toString() : QString());
}

void FrameLogView::showCounters() {
  QString text = tr("%1 frames seen · %2 shown").arg(recorder_.seen()).arg(model_->rowCount());
  if (recorder_.skipped() > 0) text += tr(" · %1 passed while paused").arg(recorder_.skipped());
  if (recorder_.dropped() > 0) text += tr(" · %1 dropped").arg(recorder_.dropped());
  counters_->setText(text);
}

}  // namespace inspector

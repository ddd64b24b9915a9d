#include "iterators_view.h"

#include <QGroupBox>
#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>

#include "inspector_session.h"
#include "iterator_playground.h"
#include "iterators_model.h"

namespace inspector {

IteratorsView::IteratorsView(InspectorSession& session, QWidget* parent) : QWidget(parent), session_(session) {
  model_ = new IteratorsModel(&session.labels(), this);
  table_ = new QTableView;
  table_->setModel(model_);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->verticalHeader()->hide();
  table_->horizontalHeader()->setSectionResizeMode(IteratorsModel::OptionsColumn, QHeaderView::Stretch);
  table_->setWordWrap(false);
  summary_ = new QLabel;
  summary_->setWordWrap(true);

  auto* top = new QWidget;
  auto* top_layout = new QVBoxLayout(top);
  top_layout->setContentsMargins(0, 0, 0, 0);
  top_layout->addWidget(summary_);
  top_layout->addWidget(table_, 1);

  playground_ = new IteratorPlayground(session.guest(), session.labels());
  auto* playground_box = new QGroupBox(tr("Playground"));
  auto* box_layout = new QVBoxLayout(playground_box);
  box_layout->addWidget(playground_);

  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(top);
  split->addWidget(playground_box);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 1);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(split);

  connect(&session, &InspectorSession::statsUpdated, this, &IteratorsView::onStats);
  onStats();
}

void IteratorsView::onStats() {
  const auto& iterators = session_.stats().iterators;
  model_->update(iterators);
  size_t buffered = 0;
  size_t unacked = 0;
  for (const auto& info : iterators) {
    buffered += info.buffered_entries;
    unacked += info.unacknowledged_frames;
  }
  summary_->setText(tr("%1 open iterators · %2 entries received but not consumed · %3 data frames not yet "
                       "acknowledged (a host stops reading ahead for an iterator with two)")
                        .arg(iterators.size())
                        .arg(buffered)
                        .arg(unacked));
}

}  // namespace inspector

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
#include "snapshots_model.h"
#include "watches_model.h"

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

  // Watches and snapshots: the extension's other long-lived objects.
  watches_ = new WatchesModel(this);
  snapshots_ = new SnapshotsModel(this);
  const auto small_table = [](QAbstractItemModel* model, int stretch_column) {
    auto* table = new QTableView;
    table->setModel(model);
    table->setSelectionBehavior(QAbstractItemView::SelectRows);
    table->verticalHeader()->hide();
    table->horizontalHeader()->setSectionResizeMode(stretch_column, QHeaderView::Stretch);
    table->setWordWrap(false);
    return table;
  };
  auto* watches_box = new QGroupBox(tr("Watches (change feed)"));
  auto* watches_layout = new QVBoxLayout(watches_box);
  watches_layout->addWidget(small_table(watches_, WatchesModel::StateColumn));
  auto* snapshots_box = new QGroupBox(tr("Snapshots"));
  auto* snapshots_layout = new QVBoxLayout(snapshots_box);
  snapshots_layout->addWidget(small_table(snapshots_, SnapshotsModel::StateColumn));
  streams_summary_ = new QLabel;
  streams_summary_->setWordWrap(true);
  auto* streams = new QSplitter(Qt::Horizontal);
  streams->addWidget(watches_box);
  streams->addWidget(snapshots_box);
  streams->setStretchFactor(0, 3);
  streams->setStretchFactor(1, 2);
  auto* middle = new QWidget;
  auto* middle_layout = new QVBoxLayout(middle);
  middle_layout->setContentsMargins(0, 0, 0, 0);
  middle_layout->addWidget(streams_summary_);
  middle_layout->addWidget(streams, 1);

  playground_ = new IteratorPlayground(session.guest(), session.labels());
  auto* playground_box = new QGroupBox(tr("Playground"));
  auto* box_layout = new QVBoxLayout(playground_box);
  box_layout->addWidget(playground_);

  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(top);
  split->addWidget(middle);
  split->addWidget(playground_box);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  split->setStretchFactor(2, 3);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(split);

  connect(&session, &InspectorSession::statsUpdated, this, &IteratorsView::onStats);
  onStats();
}

void IteratorsView::onStats() {
  const auto& stats = session_.stats();
  const auto& iterators = stats.iterators;
  model_->update(iterators);
  watches_->update(stats.watches);
  snapshots_->update(stats.snapshots);
  QString extension;
  switch (stats.extension) {
    case many_level::HostExtension::available: extension = tr("the host has the extension"); break;
    case many_level::HostExtension::unavailable:
      extension = tr("the host has no extension (a Node host): no watches or snapshots");
      break;
    case many_level::HostExtension::unknown: extension = tr("the host has not answered yet"); break;
  }
  streams_summary_->setText(tr("%1 watches · %2 snapshots · %3").arg(stats.watches.size()).arg(stats.snapshots.size()).arg(extension));
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

// The iterators tab: every open iterator of the guest, live, its watches
// (the change feed) and explicit snapshots beside them, and the playground
// below to open and step an iterator by hand.
#pragma once

#include <QWidget>

class QLabel;
class QTableView;

namespace inspector {

class InspectorSession;
class IteratorPlayground;
class IteratorsModel;
class SnapshotsModel;
class WatchesModel;

class IteratorsView : public QWidget {
  Q_OBJECT

 public:
  explicit IteratorsView(InspectorSession& session, QWidget* parent = nullptr);

  IteratorsModel* model() const { return model_; }
  WatchesModel* watchesModel() const { return watches_; }
  SnapshotsModel* snapshotsModel() const { return snapshots_; }
  IteratorPlayground* playground() const { return playground_; }
  QTableView* table() const { return table_; }

 private:
  void onStats();

  InspectorSession& session_;
  IteratorsModel* model_;
  WatchesModel* watches_;
  SnapshotsModel* snapshots_;
  QTableView* table_;
  QLabel* streams_summary_;
  QLabel* summary_;
  IteratorPlayground* playground_;
};

}  // namespace inspector

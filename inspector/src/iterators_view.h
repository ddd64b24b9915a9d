// The iterators tab: every open iterator of the guest, live, with the
// playground below to open and step one by hand.
#pragma once

#include <QWidget>

class QLabel;
class QTableView;

namespace inspector {

class InspectorSession;
class IteratorPlayground;
class IteratorsModel;

class IteratorsView : public QWidget {
  Q_OBJECT

 public:
  explicit IteratorsView(InspectorSession& session, QWidget* parent = nullptr);

  IteratorsModel* model() const { return model_; }
  IteratorPlayground* playground() const { return playground_; }
  QTableView* table() const { return table_; }

 private:
  void onStats();

  InspectorSession& session_;
  IteratorsModel* model_;
  QTableView* table_;
  QLabel* summary_;
  IteratorPlayground* playground_;
};

}  // namespace inspector

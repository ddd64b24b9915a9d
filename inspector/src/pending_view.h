// The pending tab: every request in flight, live, and the load generator
// that fills the queue (rate, put/get/del mix, key space).
#pragma once

#include <QWidget>

class QLabel;
class QPushButton;
class QSpinBox;
class QTableView;

namespace inspector {

class InspectorSession;
class LoadGenerator;
class PendingModel;
struct LoadWindow;

class PendingView : public QWidget {
  Q_OBJECT

 public:
  PendingView(InspectorSession& session, LoadGenerator& load, QWidget* parent = nullptr);

  PendingModel* model() const { return model_; }
  QTableView* table() const { return table_; }
  QPushButton* startButton() const { return start_; }
  QSpinBox* rateBox() const { return rate_; }

 private:
  void onStats();
  void applySettings();
  void onWindow(const LoadWindow& window);

  InspectorSession& session_;
  LoadGenerator& load_;
  PendingModel* model_;
  QTableView* table_;
  QLabel* summary_;
  QSpinBox* rate_;
  QSpinBox* put_;
  QSpinBox* del_;
  QLabel* get_;
  QSpinBox* keys_;
  QSpinBox* value_size_;
  QPushButton* start_;
  QLabel* load_stats_;
};

}  // namespace inspector

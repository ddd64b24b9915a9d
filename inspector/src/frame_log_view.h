// The frames tab: the frame log with a display filter (direction, words,
// id=N), pause, clear, follow, and the selected frame decoded in full.
#pragma once

#include <QWidget>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QTableView;

namespace inspector {

class FrameFilterModel;
class FrameLogModel;
class FrameRecorder;

class FrameLogView : public QWidget {
  Q_OBJECT

 public:
  explicit FrameLogView(FrameRecorder& recorder, QWidget* parent = nullptr);

  FrameLogModel* model() const { return model_; }
  FrameFilterModel* filter() const { return filter_; }
  QTableView* table() const { return table_; }
  QPushButton* pauseButton() const { return pause_; }
  QLineEdit* filterEdit() const { return text_; }
  QComboBox* directionBox() const { return direction_; }

 private:
  void showDetail();
  void showCounters();

  FrameRecorder& recorder_;
  FrameLogModel* model_;
  FrameFilterModel* filter_;
  QTableView* table_;
  QPushButton* pause_;
  QPushButton* clear_;
  QComboBox* direction_;
  QLineEdit* text_;
  QCheckBox* follow_;
  QLabel* counters_;
  QPlainTextEdit* detail_;
};

}  // namespace inspector

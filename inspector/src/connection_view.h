// The connection tab: where the guest connects, whether it is connected, how
// often it reconnected, traffic per second, and a timestamped log of every
// connect, drop and retry. "Drop connection" makes the guest drop its stream
// (Guest::drop_connection) so the retry can be watched.
#pragma once

#include <QWidget>

#include "connection_event.h"

class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;

namespace inspector {

class InspectorSession;

class ConnectionView : public QWidget {
  Q_OBJECT

 public:
  explicit ConnectionView(InspectorSession& session, QWidget* parent = nullptr);

  QLineEdit* addressEdit() const { return address_; }
  QPushButton* connectButton() const { return connect_; }
  QPushButton* dropButton() const { return drop_; }
  QPlainTextEdit* log() const { return log_; }
  QLabel* reconnectsLabel() const { return reconnects_; }
  QLabel* stateLabel() const { return state_; }

 private:
  void connectClicked();
  void disconnectClicked();
  void onEvent(const ConnectionEvent& event);
  void showState();
  void showStats();
  void showRates();
  void appendLog(const QString& line);

  InspectorSession& session_;
  QLineEdit* address_;
  QPushButton* connect_;
  QPushButton* disconnect_;
  QPushButton* drop_;
  QLabel* state_;
  QLabel* reconnects_;
  QLabel* connects_;
  QLabel* bytes_in_;
  QLabel* bytes_out_;
  QLabel* frames_in_;
  QLabel* frames_out_;
  QLabel* totals_;
  QPlainTextEdit* log_;
};

}  // namespace inspector

// The connection tab: where the guest connects, whether it is connected, how
// often it reconnected, traffic per second, and a timestamped log of every
// connect, drop and retry. "Drop connection" makes the guest drop its stream
// (Guest::drop_connection) so the retry can be watched. Under the address:
// TLS for a tls:// host (CA file, client certificate and key, "insecure")
// and the token file for a host that authenticates; the state box shows
// what the host granted, or that it refused the guest.
#pragma once

#include <QWidget>

#include <optional>

#include "connect_settings.h"
#include "connection_event.h"

class QCheckBox;
class QGroupBox;
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
  QLabel* accessLabel() const { return access_; }
  QGroupBox* tlsBox() const { return tls_box_; }
  QLineEdit* caFileEdit() const { return ca_file_; }
  QLineEdit* certificateEdit() const { return certificate_; }
  QLineEdit* privateKeyEdit() const { return private_key_; }
  QCheckBox* insecureCheck() const { return insecure_; }
  QLabel* insecureWarning() const { return insecure_warning_; }
  QLineEdit* tokenFileEdit() const { return token_file_; }
  // The form's last complaint (a bad token file, a CA file that will not
  // load, not an address); empty when the last Connect went through.
  QLabel* formMessage() const { return message_; }

  // What the form says, or nullopt with the reason in `error`: the address,
  // TLS (a tls:// address only; its wrapper made, so a bad CA file shows
  // here) and the token (from the token file, else MANY_LEVEL_TOKEN).
  std::optional<ConnectRequest> connectRequest(QString* error) const;

 private:
  void connectClicked();
  void disconnectClicked();
  void onEvent(const ConnectionEvent& event);
  void showState();
  void showStats();
  void showRates();
  void appendLog(const QString& line);
  void showAccess();
  void updateTlsFields();
  void showMessage(const QString& text);
  QWidget* fileRow(QLineEdit* edit, const QString& caption);

  InspectorSession& session_;
  QLineEdit* address_;
  QPushButton* connect_;
  QPushButton* disconnect_;
  QPushButton* drop_;
  QLabel* state_;
  QLabel* access_;
  QGroupBox* tls_box_;
  QLineEdit* ca_file_;
  QLineEdit* certificate_;
  QLineEdit* private_key_;
  QCheckBox* insecure_;
  QLabel* insecure_warning_;
  QLineEdit* token_file_;
  QLabel* token_source_;
  QLabel* message_;
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

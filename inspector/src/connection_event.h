// One thing that happened to the Inspector's connection, for its log: a
// connect attempt, a connection made or lost, a retry scheduled.
#pragma once

#include <QDateTime>
#include <QMetaType>
#include <QString>

namespace inspector {

struct ConnectionEvent {
  enum class Kind {
    connecting,       // an attempt starts
    connected,        // the stream is attached to the guest
    attempt_failed,   // the attempt did not connect
    disconnected,     // an attached stream ended
    retry_scheduled,  // the next attempt is due in delay_ms
    stopped,          // no more attempts (stopped, or the guest is closed)
  };

  Kind kind = Kind::connecting;
  QDateTime time = QDateTime::currentDateTime();
  QString address;
  QString text;
  int attempt = 0;   // attempts since the last successful connect, from 1
  int delay_ms = 0;  // retry_scheduled only

  static QString kindName(Kind kind);
  // "12:00:01.234  connected to tcp://127.0.0.1:5000", as the log shows it.
  QString describe() const;
};

}  // namespace inspector

Q_DECLARE_METATYPE(inspector::ConnectionEvent)

#include "connection_event.h"

namespace inspector {

QString ConnectionEvent::kindName(Kind kind) {
  switch (kind) {
    case Kind::connecting: return QStringLiteral("connecting");
    case Kind::connected: return QStringLiteral("connected");
    case Kind::attempt_failed: return QStringLiteral("attempt failed");
    case Kind::disconnected: return QStringLiteral("disconnected");
    case Kind::retry_scheduled: return QStringLiteral("retry");
    case Kind::stopped: return QStringLiteral("stopped");
  }
  return QStringLiteral("?");
}

QString ConnectionEvent::describe() const {
  QString line = time.toString(QStringLiteral("HH:mm:ss.zzz")) + QStringLiteral("  ");
  switch (kind) {
    case Kind::connecting:
      line += QStringLiteral("connecting to %1 (attempt %2)").arg(address).arg(attempt);
      break;
    case Kind::connected:
      line += QStringLiteral("connected to %1").arg(address);
      break;
    case Kind::attempt_failed:
      line += QStringLiteral("could not connect to %1: %2").arg(address, text);
      break;
    case Kind::disconnected:
      line += QStringLiteral("connection to %1 lost: %2").arg(address, text);
      break;
    case Kind::retry_scheduled:
      line += QStringLiteral("retrying in %1 ms").arg(delay_ms);
      break;
    case Kind::stopped:
      line += QStringLiteral("stopped: %1").arg(text);
      break;
  }
  return line;
}

}  // namespace inspector

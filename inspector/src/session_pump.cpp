#include "session_pump.h"

#include <QAbstractSocket>
#include <QLocalSocket>

namespace inspector {

SessionPump::SessionPump(QIODevice* device, std::shared_ptr<many_level::Session> session, QObject* parent)
    : QObject(parent), device_(device), session_(std::move(session)), waker_(std::make_shared<Waker>()) {
  waker_->pump = this;
}

SessionPump::~SessionPump() {
  {
    std::lock_guard<std::mutex> lock(waker_->mutex);
    waker_->pump = nullptr;
  }
  session_->output().on_readable(nullptr);
  if (!ended_) {
    ended_ = true;
    session_->end();
  }
}

void SessionPump::start() {
  if (auto* socket = qobject_cast<QAbstractSocket*>(device_)) {
    socket->setReadBufferSize(4 * kReadChunk);
    connect(socket, &QAbstractSocket::disconnected, this, &SessionPump::onDisconnected);
    connect(socket, &QAbstractSocket::errorOccurred, this, [this](QAbstractSocket::SocketError) {
      if (device_ && qobject_cast<QAbstractSocket*>(device_)->state() != QAbstractSocket::ConnectedState) {
        onDisconnected();
      }
    });
  } else if (auto* local = qobject_cast<QLocalSocket*>(device_)) {
    local->setReadBufferSize(4 * kReadChunk);
    connect(local, &QLocalSocket::disconnected, this, &SessionPump::onDisconnected);
  }
  connect(device_, &QIODevice::readyRead, this, &SessionPump::readInput);
  connect(device_, &QIODevice::bytesWritten, this, &SessionPump::flush);

  std::weak_ptr<Waker> weak = waker_;
  session_->output().on_readable([weak] {
    auto waker = weak.lock();
    if (!waker) return;
    std::lock_guard<std::mutex> lock(waker->mutex);
    // One queued flush at a time: a burst of appends costs one event.
    if (!waker->pump || waker->posted) return;
    waker->posted = true;
    QMetaObject::invokeMethod(waker->pump, &SessionPump::flush, Qt::QueuedConnection);
  });
  flush();
  readInput();
}

void SessionPump::readInput() {
  if (ended_ || closing_) return;
  while (device_->bytesAvailable() > 0 && session_->wants_input()) {
    QByteArray chunk = device_->read(kReadChunk);
    if (chunk.isEmpty()) break;
    session_->receive(chunk.constData(), static_cast<size_t>(chunk.size()));
    if (!session_->failed().empty()) break;
  }
  checkFailed();
}

void SessionPump::flush() {
  {
    std::lock_guard<std::mutex> lock(waker_->mutex);
    waker_->posted = false;
  }
  if (ended_) return;
  if (!closing_) {
    while (device_->bytesToWrite() < kWriteHighWater && session_->output().take(outgoing_) > 0) {
      device_->write(outgoing_.data(), static_cast<qint64>(outgoing_.size()));
    }
  }
  checkFailed();
  // Taking output may have made room for more input.
  if (!closing_ && device_->bytesAvailable() > 0) readInput();
}

void SessionPump::checkFailed() {
  if (ended_ || closing_) return;
  std::string failure = session_->failed();
  if (failure.empty()) return;
  // Send what is pending (a host's error reply, say), then close.
  while (session_->output().take(outgoing_) > 0) {
    device_->write(outgoing_.data(), static_cast<qint64>(outgoing_.size()));
  }
  close_reason_ = QString::fromStdString(failure);
  closeDevice(true);
}

void SessionPump::close(const QString& reason) {
  if (ended_) return;
  close_reason_ = reason;
  closeDevice(false);
}

void SessionPump::closeDevice(bool graceful) {
  closing_ = true;
  if (auto* socket = qobject_cast<QAbstractSocket*>(device_)) {
    if (graceful) {
      socket->disconnectFromHost();  // writes what is queued first
    } else {
      socket->abort();
    }
    if (socket->state() == QAbstractSocket::UnconnectedState) onDisconnected();
  } else if (auto* local = qobject_cast<QLocalSocket*>(device_)) {
    if (graceful) {
      local->disconnectFromServer();
    } else {
      local->abort();
    }
    if (local->state() == QLocalSocket::UnconnectedState) onDisconnected();
  } else {
    device_->close();
    onDisconnected();
  }
}

void SessionPump::onDisconnected() {
  if (ended_) return;
  QString reason = close_reason_;
  if (reason.isEmpty()) {
    reason = device_->errorString();
    if (reason.isEmpty() || reason == QLatin1String("Unknown error")) reason = QStringLiteral("peer closed the connection");
  }
  finish(reason);
}

void SessionPump::finish(const QString& reason) {
  ended_ = true;
  {
    std::lock_guard<std::mutex> lock(waker_->mutex);
    waker_->pump = nullptr;
  }
  session_->output().on_readable(nullptr);
  session_->end();
  emit finished(reason);
}

}  // namespace inspector

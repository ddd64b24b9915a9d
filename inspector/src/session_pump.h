// The Qt transport of the library's sans-I/O sessions: pumps bytes between a
// connected QTcpSocket or QLocalSocket and a many_level::Session (a guest's
// GuestConnection or a host's HostSession). It lives on the socket's thread;
// the session may append output from any thread, and its readable listener
// only posts a queued flush to this thread (QMetaObject::invokeMethod).
//
// Flow control both ways: input is read only while the session wants it
// (the socket's read buffer is bounded, so TCP pushes back on the peer), and
// output is taken from the session only while the socket has little queued,
// so a host's output high-water mark keeps its meaning.
#pragma once

#include <QObject>
#include <QString>

#include <memory>
#include <mutex>

#include "many_level/transport/session.hpp"

class QIODevice;

namespace inspector {

class SessionPump : public QObject {
  Q_OBJECT

 public:
  // `device` is a connected QAbstractSocket or QLocalSocket; the pump does
  // not own it. Call start() once the pump is on the device's thread.
  SessionPump(QIODevice* device, std::shared_ptr<many_level::Session> session, QObject* parent = nullptr);
  // Ends the session if the stream has not ended yet.
  ~SessionPump() override;

  void start();
  bool ended() const { return ended_; }

  // Socket bytes queued for writing above which the pump stops taking output.
  static constexpr qint64 kWriteHighWater = 256 * 1024;
  static constexpr qint64 kReadChunk = 64 * 1024;

 signals:
  // The stream is over and the session has been ended; `reason` says why.
  void finished(const QString& reason);

 public slots:
  // Ends the stream now (a host dropping a guest, a guest going away).
  void close(const QString& reason);

 private slots:
  void readInput();
  void flush();
  void onDisconnected();

 private:
  // The readable listener may fire on any thread, even while this pump is
  // being destroyed: it reaches the pump only through this, under a lock.
  struct Waker {
    std::mutex mutex;
    SessionPump* pump = nullptr;
    bool posted = false;
  };

  void finish(const QString& reason);
  void closeDevice(bool graceful);
  void checkFailed();

  QIODevice* device_;
  std::shared_ptr<many_level::Session> session_;
  std::shared_ptr<Waker> waker_;
  std::string outgoing_;
  bool ended_ = false;
  bool closing_ = false;
  QString close_reason_;
};

}  // namespace inspector

// A load generator that makes queues and backpressure visible: it issues
// puts, gets and dels at a chosen rate over a key space, through the guest's
// *_async twins, so thousands can be in flight at once, and measures each
// one's latency. While the connection is down the requests pile up in the
// guest (retry) up to a cap, then drain on reconnect: the pending view and
// the latency chart show both.
//
// Threads: one worker thread issues and collects (it waits on the oldest
// future or the next issue time, whichever comes first, so latencies are
// measured where the answer lands, not at a polling tick); the UI thread
// reads a window of statistics once a second.
#pragma once

#include <QMetaType>
#include <QObject>
#include <QString>
#include <QTimer>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "many_level/guest/guest.hpp"

namespace inspector {

struct LoadSettings {
  int rate = 200;           // operations a second
  int put_percent = 40;     // the mix; get is what put and del leave
  int del_percent = 10;
  int key_space = 1000;     // keys <prefix>000000 .. key_space - 1
  int value_size = 32;
  std::string prefix = "!load!";  // a sublevel, so the key browser shows it apart
  size_t max_in_flight = 20000;   // issuing pauses beyond this
};

// What happened during one window (about a second).
struct LoadWindow {
  double seconds = 0;
  uint64_t issued = 0;
  uint64_t completed = 0;  // answered, errors included
  uint64_t failed = 0;     // answered with an error (a get's LEVEL_NOT_FOUND is not one)
  uint64_t puts = 0, gets = 0, dels = 0;
  size_t in_flight = 0;    // at the end of the window
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  QString last_error;
};

class LoadGenerator : public QObject {
  Q_OBJECT

 public:
  explicit LoadGenerator(many_level::Guest& guest, QObject* parent = nullptr);
  ~LoadGenerator() override;

  // Takes effect at once, also while running.
  void setSettings(const LoadSettings& settings);
  LoadSettings settings() const;

  void start();
  void stop();
  bool isRunning() const { return thread_.joinable(); }

  // The statistics since the previous call (the timer calls it every second
  // while running and emits windowReady).
  LoadWindow takeWindow();
  uint64_t totalCompleted() const { return total_completed_; }
  size_t inFlight() const { return in_flight_; }

 signals:
  void windowReady(const inspector::LoadWindow& window);
  void runningChanged(bool running);

 private:
  void run();

  many_level::Guest& guest_;
  mutable std::mutex settings_mutex_;
  LoadSettings settings_;

  std::mutex stats_mutex_;
  std::condition_variable wake_;
  LoadWindow window_;
  std::vector<double> latencies_ms_;
  std::chrono::steady_clock::time_point window_start_;

  std::atomic<bool> running_{false};  // the worker's "go on"; it clears it itself if the guest closes
  std::atomic<uint64_t> total_completed_{0};
  std::atomic<size_t> in_flight_{0};
  std::thread thread_;
  QTimer window_timer_;
};

}  // namespace inspector

Q_DECLARE_METATYPE(inspector::LoadWindow)

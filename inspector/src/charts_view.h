// The charts tab: throughput, bandwidth, latency and buffered data over the
// last two minutes, one sample a second.
#pragma once

#include <QElapsedTimer>
#include <QWidget>

class QComboBox;

namespace inspector {

class InspectorSession;
class LoadGenerator;
class TimeSeriesChart;
struct LoadWindow;

class ChartsView : public QWidget {
  Q_OBJECT

 public:
  ChartsView(InspectorSession& session, LoadGenerator& load, QWidget* parent = nullptr);

  TimeSeriesChart* throughputChart() const { return throughput_; }
  TimeSeriesChart* bandwidthChart() const { return bandwidth_; }
  TimeSeriesChart* latencyChart() const { return latency_; }
  TimeSeriesChart* bufferedChart() const { return buffered_; }
  // Seconds of history shown: 30, 120 or 600.
  void setWindow(int seconds);

 private:
  void onRates();
  void onLoadWindow(const LoadWindow& window);
  double now() const { return static_cast<double>(clock_.elapsed()) / 1000.0; }

  InspectorSession& session_;
  QElapsedTimer clock_;
  QComboBox* window_;
  TimeSeriesChart* throughput_;
  TimeSeriesChart* bandwidth_;
  TimeSeriesChart* latency_;
  TimeSeriesChart* buffered_;
  int ops_ = 0, frames_in_ = 0, frames_out_ = 0;
  int bytes_in_ = 0, bytes_out_ = 0;
  int p50_ = 0, p99_ = 0, max_ = 0;
  int pending_ = 0, entries_ = 0, unacked_ = 0;
};

}  // namespace inspector

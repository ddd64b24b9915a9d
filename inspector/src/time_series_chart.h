// A small time-series chart drawn with QPainter: a few named series over a
// sliding window of time, y axis scaled to what is visible. Qt Charts would
// do, but it is GPL-only in its open-source form and not part of qtbase;
// this is all the Inspector needs.
#pragma once

#include <QColor>
#include <QString>
#include <QWidget>

#include <deque>
#include <functional>
#include <vector>

namespace inspector {

class TimeSeriesChart : public QWidget {
  Q_OBJECT

 public:
  explicit TimeSeriesChart(const QString& title, QWidget* parent = nullptr);

  int addSeries(const QString& name, const QColor& color);
  // Adds a point; times (seconds) must not go backwards.
  void append(int series, double time, double value);
  void clear();
  // Seconds of history shown (and kept).
  void setWindow(double seconds);
  // How the axis and legend print values (default: formatNumber).
  void setValueFormatter(std::function<QString(double)> format) { format_ = std::move(format); }

  int seriesCount() const { return static_cast<int>(series_.size()); }
  size_t pointCount(int series) const { return series_.at(static_cast<size_t>(series)).points.size(); }
  double lastValue(int series) const;
  QString title() const { return title_; }

  QSize sizeHint() const override { return {420, 220}; }
  QSize minimumSizeHint() const override { return {220, 140}; }

  // "0", "2.5", "1,250": three significant digits below 10, whole numbers above.
  static QString formatNumber(double value);
  // 1, 2 or 5 times a power of ten, at or above `value`.
  static double niceCeiling(double value);

 protected:
  void paintEvent(QPaintEvent* event) override;

 private:
  struct Series {
    QString name;
    QColor color;
    std::deque<std::pair<double, double>> points;
  };

  QString title_;
  std::vector<Series> series_;
  double window_ = 120;  // seconds shown
  double latest_ = 0;
  std::function<QString(double)> format_;
};

}  // namespace inspector

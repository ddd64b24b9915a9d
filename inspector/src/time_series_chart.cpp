#include "time_series_chart.h"

#include <QPainter>
#include <QLocale>
#include <QPainterPath>

#include <algorithm>
#include <cmath>

namespace inspector {

TimeSeriesChart::TimeSeriesChart(const QString& title, QWidget* parent) : QWidget(parent), title_(title) {
  format_ = [](double value) { return formatNumber(value); };
  setAutoFillBackground(true);
  QPalette p = palette();
  p.setColor(QPalette::Window, Qt::white);
  setPalette(p);
}

int TimeSeriesChart::addSeries(const QString& name, const QColor& color) {
  series_.push_back(Series{name, color, {}});
  return static_cast<int>(series_.size()) - 1;
}

void TimeSeriesChart::append(int series, double time, double value) {
  Series& s = series_.at(static_cast<size_t>(series));
  s.points.emplace_back(time, std::isfinite(value) ? value : 0.0);
  latest_ = std::max(latest_, time);
  for (auto& each : series_) {
    // Ten minutes are kept whatever is shown, so a wider window has history.
    while (!each.points.empty() && each.points.front().first < latest_ - std::max(window_, 600.0) - 1) {
      each.points.pop_front();
    }
  }
  update();
}

void TimeSeriesChart::clear() {
  for (auto& s : series_) s.points.clear();
  latest_ = 0;
  update();
}

void TimeSeriesChart::setWindow(double seconds) {
  window_ = std::max(1.0, seconds);
  update();
}

double TimeSeriesChart::lastValue(int series) const {
  const Series& s = series_.at(static_cast<size_t>(series));
  return s.points.empty() ? 0.0 : s.points.back().second;
}

QString TimeSeriesChart::formatNumber(double value) {
  if (value == 0) return QStringLiteral("0");
  if (std::abs(value) < 10) return QString::number(value, 'g', 3);
  return QLocale().toString(value, 'f', 0);
}

double TimeSeriesChart::niceCeiling(double value) {
  if (!(value > 0)) return 1;
  const double power = std::pow(10.0, std::floor(std::log10(value)));
  const double fraction = value / power;
  const double nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

void TimeSeriesChart::paintEvent(QPaintEvent*) {
  QPainter painter(this);
  painter.setRenderHint(QPainter::Antialiasing);
  const QFontMetrics metrics = fontMetrics();
  const int line = metrics.height();

  // Title, and a legend with each series' latest value.
  QFont bold = font();
  bold.setBold(true);
  painter.setFont(bold);
  painter.setPen(palette().color(QPalette::WindowText));
  painter.drawText(QRect(8, 4, width() - 16, line), Qt::AlignLeft | Qt::AlignVCenter, title_);
  painter.setFont(font());
  int legend_x = 8;
  const int legend_y = 6 + line;
  for (const auto& s : series_) {
    const QString text = s.name + QStringLiteral(": ") + format_(s.points.empty() ? 0.0 : s.points.back().second);
    painter.fillRect(QRect(legend_x, legend_y + line / 2 - 3, 14, 6), s.color);
    painter.setPen(palette().color(QPalette::WindowText));
    painter.drawText(QPoint(legend_x + 18, legend_y + metrics.ascent()), text);
    legend_x += 18 + metrics.horizontalAdvance(text) + 16;
  }

  // The plot area.
  double highest = 0;
  for (const auto& s : series_) {
    for (const auto& [t, v] : s.points) {
      if (t >= latest_ - window_) highest = std::max(highest, v);
    }
  }
  const double top_value = niceCeiling(highest);
  const int ticks = 4;
  int label_width = 0;
  for (int i = 0; i <= ticks; ++i) {
    label_width = std::max(label_width, metrics.horizontalAdvance(format_(top_value * i / ticks)));
  }
  label_width += 10;
  const QRectF plot(label_width + 4, legend_y + line + 8, width() - label_width - 14,
                    height() - (legend_y + line + 8) - line - 8);
  if (plot.width() < 20 || plot.height() < 20) return;

  painter.setPen(QColor(225, 225, 225));
  for (int i = 0; i <= ticks; ++i) {
    const double y = plot.bottom() - plot.height() * i / ticks;
    painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y));
  }
  painter.setPen(QColor(110, 110, 110));
  for (int i = 0; i <= ticks; ++i) {
    const double y = plot.bottom() - plot.height() * i / ticks;
    painter.drawText(QRectF(0, y - line / 2.0, label_width, line), Qt::AlignRight | Qt::AlignVCenter,
                     format_(top_value * i / ticks));
  }
  painter.drawRect(plot);
  painter.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), line), Qt::AlignLeft,
                   tr("-%1 s").arg(window_, 0, 'f', 0));
  painter.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), line), Qt::AlignRight, tr("now"));

  const double left_time = latest_ - window_;
  const auto to_point = [&](double t, double v) {
    return QPointF(plot.left() + (t - left_time) / window_ * plot.width(), plot.bottom() - v / top_value * plot.height());
  };
  painter.setClipRect(plot.adjusted(0, -1, 0, 1));
  for (const auto& s : series_) {
    QPainterPath path;
    bool started = false;
    for (const auto& [t, v] : s.points) {
      if (t < left_time - 1) continue;
      if (!started) {
        path.moveTo(to_point(t, v));
        started = true;
      } else {
        path.lineTo(to_point(t, v));
      }
    }
    painter.setPen(QPen(s.color, 2));
    painter.drawPath(path);
  }
}

}  // namespace inspector

#include "charts_view.h"

#include <QComboBox>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QVBoxLayout>
#include <QLocale>

#include "inspector_session.h"
#include "load_generator.h"
#include "time_series_chart.h"

namespace inspector {

ChartsView::ChartsView(InspectorSession& session, LoadGenerator& load, QWidget* parent)
    : QWidget(parent), session_(session) {
  clock_.start();
  throughput_ = new TimeSeriesChart(tr("Throughput (per second)"));
  ops_ = throughput_->addSeries(tr("ops answered"), QColor(30, 120, 200));
  frames_out_ = throughput_->addSeries(tr("frames out"), QColor(230, 130, 20));
  frames_in_ = throughput_->addSeries(tr("frames in"), QColor(40, 160, 70));

  bandwidth_ = new TimeSeriesChart(tr("Bandwidth"));
  bytes_out_ = bandwidth_->addSeries(tr("out"), QColor(230, 130, 20));
  bytes_in_ = bandwidth_->addSeries(tr("in"), QColor(40, 160, 70));
  bandwidth_->setValueFormatter([](double value) {
    return QLocale().formattedDataSize(static_cast<qint64>(value), 1, QLocale::DataSizeSIFormat) + QStringLiteral("/s");
  });

  latency_ = new TimeSeriesChart(tr("Latency of the load generator (ms)"));
  p50_ = latency_->addSeries(tr("p50"), QColor(30, 120, 200));
  p99_ = latency_->addSeries(tr("p99"), QColor(200, 60, 60));
  max_ = latency_->addSeries(tr("max"), QColor(150, 150, 150));

  buffered_ = new TimeSeriesChart(tr("Buffered and waiting"));
  pending_ = buffered_->addSeries(tr("requests pending"), QColor(200, 60, 60));
  entries_ = buffered_->addSeries(tr("iterator entries buffered"), QColor(30, 120, 200));
  unacked_ = buffered_->addSeries(tr("frames unacked"), QColor(230, 130, 20));

  window_ = new QComboBox;
  for (int seconds : {30, 120, 600}) {
    window_->addItem(seconds < 120 ? tr("last %1 s").arg(seconds) : tr("last %1 min").arg(seconds / 60), seconds);
  }
  window_->setCurrentIndex(1);
  connect(window_, &QComboBox::currentIndexChanged, this, [this] { setWindow(window_->currentData().toInt()); });

  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel(tr("One sample a second, over the")));
  bar->addWidget(window_);
  bar->addStretch(1);
  auto* grid = new QGridLayout;
  grid->addWidget(throughput_, 0, 0);
  grid->addWidget(bandwidth_, 0, 1);
  grid->addWidget(latency_, 1, 0);
  grid->addWidget(buffered_, 1, 1);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(bar);
  layout->addLayout(grid, 1);
  setWindow(120);

  connect(&session, &InspectorSession::ratesUpdated, this, &ChartsView::onRates);
  connect(&load, &LoadGenerator::windowReady, this, &ChartsView::onLoadWindow);
}

void ChartsView::setWindow(int seconds) {
  for (TimeSeriesChart* chart : {throughput_, bandwidth_, latency_, buffered_}) chart->setWindow(seconds);
  const int index = window_->findData(seconds);
  if (index >= 0 && index != window_->currentIndex()) window_->setCurrentIndex(index);
}

void ChartsView::onRates() {
  const double t = now();
  const auto& rates = session_.rates();
  throughput_->append(frames_in_, t, rates.frames_in);
  throughput_->append(frames_out_, t, rates.frames_out);
  bandwidth_->append(bytes_in_, t, rates.bytes_in);
  bandwidth_->append(bytes_out_, t, rates.bytes_out);
  const auto& stats = session_.stats();
  size_t entries = 0;
  size_t unacked = 0;
  for (const auto& info : stats.iterators) {
    entries += info.buffered_entries;
    unacked += info.unacknowledged_frames;
  }
  buffered_->append(pending_, t, static_cast<double>(stats.pending.size()));
  buffered_->append(entries_, t, static_cast<double>(entries));
  buffered_->append(unacked_, t, static_cast<double>(unacked));
}

void ChartsView::onLoadWindow(const LoadWindow& window) {
  const double t = now();
  const double seconds = window.seconds > 0 ? window.seconds : 1;
  throughput_->append(ops_, t, window.completed / seconds);
  if (window.completed > 0) {
    latency_->append(p50_, t, window.p50_ms);
    latency_->append(p99_, t, window.p99_ms);
    latency_->append(max_, t, window.max_ms);
  }
}

}  // namespace inspector

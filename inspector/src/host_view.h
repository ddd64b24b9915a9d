// The host tab: the host's own statistics (Guest::host_stats_async, the
// extension's HostStats), once a second while the tab is shown: uptime,
// database, commit sequence, and every connection of every guest, this one
// included. A Node host has none: the tab says so and stops asking.
#pragma once

#include <QTimer>
#include <QWidget>

#include <future>
#include <optional>

#include "many_level/host_stats.hpp"

class QLabel;
class QTableView;

namespace inspector {

class HostStatsModel;
class InspectorSession;

class HostView : public QWidget {
  Q_OBJECT

 public:
  explicit HostView(InspectorSession& session, QWidget* parent = nullptr);

  HostStatsModel* model() const { return model_; }
  QTableView* table() const { return table_; }
  QLabel* summaryLabel() const { return summary_; }
  QLabel* noteLabel() const { return note_; }
  // False once the host is known to have no statistics (a Node host).
  bool isAvailable() const { return available_; }

  // Asks for the statistics now (unless a request is under way).
  void refresh();
  // Refreshing while the tab is hidden too (tests, screenshots).
  void setAlwaysRefresh(bool on);

 signals:
  void updated();

 protected:
  void showEvent(QShowEvent* event) override;
  void hideEvent(QHideEvent* event) override;

 private:
  void poll();
  void setAvailable(bool available, const QString& note = QString());

  InspectorSession& session_;
  HostStatsModel* model_;
  QTableView* table_;
  QLabel* summary_;
  QLabel* note_;
  QTimer refresh_timer_;  // once a second: ask
  QTimer poll_timer_;     // a tenth of a second: has the answer come?
  std::optional<std::future<many_level::HostStats>> pending_;
  bool available_ = true;
  bool always_ = false;
};

}  // namespace inspector

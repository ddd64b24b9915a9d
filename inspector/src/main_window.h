// The Inspector's window: a tab for each view (connection, host, keys,
// iterators, pending operations, frames, charts) and a status bar with the
// connection and the key browser's liveness at a glance.
#pragma once

#include <QMainWindow>
#include <QString>

#include <memory>

class QLabel;
class QTabWidget;

namespace inspector {

class ChartsView;
class ConnectionView;
class FrameLogView;
class HostView;
class InspectorSession;
class IteratorsView;
class KeyBrowser;
class LoadGenerator;
class PendingView;
class Prompter;

struct MainWindowOptions {
  bool read_only = false;        // no put/edit/delete, whatever the host allows
  Prompter* prompter = nullptr;  // nullptr: dialogs
  QString token_file;            // shown in the connection form (the session's guest sends its token)
};

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  enum Tab { ConnectionTab, HostTab, KeysTab, IteratorsTab, PendingTab, FramesTab, ChartsTab };

  explicit MainWindow(InspectorSession& session, const MainWindowOptions& options = {}, QWidget* parent = nullptr);
  // Stops the load generator and closes the guest first, so no worker is
  // left waiting on a host while the views go.
  ~MainWindow() override;

  QTabWidget* tabs() const { return tabs_; }
  ConnectionView* connectionView() const { return connection_; }
  HostView* hostView() const { return host_; }
  KeyBrowser* keyBrowser() const { return keys_; }
  IteratorsView* iteratorsView() const { return iterators_; }
  PendingView* pendingView() const { return pending_; }
  FrameLogView* frameLogView() const { return frames_; }
  ChartsView* chartsView() const { return charts_; }
  LoadGenerator* loadGenerator() const { return load_; }
  // "Live: following the host's change feed", or why it polls.
  QLabel* liveLabel() const { return live_; }

 private:
  void updateStatus();

  InspectorSession& session_;
  std::unique_ptr<Prompter> own_prompter_;
  LoadGenerator* load_;
  QTabWidget* tabs_;
  ConnectionView* connection_;
  HostView* host_;
  KeyBrowser* keys_;
  IteratorsView* iterators_;
  PendingView* pending_;
  FrameLogView* frames_;
  ChartsView* charts_;
  QLabel* state_;
  QLabel* live_;
  QLabel* counts_;
};

}  // namespace inspector

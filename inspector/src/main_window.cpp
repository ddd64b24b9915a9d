#include "main_window.h"

#include <QLabel>
#include <QLineEdit>
#include <QStatusBar>
#include <QTabWidget>

#include "charts_view.h"
#include "connection_view.h"
#include "dialog_prompter.h"
#include "frame_log_view.h"
#include "host_view.h"
#include "inspector_session.h"
#include "iterators_view.h"
#include "key_browser.h"
#include "key_list_model.h"
#include "load_generator.h"
#include "pending_view.h"

namespace inspector {

MainWindow::MainWindow(InspectorSession& session, const MainWindowOptions& options, QWidget* parent)
    : QMainWindow(parent), session_(session) {
  Prompter* prompter = options.prompter;
  if (!prompter) {
    own_prompter_ = std::make_unique<DialogPrompter>();
    prompter = own_prompter_.get();
  }
  load_ = new LoadGenerator(session.guest(), this);
  tabs_ = new QTabWidget;
  connection_ = new ConnectionView(session);
  if (!options.token_file.isEmpty()) connection_->tokenFileEdit()->setText(options.token_file);
  host_ = new HostView(session);
  keys_ = new KeyBrowser(session.guest(), session.queryHooks(), *prompter);
  iterators_ = new IteratorsView(session);
  pending_ = new PendingView(session, *load_);
  frames_ = new FrameLogView(session.frames());
  charts_ = new ChartsView(session, *load_);
  tabs_->addTab(connection_, tr("Connection"));
  tabs_->addTab(host_, tr("Host"));
  tabs_->addTab(keys_, tr("Keys"));
  tabs_->addTab(iterators_, tr("Iterators"));
  tabs_->addTab(pending_, tr("Pending"));
  tabs_->addTab(frames_, tr("Frames"));
  tabs_->addTab(charts_, tr("Charts"));
  setCentralWidget(tabs_);
  if (options.read_only) keys_->setReadOnly(true, tr("Read-only (--readonly): editing is off"));

  state_ = new QLabel;
  live_ = new QLabel;
  counts_ = new QLabel;
  statusBar()->addWidget(state_, 1);
  statusBar()->addPermanentWidget(live_);
  statusBar()->addPermanentWidget(counts_);
  connect(&session, &InspectorSession::stateChanged, this, &MainWindow::updateStatus);
  connect(&session, &InspectorSession::statsUpdated, this, &MainWindow::updateStatus);
  connect(&session, &InspectorSession::accessChanged, this, &MainWindow::updateStatus);
  KeyListModel* keys_model = keys_->model();
  connect(keys_model, &KeyListModel::liveChanged, this, &MainWindow::updateStatus);
  connect(&session, &InspectorSession::stateChanged, keys_model, [keys_model](InspectorSession::State state) {
    // Connected anew, maybe to another host: one without a change feed
    // before may have one now.
    if (state == InspectorSession::State::connected) keys_model->retryLive();
  });
  updateStatus();
  setWindowTitle(tr("many-level Inspector"));
  resize(1200, 800);
}

MainWindow::~MainWindow() {
  load_->stop();
  session_.shutdown();
}

void MainWindow::updateStatus() {
  const auto endpoint = session_.endpoint();
  QString state = tr("%1 %2").arg(InspectorSession::stateName(session_.state()),
                                  endpoint ? endpoint->toString() : QString());
  const QString access = session_.accessText();
  if (!access.isEmpty()) state += QStringLiteral(" · ") + access;
  state_->setText(state);
  state_->setStyleSheet(session_.accessError().isEmpty() ? QString() : QStringLiteral("color: darkred"));
  live_->setText(keys_->model()->liveText());
  const auto& stats = session_.stats();
  counts_->setText(tr("reconnects %1 · pending %2 · iterators %3")
                       .arg(session_.reconnects())
                       .arg(stats.pending.size())
                       .arg(stats.iterators.size()));
}

}  // namespace inspector

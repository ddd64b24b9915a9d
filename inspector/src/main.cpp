// many-level-inspector: a Qt guest that shows a live many-level database and
// the guest's own machinery. Works against a C++ host and a Node host alike.
//
//   many-level-inspector [--connect ADDR] [--token-file FILE] [--readonly] [--demo [N]]
//     ADDR   tcp://HOST:PORT, tls://HOST:PORT (the system's CAs; the
//            Connection tab has the other TLS settings) or unix:PATH
//     FILE   the token for a host that authenticates: the file's first
//            line (without it: MANY_LEVEL_TOKEN, if set)
//     --demo serve N sample keys (default 10000) from an in-process host and
//            connect to it: a classroom needs nothing else
#include <QApplication>
#include <QCommandLineParser>

#include <cstdio>
#include <memory>

#include "connect_settings.h"
#include "demo_data.h"
#include "inspector_session.h"
#include "main_window.h"
#include "many_level/memory_database.hpp"
#include "many_level/version.hpp"
#include "served_host.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName(QStringLiteral("many-level-inspector"));
  QApplication::setApplicationVersion(QStringLiteral(MANY_LEVEL_VERSION_STRING));

  QCommandLineParser parser;
  parser.setApplicationDescription(
      QStringLiteral("Shows a live many-level database (protocol %1) and the guest's machinery.")
          .arg(QStringLiteral(MANY_LEVEL_PROTOCOL_VERSION_STRING)));
  parser.addHelpOption();
  parser.addVersionOption();
  QCommandLineOption connect_option(QStringLiteral("connect"), QStringLiteral("The host: tcp://HOST:PORT, tls://HOST:PORT or unix:PATH."),
                                    QStringLiteral("ADDR"));
  QCommandLineOption readonly_option(QStringLiteral("readonly"), QStringLiteral("Never write: no put, edit or delete."));
  QCommandLineOption demo_option(QStringLiteral("demo"),
                                 QStringLiteral("Serve N sample keys from an in-process host and connect to it."),
                                 QStringLiteral("N"));
  QCommandLineOption token_file_option(
      QStringLiteral("token-file"),
      QStringLiteral("The token for a host that authenticates: the first line of FILE (default: MANY_LEVEL_TOKEN)."),
      QStringLiteral("FILE"));
  parser.addOption(connect_option);
  parser.addOption(token_file_option);
  parser.addOption(readonly_option);
  parser.addOption(demo_option);
  parser.process(app);

  std::unique_ptr<many_level::MemoryDatabase> demo_db;
  std::unique_ptr<inspector::ServedHost> demo_host;
  std::optional<inspector::Endpoint> endpoint;
  if (parser.isSet(demo_option)) {
    bool ok = false;
    const qulonglong keys = parser.value(demo_option).toULongLong(&ok);
    demo_db = std::make_unique<many_level::MemoryDatabase>();
    inspector::seedDemoData(*demo_db, ok ? keys : 10000);
    demo_host = std::make_unique<inspector::ServedHost>(*demo_db);
    endpoint = demo_host->listen();
    std::fprintf(stderr, "many-level-inspector: demo host at %s\n", endpoint->toString().toUtf8().constData());
  } else if (parser.isSet(connect_option)) {
    QString error;
    endpoint = inspector::Endpoint::parse(parser.value(connect_option), &error);
    if (!endpoint) {
      std::fprintf(stderr, "many-level-inspector: %s\n", error.toUtf8().constData());
      return 2;
    }
  }

  // The guest's token is fixed for its life: read it before the guest is made.
  std::optional<std::string> token;
  {
    QString error;
    if (!inspector::resolveToken(parser.value(token_file_option), &token, &error)) {
      std::fprintf(stderr, "many-level-inspector: %s\n", error.toUtf8().constData());
      return 2;
    }
  }
  auto session = std::make_unique<inspector::InspectorSession>(std::move(token));
  inspector::MainWindowOptions options;
  options.token_file = parser.value(token_file_option);
  options.read_only = parser.isSet(readonly_option);
  int status;
  {
    inspector::MainWindow window(*session, options);
    if (endpoint) session->connectTo(*endpoint);
    window.show();
    status = QApplication::exec();
  }
  session.reset();  // before the demo host goes
  return status;
}

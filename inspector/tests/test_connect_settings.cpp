// The connection form's TLS and token settings: what it makes of them
// (TlsSettings and a TLS wrapper for a tls:// address, the token from a
// file or MANY_LEVEL_TOKEN, a clear message for a bad file), and, against a
// real host that authenticates, the grant it shows and a refusal
// (LEVEL_UNAUTHENTICATED) it makes plain.
#include <QCheckBox>
#include <QGroupBox>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QTemporaryDir>
#include <QtTest>

#include "connect_settings.h"
#include "connection_view.h"
#include "many_level/host/access.hpp"
#include "many_level/host/host.hpp"
#include "test_support.h"

#ifndef MANY_LEVEL_NO_OPENSSL
#include "many_level/transport/event_loop.hpp"
#include "many_level/transport/tls.hpp"
#endif

using namespace inspector_test;

namespace {

QString writeFile(const QTemporaryDir& dir, const QString& name, const QByteArray& content) {
  const QString path = dir.filePath(name);
  QFile file(path);
  if (!file.open(QIODevice::WriteOnly)) return {};
  file.write(content);
  return path;
}

// MANY_LEVEL_TOKEN unset for the life of a test, restored after.
struct NoTokenEnvironment {
  QByteArray saved = qgetenv(kTokenEnvironmentVariable);
  bool had = qEnvironmentVariableIsSet(kTokenEnvironmentVariable);
  NoTokenEnvironment() { qunsetenv(kTokenEnvironmentVariable); }
  ~NoTokenEnvironment() {
    if (had) {
      qputenv(kTokenEnvironmentVariable, saved);
    } else {
      qunsetenv(kTokenEnvironmentVariable);
    }
  }
};

HostFixture tokenHost(const std::string& token) {
  auto table = std::make_shared<many_level::TokenTable>();
  table->add_token(token, many_level::Grant::read_only_all());
  many_level::HostOptions options;
  options.access = many_level::HostAccess::with_tokens(table);
  return HostFixture(std::move(options));
}

#ifndef MANY_LEVEL_NO_OPENSSL
// Runs the openssl program; false when it is missing or fails.
bool runOpenssl(const QString& dir, const QStringList& args) {
  QProcess process;
  process.setWorkingDirectory(dir);
  process.start(QStringLiteral("openssl"), args);
  if (!process.waitForStarted(5000) || !process.waitForFinished(30000)) return false;
  return process.exitStatus() == QProcess::NormalExit && process.exitCode() == 0;
}

// A CA (ca.pem) and a host certificate it signed for 127.0.0.1 (host.pem,
// host.key), plus another CA (other.pem), made with the openssl program.
bool makeCertificates(const QString& dir) {
  auto ca = [&](const QString& name) {
    return runOpenssl(dir, {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days",
                            "2", "-keyout", name + ".key", "-out", name + ".pem", "-subj", "/CN=inspector test " + name,
                            "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                            "keyUsage=critical,keyCertSign,cRLSign"});
  };
  if (!ca(QStringLiteral("ca")) || !ca(QStringLiteral("other"))) return false;
  if (!runOpenssl(dir, {"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "host.key",
                        "-out", "host.csr", "-subj", "/CN=127.0.0.1"})) {
    return false;
  }
  QFile ext(dir + QStringLiteral("/host.ext"));
  if (!ext.open(QIODevice::WriteOnly)) return false;
  ext.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  ext.close();
  return runOpenssl(dir, {"x509", "-req", "-in", "host.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                          "-days", "2", "-extfile", "host.ext", "-out", "host.pem"});
}

// A C++ host behind the library's own TLS listener (an EventLoop thread).
struct TlsHostFixture {
  many_level::MemoryDatabase db;
  many_level::Host host{db};
  many_level::EventLoop loop;
  Endpoint endpoint;

  TlsHostFixture(const QString& certificate, const QString& key) {
    many_level::TlsServerOptions options;
    options.certificate_chain_file = certificate.toStdString();
    options.private_key_file = key.toStdString();
    many_level::Address bound =
        many_level::listen_tls(loop, "tls://127.0.0.1:0", many_level::TlsContext::server(options),
                               [this](const many_level::ConnectionInfo& info) { return host.create_session(info.peer); });
    endpoint = *Endpoint::parse(QString::fromStdString(bound.to_string()));
    loop.start();
  }
  ~TlsHostFixture() { loop.stop(); }
};
#endif

}  // namespace

class TestConnectSettings : public QObject {
  Q_OBJECT

 private slots:
  void tlsEndpointParsing() {
    auto tls = Endpoint::parse(QStringLiteral("tls://db.example.com:9443"));
    QVERIFY(tls);
    QVERIFY(tls->tls);
    QCOMPARE(tls->host, QStringLiteral("db.example.com"));
    QCOMPARE(tls->port, quint16(9443));
    QCOMPARE(tls->toString(), QStringLiteral("tls://db.example.com:9443"));
    QVERIFY(tls->toAddress().tls);
    QVERIFY(!Endpoint::parse(QStringLiteral("tcp://127.0.0.1:1"))->tls);
    QVERIFY(*Endpoint::parse(QStringLiteral("tcp://h:1")) != *tls);
  }

  void tlsFieldsFollowTheAddress() {
    NoTokenEnvironment env;
    InspectorSession session;
    ConnectionView view(session);
    view.addressEdit()->setText(QStringLiteral("tcp://127.0.0.1:7000"));
    QVERIFY(!view.tlsBox()->isEnabled());
    QString error;
    auto request = view.connectRequest(&error);
    QVERIFY2(request, qPrintable(error));
    QVERIFY(!request->tls);
    QVERIFY(!request->wrap);
    QVERIFY(!request->token);

    view.addressEdit()->setText(QStringLiteral("tls://127.0.0.1:7000"));
    if (!tlsAvailable()) {
      QVERIFY(!view.tlsBox()->isEnabled());
      QVERIFY(view.tlsBox()->toolTip().contains(QStringLiteral("OpenSSL")));
      QVERIFY(!view.connectRequest(&error));
      QSKIP("built without OpenSSL");
    }
    QVERIFY(view.tlsBox()->isEnabled());
    QVERIFY(view.insecureWarning()->isHidden());
    view.insecureCheck()->setChecked(true);
    QVERIFY(!view.insecureWarning()->isHidden());
    QVERIFY(view.insecureWarning()->text().contains(QStringLiteral("not checked")));
    request = view.connectRequest(&error);
    QVERIFY2(request, qPrintable(error));
    QVERIFY(request->endpoint.tls);
    QVERIFY(request->tls);
    QVERIFY(request->tls->insecure);
    QVERIFY(request->tls->ca_file.isEmpty());
    QVERIFY(request->wrap);
    view.insecureCheck()->setChecked(false);
    QVERIFY(view.insecureWarning()->isHidden());

    // Empty CA file: the system's CAs.
    request = view.connectRequest(&error);
    QVERIFY2(request, qPrintable(error));
    QVERIFY(!request->tls->insecure);
    QVERIFY(request->wrap);

    // A CA file that cannot be loaded: said in the form, no connect.
    view.caFileEdit()->setText(QStringLiteral("/nonexistent/ca.pem"));
    QVERIFY(!view.connectRequest(&error));
    QVERIFY2(error.contains(QStringLiteral("/nonexistent/ca.pem")), qPrintable(error));
    view.connectButton()->click();
    QVERIFY(!view.formMessage()->isHidden());
    QVERIFY(view.formMessage()->text().contains(QStringLiteral("/nonexistent/ca.pem")));
    QCOMPARE(session.state(), InspectorSession::State::idle);
    view.caFileEdit()->clear();

    // A client certificate needs its key.
    view.certificateEdit()->setText(QStringLiteral("/tmp/client.pem"));
    QVERIFY(!view.connectRequest(&error));
    QVERIFY2(error.contains(QStringLiteral("key")), qPrintable(error));
  }

  void tlsSettingsCarryThePaths() {
    if (!tlsAvailable()) QSKIP("built without OpenSSL");
    NoTokenEnvironment env;
    InspectorSession session;
    ConnectionView view(session);
    view.addressEdit()->setText(QStringLiteral("tls://[::1]:9443"));
    view.caFileEdit()->setText(QStringLiteral("  /etc/ssl/certs/ca-certificates.crt "));
    view.insecureCheck()->setChecked(true);  // insecure: the paths are kept, not loaded
    QString error;
    auto request = view.connectRequest(&error);
    QVERIFY2(request, qPrintable(error));
    QCOMPARE(request->tls->ca_file, QStringLiteral("/etc/ssl/certs/ca-certificates.crt"));
    QVERIFY(request->tls->certificate_file.isEmpty());
    QCOMPARE(request->endpoint.toString(), QStringLiteral("tls://[::1]:9443"));
  }

  // The form's TLS settings against a real TLS host: its CA verifies it,
  // another CA does not, and "insecure" connects without checking.
  void tlsEndToEnd() {
#ifdef MANY_LEVEL_NO_OPENSSL
    QSKIP("built without OpenSSL");
#else
    NoTokenEnvironment env;
    QTemporaryDir dir;
    if (!makeCertificates(dir.path())) QSKIP("the openssl program could not make test certificates");
    TlsHostFixture fixture(dir.filePath(QStringLiteral("host.pem")), dir.filePath(QStringLiteral("host.key")));
    fixture.db.put("secret", "over tls", kRawWrite);
    QVERIFY(fixture.endpoint.tls);

    {
      InspectorSession session;
      session.setBackoff(20, 200);
      ConnectionView view(session);
      view.addressEdit()->setText(fixture.endpoint.toString());
      view.caFileEdit()->setText(dir.filePath(QStringLiteral("ca.pem")));
      view.connectButton()->click();
      QVERIFY2(view.formMessage()->isHidden(), qPrintable(view.formMessage()->text()));
      QTRY_COMPARE_WITH_TIMEOUT(session.state(), InspectorSession::State::connected, kTimeout);
      auto value = session.guest().get_async("secret", kRawRead);
      QVERIFY(QTest::qWaitFor([&] { return value.wait_for(std::chrono::seconds(0)) == std::future_status::ready; },
                              kTimeout));
      QCOMPARE(*value.get(), std::string("over tls"));
      QTRY_COMPARE_WITH_TIMEOUT(session.hostGrant(), QStringLiteral("read-write"), kTimeout);
    }
    {
      // Another CA: the handshake fails, the stream ends, the log says why.
      InspectorSession session;
      session.setBackoff(20, 200);
      ConnectionView view(session);
      view.addressEdit()->setText(fixture.endpoint.toString());
      view.caFileEdit()->setText(dir.filePath(QStringLiteral("other.pem")));
      view.connectButton()->click();
      QTRY_VERIFY_WITH_TIMEOUT(view.log()->toPlainText().contains(QStringLiteral("lost")), kTimeout);
      session.pollStats();
      auto value = session.guest().get_async("secret", kRawRead);
      QTest::qWait(300);
      QVERIFY(value.wait_for(std::chrono::seconds(0)) != std::future_status::ready);
      session.disconnectFromHost();
    }
    {
      InspectorSession session;
      session.setBackoff(20, 200);
      ConnectionView view(session);
      view.addressEdit()->setText(fixture.endpoint.toString());
      view.caFileEdit()->setText(dir.filePath(QStringLiteral("other.pem")));
      view.insecureCheck()->setChecked(true);
      view.connectButton()->click();
      QTRY_COMPARE_WITH_TIMEOUT(session.state(), InspectorSession::State::connected, kTimeout);
      QVERIFY(view.log()->toPlainText().contains(QStringLiteral("insecure")));
      auto value = session.guest().get_async("secret", kRawRead);
      QVERIFY(QTest::qWaitFor([&] { return value.wait_for(std::chrono::seconds(0)) == std::future_status::ready; },
                              kTimeout));
      QCOMPARE(*value.get(), std::string("over tls"));
    }
#endif
  }

  void tokenFromFile() {
    NoTokenEnvironment env;
    qputenv(kTokenEnvironmentVariable, "from-the-environment");  // the file wins
    QTemporaryDir dir;
    const QString path = writeFile(dir, QStringLiteral("token"), "  s3cret-token \t\nsecond line\n");
    InspectorSession session;
    ConnectionView view(session);
    view.addressEdit()->setText(QStringLiteral("tcp://127.0.0.1:7000"));
    view.tokenFileEdit()->setText(path);
    QString error;
    auto request = view.connectRequest(&error);
    QVERIFY2(request, qPrintable(error));
    QVERIFY(request->token);
    QCOMPARE(*request->token, std::string("s3cret-token"));
    QVERIFY(request->token_source.contains(path));
  }

  void tokenFromEnvironment() {
    NoTokenEnvironment env;
    InspectorSession session;
    ConnectionView view(session);
    view.addressEdit()->setText(QStringLiteral("tcp://127.0.0.1:7000"));
    QString error;
    auto request = view.connectRequest(&error);
    QVERIFY2(request, qPrintable(error));
    QVERIFY(!request->token);
    qputenv(kTokenEnvironmentVariable, " env-token\n");
    request = view.connectRequest(&error);
    QVERIFY2(request, qPrintable(error));
    QVERIFY(request->token);
    QCOMPARE(*request->token, std::string("env-token"));
    QCOMPARE(request->token_source, QLatin1String(kTokenEnvironmentVariable));
  }

  void badTokenFile() {
    NoTokenEnvironment env;
    QTemporaryDir dir;
    InspectorSession session;
    ConnectionView view(session);
    view.addressEdit()->setText(QStringLiteral("tcp://127.0.0.1:7000"));
    QString error;

    const QString missing = dir.filePath(QStringLiteral("missing"));
    view.tokenFileEdit()->setText(missing);
    QVERIFY(!view.connectRequest(&error));
    QVERIFY2(error.contains(missing) && error.contains(QStringLiteral("does not exist")), qPrintable(error));
    view.connectButton()->click();
    QVERIFY(!view.formMessage()->isHidden());
    QVERIFY(view.formMessage()->text().contains(missing));
    QCOMPARE(session.state(), InspectorSession::State::idle);

    view.tokenFileEdit()->setText(writeFile(dir, QStringLiteral("empty"), "\n  \n"));
    QVERIFY(!view.connectRequest(&error));
    QVERIFY2(error.contains(QStringLiteral("empty")), qPrintable(error));

    view.tokenFileEdit()->setText(dir.path());
    QVERIFY(!view.connectRequest(&error));
    QVERIFY2(error.contains(QStringLiteral("directory")), qPrintable(error));
  }

  // The guest's token is fixed when it is made: a form that asks for
  // another one says so rather than connecting without it.
  void anotherTokenAsksForARestart() {
    NoTokenEnvironment env;
    QTemporaryDir dir;
    InspectorSession session;
    ConnectionView view(session);
    view.addressEdit()->setText(QStringLiteral("tcp://127.0.0.1:7000"));
    view.tokenFileEdit()->setText(writeFile(dir, QStringLiteral("token"), "t\n"));
    view.connectButton()->click();
    QVERIFY(!view.formMessage()->isHidden());
    QVERIFY(view.formMessage()->text().contains(QStringLiteral("--token-file")));
    QCOMPARE(session.state(), InspectorSession::State::idle);
  }

  void grantShownWhenConnectedWithAToken() {
    NoTokenEnvironment env;
    HostFixture fixture = tokenHost("good-token");
    fixture.db.put("k", "v", kRawWrite);
    QTemporaryDir dir;
    const QString path = writeFile(dir, QStringLiteral("token"), "good-token\n");
    std::optional<std::string> token;
    QString error;
    QVERIFY2(resolveToken(path, &token, &error), qPrintable(error));
    InspectorSession session(token);
    session.setBackoff(20, 200);
    ConnectionView view(session);
    view.addressEdit()->setText(fixture.endpoint.toString());
    view.tokenFileEdit()->setText(path);
    view.connectButton()->click();
    QVERIFY2(view.formMessage()->isHidden(), qPrintable(view.formMessage()->text()));
    QTRY_COMPARE_WITH_TIMEOUT(session.state(), InspectorSession::State::connected, kTimeout);
    QTRY_COMPARE_WITH_TIMEOUT(session.hostGrant(), QStringLiteral("read-only"), kTimeout);
    QVERIFY(session.accessError().isEmpty());
    QTRY_COMPARE_WITH_TIMEOUT(view.accessLabel()->text(), QStringLiteral("read-only"), kTimeout);
    QCOMPARE(session.accessText(), QStringLiteral("grant: read-only"));
    auto value = session.guest().get_async("k", kRawRead);
    QVERIFY(QTest::qWaitFor([&] { return value.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }, kTimeout));
    QCOMPARE(*value.get(), std::string("v"));
  }

  void wrongTokenShowsUnauthenticated() {
    NoTokenEnvironment env;
    HostFixture fixture = tokenHost("good-token");
    QTemporaryDir dir;
    const QString path = writeFile(dir, QStringLiteral("token"), "wrong-token\n");
    std::optional<std::string> token;
    QString error;
    QVERIFY2(resolveToken(path, &token, &error), qPrintable(error));
    InspectorSession session(token);
    session.setBackoff(20, 200);
    ConnectionView view(session);
    view.addressEdit()->setText(fixture.endpoint.toString());
    view.tokenFileEdit()->setText(path);
    view.connectButton()->click();
    QTRY_COMPARE_WITH_TIMEOUT(session.state(), InspectorSession::State::connected, kTimeout);
    QTRY_VERIFY_WITH_TIMEOUT(session.accessError().contains(QStringLiteral("LEVEL_UNAUTHENTICATED")), kTimeout);
    QVERIFY(session.hostGrant().isEmpty());
    QVERIFY(view.accessLabel()->text().contains(QStringLiteral("LEVEL_UNAUTHENTICATED")));
    QVERIFY(view.accessLabel()->text().contains(QStringLiteral("REFUSED")));
    QVERIFY(view.log()->toPlainText().contains(QStringLiteral("LEVEL_UNAUTHENTICATED")));
    QVERIFY(session.accessText().startsWith(QStringLiteral("access refused")));
  }

  void noTokenIsRefusedToo() {
    NoTokenEnvironment env;
    HostFixture fixture = tokenHost("good-token");
    InspectorSession session;
    session.setBackoff(20, 200);
    ConnectionView view(session);
    view.addressEdit()->setText(fixture.endpoint.toString());
    view.connectButton()->click();
    QTRY_VERIFY_WITH_TIMEOUT(session.accessError().contains(QStringLiteral("LEVEL_UNAUTHENTICATED")), kTimeout);
  }
};

QTEST_MAIN(TestConnectSettings)
#include "test_connect_settings.moc"

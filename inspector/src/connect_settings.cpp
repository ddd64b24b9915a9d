#include "connect_settings.h"

#include <QFile>
#include <QFileInfo>

#include <cstdlib>

#include "many_level/error.hpp"

#ifndef MANY_LEVEL_NO_OPENSSL
#include "many_level/transport/tls.hpp"
#endif

namespace inspector {

bool tlsAvailable() {
#ifdef MANY_LEVEL_NO_OPENSSL
  return false;
#else
  return true;
#endif
}

SessionWrapper makeTlsWrapper(const TlsSettings& settings, QString* error) {
#ifdef MANY_LEVEL_NO_OPENSSL
  (void)settings;
  if (error) *error = QStringLiteral("this build of many-level has no TLS (built without OpenSSL)");
  return nullptr;
#else
  many_level::TlsClientOptions options;
  options.ca_file = settings.ca_file.trimmed().toStdString();
  options.certificate_file = settings.certificate_file.trimmed().toStdString();
  options.private_key_file = settings.private_key_file.trimmed().toStdString();
  options.insecure = settings.insecure;
  try {
    return many_level::tls_wrapper(many_level::TlsContext::client(options));
  } catch (const many_level::Error& e) {
    if (error) *error = QString::fromStdString(e.message());
    return nullptr;
  } catch (const std::exception& e) {
    if (error) *error = QString::fromUtf8(e.what());
    return nullptr;
  }
#endif
}

std::optional<std::string> readTokenFile(const QString& path, QString* error) {
  auto fail = [&](const QString& reason) -> std::optional<std::string> {
    if (error) *error = reason;
    return std::nullopt;
  };
  QFileInfo info(path);
  if (!info.exists()) return fail(QStringLiteral("token file %1 does not exist").arg(path));
  if (info.isDir()) return fail(QStringLiteral("token file %1 is a directory").arg(path));
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    return fail(QStringLiteral("cannot read token file %1: %2").arg(path, file.errorString()));
  }
  // A token is short: a first line longer than this is not one.
  const QByteArray line = file.readLine(64 * 1024).trimmed();
  if (line.isEmpty()) return fail(QStringLiteral("token file %1 is empty (the token is its first line)").arg(path));
  return line.toStdString();
}

bool resolveToken(const QString& token_file, std::optional<std::string>* token, QString* error, QString* source) {
  token->reset();
  if (source) source->clear();
  const QString path = token_file.trimmed();
  if (!path.isEmpty()) {
    auto read = readTokenFile(path, error);
    if (!read) return false;
    *token = std::move(read);
    if (source) *source = QStringLiteral("file %1").arg(path);
    return true;
  }
  const char* env = std::getenv(kTokenEnvironmentVariable);
  if (env) {
    const QByteArray value = QByteArray(env).trimmed();
    if (!value.isEmpty()) {
      *token = value.toStdString();
      if (source) *source = QString::fromLatin1(kTokenEnvironmentVariable);
    }
  }
  return true;
}

}  // namespace inspector

#include "value_format.h"

#include <QObject>

#include "bytes_text.hpp"

namespace inspector {

QString formatName(ValueFormat format) {
  switch (format) {
    case ValueFormat::utf8: return QStringLiteral("utf8");
    case ValueFormat::hex: return QStringLiteral("hex");
    case ValueFormat::json: return QStringLiteral("json");
  }
  return {};
}

QString formatValue(std::string_view bytes, ValueFormat format, QString* note) {
  switch (format) {
    case ValueFormat::utf8: return QString::fromStdString(escape_bytes(bytes));
    case ValueFormat::hex: return QString::fromStdString(hex_dump(bytes));
    case ValueFormat::json:
      if (auto pretty = pretty_json(bytes)) return QString::fromStdString(*pretty);
      if (note) *note = QObject::tr("not JSON: shown as text");
      return QString::fromStdString(escape_bytes(bytes));
  }
  return {};
}

QString editableValue(std::string_view bytes, ValueFormat format) {
  switch (format) {
    case ValueFormat::utf8: return QString::fromStdString(escape_bytes(bytes));
    case ValueFormat::hex: return QString::fromStdString(to_hex(bytes));
    case ValueFormat::json:
      if (auto pretty = pretty_json(bytes)) return QString::fromStdString(*pretty);
      return QString::fromStdString(escape_bytes(bytes));
  }
  return {};
}

std::optional<std::string> parseValue(const QString& text, ValueFormat format, QString* error) {
  const std::string utf8 = text.toStdString();
  switch (format) {
    case ValueFormat::utf8:
      if (auto bytes = unescape_bytes(utf8)) return bytes;
      if (error) *error = QObject::tr("a backslash must start \\xNN or \\\\");
      return std::nullopt;
    case ValueFormat::hex:
      if (auto bytes = from_hex(utf8)) return bytes;
      if (error) *error = QObject::tr("not hex: pairs of 0-9 a-f, spaces allowed");
      return std::nullopt;
    case ValueFormat::json:
      if (auto compact = compact_json(utf8)) return compact;
      if (error) *error = QObject::tr("not valid JSON");
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace inspector

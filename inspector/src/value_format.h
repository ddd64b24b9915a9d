// The three ways the Inspector shows and takes values: UTF-8 text (bytes
// that are not printable UTF-8 as \xNN escapes), a hex dump, pretty JSON.
#pragma once

#include <QString>

#include <optional>
#include <string>
#include <string_view>

namespace inspector {

enum class ValueFormat { utf8, hex, json };

QString formatName(ValueFormat format);
// For showing: never fails (JSON that does not parse is shown as text, with
// a note in `note`).
QString formatValue(std::string_view bytes, ValueFormat format, QString* note = nullptr);
// For editing: the text as it should be edited in this format.
QString editableValue(std::string_view bytes, ValueFormat format);
// Back to bytes; nullopt (with a reason in `error`) when the text is not
// valid in this format.
std::optional<std::string> parseValue(const QString& text, ValueFormat format, QString* error = nullptr);

}  // namespace inspector

// Bytes as people read and type them: keys and values are arbitrary bytes,
// shown as text where they are printable UTF-8 and as \xNN escapes where not,
// so what is shown can be typed back (escape_bytes / unescape_bytes round
// trip). Also hex dumps and pretty JSON for the value pane. Qt-free.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace inspector {

// The length of the UTF-8 sequence starting at text[i], or 0 when it is not
// valid UTF-8 (overlong forms, surrogates and values past U+10FFFF included).
inline size_t utf8_sequence_length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  size_t length;
  uint32_t code;
  if (lead < 0x80) return 1;
  if ((lead & 0xe0) == 0xc0) {
    length = 2;
    code = lead & 0x1f;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3;
    code = lead & 0x0f;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4;
    code = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    code = code << 6 | (byte(i + k) & 0x3f);
  }
  static constexpr uint32_t minimum[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < minimum[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return length;
}

inline bool is_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    size_t length = utf8_sequence_length(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

// Printable UTF-8 stays as is; a backslash becomes "\\"; every other byte
// (control characters, invalid UTF-8) becomes "\xNN". At most `max_bytes` of
// input are shown, then "…".
inline std::string escape_bytes(std::string_view bytes, size_t max_bytes = std::string::npos) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  const size_t shown = std::min(bytes.size(), max_bytes);
  out.reserve(shown + 8);
  for (size_t i = 0; i < shown;) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '\\') {
      out += "\\\\";
      ++i;
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
      ++i;
    } else if (size_t length = c >= 0x80 ? utf8_sequence_length(bytes, i) : 0; length > 0 && i + length <= shown) {
      out.append(bytes.substr(i, length));
      i += length;
    } else {
      out += "\\x";
      out += digits[c >> 4];
      out += digits[c & 0xf];
      ++i;
    }
  }
  if (shown < bytes.size()) out += "\xe2\x80\xa6";  // …
  return out;
}

// The inverse of escape_bytes: "\xNN" is a byte, "\\" a backslash, anything
// else is taken as typed (UTF-8). Returns nullopt on a malformed escape.
inline std::optional<std::string> unescape_bytes(std::string_view text) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out += text[i];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '\\') {
      out += '\\';
      ++i;
    } else if (i + 3 < text.size() && text[i + 1] == 'x' && hex(text[i + 2]) >= 0 && hex(text[i + 3]) >= 0) {
      out += static_cast<char>(hex(text[i + 2]) << 4 | hex(text[i + 3]));
      i += 3;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

// "6b 65 79" for the hex value format (16 bytes a line, with offsets and the
// printable ASCII beside, as hexdump -C shows it).
inline std::string hex_dump(std::string_view bytes, size_t max_bytes = 64 * 1024) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  const size_t shown = std::min(bytes.size(), max_bytes);
  for (size_t line = 0; line < shown; line += 16) {
    char offset[24];
    std::snprintf(offset, sizeof offset, "%08zx  ", line);
    out += offset;
    for (size_t k = 0; k < 16; ++k) {
      if (line + k < shown) {
        const auto c = static_cast<unsigned char>(bytes[line + k]);
        out += digits[c >> 4];
        out += digits[c & 0xf];
        out += ' ';
      } else {
        out += "   ";
      }
      if (k == 7) out += ' ';
    }
    out += " |";
    for (size_t k = 0; k < 16 && line + k < shown; ++k) {
      const auto c = static_cast<unsigned char>(bytes[line + k]);
      out += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.';
    }
    out += "|\n";
  }
  if (shown < bytes.size()) out += "… (" + std::to_string(bytes.size() - shown) + " more bytes)\n";
  return out;
}

// Plain hex digits, no spaces ("6b6579").
inline std::string to_hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0xf];
  }
  return out;
}

// Hex digits to bytes, ignoring whitespace; nullopt when not hex.
inline std::optional<std::string> from_hex(std::string_view text) {
  std::string digits;
  for (char c : text) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    digits += c;
  }
  if (digits.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < digits.size(); i += 2) {
    out += static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16));
  }
  return out;
}

// Pretty JSON (two-space indent), or nullopt when the bytes are not JSON.
inline std::optional<std::string> pretty_json(std::string_view bytes) {
  auto parsed = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Compact JSON as JSON.stringify writes it, or nullopt when not JSON.
inline std::optional<std::string> compact_json(std::string_view text) {
  auto parsed = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (parsed.is_discarded()) return std::nullopt;
  return parsed.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace inspector

// Encodings turn what a user holds into the bytes that storage and the wire
// see, and back, as abstract-level's keyEncoding / valueEncoding do. Storage
// and protocol only ever see bytes; encodings are applied at the public API.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "error.hpp"
#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// A codec between a user's representation (held in a std::string) and bytes.
// Implementations must be thread-safe: one instance serves every thread.
class Encoding {
 public:
  virtual ~Encoding() = default;
  virtual std::string name() const = 0;
  // Bytes are the user's value as is (utf8, buffer, view): callers skip work.
  virtual bool identity() const { return false; }
  virtual std::string encode(std::string_view value) const = 0;
  virtual std::string decode(std::string_view bytes) const = 0;
};

namespace detail {

// Runs one direction of a codec and reports any failure under `code`
// (LEVEL_INVALID_KEY, LEVEL_DECODE_ERROR, ...), whatever the codec threw, as
// abstract-level does; a user codec need not know our error type.
inline std::string transcode(const Encoding& encoding, std::string_view input, const char* code,
                             std::string (Encoding::*direction)(std::string_view) const) {
  if (encoding.identity()) return std::string(input);
  try {
    return (encoding.*direction)(input);
  } catch (const Error& e) {
    throw Error(code, e.message());
  } catch (const std::exception& e) {
    throw Error(code, e.what());
  }
}

// std::string holds arbitrary bytes, so in C++ utf8, buffer and view are one
// thing under three names (abstract-level's formats); kept for Node users.
class IdentityEncoding final : public Encoding {
 public:
  explicit IdentityEncoding(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  bool identity() const override { return true; }
  std::string encode(std::string_view value) const override { return std::string(value); }
  std::string decode(std::string_view bytes) const override { return std::string(bytes); }

 private:
  std::string name_;
};

class HexEncoding final : public Encoding {
 public:
  std::string name() const override { return "hex"; }
  std::string encode(std::string_view hex) const override {
    if (hex.size() % 2 != 0) {
      throw Error(codes::encode_error, "hex text has an odd number of digits");
    }
    std::string bytes(hex.size() / 2, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) {
      bytes[i] = static_cast<char>(digit(hex[2 * i]) << 4 | digit(hex[2 * i + 1]));
    }
    return bytes;
  }
  std::string decode(std::string_view bytes) const override {
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex(bytes.size() * 2, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) {
      auto byte = static_cast<unsigned char>(bytes[i]);
      hex[2 * i] = digits[byte >> 4];
      hex[2 * i + 1] = digits[byte & 0xf];
    }
    return hex;
  }

 private:
  static int digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw Error(codes::encode_error, std::string("not a hex digit: '") + c + "'");
  }
};

// Standard base64 with padding, as Node's Buffer writes it. Decoding also
// accepts the URL-safe alphabet and missing padding, as Node does.
class Base64Encoding final : public Encoding {
 public:
  std::string name() const override { return "base64"; }
  std::string encode(std::string_view text) const override {
    std::string bytes;
    bytes.reserve(text.size() * 3 / 4);
    uint32_t accumulator = 0;
    int bits = 0;
    size_t padding = 0;
    for (char c : text) {
      if (c == '=') {
        ++padding;
        continue;
      }
      if (padding > 0) throw Error(codes::encode_error, "base64 text continues after padding");
      accumulator = accumulator << 6 | sextet(c);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes.push_back(static_cast<char>(accumulator >> bits & 0xff));
      }
    }
    if (bits >= 6 || padding > 2) throw Error(codes::encode_error, "base64 text has a bad length");
    return bytes;
  }
  std::string decode(std::string_view bytes) const override {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string text;
    text.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
      uint32_t n = byte(bytes, i) << 16 | byte(bytes, i + 1) << 8 | byte(bytes, i + 2);
      for (int shift : {18, 12, 6, 0}) text.push_back(alphabet[n >> shift & 63]);
    }
    if (size_t rest = bytes.size() - i; rest > 0) {
      uint32_t n = byte(bytes, i) << 16 | (rest == 2 ? byte(bytes, i + 1) << 8 : 0);
      text.push_back(alphabet[n >> 18 & 63]);
      text.push_back(alphabet[n >> 12 & 63]);
      text.push_back(rest == 2 ? alphabet[n >> 6 & 63] : '=');
      text.push_back('=');
    }
    return text;
  }

 private:
  static uint32_t byte(std::string_view bytes, size_t i) {
    return static_cast<unsigned char>(bytes[i]);
  }
  static uint32_t sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    throw Error(codes::encode_error, std::string("not a base64 character: '") + c + "'");
  }
};

// JSON text in, compact JSON text stored, byte for byte what Node's
// JSON.stringify writes for the same value (key order kept, integral numbers
// without ".0"), so Node and C++ guests store identical bytes. Bad JSON is
// an error rather than silently stored text.
class JsonEncoding final : public Encoding {
 public:
  std::string name() const override { return "json"; }
  std::string encode(std::string_view text) const override {
    auto value = parse(text, codes::encode_error);
    normalize(value);
    return value.dump();
  }
  // What is stored is returned as is, once it is known to be JSON.
  std::string decode(std::string_view bytes) const override {
    parse(bytes, codes::decode_error);
    return std::string(bytes);
  }

 private:
  static nlohmann::ordered_json parse(std::string_view text, const char* code) {
    try {
      return nlohmann::ordered_json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw Error(code, std::string("not valid JSON: ") + e.what());
    }
  }

  // JavaScript has one number type: 1.0 and 1e2 are written 1 and 100.
  static void normalize(nlohmann::ordered_json& value) {
    if (value.is_number_float()) {
      double number = value.get<double>();
      if (std::floor(number) == number && std::fabs(number) < 9007199254740992.0) {
        value = static_cast<int64_t>(number);
      }
    } else if (value.is_structured()) {
      for (auto& child : value) normalize(child);
    }
  }
};

class EncodingRegistry {
 public:
  static EncodingRegistry& instance() {
    static EncodingRegistry registry;
    return registry;
  }

  std::shared_ptr<const Encoding> find(std::string_view name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = encodings_.find(name);
    if (it == encodings_.end()) {
      throw Error(codes::encoding_not_found, "no encoding named '" + std::string(name) + "'");
    }
    return it->second;
  }

  void add(std::shared_ptr<const Encoding> encoding) {
    std::lock_guard<std::mutex> lock(mutex_);
    encodings_[encoding->name()] = std::move(encoding);
  }

 private:
  EncodingRegistry() {
    for (const char* name : {"utf8", "buffer", "view", "binary"}) {
      encodings_[name] = std::make_shared<IdentityEncoding>(name);
    }
    encodings_["hex"] = std::make_shared<HexEncoding>();
    encodings_["base64"] = std::make_shared<Base64Encoding>();
    encodings_["json"] = std::make_shared<JsonEncoding>();
  }

  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const Encoding>, std::less<>> encodings_;
};

}  // namespace detail

// Looks an encoding up by name: utf8, buffer, view, binary, hex, base64, json,
// or one added with register_encoding(). Unknown names: LEVEL_ENCODING_NOT_FOUND.
inline std::shared_ptr<const Encoding> find_encoding(std::string_view name) {
  return detail::EncodingRegistry::instance().find(name);
}

// Adds a user codec (or replaces one of the same name) for every database.
inline void register_encoding(std::shared_ptr<const Encoding> encoding) {
  detail::EncodingRegistry::instance().add(std::move(encoding));
}

MANY_LEVEL_NAMESPACE_END

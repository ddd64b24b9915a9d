// many-level for C++ 0.1.0: one header, speaking the wire protocol of the
// Node package many-level 2.0.0.
//
// GENERATED FILE, DO NOT EDIT. amalgamate.py made it from these headers in src/:
//   src/many_level.hpp
//   src/many_level/version.hpp
//   src/many_level/error.hpp
//   src/many_level/options.hpp
//   src/many_level/range.hpp
//   src/many_level/encoding.hpp
//   src/many_level/iterator.hpp
//   src/many_level/database.hpp
//   src/many_level/batch_operation.hpp
//   src/many_level/change_feed.hpp
//   src/many_level/local_watch.hpp
//   src/many_level/watch.hpp
//   src/many_level/snapshot.hpp
//   src/many_level/chained_batch.hpp
//   src/many_level/sublevel.hpp
//   src/many_level/prefixed_iterator.hpp
//   src/many_level/memory_database.hpp
//   src/many_level/host_stats.hpp
//   src/many_level/protocol/messages.hpp
//   src/many_level/protocol/protocol.hpp
//   src/many_level/protocol/codec.hpp
//   src/many_level/protocol/framing.hpp
//   src/many_level/transport/session.hpp
//   src/many_level/transport/address.hpp
//   src/many_level/transport/fd.hpp
//   src/many_level/transport/event_loop.hpp
//   src/many_level/transport/send_gate.hpp
//   src/many_level/transport/stats.hpp
//   src/many_level/transport/wakeup.hpp
//   src/many_level/transport/fd_transport.hpp
//   src/many_level/transport/iostream_transport.hpp
//   src/many_level/transport/memory_pair.hpp
//   src/many_level/host/host.hpp
//   src/many_level/host/host_context.hpp
//   src/many_level/host/host_options.hpp
//   src/many_level/host/access.hpp
//   src/many_level/host/sha256.hpp
//   src/many_level/host/host_session.hpp
//   src/many_level/host/host_iterator.hpp
//   src/many_level/host/host_snapshots.hpp
//   src/many_level/host/host_watches.hpp
//   src/many_level/host/coalesced_job.hpp
//   src/many_level/host/worker_pool.hpp
//   src/many_level/host/host_watch.hpp
//   src/many_level/guest/guest.hpp
//   src/many_level/guest/await_reply.hpp
//   src/many_level/guest/guest_core.hpp
//   src/many_level/guest/guest_options.hpp
//   src/many_level/guest/guest_snapshot.hpp
//   src/many_level/guest/id_allocator.hpp
//   src/many_level/guest/guest_stats.hpp
//   src/many_level/guest/guest_watch.hpp
//   src/many_level/guest/negotiation.hpp
//   src/many_level/guest/guest_iterator.hpp
//   src/many_level/guest/connector.hpp
//   src/many_level/transport/tls.hpp
//   src/many_level/transport/tls_context.hpp
//   src/many_level/transport/tls_deadlines.hpp
//   src/many_level/transport/tls_session.hpp
//   src/many_level/sqlite_database.hpp
//   src/many_level/sqlite/checkpointer.hpp
//   src/many_level/sqlite/connection.hpp
//   src/many_level/sqlite/connection_pool.hpp
//   src/many_level/sqlite/group_commit.hpp
// Change those, then run `python3 amalgamate.py`; `python3 amalgamate.py --check`
// fails while this file is stale.
#pragma once
#ifndef MANY_LEVEL_SINGLE_INCLUDE_HPP
#define MANY_LEVEL_SINGLE_INCLUDE_HPP

// ---- begin src/many_level.hpp ----
// many-level for C++: share one key-value database between processes and
// machines over any byte stream, speaking the wire protocol of the Node
// package many-level 2.0.0. This is the one header users include.
//
// Optional parts: define MANY_LEVEL_NO_SQLITE before including to leave out
// SqliteDatabase (and the need for SQLite's headers and library), and
// MANY_LEVEL_NO_OPENSSL to leave out TLS (and OpenSSL's).

// ---- begin src/many_level/version.hpp ----
// Version and ABI of many-level for C++. The inline namespace carries the
// version, so two copies of different versions in one program do not collide.

#define MANY_LEVEL_VERSION_MAJOR 0
#define MANY_LEVEL_VERSION_MINOR 1
#define MANY_LEVEL_VERSION_PATCH 0
#define MANY_LEVEL_VERSION_STRING "0.1.0"

// The Node many-level release whose wire protocol this library speaks.
#define MANY_LEVEL_PROTOCOL_VERSION_STRING "2.0.0"

#define MANY_LEVEL_NAMESPACE_BEGIN \
  namespace many_level {           \
  inline namespace v0_1 {
#define MANY_LEVEL_NAMESPACE_END \
  }                              \
  }
// ---- end src/many_level/version.hpp ----
// ---- begin src/many_level/error.hpp ----
// Errors carry a code string from abstract-level's LEVEL_* family, because that
// code is exactly what travels on the wire and what Node peers compare against.

#include <stdexcept>
#include <string>
#include <string_view>

MANY_LEVEL_NAMESPACE_BEGIN

namespace codes {
inline constexpr const char* not_found = "LEVEL_NOT_FOUND";
inline constexpr const char* database_not_open = "LEVEL_DATABASE_NOT_OPEN";
inline constexpr const char* database_not_closed = "LEVEL_DATABASE_NOT_CLOSED";
inline constexpr const char* iterator_not_open = "LEVEL_ITERATOR_NOT_OPEN";
inline constexpr const char* iterator_busy = "LEVEL_ITERATOR_BUSY";
inline constexpr const char* batch_not_open = "LEVEL_BATCH_NOT_OPEN";
inline constexpr const char* invalid_key = "LEVEL_INVALID_KEY";
inline constexpr const char* invalid_value = "LEVEL_INVALID_VALUE";
inline constexpr const char* not_supported = "LEVEL_NOT_SUPPORTED";
inline constexpr const char* encoding_not_found = "LEVEL_ENCODING_NOT_FOUND";
inline constexpr const char* encoding_not_supported = "LEVEL_ENCODING_NOT_SUPPORTED";
inline constexpr const char* decode_error = "LEVEL_DECODE_ERROR";
inline constexpr const char* encode_error = "LEVEL_ENCODE_ERROR";
inline constexpr const char* io_error = "LEVEL_IO_ERROR";
inline constexpr const char* corruption = "LEVEL_CORRUPTION";
inline constexpr const char* locked = "LEVEL_LOCKED";
inline constexpr const char* readonly = "LEVEL_READONLY";
inline constexpr const char* remote_error = "LEVEL_REMOTE_ERROR";
inline constexpr const char* connection_lost = "LEVEL_CONNECTION_LOST";
inline constexpr const char* invalid_argument = "LEVEL_INVALID_ARGUMENT";
inline constexpr const char* protocol_error = "LEVEL_PROTOCOL_ERROR";
// abstract-level 2/3's code for a read that names a closed snapshot.
inline constexpr const char* snapshot_not_open = "LEVEL_SNAPSHOT_NOT_OPEN";
// This project's: a watch asked to resume from, or fell behind to, a commit
// the history no longer holds. Reload, then watch again.
inline constexpr const char* watch_too_old = "LEVEL_WATCH_TOO_OLD";
// This project's: a per-connection limit of the host (snapshots, watches).
inline constexpr const char* limit_reached = "LEVEL_LIMIT_REACHED";
// This project's: the host authenticates and this guest presented no token
// it accepts (or none, where anonymous guests are not let in).
inline constexpr const char* unauthenticated = "LEVEL_UNAUTHENTICATED";
// This project's: the guest's grant does not allow this (host statistics for
// a guest confined to a sublevel).
inline constexpr const char* access_denied = "LEVEL_ACCESS_DENIED";
}  // namespace codes

// Every failure the library reports is an Error with a LEVEL_* code and a
// message for humans. what() holds "CODE: message".
class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message)
      : std::runtime_error(code + ": " + message), code_(std::move(code)), message_(message) {}

  const std::string& code() const noexcept { return code_; }
  // The message without its code.
  const std::string& message() const noexcept { return message_; }
  bool is(std::string_view code) const noexcept { return code_ == code; }

 private:
  std::string code_;
  std::string message_;
};

// The code a host reports to a guest for any exception, as the reference does:
// LEVEL_* codes pass through, everything else becomes LEVEL_REMOTE_ERROR.
inline std::string wire_error_code(const std::exception& error) {
  if (auto* level = dynamic_cast<const Error*>(&error)) {
    if (level->code().rfind("LEVEL_", 0) == 0) return level->code();
  }
  return codes::remote_error;
}

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/error.hpp ----
// ---- begin src/many_level/options.hpp ----
// Option structs of the public API, named and defaulted as abstract-level's
// options are. An empty encoding name means "the database's default".

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

MANY_LEVEL_NAMESPACE_BEGIN

class Snapshot;

// A key range as abstract-level has it. When both gte and gt (or lte and lt)
// are set, the inclusive one wins, as abstract-level's sublevels decide it.
struct RangeOptions {
  std::optional<std::string> gt;
  std::optional<std::string> gte;
  std::optional<std::string> lt;
  std::optional<std::string> lte;
  int64_t limit = -1;  // -1 (or any negative) means no limit
  bool reverse = false;
};

struct IteratorOptions : RangeOptions {
  bool keys = true;
  bool values = true;
  std::string key_encoding;
  std::string value_encoding;
  // Read from this explicit snapshot (Database::snapshot()) instead of the
  // database as it is when the iterator is created.
  std::shared_ptr<Snapshot> snapshot = nullptr;
};

struct ClearOptions : RangeOptions {
  std::string key_encoding;
};

struct ReadOptions {
  std::string key_encoding;
  std::string value_encoding;
  // Read from this explicit snapshot (Database::snapshot()).
  std::shared_ptr<Snapshot> snapshot = nullptr;
};

struct WriteOptions {
  std::string key_encoding;
  std::string value_encoding;
};

struct SeekOptions {
  std::string key_encoding;
};

// Raw bytes in and out: how a sublevel, a host or a guest calls the database
// beneath it, whose own encodings must not apply twice.
inline const ReadOptions raw_read{"buffer", "buffer"};
inline const WriteOptions raw_write{"buffer", "buffer"};

// A watch's range and where it starts. limit and reverse do not apply to a
// watch: leave them as they are.
struct WatchOptions : RangeOptions {
  // Resume: deliver the commits after this sequence (Watch::seq() of an
  // earlier watch). Absent: the commits after the watch starts.
  std::optional<uint64_t> since;
  std::string key_encoding;
  std::string value_encoding;
};

// How much of its change feed a database keeps for watchers that resume
// (see change_feed.hpp): the last commits, bounded in number and in bytes.
struct ChangeHistoryOptions {
  size_t max_commits = 100000;
  size_t max_bytes = size_t{64} << 20;
};

struct DatabaseOptions {
  // A constructor rather than an aggregate, so DatabaseOptions{"utf8", "json"}
  // names the encodings and leaves the rest at their defaults.
  DatabaseOptions() = default;
  DatabaseOptions(std::string key_encoding, std::string value_encoding)
      : key_encoding(std::move(key_encoding)), value_encoding(std::move(value_encoding)) {}

  std::string key_encoding = "utf8";
  std::string value_encoding = "utf8";
  // Stores with a change feed (memory, SQLite) keep this much history.
  ChangeHistoryOptions change_history;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/options.hpp ----
// ---- begin src/many_level/range.hpp ----
// A key range reduced to at most one lower and one upper bound, so every store
// (memory, SQLite, sublevel) interprets gt/gte/lt/lte identically.

MANY_LEVEL_NAMESPACE_BEGIN

// Keys compare as raw bytes (memcmp, then length), exactly like LevelDB.
inline int compare_keys(std::string_view a, std::string_view b) noexcept {
  // string_view::compare uses char_traits<char>, which compares as unsigned char.
  int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

struct Bound {
  std::string key;
  bool inclusive = true;
};

struct KeyRange {
  std::optional<Bound> lower;
  std::optional<Bound> upper;

  static KeyRange from(const RangeOptions& options) {
    KeyRange range;
    if (options.gte) {
      range.lower = Bound{*options.gte, true};
    } else if (options.gt) {
      range.lower = Bound{*options.gt, false};
    }
    if (options.lte) {
      range.upper = Bound{*options.lte, true};
    } else if (options.lt) {
      range.upper = Bound{*options.lt, false};
    }
    return range;
  }

  bool above_lower(std::string_view key) const {
    if (!lower) return true;
    int c = compare_keys(key, lower->key);
    return c > 0 || (c == 0 && lower->inclusive);
  }

  bool below_upper(std::string_view key) const {
    if (!upper) return true;
    int c = compare_keys(key, upper->key);
    return c < 0 || (c == 0 && upper->inclusive);
  }

  bool contains(std::string_view key) const { return above_lower(key) && below_upper(key); }

  // Whether no key at all can fall in the range (lower above upper).
  bool empty() const {
    if (!lower || !upper) return false;
    int c = compare_keys(lower->key, upper->key);
    return c > 0 || (c == 0 && !(lower->inclusive && upper->inclusive));
  }
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/range.hpp ----
// ---- begin src/many_level/encoding.hpp ----
// Encodings turn what a user holds into the bytes that storage and the wire
// see, and back, as abstract-level's keyEncoding / valueEncoding do. Storage
// and protocol only ever see bytes; encodings are applied at the public API.

#include <cmath>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

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
// ---- end src/many_level/encoding.hpp ----
// ---- begin src/many_level/iterator.hpp ----
// Iterators over a database, with abstract-level's semantics: next, nextv,
// all, seek and close, a limit counted here so stores need not, and keys and
// values decoded through the iterator's encodings.

#include <unordered_set>
#include <vector>

MANY_LEVEL_NAMESPACE_BEGIN

// One entry of an iterator. With keys=false (or values=false) that half is empty.
struct Entry {
  std::string key;
  std::string value;

  bool operator==(const Entry& other) const { return key == other.key && value == other.value; }
};

class Iterator;

namespace detail {

// The open iterators of one database. Shared by the database and its
// iterators, so an iterator that outlives its database is still safe to use
// (it is closed) and to destroy.
class IteratorRegistry {
 public:
  void add(Iterator* iterator) {
    std::lock_guard<std::mutex> lock(mutex_);
    open_.insert(iterator);
  }
  void remove(Iterator* iterator) {
    std::lock_guard<std::mutex> lock(mutex_);
    open_.erase(iterator);
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return open_.size();
  }
  // Closes every open iterator. Holding the lock keeps each one alive meanwhile:
  // an iterator's destructor removes itself under the same lock first.
  inline void close_all();

 private:
  mutable std::mutex mutex_;
  std::unordered_set<Iterator*> open_;
};

}  // namespace detail

// The public face of every iterator. Stores subclass it and implement the
// do_* hooks over raw bytes; this class enforces state, limit and encodings.
// An iterator is thread-safe: calls from several threads are serialized.
class Iterator {
 public:
  Iterator(const Iterator&) = delete;
  Iterator& operator=(const Iterator&) = delete;

  virtual ~Iterator() {
    if (registry_) registry_->remove(this);
    // Not close(): the subclass is already destroyed. Every store's iterator
    // calls close() in its own destructor, which also takes it out of the
    // registry before a concurrent Database::close() could reach it.
  }

  // The next entry, or nullopt at the end of the range (or of the limit).
  std::optional<Entry> next() {
    std::lock_guard<std::mutex> lock(mutex_);
    check_open("next");
    if (limit_reached() || sought_outside_) return std::nullopt;
    Entry entry;
    if (!do_next(entry)) return std::nullopt;
    ++count_;
    decode(entry);
    return entry;
  }

  // Up to `size` entries (at least 1 is asked for); empty at the end.
  std::vector<Entry> nextv(size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    check_open("nextv");
    std::vector<Entry> entries;
    nextv_locked(size, entries);
    return entries;
  }

  // Every remaining entry; closes the iterator, as abstract-level's all() does.
  std::vector<Entry> all() {
    std::vector<Entry> entries;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      check_open("all");
      while (nextv_locked(1000, entries) > 0) {
      }
    }
    close();
    return entries;
  }

  // Moves to the first key at or after target (at or before, in reverse). A
  // target outside the range ends the iteration until the next seek, as in
  // abstract-level's stores. Ignored once closed, as in abstract-level.
  void seek(std::string_view target, const SeekOptions& options = {}) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    auto encoding = options.key_encoding.empty() ? key_encoding_ : find_encoding(options.key_encoding);
    std::string encoded = encoding->identity() ? std::string() : encode_key(*encoding, target);
    std::string_view bytes = encoding->identity() ? target : std::string_view(encoded);
    sought_outside_ = !range_.contains(bytes);
    if (!sought_outside_) do_seek(bytes);
  }

  void close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      close_locked();
    }
    if (registry_) registry_->remove(this);
  }

  bool is_open() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return !closed_;
  }

  // How many entries this iterator has yielded (abstract-level's `count`).
  uint64_t count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return count_;
  }

  // The limit, or -1 for none.
  int64_t limit() const { return limit_; }

 protected:
  // Stores call this with the options as the user gave them; bounds in
  // `options` reaching the store are already encoded to bytes.
  explicit Iterator(const IteratorOptions& options,
                    std::shared_ptr<const Encoding> key_encoding,
                    std::shared_ptr<const Encoding> value_encoding)
      : key_encoding_(std::move(key_encoding)),
        value_encoding_(std::move(value_encoding)),
        range_(KeyRange::from(options)),
        limit_(options.limit < 0 ? -1 : options.limit),
        keys_(options.keys),
        values_(options.values) {}

  // Fills `entry` with raw bytes and returns true, or returns false at the end.
  virtual bool do_next(Entry& entry) = 0;
  // Appends up to `size` raw entries; stores override it to batch their reads.
  virtual void do_nextv(size_t size, std::vector<Entry>& entries) {
    for (size_t i = 0; i < size; ++i) {
      Entry entry;
      if (!do_next(entry)) break;
      entries.push_back(std::move(entry));
    }
  }
  virtual void do_seek(std::string_view target) = 0;
  // Releases what the store holds; called once, with the iterator's lock held.
  virtual void do_close() {}

  bool wants_keys() const { return keys_; }
  bool wants_values() const { return values_; }

 private:
  friend class Database;
  friend class detail::IteratorRegistry;

  void attach(std::shared_ptr<detail::IteratorRegistry> registry) {
    registry_ = std::move(registry);
    registry_->add(this);
  }

  void close_locked() {
    if (closed_) return;
    closed_ = true;
    do_close();
  }

  // Called by the database's close() with the registry lock held.
  void close_from_database() {
    std::lock_guard<std::mutex> lock(mutex_);
    close_locked();
  }

  void check_open(const char* method) const {
    if (closed_) {
      throw Error(codes::iterator_not_open,
                  std::string("Iterator is not open: cannot call ") + method + "() after close()");
    }
  }

  bool limit_reached() const { return limit_ >= 0 && count_ >= static_cast<uint64_t>(limit_); }

  size_t nextv_locked(size_t size, std::vector<Entry>& entries) {
    if (size < 1) size = 1;
    if (limit_ >= 0) {
      uint64_t left = static_cast<uint64_t>(limit_) - std::min<uint64_t>(count_, limit_);
      if (left < size) size = static_cast<size_t>(left);
    }
    if (size == 0 || sought_outside_) return 0;
    size_t before = entries.size();
    do_nextv(size, entries);
    size_t got = entries.size() - before;
    count_ += got;
    for (size_t i = before; i < entries.size(); ++i) decode(entries[i]);
    return got;
  }

  static std::string encode_key(const Encoding& encoding, std::string_view key) {
    return detail::transcode(encoding, key, codes::invalid_key, &Encoding::encode);
  }

  void decode(Entry& entry) const {
    if (keys_ && !key_encoding_->identity()) {
      entry.key = detail::transcode(*key_encoding_, entry.key, codes::decode_error, &Encoding::decode);
    }
    if (values_ && !value_encoding_->identity()) {
      entry.value = detail::transcode(*value_encoding_, entry.value, codes::decode_error, &Encoding::decode);
    }
  }

  mutable std::mutex mutex_;
  std::shared_ptr<detail::IteratorRegistry> registry_;
  std::shared_ptr<const Encoding> key_encoding_;
  std::shared_ptr<const Encoding> value_encoding_;
  KeyRange range_;  // in bytes, to tell a seek outside it
  bool sought_outside_ = false;
  int64_t limit_;
  bool keys_;
  bool values_;
  bool closed_ = false;
  uint64_t count_ = 0;
};

inline void detail::IteratorRegistry::close_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Iterator* iterator : open_) iterator->close_from_database();
  open_.clear();
}

// keys() and values() of abstract-level: the same iterator, yielding one half.
template <bool Keys>
class HalfIterator {
 public:
  explicit HalfIterator(std::unique_ptr<Iterator> iterator) : iterator_(std::move(iterator)) {}

  std::optional<std::string> next() {
    auto entry = iterator_->next();
    if (!entry) return std::nullopt;
    return pick(*entry);
  }
  std::vector<std::string> nextv(size_t size) { return pick_all(iterator_->nextv(size)); }
  std::vector<std::string> all() { return pick_all(iterator_->all()); }
  void seek(std::string_view target, const SeekOptions& options = {}) { iterator_->seek(target, options); }
  void close() { iterator_->close(); }
  bool is_open() const { return iterator_->is_open(); }
  uint64_t count() const { return iterator_->count(); }

 private:
  static std::string pick(Entry& entry) { return Keys ? std::move(entry.key) : std::move(entry.value); }
  static std::vector<std::string> pick_all(std::vector<Entry> entries) {
    std::vector<std::string> out;
    out.reserve(entries.size());
    for (auto& entry : entries) out.push_back(pick(entry));
    return out;
  }

  std::unique_ptr<Iterator> iterator_;
};

using KeyIterator = HalfIterator<true>;
using ValueIterator = HalfIterator<false>;

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/iterator.hpp ----
// ---- begin src/many_level/database.hpp ----
// The storage contract: an abstract database over raw bytes with the
// semantics of Node's abstract-level. Memory, SQLite, a remote guest and a
// sublevel are all one of these, so one test suite proves them all.
//
// Concurrency: every public method is thread-safe and blocking. A new
// database has status "opening" and opens on first use (deferred open), or on
// an explicit open(); calls made while another thread opens it wait for that.
// close() stops new calls, waits for running ones, closes open iterators and
// then the store. No callback of the library runs with an internal lock held.

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <thread>
#include <type_traits>

// ---- begin src/many_level/batch_operation.hpp ----
// One operation of a batch, and one change of a commit as watchers see it:
// a put of a key and value, or a del of a key, in raw bytes or encoded text.

MANY_LEVEL_NAMESPACE_BEGIN

struct BatchOperation {
  enum class Type { put, del };
  Type type = Type::put;
  std::string key;
  std::string value;

  static BatchOperation put(std::string key, std::string value) {
    return {Type::put, std::move(key), std::move(value)};
  }
  static BatchOperation del(std::string key) { return {Type::del, std::move(key), {}}; }

  bool operator==(const BatchOperation& other) const {
    return type == other.type && key == other.key && value == other.value;
  }
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/batch_operation.hpp ----
// ---- begin src/many_level/change_feed.hpp ----
// The change feed of one database: every committed write (put, del, batch, a
// chunk of a clear) gets the next number of one commit sequence, and the last
// commits are kept in a bounded history that watchers read from. It is etcd's
// watch-from-revision scaled down: a watcher remembers the sequence it has
// seen and asks for what came after it; past the history's start it is told
// that the gap is too old and reloads instead.
//
// Stores publish in commit order (they already serialize their commits);
// readers pull. Listeners only learn "something was committed", on the
// committing thread and without any lock of the feed held, and then read at
// their own pace, so one slow watcher costs a cursor, never a queue.
//
// Nothing is recorded until the first subscriber: a database nobody watches
// pays one lock and one counter increment a commit (and an atomic load to
// find no listener). From then on the history is kept (so a watcher that
// reconnects can resume), bounded in commits and in bytes.

#include <atomic>
#include <deque>

MANY_LEVEL_NAMESPACE_BEGIN

// One committed write as watchers see it: its sequence and its operations,
// in the order they were applied (a clear appears as the deletes it did).
struct Commit {
  uint64_t seq = 0;
  std::vector<BatchOperation> operations;

  // What it costs the history: its bytes plus a little per operation.
  size_t weight() const {
    size_t bytes = sizeof(Commit);
    for (const auto& op : operations) bytes += op.key.size() + op.value.size() + sizeof(BatchOperation);
    return bytes;
  }
};

// ChangeHistoryOptions (how much history a feed keeps) is in options.hpp,
// beside the DatabaseOptions that carry it.

class ChangeFeed {
 public:
  using Listener = std::function<void()>;

  explicit ChangeFeed(ChangeHistoryOptions options = {}) : options_(options) {}
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  // ---- the store's side ------------------------------------------------
  // One commit, after it is durable, in commit order; returns its sequence.
  // `operations()` (returning std::vector<BatchOperation>) is called only
  // while the feed records, under the feed's lock, so that a watcher that
  // starts meanwhile cannot miss this commit: it must only build the vector.
  template <typename Build>
  uint64_t publish_with(Build&& operations) {
    uint64_t seq = record_with(std::forward<Build>(operations));
    notify();
    return seq;
  }

  uint64_t publish(std::vector<BatchOperation> operations) {
    return publish_with([&] { return std::move(operations); });
  }

  // publish_with() in two halves, for a store that records while it holds
  // a lock of its own (which is what keeps its commits in order): record
  // there, then notify() once that lock is released, so that no listener
  // (and no watch callback) runs under it.
  template <typename Build>
  uint64_t record_with(Build&& operations) {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t seq = ++last_;
    if (recording_) {
      auto commit = std::make_shared<Commit>();
      commit->seq = seq;
      commit->operations = operations();
      bytes_ += commit->weight();
      history_.push_back(std::move(commit));
      trim_locked();
    } else {
      first_ = last_ + 1;
    }
    return seq;
  }

  // Runs the listeners, on this thread, with no lock of the feed held. With
  // none, it costs one atomic load. Calling it more often than there are
  // commits is harmless: listeners read what is there.
  void notify() {
    if (listener_count_.load(std::memory_order_acquire) == 0) return;
    std::shared_ptr<const Listeners> listeners;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      listeners = listeners_;
    }
    for (const auto& entry : *listeners) entry->call();
  }

  // ---- the readers' side -----------------------------------------------
  // The sequence of the last commit (0 before the first).
  uint64_t last_seq() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_;
  }

  // Whether everything after `seq` is still in the history (or yet to come).
  bool can_resume_after(uint64_t seq) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return resumable_locked(seq);
  }

  enum class ReadStatus { ok, too_old };

  // Appends to `out` the commits after `after`, oldest first, at most
  // `max_commits` of them and, past the first, no more than `max_bytes` in
  // all. too_old: some commit after `after` has left the history.
  ReadStatus read(uint64_t after, size_t max_commits, size_t max_bytes,
                  std::vector<std::shared_ptr<const Commit>>& out) const {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!resumable_locked(after)) return ReadStatus::too_old;
    if (history_.empty() || after >= last_) return ReadStatus::ok;
    size_t index = static_cast<size_t>(after + 1 - first_);
    size_t bytes = 0;
    for (size_t taken = 0; index < history_.size() && taken < max_commits; ++index, ++taken) {
      const auto& commit = history_[index];
      bytes += commit->weight();
      if (taken > 0 && bytes > max_bytes) break;
      out.push_back(commit);
    }
    return ReadStatus::ok;
  }

  // A listener registration: while it lives, `listener` runs after each
  // commit, on the committing thread, with no lock of the feed held. It must
  // be quick (typically: schedule a read, or deliver what is new) and must
  // not throw. It may run on several threads at once, and re-entrantly (if
  // it writes to the database). Destroying the subscription waits for calls
  // in progress on other threads; it may be destroyed from inside the
  // listener itself.
  class Subscription {
   public:
    ~Subscription() {
      if (auto feed = feed_.lock()) feed->unsubscribe(entry_.get());
      entry_->disable();
    }
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;

   private:
    friend class ChangeFeed;

    // One listener and the threads inside it right now.
    class Entry {
     public:
      explicit Entry(Listener listener) : listener_(std::make_shared<Listener>(std::move(listener))) {}

      void call() {
        std::shared_ptr<Listener> listener;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          if (!listener_) return;
          listener = listener_;  // kept alive by this call even if disabled meanwhile
          calling_.push_back(std::this_thread::get_id());
        }
        struct Leave {
          Entry& entry;
          ~Leave() { entry.leave(); }
        } leave{*this};
        (*listener)();
      }

      // No call starts after this; returns once those running on other
      // threads are done (one on this thread is the caller's own frame).
      void disable() {
        std::unique_lock<std::mutex> lock(mutex_);
        listener_.reset();
        const auto self = std::this_thread::get_id();
        left_.wait(lock, [&] {
          return std::all_of(calling_.begin(), calling_.end(), [&](std::thread::id id) { return id == self; });
        });
      }

     private:
      void leave() {
        std::lock_guard<std::mutex> lock(mutex_);
        calling_.erase(std::find(calling_.begin(), calling_.end(), std::this_thread::get_id()));
        left_.notify_all();
      }

      std::mutex mutex_;
      std::condition_variable left_;
      std::shared_ptr<Listener> listener_;
      std::vector<std::thread::id> calling_;
    };

    Subscription(std::weak_ptr<ChangeFeed> feed, std::shared_ptr<Entry> entry)
        : feed_(std::move(feed)), entry_(std::move(entry)) {}
    std::weak_ptr<ChangeFeed> feed_;
    std::shared_ptr<Entry> entry_;
  };

  // Starts recording (for good: later watchers may resume) and registers a
  // listener. The feed must be owned by a shared_ptr.
  static std::unique_ptr<Subscription> subscribe(const std::shared_ptr<ChangeFeed>& feed, Listener listener) {
    auto entry = std::make_shared<Subscription::Entry>(std::move(listener));
    {
      std::lock_guard<std::mutex> lock(feed->mutex_);
      if (!feed->recording_) {
        feed->recording_ = true;
        feed->first_ = feed->last_ + 1;
      }
      auto listeners = std::make_shared<Listeners>(*feed->listeners_);
      listeners->push_back(entry);
      feed->replace_listeners_locked(std::move(listeners));
    }
    return std::unique_ptr<Subscription>(new Subscription(feed, std::move(entry)));
  }

  // For introspection: commits and bytes held, listeners registered.
  size_t history_commits() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return history_.size();
  }
  size_t history_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return bytes_;
  }
  size_t listeners() const { return listener_count_.load(std::memory_order_acquire); }
  const ChangeHistoryOptions& options() const { return options_; }

 private:
  using Entry = Subscription::Entry;
  // Copied on change, so notify() takes a reference under the lock and
  // calls the listeners outside it without copying the vector.
  using Listeners = std::vector<std::shared_ptr<Entry>>;

  // Commits after `seq` are all known: the next one wanted (seq + 1) is at or
  // after the oldest kept. A seq from the future is refused as too old too:
  // it was not given out by this feed (another database, or a restart).
  bool resumable_locked(uint64_t seq) const { return seq + 1 >= first_ && seq <= last_; }

  void trim_locked() {
    while (history_.size() > 1 &&
           (history_.size() > options_.max_commits || bytes_ > options_.max_bytes)) {
      bytes_ -= history_.front()->weight();
      history_.pop_front();
      ++first_;
    }
  }

  void replace_listeners_locked(std::shared_ptr<const Listeners> listeners) {
    listener_count_.store(listeners->size(), std::memory_order_release);
    listeners_ = std::move(listeners);
  }

  void unsubscribe(const Entry* entry) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto listeners = std::make_shared<Listeners>();
    for (const auto& e : *listeners_) {
      if (e.get() != entry) listeners->push_back(e);
    }
    replace_listeners_locked(std::move(listeners));
  }

  const ChangeHistoryOptions options_;
  mutable std::mutex mutex_;
  bool recording_ = false;
  uint64_t last_ = 0;   // sequence of the last commit
  uint64_t first_ = 1;  // sequence of history_.front() (last_ + 1 when empty)
  size_t bytes_ = 0;
  std::deque<std::shared_ptr<const Commit>> history_;
  std::shared_ptr<const Listeners> listeners_ = std::make_shared<Listeners>();
  std::atomic<size_t> listener_count_{0};  // listeners_->size(), read without the lock
};

// Where a database's changes come from: a feed, and the prefix its keys have
// there (a sublevel watches its parent's feed under its prefix).
struct ChangeSource {
  std::shared_ptr<ChangeFeed> feed;
  std::string prefix;
};

// The operations of `commit` whose key is under `prefix` and, with the prefix
// taken off, inside `range`; keys come out without the prefix.
inline std::vector<BatchOperation> operations_in(const Commit& commit, std::string_view prefix,
                                                 const KeyRange& range) {
  std::vector<BatchOperation> out;
  for (const auto& op : commit.operations) {
    std::string_view key(op.key);
    if (key.substr(0, prefix.size()) != prefix) continue;
    key.remove_prefix(prefix.size());
    if (!range.contains(key)) continue;
    out.push_back({op.type, std::string(key), op.value});
  }
  return out;
}

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/change_feed.hpp ----
// ---- begin src/many_level/local_watch.hpp ----
// The in-process watch: what Database::watch() gives for any store that
// publishes to a change feed (memory, SQLite, and a host's database), read
// straight from the feed with a cursor.
//
// Where callbacks run: on a committing thread, after its commit, with no
// lock of the store or the feed held. Each notification delivers, in commit
// order, every commit after the watch's cursor that touches its range (only
// the operations inside the range; commits with none are skipped). A watch
// delivers on one thread at a time: a thread that commits while another
// delivers for the same watch leaves its commit to that one and returns, so a
// writer never waits for another thread's callback, and a callback may write
// to the database itself (its commit is delivered after it returns). Nothing
// is queued per watch: a callback slow enough for the feed's history to move
// past its cursor gets LEVEL_WATCH_TOO_OLD once, and the watch ends.
//
// Resuming (WatchOptions::since): the commits after `since` that the history
// holds are delivered on the thread calling watch(), before it returns; a
// `since` the history no longer reaches (or one from the future) makes
// watch() throw LEVEL_WATCH_TOO_OLD.
//
// A callback that throws has its exception dropped: the write that delivered
// it has already committed, and its caller must not see another's failure.

// ---- begin src/many_level/watch.hpp ----
// Watching a database: a callback gets every commit that touches a key
// range, in commit order, from the moment the watch starts (or, resuming,
// from a sequence it was given). See change_feed.hpp for where commits come
// from and Database::watch() for how to start one.

MANY_LEVEL_NAMESPACE_BEGIN

// Gets each commit (its operations in the watched range, keys and values
// decoded with the watch's encodings), or once an error, after which the
// watch is over: LEVEL_WATCH_TOO_OLD (the history no longer reaches back to
// where it was asked to resume, or the watcher fell that far behind: reload
// and watch again), LEVEL_CONNECTION_LOST, LEVEL_DATABASE_NOT_OPEN, or
// LEVEL_NOT_SUPPORTED (a guest whose host has no change feed). Calls of one
// watch never overlap and come in commit order.
using WatchCallback = std::function<void(std::optional<Error> error, const Commit& commit)>;

class Watch {
 public:
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;
  // Closes the watch.
  virtual ~Watch() = default;

  // Stops deliveries: once it returns, the callback is not running (unless
  // close() was called from it) and will not run again. Idempotent.
  virtual void close() = 0;

  // The sequence of the last commit delivered, or where the watch started
  // before any: give it as WatchOptions::since to resume with nothing lost
  // and nothing twice.
  virtual uint64_t seq() const = 0;

 protected:
  Watch() = default;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/watch.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

class LocalWatch final : public Watch {
 public:
  // Starts watching `source`'s feed for the raw-byte range of `options`
  // (limit and reverse are not looked at). Throws LEVEL_WATCH_TOO_OLD when
  // options.since cannot be resumed.
  static std::unique_ptr<LocalWatch> start(const ChangeSource& source, const RangeOptions& range,
                                           std::optional<uint64_t> since, WatchCallback callback) {
    auto state = std::make_shared<State>(source, KeyRange::from(range), std::move(callback));
    std::unique_ptr<LocalWatch> watch(new LocalWatch(state));
    // Subscribed first, so the feed records before the cursor is chosen:
    // every commit after it is then either in the history or yet to come.
    watch->subscription_ = ChangeFeed::subscribe(source.feed, [state] { state->deliver(false); });
    if (since) {
      if (!source.feed->can_resume_after(*since)) {
        throw Error(codes::watch_too_old, "The change history no longer reaches back to sequence " +
                                              std::to_string(*since) + " (or it is newer than the database's)");
      }
      state->cursor = *since;
    } else {
      state->cursor = source.feed->last_seq();
    }
    // Catches up on what the history holds (and whatever was committed while
    // this started), here, before watch() returns.
    state->deliver(true);
    return watch;
  }

  ~LocalWatch() override { close(); }

  void close() override {
    state_->close();
    // On the callback's own thread the subscription may go too: the feed
    // waits only for listener calls on other threads.
    subscription_.reset();
  }

  uint64_t seq() const override { return state_->cursor.load(std::memory_order_acquire); }

 private:
  // Shared by the watch and its feed listener, so a delivery running on a
  // committing thread keeps it alive even if the watch is destroyed from the
  // callback.
  struct State {
    State(const ChangeSource& source, KeyRange range, WatchCallback callback)
        : feed(source.feed),
          prefix(source.prefix),
          range(std::move(range)),
          everything(prefix.empty() && !this->range.lower && !this->range.upper),
          callback(std::move(callback)) {}

    // Delivers what is new, unless another thread is at it (then that one
    // will, as it reads until it finds nothing). `wait`: wait for that
    // thread instead, so that the caller returns with everything delivered.
    void deliver(bool wait) {
      {
        std::unique_lock<std::mutex> lock(mutex);
        if (wait) {
          idle.wait(lock, [&] { return !delivering || closed; });
          started = true;
        }
        // Before start() has chosen the cursor, start() itself delivers.
        if (closed || !started) return;
        if (delivering) {
          more = true;
          return;
        }
        delivering = true;
        deliverer = std::this_thread::get_id();
      }
      bool ended = run();
      std::lock_guard<std::mutex> lock(mutex);
      if (ended) closed = true;
      delivering = false;
      deliverer = std::thread::id();
      idle.notify_all();
    }

    // Reads and delivers until the feed has nothing after the cursor; true
    // when the watch has ended (closed, or fallen out of the history).
    bool run() {
      std::vector<std::shared_ptr<const Commit>> commits;
      for (;;) {
        commits.clear();
        if (feed->read(cursor.load(std::memory_order_relaxed), kCommitsPerRead, kBytesPerRead, commits) ==
            ChangeFeed::ReadStatus::too_old) {
          if (!is_closed()) {
            call(Error(codes::watch_too_old, "The watch fell behind the change history; reload and watch again"),
                 Commit{cursor.load(std::memory_order_relaxed), {}});
          }
          return true;
        }
        if (commits.empty()) {
          std::lock_guard<std::mutex> lock(mutex);
          if (closed) return true;
          if (!more) return false;
          more = false;
          continue;
        }
        for (const auto& commit : commits) {
          if (is_closed()) return true;
          if (everything) {
            cursor.store(commit->seq, std::memory_order_release);
            call(std::nullopt, *commit);
            continue;
          }
          Commit mine{commit->seq, operations_in(*commit, prefix, range)};
          cursor.store(commit->seq, std::memory_order_release);
          if (!mine.operations.empty()) call(std::nullopt, mine);
        }
      }
    }

    void call(std::optional<Error> error, const Commit& commit) {
      try {
        callback(std::move(error), commit);
      } catch (...) {
        // See the top of this file.
      }
    }

    bool is_closed() {
      std::lock_guard<std::mutex> lock(mutex);
      return closed;
    }

    // No delivery starts after this; waits for one running on another thread.
    void close() {
      std::unique_lock<std::mutex> lock(mutex);
      closed = true;
      const auto self = std::this_thread::get_id();
      idle.wait(lock, [&] { return !delivering || deliverer == self; });
    }

    // One read's worth: enough to amortize the feed's lock, little enough
    // that a close() from another thread is seen soon.
    static constexpr size_t kCommitsPerRead = 64;
    static constexpr size_t kBytesPerRead = size_t{1} << 20;

    const std::shared_ptr<ChangeFeed> feed;
    const std::string prefix;
    const KeyRange range;
    const bool everything;  // no prefix, no bounds: commits go out as they are
    const WatchCallback callback;
    std::atomic<uint64_t> cursor{0};  // the last commit delivered (or skipped)

    std::mutex mutex;  // this watch's alone; guards what follows
    std::condition_variable idle;
    bool delivering = false;
    bool more = false;  // a commit came while delivering: read again before stopping
    bool closed = false;
    bool started = false;  // the cursor is set: notifications may deliver
    std::thread::id deliverer;
  };

  explicit LocalWatch(std::shared_ptr<State> state) : state_(std::move(state)) {}

  std::shared_ptr<State> state_;
  std::unique_ptr<ChangeFeed::Subscription> subscription_;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/local_watch.hpp ----
// ---- begin src/many_level/snapshot.hpp ----
// An explicit snapshot, as abstract-level 2/3's db.snapshot(): reads that
// name it (ReadOptions::snapshot, IteratorOptions::snapshot) see the database
// as it was when the snapshot was made, however many writes come after.
//
// Each store makes its own kind (a copy-on-write map, a SQLite read
// transaction, a slot on a remote host); the Database that made it routes
// reads to it, so users only ever call snapshot() and close().

MANY_LEVEL_NAMESPACE_BEGIN

class Database;

class Snapshot {
 public:
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  virtual ~Snapshot() = default;

  // Releases what holds the snapshot. Later reads that name it fail with
  // LEVEL_SNAPSHOT_NOT_OPEN; iterators already made from it go on to their
  // end. Idempotent and thread-safe; the database's close() closes it too.
  void close() {
    if (open_.exchange(false)) do_close();
  }

  bool is_open() const { return open_.load(); }

 protected:
  Snapshot() = default;

  // Reads over raw bytes, called by the Database that made the snapshot,
  // possibly from several threads at once, only while it is open.
  virtual std::optional<std::string> do_get(std::string_view key) = 0;
  virtual std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) {
    std::vector<std::optional<std::string>> values;
    values.reserve(keys.size());
    for (const auto& key : keys) values.push_back(do_get(key));
    return values;
  }
  virtual std::vector<bool> do_has_many(const std::vector<std::string>& keys) {
    std::vector<bool> found;
    found.reserve(keys.size());
    for (auto& value : do_get_many(keys)) found.push_back(value.has_value());
    return found;
  }
  // As Database::do_iterator: bounds are raw bytes, the encodings go to the
  // Iterator. The iterator must stay valid after the snapshot is closed.
  virtual std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                                std::shared_ptr<const Encoding> key_encoding,
                                                std::shared_ptr<const Encoding> value_encoding) = 0;
  virtual void do_close() = 0;

 private:
  friend class Database;
  const Database* owner_ = nullptr;  // set by Database::snapshot()
  std::atomic<bool> open_{true};
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/snapshot.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

enum class Status { opening, open, closing, closed };

inline const char* to_string(Status status) {
  switch (status) {
    case Status::opening: return "opening";
    case Status::open: return "open";
    case Status::closing: return "closing";
    case Status::closed: return "closed";
  }
  return "unknown";
}

// What a database can do: abstract-level's `supports` manifest.
struct Supports {
  bool permanence = false;  // data survives a restart
  bool snapshots = false;   // iterators see the data as of their creation
  bool seek = true;
  bool clear = true;
  bool get_many = true;
  bool has = true;  // has / has_many, from abstract-level 2
  bool deferred_open = true;
  bool create_if_missing = false;
  bool error_if_exists = false;
  bool status = true;
  bool explicit_snapshots = false;  // snapshot(), as abstract-level 2/3
  bool watch = false;               // watch(): a change feed (this project's)
};

// What a database stores its data in, for a host's statistics.
struct StorageInfo {
  std::string kind;  // "memory", "sqlite", "guest", ...
  std::string path;  // its file, if it has one
  uint64_t bytes = 0;  // its size on disk (or in memory), as far as known
};

struct OpenOptions {
  bool create_if_missing = true;
  bool error_if_exists = false;
  // Never reopen a closed database: wait for an open in progress, or do the
  // deferred open of a new one, as abstract-level's passive open does.
  bool passive = false;
};

class ChainedBatch;
class Sublevel;
struct SublevelOptions;

namespace detail {

// What Database::watch() puts between a store's watch (local, a guest's, a
// sublevel's) and the user's callback: it decodes commits, and it lets the
// database end any kind of watch when it closes (with LEVEL_DATABASE_NOT_OPEN)
// while keeping watch.hpp's promises: one error at most, and then nothing.
class WatchGate {
 public:
  using Decode = std::function<Commit(const Commit&)>;  // empty: raw bytes go as they are

  WatchGate(WatchCallback callback, Decode decode) : callback_(std::move(callback)), decode_(std::move(decode)) {}

  // The store's watch, once do_watch() returned it.
  void attach(std::unique_ptr<Watch> inner) {
    std::lock_guard<std::mutex> lock(mutex_);
    inner_ = std::move(inner);
  }

  // A call of the store's watch (which never overlaps itself).
  void deliver(std::optional<Error> error, const Commit& commit) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (over_) return;
      calling_.push_back(std::this_thread::get_id());
    }
    struct Leave {
      WatchGate& gate;
      ~Leave() { gate.leave(); }
    } leave{*this};
    if (error || !decode_) return pass(std::move(error), commit);
    std::optional<Commit> decoded;
    try {
      decoded = decode_(commit);
    } catch (const Error& e) {
      error = e;
    }
    if (decoded) return pass(std::nullopt, *decoded);
    // Undecodable: the watch ends with that error, as any other would.
    pass(std::move(error), commit);
    if (auto* inner = inner_watch()) inner->close();
  }

  // Ends the watch: delivers `error` (if it has not ended already), closes the
  // store's watch, and returns with no call running on another thread.
  void end(std::optional<Error> error) {
    Watch* inner;
    bool was_over;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      was_over = over_;
      over_ = true;
      const auto self = std::this_thread::get_id();
      left_.wait(lock, [&] {
        return std::all_of(calling_.begin(), calling_.end(), [&](std::thread::id id) { return id == self; });
      });
      inner = inner_.get();
    }
    if (inner) inner->close();
    if (error && !was_over) call(std::move(error), Commit{inner ? inner->seq() : 0, {}});
  }

  uint64_t seq() {
    auto* inner = inner_watch();
    return inner ? inner->seq() : 0;
  }

 private:
  // Passes a call on; an error is the last one.
  void pass(std::optional<Error> error, const Commit& commit) {
    if (error) {
      std::lock_guard<std::mutex> lock(mutex_);
      over_ = true;
    }
    call(std::move(error), commit);
  }

  void call(std::optional<Error> error, const Commit& commit) {
    try {
      callback_(std::move(error), commit);
    } catch (...) {
      // Dropped, as local_watch.hpp explains: the caller is some writer.
    }
  }

  Watch* inner_watch() {
    std::lock_guard<std::mutex> lock(mutex_);
    return inner_.get();
  }

  void leave() {
    std::lock_guard<std::mutex> lock(mutex_);
    calling_.erase(std::find(calling_.begin(), calling_.end(), std::this_thread::get_id()));
    left_.notify_all();
  }

  const WatchCallback callback_;
  const Decode decode_;
  std::mutex mutex_;
  std::condition_variable left_;
  bool over_ = false;                     // ended: nothing more is passed on
  std::vector<std::thread::id> calling_;  // threads inside deliver()
  std::unique_ptr<Watch> inner_;
};

// The Watch that Database::watch() returns.
class GatedWatch final : public Watch {
 public:
  explicit GatedWatch(std::shared_ptr<WatchGate> gate) : gate_(std::move(gate)) {}
  ~GatedWatch() override { close(); }
  void close() override { gate_->end(std::nullopt); }
  uint64_t seq() const override { return gate_->seq(); }

 private:
  std::shared_ptr<WatchGate> gate_;
};

}  // namespace detail

class Database {
 public:
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  // Subclasses call close() in their own destructor: by the time this one
  // runs, their do_close() can no longer be reached.
  virtual ~Database() = default;

  // ---- lifecycle -------------------------------------------------------
  void open(const OpenOptions& options = {}) {
    std::unique_lock<std::mutex> lock(mutex_);
    wait_while_opening(lock);
    while (status_ == Status::closing) changed_.wait(lock);
    if (status_ == Status::open) return;
    if (options.passive) {
      // A new database is as good as opening (abstract-level starts its
      // deferred open at once): do what its first operation would.
      if (status_ != Status::opening) throw Error(codes::database_not_open, "Database is not open");
      return open_locked(lock, OpenOptions{});
    }
    open_locked(lock, options);
  }

  void close() {
    std::unique_lock<std::mutex> lock(mutex_);
    wait_while_opening(lock);
    if (status_ == Status::closing) {
      changed_.wait(lock, [&] { return status_ == Status::closed; });
      return;
    }
    if (status_ != Status::open) {
      status_ = Status::closed;
      changed_.notify_all();
      return;
    }
    status_ = Status::closing;
    lock.unlock();
    on_closing();
    lock.lock();
    changed_.wait(lock, [&] { return running_ == 0; });
    auto snapshots = std::move(snapshots_);
    auto watches = std::move(watches_);
    lock.unlock();
    iterators_->close_all();
    for (auto& weak : snapshots) {
      if (auto snapshot = weak.lock()) snapshot->close();
    }
    for (auto& weak : watches) {
      if (auto gate = weak.lock()) gate->end(Error(codes::database_not_open, "Database closed"));
    }
    std::string failure;
    try {
      do_close();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    lock.lock();
    status_ = Status::closed;
    changed_.notify_all();
    if (!failure.empty()) throw Error(codes::io_error, "close failed: " + failure);
  }

  Status status() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return status_;
  }

  const Supports& supports() const { return supports_; }

  // ---- reads -----------------------------------------------------------
  // The value of `key`; a missing key throws LEVEL_NOT_FOUND (abstract-level 1).
  std::string get(std::string_view key, const ReadOptions& options = {}) {
    auto value = try_get(key, options);
    if (!value) throw Error(codes::not_found, "Key not found in database");
    return std::move(*value);
  }

  // The value of `key`, or nullopt when it is missing.
  std::optional<std::string> try_get(std::string_view key, const ReadOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    Operation operation(*this);
    auto value = options.snapshot ? do_get_at(*options.snapshot, codecs.key_bytes(key))
                                  : do_get(codecs.key_bytes(key));
    if (value) *value = codecs.value_text(std::move(*value));
    return value;
  }

  std::vector<std::optional<std::string>> get_many(const std::vector<std::string>& keys,
                                                   const ReadOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    auto read = [&](const std::vector<std::string>& raw) {
      return options.snapshot ? do_get_many_at(*options.snapshot, raw) : do_get_many(raw);
    };
    auto values = codecs.key_identity() ? run([&] { return read(keys); })
                                        : run([&] { return read(codecs.keys_bytes(keys)); });
    for (auto& value : values) {
      if (value) *value = codecs.value_text(std::move(*value));
    }
    return values;
  }

  bool has(std::string_view key, const ReadOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    Operation operation(*this);
    if (options.snapshot) return do_has_many_at(*options.snapshot, {codecs.key_bytes(key)}).front();
    return do_has(codecs.key_bytes(key));
  }

  std::vector<bool> has_many(const std::vector<std::string>& keys, const ReadOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    auto read = [&](const std::vector<std::string>& raw) {
      return options.snapshot ? do_has_many_at(*options.snapshot, raw) : do_has_many(raw);
    };
    if (codecs.key_identity()) return run([&] { return read(keys); });
    return run([&] { return read(codecs.keys_bytes(keys)); });
  }

  // ---- writes ----------------------------------------------------------
  void put(std::string_view key, std::string_view value, const WriteOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    if (codecs.identity()) return run([&] { do_put(key, value); });
    std::string key_bytes = codecs.key_bytes(key);
    std::string value_bytes = codecs.value_bytes(value);
    run([&] { do_put(key_bytes, value_bytes); });
  }

  void del(std::string_view key, const WriteOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    Operation operation(*this);
    do_del(codecs.key_bytes(key));
  }

  // Applies every operation atomically, in order.
  void batch(const std::vector<BatchOperation>& operations, const WriteOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    if (codecs.identity()) return run([&] { do_batch(operations); });
    std::vector<BatchOperation> encoded;
    encoded.reserve(operations.size());
    for (const auto& op : operations) {
      encoded.push_back({op.type, codecs.key_bytes(op.key),
                         op.type == BatchOperation::Type::put ? codecs.value_bytes(op.value) : std::string()});
    }
    run([&] { do_batch(encoded); });
  }

  // A chained batch: put/del/clear, then write() (see chained_batch.hpp).
  inline ChainedBatch batch();

  // Deletes every key in the range (all keys by default), honouring limit and reverse.
  void clear(const ClearOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, {});
    RangeOptions range = codecs.range_bytes(options);
    run([&] { do_clear(range); });
  }

  // ---- iteration -------------------------------------------------------
  std::unique_ptr<Iterator> iterator(const IteratorOptions& options = {}) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    IteratorOptions raw = options;
    static_cast<RangeOptions&>(raw) = codecs.range_bytes(options);
    Operation operation(*this);
    auto iterator = options.snapshot ? do_iterator_at(*options.snapshot, raw, codecs.key, codecs.value)
                                     : do_iterator(raw, codecs.key, codecs.value);
    iterator->attach(iterators_);
    return iterator;
  }

  KeyIterator keys(IteratorOptions options = {}) {
    options.keys = true;
    options.values = false;
    return KeyIterator(iterator(options));
  }

  ValueIterator values(IteratorOptions options = {}) {
    options.keys = false;
    options.values = true;
    return ValueIterator(iterator(options));
  }

  // ---- snapshots -------------------------------------------------------
  // An explicit snapshot: pass it in ReadOptions or IteratorOptions to read
  // the database as it is now. Close it when done (the database's close()
  // does too): it holds resources, such as a SQLite read transaction that
  // keeps the WAL from being checkpointed. LEVEL_NOT_SUPPORTED unless
  // supports().explicit_snapshots.
  std::shared_ptr<Snapshot> snapshot() {
    Operation operation(*this);
    auto snapshot = do_snapshot();
    if (!snapshot->owner_) snapshot->owner_ = this;  // a sublevel hands out its root's
    std::lock_guard<std::mutex> lock(mutex_);
    snapshots_.erase(std::remove_if(snapshots_.begin(), snapshots_.end(),
                                    [](const std::weak_ptr<Snapshot>& s) { return s.expired(); }),
                     snapshots_.end());
    snapshots_.push_back(snapshot);
    return snapshot;
  }

  // ---- watching --------------------------------------------------------
  // Calls `callback` with every commit that touches the range, from now on
  // (or from options.since), until the returned Watch is closed or
  // destroyed. See watch.hpp for the callback's contract; where it runs
  // depends on the database (a local store: a committing thread, see
  // local_watch.hpp; a guest: the stream's thread). Closing the database
  // ends its watches with LEVEL_DATABASE_NOT_OPEN; do not close it from a
  // watch callback (the write that runs the callback is still in progress).
  // LEVEL_NOT_SUPPORTED unless supports().watch.
  std::unique_ptr<Watch> watch(const WatchOptions& options, WatchCallback callback) {
    if (options.limit >= 0 || options.reverse) {
      throw Error(codes::invalid_argument, "limit and reverse do not apply to a watch");
    }
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    WatchOptions raw = options;
    static_cast<RangeOptions&>(raw) = codecs.range_bytes(options);
    raw.key_encoding = "buffer";
    raw.value_encoding = "buffer";
    detail::WatchGate::Decode decode;
    if (!codecs.identity()) {
      decode = [codecs](const Commit& commit) {
        Commit decoded;
        decoded.seq = commit.seq;
        decoded.operations.reserve(commit.operations.size());
        for (const auto& op : commit.operations) {
          decoded.operations.push_back({op.type, codecs.key_text(op.key),
                                        op.type == BatchOperation::Type::put ? codecs.value_text(op.value) : ""});
        }
        return decoded;
      };
    }
    Operation operation(*this);
    auto gate = std::make_shared<detail::WatchGate>(std::move(callback), std::move(decode));
    std::weak_ptr<detail::WatchGate> weak = gate;
    gate->attach(do_watch(raw, [weak](std::optional<Error> error, const Commit& commit) {
      if (auto gate = weak.lock()) gate->deliver(std::move(error), commit);
    }));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      watches_.erase(std::remove_if(watches_.begin(), watches_.end(),
                                    [](const std::weak_ptr<detail::WatchGate>& w) { return w.expired(); }),
                     watches_.end());
      watches_.push_back(gate);
    }
    return std::make_unique<detail::GatedWatch>(std::move(gate));
  }

  // Where this database's commits are published, if anywhere: what a host
  // serves watches from. A sublevel answers with its parent's feed.
  virtual std::optional<ChangeSource> change_source() {
    if (!feed_) return std::nullopt;
    return ChangeSource{feed_, ""};
  }

  // What the data is kept in, for statistics.
  virtual StorageInfo storage_info() const { return {}; }

  // ---- sublevels -------------------------------------------------------
  // A prefixed view of this database (see sublevel.hpp). It must not outlive it.
  inline std::unique_ptr<Sublevel> sublevel(std::string_view name);
  inline std::unique_ptr<Sublevel> sublevel(std::string_view name, const SublevelOptions& options);

  // ---- introspection ---------------------------------------------------
  size_t open_iterator_count() const { return iterators_->size(); }
  const std::string& default_key_encoding() const { return defaults_.key_encoding; }
  const std::string& default_value_encoding() const { return defaults_.value_encoding; }

 protected:
  explicit Database(Supports supports, DatabaseOptions defaults = {})
      : supports_(supports),
        defaults_(std::move(defaults)),
        default_key_(find_encoding(defaults_.key_encoding)),
        default_value_(find_encoding(defaults_.value_encoding)) {}

  // Stores implement these over raw bytes. They may be called from several
  // threads at once, and never before do_open() or after do_close().
  virtual void do_open(const OpenOptions&) {}
  virtual void do_close() {}
  // Runs when close() begins, before it waits for running calls: a store
  // whose calls can block indefinitely (a guest) aborts them here.
  virtual void on_closing() {}
  virtual std::optional<std::string> do_get(std::string_view key) = 0;
  virtual std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) {
    std::vector<std::optional<std::string>> values;
    values.reserve(keys.size());
    for (const auto& key : keys) values.push_back(do_get(key));
    return values;
  }
  virtual bool do_has(std::string_view key) { return do_get(key).has_value(); }
  virtual std::vector<bool> do_has_many(const std::vector<std::string>& keys) {
    std::vector<bool> found;
    found.reserve(keys.size());
    for (const auto& key : keys) found.push_back(do_has(key));
    return found;
  }
  virtual void do_put(std::string_view key, std::string_view value) = 0;
  virtual void do_del(std::string_view key) = 0;
  virtual void do_batch(const std::vector<BatchOperation>& operations) = 0;
  virtual void do_clear(const RangeOptions& range) = 0;
  // Bounds in `options` are raw bytes. The limit is enforced by Iterator; a
  // store may use it as a hint. The encodings go to the Iterator constructor.
  virtual std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                                std::shared_ptr<const Encoding> key_encoding,
                                                std::shared_ptr<const Encoding> value_encoding) = 0;

  // Snapshots: a store that sets supports.explicit_snapshots makes them here.
  virtual std::shared_ptr<Snapshot> do_snapshot() {
    throw Error(codes::not_supported, "This database has no explicit snapshots");
  }
  // Reads at a snapshot. By default the snapshot must be this database's own
  // and reads itself; a sublevel overrides these to pass its root's on.
  virtual std::optional<std::string> do_get_at(Snapshot& snapshot, std::string_view key) {
    return own(snapshot).do_get(key);
  }
  virtual std::vector<std::optional<std::string>> do_get_many_at(Snapshot& snapshot,
                                                                 const std::vector<std::string>& keys) {
    return own(snapshot).do_get_many(keys);
  }
  virtual std::vector<bool> do_has_many_at(Snapshot& snapshot, const std::vector<std::string>& keys) {
    return own(snapshot).do_has_many(keys);
  }
  virtual std::unique_ptr<Iterator> do_iterator_at(Snapshot& snapshot, const IteratorOptions& options,
                                                   std::shared_ptr<const Encoding> key_encoding,
                                                   std::shared_ptr<const Encoding> value_encoding) {
    return own(snapshot).do_iterator(options, std::move(key_encoding), std::move(value_encoding));
  }

  // Watching: bounds in `options` are raw bytes, and so are the commits the
  // callback is given (watch() decodes them). The default serves a store
  // that publishes to a feed (change_source()); others refuse.
  inline virtual std::unique_ptr<Watch> do_watch(const WatchOptions& options, WatchCallback callback);

  // A store that publishes its commits calls this in its constructor, then
  // feed()->publish_with(...) after each commit, in commit order.
  void enable_change_feed(ChangeHistoryOptions history = {}) {
    feed_ = std::make_shared<ChangeFeed>(history);
    supports_.watch = true;
  }
  const std::shared_ptr<ChangeFeed>& feed() const { return feed_; }

  // `snapshot` checked to be this database's and open.
  Snapshot& own(Snapshot& snapshot) const {
    if (snapshot.owner_ != this) {
      throw Error(codes::invalid_argument, "The snapshot belongs to another database");
    }
    if (!snapshot.is_open()) throw Error(codes::snapshot_not_open, "Snapshot is not open");
    return snapshot;
  }

  void set_supports(const Supports& supports) { supports_ = supports; }

  // The encodings of one call, with helpers that report encoding failures
  // under the codes abstract-level uses for them.
  struct Codecs {
    std::shared_ptr<const Encoding> key;
    std::shared_ptr<const Encoding> value;

    bool key_identity() const { return key->identity(); }
    bool identity() const { return key->identity() && value->identity(); }

    std::string key_bytes(std::string_view text) const {
      return convert(*key, text, codes::invalid_key, &Encoding::encode);
    }
    std::string value_bytes(std::string_view text) const {
      return convert(*value, text, codes::invalid_value, &Encoding::encode);
    }
    std::string key_text(std::string bytes) const {
      if (key->identity()) return bytes;
      return convert(*key, bytes, codes::decode_error, &Encoding::decode);
    }
    std::string value_text(std::string bytes) const {
      if (value->identity()) return bytes;
      return convert(*value, bytes, codes::decode_error, &Encoding::decode);
    }
    std::vector<std::string> keys_bytes(const std::vector<std::string>& texts) const {
      std::vector<std::string> out;
      out.reserve(texts.size());
      for (const auto& text : texts) out.push_back(key_bytes(text));
      return out;
    }
    RangeOptions range_bytes(const RangeOptions& options) const {
      RangeOptions range = options;
      if (key_identity()) return range;
      for (auto* bound : {&range.gt, &range.gte, &range.lt, &range.lte}) {
        if (*bound) *bound = key_bytes(**bound);
      }
      return range;
    }

   private:
    static std::string convert(const Encoding& encoding, std::string_view text, const char* code,
                               std::string (Encoding::*method)(std::string_view) const) {
      return detail::transcode(encoding, text, code, method);
    }
  };

  Codecs resolve(const std::string& key_name, const std::string& value_name) const {
    return {key_name.empty() ? default_key_ : find_encoding(key_name),
            value_name.empty() ? default_value_ : find_encoding(value_name)};
  }

  // Marks a call as running for its whole duration, so close() waits for it.
  class Operation {
   public:
    explicit Operation(Database& db) : db_(db) { db_.begin_operation(); }
    ~Operation() { db_.end_operation(); }
    Operation(const Operation&) = delete;
    Operation& operator=(const Operation&) = delete;

   private:
    Database& db_;
  };

  template <typename F>
  std::invoke_result_t<F> run(F&& body) {
    Operation operation(*this);
    return body();
  }

 private:
  friend class ChainedBatch;

  void begin_operation() {
    std::unique_lock<std::mutex> lock(mutex_);
    wait_while_opening(lock);
    if (status_ == Status::opening) open_locked(lock, OpenOptions{});
    if (status_ != Status::open) {
      throw Error(codes::database_not_open,
                  open_failure_.empty() ? std::string("Database is not open")
                                        : "Database failed to open: " + open_failure_);
    }
    ++running_;
  }

  void end_operation() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (--running_ == 0) changed_.notify_all();
  }

  void wait_while_opening(std::unique_lock<std::mutex>& lock) {
    changed_.wait(lock, [&] { return !opening_now_; });
  }

  // Opens with the lock released during do_open(), so other callers can wait.
  void open_locked(std::unique_lock<std::mutex>& lock, const OpenOptions& options) {
    opening_now_ = true;
    status_ = Status::opening;
    lock.unlock();
    std::string failure;
    std::string code;
    try {
      do_open(options);
    } catch (const Error& e) {
      failure = e.message();
      code = e.code();
    } catch (const std::exception& e) {
      failure = e.what();
      code = codes::io_error;
    }
    lock.lock();
    opening_now_ = false;
    status_ = failure.empty() ? Status::open : Status::closed;
    open_failure_ = failure;
    changed_.notify_all();
    if (!failure.empty()) throw Error(code, failure);
  }

  Supports supports_;
  DatabaseOptions defaults_;
  std::shared_ptr<const Encoding> default_key_;
  std::shared_ptr<const Encoding> default_value_;
  std::shared_ptr<detail::IteratorRegistry> iterators_ = std::make_shared<detail::IteratorRegistry>();
  std::shared_ptr<ChangeFeed> feed_;                // set by stores that publish commits
  std::vector<std::weak_ptr<Snapshot>> snapshots_;  // closed by close(); guarded by mutex_
  std::vector<std::weak_ptr<detail::WatchGate>> watches_;  // ended by close(); guarded by mutex_

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  Status status_ = Status::opening;
  bool opening_now_ = false;
  size_t running_ = 0;
  std::string open_failure_;
};

// A store with a change feed is watched in process (local_watch.hpp).
inline std::unique_ptr<Watch> Database::do_watch(const WatchOptions& options, WatchCallback callback) {
  auto source = change_source();
  if (!source) throw Error(codes::not_supported, "This database has no change feed");
  return LocalWatch::start(*source, options, options.since, std::move(callback));
}

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/database.hpp ----
// ---- begin src/many_level/chained_batch.hpp ----
// abstract-level's chained batch: collect put/del/clear, then write() them as
// one atomic batch. Keys and values are encoded as they are added, so a bad
// one fails at the call that added it.

MANY_LEVEL_NAMESPACE_BEGIN

class ChainedBatch {
 public:
  explicit ChainedBatch(Database& db) : db_(db) {}

  ChainedBatch& put(std::string_view key, std::string_view value, const WriteOptions& options = {}) {
    check_open("put");
    auto codecs = db_.resolve(options.key_encoding, options.value_encoding);
    operations_.push_back(BatchOperation::put(codecs.key_bytes(key), codecs.value_bytes(value)));
    return *this;
  }

  ChainedBatch& del(std::string_view key, const WriteOptions& options = {}) {
    check_open("del");
    auto codecs = db_.resolve(options.key_encoding, options.value_encoding);
    operations_.push_back(BatchOperation::del(codecs.key_bytes(key)));
    return *this;
  }

  // Forgets the operations added so far (not the database's data).
  ChainedBatch& clear() {
    check_open("clear");
    operations_.clear();
    return *this;
  }

  size_t length() const { return operations_.size(); }

  // Writes every operation atomically; the batch is closed afterwards, even
  // when the write fails, as in abstract-level.
  void write() {
    check_open("write");
    closed_ = true;
    auto operations = std::move(operations_);
    operations_.clear();
    db_.batch(operations, raw_write);  // encoded as they were added
  }

  void close() {
    closed_ = true;
    operations_.clear();
  }

  bool is_open() const { return !closed_; }

 private:
  void check_open(const char* method) const {
    if (closed_) {
      throw Error(codes::batch_not_open,
                  std::string("Batch is not open: cannot call ") + method + "() after write() or close()");
    }
  }

  Database& db_;
  std::vector<BatchOperation> operations_;
  bool closed_ = false;
};

inline ChainedBatch Database::batch() {
  if (status() == Status::closed || status() == Status::closing) {
    throw Error(codes::database_not_open, "Database is not open: cannot create a batch");
  }
  return ChainedBatch(*this);
}

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/chained_batch.hpp ----
// ---- begin src/many_level/sublevel.hpp ----
// A sublevel: a prefixed view of any database, with abstract-level 1's prefix
// scheme (`!name!`, nested `!a!!b!`), so C++ and Node sublevels of the same
// data see the same keys. Nesting needs no special code: a sublevel of a
// sublevel prefixes its keys, and its parent prefixes them again.
//
// Snapshots are its root's: snapshot() hands out the parent's (so every
// sublevel of one root shares them, as abstract-level allows), and reads at a
// snapshot go to the parent with prefixed keys. A watch is the parent's watch
// of the sublevel's range, with the prefix taken off the keys: it works over
// any parent (a local store, a guest), and ends when the parent closes.

// ---- begin src/many_level/prefixed_iterator.hpp ----
// An iterator that reads another database's iterator and hides a key prefix:
// what a sublevel yields (prefix "!name!") and what a guest that forwards to
// a local database yields (empty prefix).

MANY_LEVEL_NAMESPACE_BEGIN

class PrefixedIterator final : public Iterator {
 public:
  // `inner` yields raw bytes (buffer encodings) with keys, and is confined to
  // keys that start with `prefix`; `options` and the encodings are the user's.
  PrefixedIterator(std::unique_ptr<Iterator> inner, std::string prefix, const IteratorOptions& options,
                   std::shared_ptr<const Encoding> key_encoding, std::shared_ptr<const Encoding> value_encoding)
      : Iterator(options, std::move(key_encoding), std::move(value_encoding)),
        inner_(std::move(inner)),
        prefix_(std::move(prefix)) {}

  // Closed while do_close() can still run (see MemoryDatabase's iterator).
  ~PrefixedIterator() override { close(); }

  // The options to open `inner` with, for a user's range already mapped to
  // the inner database's keys: no limit (the outer iterator counts it), keys
  // always (needed to strip the prefix), raw bytes.
  static IteratorOptions inner_options(const IteratorOptions& options, const RangeOptions& mapped_range) {
    IteratorOptions inner = options;
    static_cast<RangeOptions&>(inner) = mapped_range;
    inner.limit = -1;
    inner.keys = true;
    inner.key_encoding = "buffer";
    inner.value_encoding = "buffer";
    return inner;
  }

 protected:
  bool do_next(Entry& entry) override {
    auto next = inner_->next();
    if (!next) return false;
    entry = unfix(std::move(*next));
    return true;
  }

  void do_nextv(size_t size, std::vector<Entry>& entries) override {
    for (auto& next : inner_->nextv(size)) entries.push_back(unfix(std::move(next)));
  }

  void do_seek(std::string_view target) override {
    std::string mapped;
    mapped.reserve(prefix_.size() + target.size());
    mapped.append(prefix_).append(target);
    inner_->seek(mapped, SeekOptions{"buffer"});
  }

  void do_close() override { inner_->close(); }

 private:
  Entry unfix(Entry entry) const {
    if (wants_keys()) {
      entry.key.erase(0, prefix_.size());
    } else {
      entry.key.clear();
    }
    if (!wants_values()) entry.value.clear();
    return entry;
  }

  std::unique_ptr<Iterator> inner_;
  std::string prefix_;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/prefixed_iterator.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

struct SublevelOptions {
  char separator = '!';
  std::string key_encoding = "utf8";
  std::string value_encoding = "utf8";
};

class Sublevel final : public Database {
 public:
  // Throws LEVEL_INVALID_PREFIX when the name (trimmed of separators) has a
  // byte outside (separator + 1, 127): that reserve is what gives the prefix
  // an upper bound, exactly as in abstract-level.
  Sublevel(Database& parent, std::string_view name, const SublevelOptions& options = {})
      : Database(parent.supports(), DatabaseOptions(options.key_encoding, options.value_encoding)),
        parent_(parent), prefix_(prefix_of(name, options.separator)) {
    const char reserved = static_cast<char>(options.separator + 1);
    upper_bound_ = prefix_.substr(0, prefix_.size() - 1) + reserved;
  }

  // The prefix a sublevel named `name` has, e.g. "!b!" for "b" or "!b!"; throws
  // LEVEL_INVALID_PREFIX for a name the constructor refuses (so that a name
  // read from a file can be checked before any sublevel is made).
  static std::string prefix_of(std::string_view name, char separator = '!') {
    std::string trimmed(name);
    while (!trimmed.empty() && trimmed.front() == separator) trimmed.erase(0, 1);
    while (!trimmed.empty() && trimmed.back() == separator) trimmed.pop_back();
    const int reserved = static_cast<unsigned char>(separator) + 1;
    for (unsigned char c : trimmed) {
      if (c <= reserved || c >= 127) {
        throw Error("LEVEL_INVALID_PREFIX", "Prefix must use bytes > " + std::to_string(reserved) + " < 127");
      }
    }
    return separator + trimmed + separator;
  }

  ~Sublevel() override {
    try {
      close();
    } catch (...) {
    }
  }

  // This sublevel's own prefix, e.g. "!b!" (the parent adds its own, if any).
  const std::string& prefix() const { return prefix_; }
  Database& parent() { return parent_; }

  // The parent's feed, under the parent's prefix and this one's.
  std::optional<ChangeSource> change_source() override {
    auto source = parent_.change_source();
    if (source) source->prefix += prefix_;
    return source;
  }

  StorageInfo storage_info() const override { return parent_.storage_info(); }

 protected:
  // Passive, as abstract-level's is: a sublevel must not reopen a parent
  // that its user closed.
  void do_open(const OpenOptions&) override {
    OpenOptions passive;
    passive.passive = true;
    parent_.open(passive);
  }

  std::optional<std::string> do_get(std::string_view key) override { return parent_.try_get(prefixed(key), raw_read); }

  std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) override {
    return parent_.get_many(prefixed(keys), raw_read);
  }

  bool do_has(std::string_view key) override { return parent_.has(prefixed(key), raw_read); }

  std::vector<bool> do_has_many(const std::vector<std::string>& keys) override {
    return parent_.has_many(prefixed(keys), raw_read);
  }

  void do_put(std::string_view key, std::string_view value) override {
    parent_.put(prefixed(key), value, raw_write);
  }

  void do_del(std::string_view key) override { parent_.del(prefixed(key), raw_write); }

  void do_batch(const std::vector<BatchOperation>& operations) override {
    std::vector<BatchOperation> mapped;
    mapped.reserve(operations.size());
    for (const auto& op : operations) mapped.push_back({op.type, prefixed(op.key), op.value});
    parent_.batch(mapped, raw_write);
  }

  void do_clear(const RangeOptions& range) override {
    ClearOptions mapped;
    static_cast<RangeOptions&>(mapped) = parent_range(range);
    mapped.key_encoding = "buffer";
    parent_.clear(mapped);
  }

  std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                        std::shared_ptr<const Encoding> key_encoding,
                                        std::shared_ptr<const Encoding> value_encoding) override {
    auto inner = parent_.iterator(PrefixedIterator::inner_options(options, parent_range(options)));
    return std::make_unique<PrefixedIterator>(std::move(inner), prefix_, options, std::move(key_encoding),
                                              std::move(value_encoding));
  }

  // The root's snapshot: the root owns it, the parent's close() closes it.
  std::shared_ptr<Snapshot> do_snapshot() override { return parent_.snapshot(); }

  std::optional<std::string> do_get_at(Snapshot& snapshot, std::string_view key) override {
    return parent_.try_get(prefixed(key), read_at(snapshot));
  }

  std::vector<std::optional<std::string>> do_get_many_at(Snapshot& snapshot,
                                                         const std::vector<std::string>& keys) override {
    return parent_.get_many(prefixed(keys), read_at(snapshot));
  }

  std::vector<bool> do_has_many_at(Snapshot& snapshot, const std::vector<std::string>& keys) override {
    return parent_.has_many(prefixed(keys), read_at(snapshot));
  }

  std::unique_ptr<Iterator> do_iterator_at(Snapshot& snapshot, const IteratorOptions& options,
                                           std::shared_ptr<const Encoding> key_encoding,
                                           std::shared_ptr<const Encoding> value_encoding) override {
    IteratorOptions inner_options = PrefixedIterator::inner_options(options, parent_range(options));
    inner_options.snapshot = borrowed(snapshot);
    auto inner = parent_.iterator(inner_options);
    return std::make_unique<PrefixedIterator>(std::move(inner), prefix_, options, std::move(key_encoding),
                                              std::move(value_encoding));
  }

  std::unique_ptr<Watch> do_watch(const WatchOptions& options, WatchCallback callback) override {
    WatchOptions mapped;
    static_cast<RangeOptions&>(mapped) = parent_range(options);
    mapped.limit = -1;
    mapped.reverse = false;
    mapped.since = options.since;
    mapped.key_encoding = "buffer";
    mapped.value_encoding = "buffer";
    const size_t strip = prefix_.size();
    return parent_.watch(mapped, [strip, callback = std::move(callback)](std::optional<Error> error,
                                                                          const Commit& commit) {
      if (error) return callback(std::move(error), commit);
      Commit mine;
      mine.seq = commit.seq;
      mine.operations.reserve(commit.operations.size());
      for (const auto& op : commit.operations) mine.operations.push_back({op.type, op.key.substr(strip), op.value});
      callback(std::nullopt, mine);
    });
  }

 private:
  std::string prefixed(std::string_view key) const {
    std::string out;
    out.reserve(prefix_.size() + key.size());
    out.append(prefix_).append(key);
    return out;
  }

  std::vector<std::string> prefixed(const std::vector<std::string>& keys) const {
    std::vector<std::string> out;
    out.reserve(keys.size());
    for (const auto& key : keys) out.push_back(prefixed(key));
    return out;
  }

  // Raw bytes at `snapshot`, which the caller holds for the whole call.
  static ReadOptions read_at(Snapshot& snapshot) {
    ReadOptions options = raw_read;
    options.snapshot = borrowed(snapshot);
    return options;
  }

  // A shared_ptr that does not own: reads take the snapshot by shared_ptr,
  // and Database::snapshot()'s caller owns it for as long as the read runs
  // (an iterator made at a snapshot does not need the object afterwards).
  static std::shared_ptr<Snapshot> borrowed(Snapshot& snapshot) {
    return std::shared_ptr<Snapshot>(std::shared_ptr<Snapshot>(), &snapshot);
  }

  // The user's range inside this sublevel, as a range of the parent: the
  // prefix fills in for an absent bound, as abstract-level's prefixRange does.
  RangeOptions parent_range(const RangeOptions& range) const {
    RangeOptions out;
    out.limit = range.limit;
    out.reverse = range.reverse;
    if (range.gte) {
      out.gte = prefixed(*range.gte);
    } else if (range.gt) {
      out.gt = prefixed(*range.gt);
    } else {
      out.gte = prefix_;
    }
    if (range.lte) {
      out.lte = prefixed(*range.lte);
    } else if (range.lt) {
      out.lt = prefixed(*range.lt);
    } else {
      // Exclusive, unlike abstract-level's lte: a parent key equal to the
      // upper bound itself (e.g. `!name"`) is not in the sublevel.
      out.lt = upper_bound_;
    }
    return out;
  }


  Database& parent_;
  std::string prefix_;
  std::string upper_bound_;
};

inline std::unique_ptr<Sublevel> Database::sublevel(std::string_view name) {
  return std::make_unique<Sublevel>(*this, name);
}

inline std::unique_ptr<Sublevel> Database::sublevel(std::string_view name, const SublevelOptions& options) {
  return std::make_unique<Sublevel>(*this, name, options);
}

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/sublevel.hpp ----
// ---- begin src/many_level/memory_database.hpp ----
// An in-memory store: an ordered map with copy-on-write snapshots, for tests
// and embedded use. An iterator shares the map it was created on; the next
// write copies it once, so iterators see a snapshot and cost O(1) to open.
// Explicit snapshots (snapshot()) share the map the same way.
//
// Every commit is published to the database's change feed (watch()), in
// commit order: a put or del as itself (a del even of a missing key, as
// abstract-level emits it), a batch as its operations, a clear as the deletes
// it did (none: no commit).

#include <shared_mutex>

MANY_LEVEL_NAMESPACE_BEGIN

namespace detail {

// The first key of the range in `map` (where a forward scan starts).
template <typename Map>
auto first_in_range(Map& map, const KeyRange& range) -> decltype(map.begin()) {
  if (!range.lower) return map.begin();
  return range.lower->inclusive ? map.lower_bound(range.lower->key) : map.upper_bound(range.lower->key);
}

// Just past the last key of the range in `map` (where a reverse scan starts).
template <typename Map>
auto past_range(Map& map, const KeyRange& range) -> decltype(map.begin()) {
  if (!range.upper) return map.end();
  return range.upper->inclusive ? map.upper_bound(range.upper->key) : map.lower_bound(range.upper->key);
}

}  // namespace detail

class MemoryDatabase final : public Database {
 public:
  // std::less<> over std::string compares bytes as unsigned, as LevelDB does.
  using Map = std::map<std::string, std::string, std::less<>>;

  explicit MemoryDatabase(DatabaseOptions options = {}) : Database(manifest(), options) {
    enable_change_feed(options.change_history);
  }
  ~MemoryDatabase() override {
    try {
      close();
    } catch (...) {
    }
  }

  // Bytes of keys and values plus a rough per-entry overhead of the map,
  // counted as writes go (a host's statistics ask often).
  StorageInfo storage_info() const override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return {"memory", "", bytes_};
  }

 protected:
  std::optional<std::string> do_get(std::string_view key) override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    auto it = data_->find(key);
    if (it == data_->end()) return std::nullopt;
    return it->second;
  }

  bool do_has(std::string_view key) override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return data_->find(key) != data_->end();
  }

  // Each write records its commit under the write lock (so the feed's order
  // is the map's), and notifies watchers once the lock is released.
  void do_put(std::string_view key, std::string_view value) override {
    {
      std::unique_lock<std::shared_mutex> lock(mutex_);
      set(writable(), key, value);
      feed()->record_with([&] {
        return std::vector<BatchOperation>{BatchOperation::put(std::string(key), std::string(value))};
      });
    }
    feed()->notify();
  }

  void do_del(std::string_view key) override {
    {
      std::unique_lock<std::shared_mutex> lock(mutex_);
      auto& map = writable();
      auto it = map.find(key);
      if (it != map.end()) erase(map, it);
      feed()->record_with([&] { return std::vector<BatchOperation>{BatchOperation::del(std::string(key))}; });
    }
    feed()->notify();
  }

  void do_batch(const std::vector<BatchOperation>& operations) override {
    if (operations.empty()) return;
    {
      std::unique_lock<std::shared_mutex> lock(mutex_);
      auto& map = writable();
      for (const auto& op : operations) {
        if (op.type == BatchOperation::Type::put) {
          set(map, op.key, op.value);
        } else {
          auto it = map.find(op.key);
          if (it != map.end()) erase(map, it);
        }
      }
      feed()->record_with([&] { return operations; });
    }
    feed()->notify();
  }

  void do_clear(const RangeOptions& options) override {
    KeyRange range = KeyRange::from(options);
    if (range.empty()) return;
    {
      std::unique_lock<std::shared_mutex> lock(mutex_);
      auto& map = writable();
      // The deleted keys are moved out of the map's nodes, not copied: the
      // feed gets them if it records, and they are dropped otherwise.
      std::vector<BatchOperation> deleted;
      auto take = [&](Map::iterator victim) {
        auto next = std::next(victim);
        bytes_ -= entry_bytes(victim->first, victim->second);
        deleted.push_back(BatchOperation::del(std::move(map.extract(victim).key())));
        return next;
      };
      uint64_t left = options.limit < 0 ? UINT64_MAX : static_cast<uint64_t>(options.limit);
      if (!options.reverse) {
        for (auto it = detail::first_in_range(map, range); it != map.end() && left > 0; --left) {
          if (!range.below_upper(it->first)) break;
          it = take(it);
        }
      } else {
        for (auto it = detail::past_range(map, range); it != map.begin() && left > 0; --left) {
          auto victim = std::prev(it);
          if (!range.above_lower(victim->first)) break;
          it = take(victim);
        }
      }
      if (deleted.empty()) return;
      feed()->record_with([&] { return std::move(deleted); });
    }
    feed()->notify();
  }

  std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                        std::shared_ptr<const Encoding> key_encoding,
                                        std::shared_ptr<const Encoding> value_encoding) override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return std::make_unique<MapIterator>(data_, options, std::move(key_encoding), std::move(value_encoding));
  }

  std::shared_ptr<Snapshot> do_snapshot() override {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return std::make_shared<MapSnapshot>(data_);
  }

  void do_close() override {
    // Like memory-level, data lives as long as the object: reopening keeps it.
  }

 private:
  // What a map node costs beyond its key and value (the tree's pointers and
  // colour, two string headers, the allocator's rounding): an estimate.
  static constexpr uint64_t kEntryOverhead = 96;

  static Supports manifest() {
    Supports supports;
    supports.permanence = false;
    supports.snapshots = true;
    supports.explicit_snapshots = true;
    return supports;
  }

  static uint64_t entry_bytes(std::string_view key, std::string_view value) {
    return key.size() + value.size() + kEntryOverhead;
  }

  // Writes to `map` (writable()'s), keeping bytes_ up to date.
  void set(Map& map, std::string_view key, std::string_view value) {
    auto it = map.lower_bound(key);
    if (it != map.end() && it->first == key) {
      bytes_ -= it->second.size();
      it->second.assign(value.data(), value.size());
      bytes_ += value.size();
    } else {
      map.emplace_hint(it, std::string(key), std::string(value));
      bytes_ += entry_bytes(key, value);
    }
  }

  void erase(Map& map, Map::iterator it) {
    bytes_ -= entry_bytes(it->first, it->second);
    map.erase(it);
  }

  // The map to write to, copied first if an iterator still shares it.
  Map& writable() {
    if (data_.use_count() > 1) data_ = std::make_shared<Map>(*data_);
    return *data_;
  }

  class MapIterator final : public Iterator {
   public:
    MapIterator(std::shared_ptr<const Map> snapshot, const IteratorOptions& options,
                std::shared_ptr<const Encoding> key_encoding, std::shared_ptr<const Encoding> value_encoding)
        : Iterator(options, std::move(key_encoding), std::move(value_encoding)),
          snapshot_(std::move(snapshot)),
          range_(KeyRange::from(options)),
          reverse_(options.reverse) {
      position_ = reverse_ ? detail::past_range(*snapshot_, range_) : detail::first_in_range(*snapshot_, range_);
    }

    // Closed here, while do_close() can still run: a database closing at the
    // same moment must not reach a half-destroyed iterator.
    ~MapIterator() override { close(); }

   protected:
    bool do_next(Entry& entry) override {
      if (!snapshot_ || range_.empty()) return false;
      Map::const_iterator found;
      if (!reverse_) {
        if (position_ == snapshot_->end() || !range_.below_upper(position_->first)) return false;
        found = position_++;
      } else {
        if (position_ == snapshot_->begin()) return false;
        found = std::prev(position_);
        if (!range_.above_lower(found->first)) return false;
        position_ = found;
      }
      if (wants_keys()) entry.key = found->first;
      if (wants_values()) entry.value = found->second;
      return true;
    }

    void do_seek(std::string_view target) override {
      if (!snapshot_) return;
      if (!reverse_) {
        auto start = detail::first_in_range(*snapshot_, range_);
        auto at = snapshot_->lower_bound(target);
        bool past_all = at == snapshot_->end() || start == snapshot_->end();
        position_ = past_all ? snapshot_->end() : (at->first > start->first ? at : start);
      } else {
        auto stop = detail::past_range(*snapshot_, range_);
        auto at = snapshot_->upper_bound(target);
        position_ = (stop == snapshot_->end() || (at != snapshot_->end() && at->first < stop->first)) ? at : stop;
      }
    }

    void do_close() override { snapshot_.reset(); }

   private:
    std::shared_ptr<const Map> snapshot_;
    KeyRange range_;
    bool reverse_;
    Map::const_iterator position_;
  };

  // An explicit snapshot: the map as it was, shared until the next write
  // copies it (as an iterator shares it). Closing lets the map go; iterators
  // made from the snapshot hold it themselves.
  class MapSnapshot final : public Snapshot {
   public:
    explicit MapSnapshot(std::shared_ptr<const Map> map) : map_(std::move(map)) {}

   protected:
    std::optional<std::string> do_get(std::string_view key) override {
      auto map = held();
      auto it = map->find(key);
      if (it == map->end()) return std::nullopt;
      return it->second;
    }

    std::vector<bool> do_has_many(const std::vector<std::string>& keys) override {
      auto map = held();
      std::vector<bool> found;
      found.reserve(keys.size());
      for (const auto& key : keys) found.push_back(map->find(key) != map->end());
      return found;
    }

    std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                          std::shared_ptr<const Encoding> key_encoding,
                                          std::shared_ptr<const Encoding> value_encoding) override {
      return std::make_unique<MapIterator>(held(), options, std::move(key_encoding), std::move(value_encoding));
    }

    void do_close() override {
      std::lock_guard<std::mutex> lock(mutex_);
      map_.reset();
    }

   private:
    // The map, kept by the caller for its read: a close() on another thread
    // meanwhile only drops the snapshot's own reference.
    std::shared_ptr<const Map> held() {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!map_) throw Error(codes::snapshot_not_open, "Snapshot is not open");
      return map_;
    }

    std::mutex mutex_;
    std::shared_ptr<const Map> map_;
  };

  mutable std::shared_mutex mutex_;
  std::shared_ptr<Map> data_ = std::make_shared<Map>();
  uint64_t bytes_ = 0;  // storage_info()'s estimate of data_; guarded by mutex_
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/memory_database.hpp ----
// ---- begin src/many_level/host_stats.hpp ----
// A host's statistics, as Host::stats() reports them in process and a guest
// receives them over the wire (the extension's HostStatsReply): the message
// structs themselves, so the two can never drift apart.

// ---- begin src/many_level/protocol/messages.hpp ----
// The messages of the many-level 2.0.0 wire protocol as plain C++ structs, one
// per message of src/many_level.proto, with the frame tags that select them.
// Bytes are std::string; std::optional marks fields whose presence travels.
//
// Tags 64 and up are this project's extension (docs/PROTOCOL.md, "The
// extension"): a guest sends Hello first, and only a C++ host answers it; the
// Node reference ignores unknown tags, so with it everything stays base.

#include <variant>

MANY_LEVEL_NAMESPACE_BEGIN
namespace protocol {

// The first byte of a payload sent by a guest. Values are the wire values.
enum class GuestTag : std::uint8_t {
  get = 0,
  put = 1,
  del = 2,
  batch = 3,
  iterator = 4,
  clear = 5,
  get_many = 6,
  iterator_close = 7,
  iterator_ack = 8,
  iterator_seek = 9,
  // The extension: sent only to a host that answered Hello (Hello itself and
  // a Has before the answer excepted, see docs/PROTOCOL.md).
  hello = 64,
  has = 65,
  snapshot = 66,
  snapshot_release = 67,
  watch = 68,
  watch_ack = 69,
  watch_close = 70,
  host_stats = 71,
};

// The first byte of a payload sent by a host.
enum class HostTag : std::uint8_t {
  callback = 0,
  iterator_data = 1,
  get_many_callback = 2,
  iterator_error = 3,
  iterator_end = 4,
  // The extension: sent only to a guest that sent Hello.
  hello = 64,
  has_callback = 65,
  watch_started = 66,
  watch_data = 67,
  watch_error = 68,
  host_stats = 69,
};

// The first tag of the extension, in both directions.
inline constexpr std::uint8_t first_extension_tag = 64;

// Names as the reference's tags.js spells them, for logs and frame viewers.
inline const char* tag_name(GuestTag tag) noexcept {
  switch (tag) {
    case GuestTag::get: return "get";
    case GuestTag::put: return "put";
    case GuestTag::del: return "del";
    case GuestTag::batch: return "batch";
    case GuestTag::iterator: return "iterator";
    case GuestTag::clear: return "clear";
    case GuestTag::get_many: return "getMany";
    case GuestTag::iterator_close: return "iteratorClose";
    case GuestTag::iterator_ack: return "iteratorAck";
    case GuestTag::iterator_seek: return "iteratorSeek";
    case GuestTag::hello: return "hello";
    case GuestTag::has: return "has";
    case GuestTag::snapshot: return "snapshot";
    case GuestTag::snapshot_release: return "snapshotRelease";
    case GuestTag::watch: return "watch";
    case GuestTag::watch_ack: return "watchAck";
    case GuestTag::watch_close: return "watchClose";
    case GuestTag::host_stats: return "hostStats";
  }
  return "unknown";
}

inline const char* tag_name(HostTag tag) noexcept {
  switch (tag) {
    case HostTag::callback: return "callback";
    case HostTag::iterator_data: return "iteratorData";
    case HostTag::get_many_callback: return "getManyCallback";
    case HostTag::iterator_error: return "iteratorError";
    case HostTag::iterator_end: return "iteratorEnd";
    case HostTag::hello: return "hello";
    case HostTag::has_callback: return "hasCallback";
    case HostTag::watch_started: return "watchStarted";
    case HostTag::watch_data: return "watchData";
    case HostTag::watch_error: return "watchError";
    case HostTag::host_stats: return "hostStats";
  }
  return "unknown";
}

// ---- guest to host ----

struct GetRequest {
  static constexpr GuestTag tag = GuestTag::get;
  std::uint32_t id = 0;
  std::string key;
  // Extension: read from this snapshot (SnapshotRequest); never sent to a
  // host that did not answer Hello.
  std::optional<std::uint32_t> snapshot = std::nullopt;
};

struct PutRequest {
  static constexpr GuestTag tag = GuestTag::put;
  std::uint32_t id = 0;
  std::string key;
  // The reference guest always sends it (an empty value as an empty field).
  std::optional<std::string> value;
};

struct DelRequest {
  static constexpr GuestTag tag = GuestTag::del;
  std::uint32_t id = 0;
  std::string key;
};

struct BatchOp {
  // Travels as the string "put" or "del"; any other string fails to decode.
  enum class Type : std::uint8_t { put, del };
  Type type = Type::put;
  std::string key;
  std::optional<std::string> value;
};

struct BatchRequest {
  static constexpr GuestTag tag = GuestTag::batch;
  std::uint32_t id = 0;
  std::vector<BatchOp> ops;
};

// The same message, encoded (never decoded) straight from the caller's keys
// and values: a guest's batch of a thousand puts would otherwise copy every
// key and value into a BatchRequest first, only to copy them into the frame.
struct BatchOpView {
  BatchOp::Type type = BatchOp::Type::put;
  std::string_view key;
  std::optional<std::string_view> value;
};

struct BatchRequestView {
  static constexpr GuestTag tag = GuestTag::batch;
  std::uint32_t id = 0;
  std::vector<BatchOpView> ops;
};

// keys, values, limit and reverse are always written, as the reference guest
// does (abstract-level fills them in). Their defaults here are what that guest
// sends; a decoder that finds them absent yields false, false, 0 and false, as
// the reference host reads them (so a missing limit yields no entries).
struct IteratorOptions {
  bool keys = true;
  bool values = true;
  std::optional<std::string> gt;
  std::optional<std::string> gte;
  std::optional<std::string> lt;
  std::optional<std::string> lte;
  std::int64_t limit = -1;  // negative: no limit
  bool reverse = false;
};

struct IteratorRequest {
  static constexpr GuestTag tag = GuestTag::iterator;
  std::uint32_t id = 0;
  std::uint32_t seq = 0;
  IteratorOptions options;
  std::uint64_t consumed = 0;
  std::optional<std::string> bookmark;  // last key yielded, on a retry
  std::optional<std::string> seek;      // seek target not yet consumed, on a retry
  std::optional<std::uint32_t> snapshot = std::nullopt;  // extension, as GetRequest's
};

// Same presence rules as IteratorOptions for limit and reverse.
struct ClearOptions {
  std::optional<std::string> gt;
  std::optional<std::string> gte;
  std::optional<std::string> lt;
  std::optional<std::string> lte;
  std::int64_t limit = -1;
  bool reverse = false;
};

struct ClearRequest {
  static constexpr GuestTag tag = GuestTag::clear;
  std::uint32_t id = 0;
  // The reference guest always sends options; the reference host clears
  // everything when they are absent.
  std::optional<ClearOptions> options = ClearOptions{};
};

struct GetManyRequest {
  static constexpr GuestTag tag = GuestTag::get_many;
  std::uint32_t id = 0;
  std::vector<std::string> keys;
  std::optional<std::uint32_t> snapshot = std::nullopt;  // extension, as GetRequest's
};

struct IteratorClose {
  static constexpr GuestTag tag = GuestTag::iterator_close;
  std::uint32_t id = 0;
};

struct IteratorAck {
  static constexpr GuestTag tag = GuestTag::iterator_ack;
  std::uint32_t id = 0;
  std::uint32_t seq = 0;
  std::uint64_t consumed = 0;
};

struct IteratorSeek {
  static constexpr GuestTag tag = GuestTag::iterator_seek;
  std::uint32_t id = 0;
  std::uint32_t seq = 0;
  std::string target;
};

// ---- guest to host: the extension -------------------------------------

// The first frame a C++ guest sends on every stream. A C++ host answers it
// (HelloReply) before it acts on any later frame; the Node reference ignores
// it, so a base reply that comes before a HelloReply means "no extension".
struct Hello {
  static constexpr GuestTag tag = GuestTag::hello;
  std::uint32_t version = 0;
  std::vector<std::string> features;    // what the guest would like to use
  std::optional<std::string> token;     // for a host that authenticates (access.hpp)
};

// has / hasMany without values: answered by HasCallback.
struct HasRequest {
  static constexpr GuestTag tag = GuestTag::has;
  std::uint32_t id = 0;
  std::vector<std::string> keys;
  std::optional<std::uint32_t> snapshot = std::nullopt;
};

// Opens snapshot `snapshot` (an id the guest chooses, as for iterators) in
// request order: it sees every write the guest sent before it. Answered by a
// Callback with the request's id.
struct SnapshotRequest {
  static constexpr GuestTag tag = GuestTag::snapshot;
  std::uint32_t id = 0;
  std::uint32_t snapshot = 0;
};

// Releases a snapshot, after every read sent before it. No reply.
struct SnapshotRelease {
  static constexpr GuestTag tag = GuestTag::snapshot_release;
  std::uint32_t snapshot = 0;
};

// The key range of a watch; field numbers as in IteratorOptions.
struct WatchRange {
  std::optional<std::string> gt;
  std::optional<std::string> gte;
  std::optional<std::string> lt;
  std::optional<std::string> lte;
};

// Starts watch `id` (guest-chosen): commits in the range, after `since` when
// given (a resume), else after the host's sequence when the watch starts.
// Answered by WatchStarted, then WatchData frames; or by WatchError.
struct WatchRequest {
  static constexpr GuestTag tag = GuestTag::watch;
  std::uint32_t id = 0;
  WatchRange range;
  std::optional<std::uint64_t> since;
};

// One WatchData frame consumed: as IteratorAck, the host keeps at most two
// frames unacknowledged per watch.
struct WatchAck {
  static constexpr GuestTag tag = GuestTag::watch_ack;
  std::uint32_t id = 0;
  std::uint64_t seq = 0;  // the seq of the frame's last commit
};

struct WatchClose {
  static constexpr GuestTag tag = GuestTag::watch_close;
  std::uint32_t id = 0;
};

// The host's statistics: answered by HostStatsReply.
struct HostStatsRequest {
  static constexpr GuestTag tag = GuestTag::host_stats;
  std::uint32_t id = 0;
};

// ---- host to guest ----

struct Callback {
  static constexpr HostTag tag = HostTag::callback;
  std::uint32_t id = 0;
  // A LEVEL_* code. The reference guest treats an empty string as success.
  std::optional<std::string> error;
  std::optional<std::string> value;
};

struct IteratorData {
  static constexpr HostTag tag = HostTag::iterator_data;
  std::uint32_t id = 0;
  std::uint32_t seq = 0;
  // key, value, key, value ... when both were asked for, else one kind only.
  std::vector<std::string> data;
};

// IteratorData decoded without copying its entries: the views point into the
// payload that was decoded and live only as long as it does.
struct IteratorDataView {
  static constexpr HostTag tag = HostTag::iterator_data;
  std::uint32_t id = 0;
  std::uint32_t seq = 0;
  std::vector<std::string_view> data;
};

struct GetManyCallback {
  static constexpr HostTag tag = HostTag::get_many_callback;
  std::uint32_t id = 0;
  std::optional<std::string> error;
  // One per requested key, in order; nullopt means not found.
  std::vector<std::optional<std::string>> values;
};

struct IteratorError {
  static constexpr HostTag tag = HostTag::iterator_error;
  std::uint32_t id = 0;
  std::uint32_t seq = 0;
  std::string error;
};

struct IteratorEnd {
  static constexpr HostTag tag = HostTag::iterator_end;
  std::uint32_t id = 0;
  std::uint32_t seq = 0;
};

// ---- host to guest: the extension -------------------------------------

struct HelloReply {
  static constexpr HostTag tag = HostTag::hello;
  std::uint32_t version = 0;
  std::vector<std::string> features;  // what this host offers (of those asked, or all)
  std::uint64_t seq = 0;              // the database's commit sequence now
  std::optional<std::string> error;   // a LEVEL_* code: the hello was refused
  // When the host authenticates: the guest's grant, "read-only" or
  // "read-write", and whether it is confined to a subtree (not which).
  std::optional<std::string> grant;
  bool confined = false;
};

struct HasCallback {
  static constexpr HostTag tag = HostTag::has_callback;
  std::uint32_t id = 0;
  std::optional<std::string> error;
  // One byte per requested key, in order: 1 present, 0 missing.
  std::string found;
};

struct WatchStarted {
  static constexpr HostTag tag = HostTag::watch_started;
  std::uint32_t id = 0;
  std::uint64_t seq = 0;  // changes committed after this sequence follow
};

// One committed write (put, del, batch, or a chunk of a clear) as the watch
// sees it: the operations in its range, in order.
struct Commit {
  std::uint64_t seq = 0;
  std::vector<BatchOp> ops;
};

struct WatchData {
  static constexpr HostTag tag = HostTag::watch_data;
  std::uint32_t id = 0;
  std::vector<Commit> commits;
};

struct WatchError {
  static constexpr HostTag tag = HostTag::watch_error;
  std::uint32_t id = 0;
  std::string error;  // a LEVEL_* code; LEVEL_WATCH_TOO_OLD: reload, then watch again
};

struct HostConnectionStats {
  std::uint64_t id = 0;
  std::string address;        // the peer, as the transport names it
  std::uint64_t since_ms = 0; // when it connected, ms since the Unix epoch
  std::uint64_t requests = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::uint32_t iterators = 0;
  std::uint32_t watches = 0;
  std::uint32_t snapshots = 0;
  std::uint32_t pending = 0;
  bool extended = false;  // said Hello (a C++ guest)
};

struct HostStatsMessage {
  std::uint64_t uptime_ms = 0;
  std::uint64_t connections_total = 0;  // accepted since the host started
  std::vector<HostConnectionStats> connections;
  std::string database_kind;  // "sqlite", "memory", "guest", ...
  std::string database_path;  // its file, when it has one
  std::uint64_t database_bytes = 0;
  std::uint64_t seq = 0;      // the commit sequence
  std::string version;        // the host's many-level version
};

struct HostStatsReply {
  static constexpr HostTag tag = HostTag::host_stats;
  std::uint32_t id = 0;
  std::optional<std::string> error;
  std::optional<HostStatsMessage> stats;
};

// Any message of one direction: the base messages, whose variant index is
// their tag, then the extension's, in tag order from first_extension_tag.
using GuestMessage =
    std::variant<GetRequest, PutRequest, DelRequest, BatchRequest, IteratorRequest,
                 ClearRequest, GetManyRequest, IteratorClose, IteratorAck, IteratorSeek,
                 Hello, HasRequest, SnapshotRequest, SnapshotRelease, WatchRequest, WatchAck,
                 WatchClose, HostStatsRequest>;
using HostMessage =
    std::variant<Callback, IteratorData, GetManyCallback, IteratorError, IteratorEnd,
                 HelloReply, HasCallback, WatchStarted, WatchData, WatchError, HostStatsReply>;

// How many variant alternatives are base messages (tags 0 .. count-1).
inline constexpr std::size_t base_guest_messages = 10;
inline constexpr std::size_t base_host_messages = 5;

namespace detail {
// The variant index each message's tag decodes to (see decode_payload).
template <class Variant, std::size_t base, std::size_t... I>
constexpr bool tags_match_indexes(std::index_sequence<I...>) {
  return ((static_cast<std::size_t>(std::variant_alternative_t<I, Variant>::tag) ==
           (I < base ? I : first_extension_tag + (I - base))) && ...);
}
}  // namespace detail
static_assert(detail::tags_match_indexes<GuestMessage, base_guest_messages>(
                  std::make_index_sequence<std::variant_size_v<GuestMessage>>{}),
              "GuestMessage alternatives must be in tag order");
static_assert(detail::tags_match_indexes<HostMessage, base_host_messages>(
                  std::make_index_sequence<std::variant_size_v<HostMessage>>{}),
              "HostMessage alternatives must be in tag order");

}  // namespace protocol
MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/protocol/messages.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

// uptime, connections accepted since start, the database (kind, file, size,
// commit sequence), the host's version, and every open connection.
using HostStats = protocol::HostStatsMessage;
// One open connection: address, since when, requests, bytes and frames in
// and out, open iterators, watches, snapshots, pending requests, and whether
// it negotiated the extension.
using HostConnectionStats = protocol::HostConnectionStats;

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/host_stats.hpp ----

// ---- begin src/many_level/protocol/protocol.hpp ----
// The many-level wire protocol in one include: message structs, their codec
// and the length-prefixed framing. Sessions (host, guest) build on these.

// ---- begin src/many_level/protocol/codec.hpp ----
// Encoding and decoding of the wire messages (messages.hpp) on protobuf-lite's
// coded-stream API, byte for byte as the Node reference (many-level 2.0.0)
// writes them, and tolerant of input exactly where the reference is.
//
// Why no protoc-generated code here: generated code carries out-of-line
// definitions and a hard guard that refuses any protobuf runtime but the one it
// was generated for, which breaks a header users drop into any project. The
// static CodedOutputStream::*ToArray helpers and CodedInputStream have been
// stable public API for many releases. src/many_level.proto stays the schema of
// record, and tests/protocol proves this codec and protoc's lite classes agree
// byte for byte on every captured vector and on randomized messages.

#include <google/protobuf/io/coded_stream.h>

#include <climits>
#include <cstring>

MANY_LEVEL_NAMESPACE_BEGIN
namespace protocol {

namespace detail {

using google::protobuf::io::CodedInputStream;
using google::protobuf::io::CodedOutputStream;

enum WireType : std::uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

inline constexpr bool kRequired = true;

// Schema<M>::fields(m, f) calls f(number, member[, kRequired]) for each field of
// M in field-number order, which is also the order the reference writes them.
// Member types map to wire types as follows:
//   uint32_t, uint64_t, bool   varint
//   int64_t                    sint64 (zigzag varint)
//   std::string, string_view   bytes / string
//   BatchOp::Type              string "put" / "del"
//   a struct with a Schema     embedded message
//   std::optional<T>           optional T: written only when present
//   std::vector<T>             repeated T
// Inside a repeated field, std::optional<std::string> is GetManyCallback.Value,
// a message whose only field (1, optional bytes) is absent for "not found".
template <class M>
struct Schema;

// What a decoder starts from: absent fields keep these values.
template <class M>
M decode_start() {
  return M{};
}

// The reference host reads absent options as false / 0, see IteratorOptions.
template <>
inline IteratorOptions decode_start<IteratorOptions>() {
  IteratorOptions options;
  options.keys = false;
  options.values = false;
  options.limit = 0;
  return options;
}
template <>
inline ClearOptions decode_start<ClearOptions>() {
  ClearOptions options;
  options.limit = 0;
  return options;
}
template <>
inline ClearRequest decode_start<ClearRequest>() {
  ClearRequest request;
  request.options.reset();
  return request;
}

// ---- per-type wire codecs ----

template <class T, class Enable = void>
struct Codec;

template <>
struct Codec<std::uint32_t> {
  static constexpr WireType wire = kVarint;
  static std::size_t size(std::uint32_t v) { return CodedOutputStream::VarintSize32(v); }
  static std::uint8_t* write(std::uint32_t v, std::uint8_t* p) {
    return CodedOutputStream::WriteVarint32ToArray(v, p);
  }
  // Wider varints are truncated to 32 bits, as protoc's uint32 does.
  static bool read(CodedInputStream& in, std::uint32_t& v) { return in.ReadVarint32(&v); }
};

template <>
struct Codec<std::uint64_t> {
  static constexpr WireType wire = kVarint;
  static std::size_t size(std::uint64_t v) { return CodedOutputStream::VarintSize64(v); }
  static std::uint8_t* write(std::uint64_t v, std::uint8_t* p) {
    return CodedOutputStream::WriteVarint64ToArray(v, p);
  }
  static bool read(CodedInputStream& in, std::uint64_t& v) { return in.ReadVarint64(&v); }
};

template <>
struct Codec<bool> {
  static constexpr WireType wire = kVarint;
  static std::size_t size(bool) { return 1; }
  static std::uint8_t* write(bool v, std::uint8_t* p) {
    *p = v ? 1 : 0;
    return p + 1;
  }
  static bool read(CodedInputStream& in, bool& v) {
    std::uint64_t raw = 0;
    if (!in.ReadVarint64(&raw)) return false;
    v = raw != 0;
    return true;
  }
};

// sint64: zigzag keeps -1 (no limit) to one byte.
template <>
struct Codec<std::int64_t> {
  static constexpr WireType wire = kVarint;
  static std::uint64_t zigzag(std::int64_t v) {
    return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
  }
  static std::size_t size(std::int64_t v) { return CodedOutputStream::VarintSize64(zigzag(v)); }
  static std::uint8_t* write(std::int64_t v, std::uint8_t* p) {
    return CodedOutputStream::WriteVarint64ToArray(zigzag(v), p);
  }
  static bool read(CodedInputStream& in, std::int64_t& v) {
    std::uint64_t raw = 0;
    if (!in.ReadVarint64(&raw)) return false;
    v = static_cast<std::int64_t>(raw >> 1) ^ -static_cast<std::int64_t>(raw & 1);
    return true;
  }
};

// Reads a length prefix that must fit in what is left of the enclosing message.
inline bool read_length(CodedInputStream& in, int& length) {
  std::uint32_t raw = 0;
  if (!in.ReadVarint32(&raw)) return false;
  if (raw > static_cast<std::uint32_t>(in.BytesUntilLimit())) return false;
  length = static_cast<int>(raw);
  return true;
}

inline bool read_view(CodedInputStream& in, std::string_view& v) {
  int length = 0;
  if (!read_length(in, length)) return false;
  if (length == 0) {
    v = {};
    return true;
  }
  const void* data = nullptr;
  int available = 0;
  in.GetDirectBufferPointerInline(&data, &available);
  if (available < length) return false;
  v = std::string_view(static_cast<const char*>(data), static_cast<std::size_t>(length));
  return in.Skip(length);
}

template <>
struct Codec<std::string_view> {
  static constexpr WireType wire = kLengthDelimited;
  static std::size_t size(std::string_view v) {
    return CodedOutputStream::VarintSize32(static_cast<std::uint32_t>(v.size())) + v.size();
  }
  static std::uint8_t* write(std::string_view v, std::uint8_t* p) {
    p = CodedOutputStream::WriteVarint32ToArray(static_cast<std::uint32_t>(v.size()), p);
    if (!v.empty()) std::memcpy(p, v.data(), v.size());
    return p + v.size();
  }
  static bool read(CodedInputStream& in, std::string_view& v) { return read_view(in, v); }
};

template <>
struct Codec<std::string> {
  static constexpr WireType wire = kLengthDelimited;
  static std::size_t size(const std::string& v) { return Codec<std::string_view>::size(v); }
  static std::uint8_t* write(const std::string& v, std::uint8_t* p) {
    return Codec<std::string_view>::write(v, p);
  }
  static bool read(CodedInputStream& in, std::string& v) {
    std::string_view view;
    if (!read_view(in, view)) return false;
    v.assign(view.data(), view.size());
    return true;
  }
};

template <>
struct Codec<BatchOp::Type> {
  static constexpr WireType wire = kLengthDelimited;
  static std::string_view name(BatchOp::Type t) { return t == BatchOp::Type::del ? "del" : "put"; }
  static std::size_t size(BatchOp::Type t) { return Codec<std::string_view>::size(name(t)); }
  static std::uint8_t* write(BatchOp::Type t, std::uint8_t* p) {
    return Codec<std::string_view>::write(name(t), p);
  }
  static bool read(CodedInputStream& in, BatchOp::Type& t) {
    std::string_view view;
    if (!read_view(in, view)) return false;
    if (view == "put") {
      t = BatchOp::Type::put;
    } else if (view == "del") {
      t = BatchOp::Type::del;
    } else {
      return false;
    }
    return true;
  }
};

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};

// Encoding-only stand-in for a repeated bytes field: any range of elements
// convertible to std::string_view, so hot paths need no intermediate message.
template <class Range>
struct BytesRange {
  const Range& range;
};
template <class T>
struct is_bytes_range : std::false_type {};
template <class R>
struct is_bytes_range<BytesRange<R>> : std::true_type {};

template <class T>
std::size_t tag_size(std::uint32_t number) {
  return CodedOutputStream::VarintSize32(number << 3 | Codec<T>::wire);
}

template <class T>
std::uint8_t* write_tag(std::uint32_t number, std::uint8_t* p) {
  return CodedOutputStream::WriteTagToArray(number << 3 | Codec<T>::wire, p);
}

// Adds up the encoded size of a message's fields.
struct Sizer {
  std::size_t total = 0;

  template <class T>
  void operator()(std::uint32_t number, const T& value, bool = false) {
    if constexpr (is_optional<T>::value) {
      using U = typename T::value_type;
      if (value) total += tag_size<U>(number) + Codec<U>::size(*value);
    } else if constexpr (is_vector<T>::value) {
      using U = typename T::value_type;
      for (const auto& element : value) total += tag_size<U>(number) + Codec<U>::size(element);
    } else if constexpr (is_bytes_range<T>::value) {
      for (const auto& element : value.range) {
        std::string_view bytes(element);
        total += tag_size<std::string_view>(number) + Codec<std::string_view>::size(bytes);
      }
    } else {
      total += tag_size<T>(number) + Codec<T>::size(value);
    }
  }
};

// Writes a message's fields; the caller reserved exactly Sizer's total.
struct Writer {
  std::uint8_t* p;

  template <class T>
  void operator()(std::uint32_t number, const T& value, bool = false) {
    if constexpr (is_optional<T>::value) {
      using U = typename T::value_type;
      if (value) p = Codec<U>::write(*value, write_tag<U>(number, p));
    } else if constexpr (is_vector<T>::value) {
      using U = typename T::value_type;
      for (const auto& element : value) p = Codec<U>::write(element, write_tag<U>(number, p));
    } else if constexpr (is_bytes_range<T>::value) {
      for (const auto& element : value.range) {
        std::string_view bytes(element);
        p = Codec<std::string_view>::write(bytes, write_tag<std::string_view>(number, p));
      }
    } else {
      p = Codec<T>::write(value, write_tag<T>(number, p));
    }
  }
};

// Reads the one field whose number matches the tag just read; also collects
// which required fields exist and which were found.
struct Reader {
  CodedInputStream& in;
  std::uint32_t number = 0;  // 0 while only collecting required fields
  std::uint32_t wire = 0;
  bool matched = false;
  bool ok = true;
  std::uint32_t required = 0;
  std::uint32_t found = 0;

  template <class U, class Store>
  void read(Store&& store) {
    matched = true;
    if (wire != Codec<U>::wire) {
      ok = false;
      return;
    }
    U value = decode_start<U>();
    ok = Codec<U>::read(in, value);
    if (ok) store(std::move(value));
  }

  template <class T>
  void operator()(std::uint32_t field, T& value, bool is_required = false) {
    // Field numbers here are at most 15, so a 32-bit mask holds them.
    if (is_required) required |= 1u << field;
    if (field != number) return;
    found |= 1u << field;
    if constexpr (is_optional<T>::value) {
      read<typename T::value_type>([&](auto&& v) { value = std::move(v); });
    } else if constexpr (is_vector<T>::value) {
      read<typename T::value_type>([&](auto&& v) { value.push_back(std::move(v)); });
    } else {
      read<T>([&](auto&& v) { value = std::move(v); });
    }
  }
};

inline bool skip_field(CodedInputStream& in, std::uint32_t wire) {
  switch (wire) {
    case kVarint: {
      std::uint64_t ignored = 0;
      return in.ReadVarint64(&ignored);
    }
    case kFixed64:
      return in.Skip(8);
    case kLengthDelimited: {
      int length = 0;
      return read_length(in, length) && in.Skip(length);
    }
    case kFixed32:
      return in.Skip(4);
    default:  // groups, as the reference's skip(), are not accepted
      return false;
  }
}

// Reads fields up to the current limit. Unknown fields are skipped, a known
// field with another wire type fails, and every required field must appear.
// A singular field sent twice keeps the last value; for an embedded message
// that means replaced, as the reference does, where protoc would merge.
template <class M>
bool read_fields(CodedInputStream& in, M& m) {
  Reader reader{in};
  Schema<M>::fields(m, reader);
  const std::uint32_t required = reader.required;
  std::uint32_t found = 0;
  while (in.BytesUntilLimit() > 0) {
    const std::uint32_t tag = in.ReadTagNoLastTag();
    if ((tag >> 3) == 0) return false;  // malformed varint, or field number 0
    reader.number = tag >> 3;
    reader.wire = tag & 7;
    reader.matched = false;
    reader.found = 0;
    Schema<M>::fields(m, reader);
    if (!reader.ok) return false;
    if (!reader.matched && !skip_field(in, reader.wire)) return false;
    found |= reader.found;
  }
  return (found & required) == required;
}

template <class M>
std::size_t fields_size(const M& m) {
  Sizer sizer;
  Schema<M>::fields(m, sizer);
  return sizer.total;
}

template <class M>
std::uint8_t* write_fields(const M& m, std::uint8_t* p) {
  Writer writer{p};
  Schema<M>::fields(m, writer);
  return writer.p;
}

// An embedded message is its length, then its fields. Unlike protoc, sizes are
// not cached, so an embedded message's size is computed twice on encoding;
// the embedded messages here are a few fields each.
template <class M>
struct Codec<M, std::void_t<decltype(Schema<M>{})>> {
  static constexpr WireType wire = kLengthDelimited;
  static std::size_t size(const M& m) {
    const std::size_t inner = fields_size(m);
    return CodedOutputStream::VarintSize32(static_cast<std::uint32_t>(inner)) + inner;
  }
  static std::uint8_t* write(const M& m, std::uint8_t* p) {
    p = CodedOutputStream::WriteVarint32ToArray(static_cast<std::uint32_t>(fields_size(m)), p);
    return write_fields(m, p);
  }
  static bool read(CodedInputStream& in, M& m) {
    int length = 0;
    if (!read_length(in, length)) return false;
    const auto limit = in.PushLimit(length);
    const bool ok = read_fields(in, m);
    in.PopLimit(limit);
    return ok;
  }
};

// GetManyCallback.Value, see Schema's comment: an optional<std::string> seen
// as the message { optional bytes value = 1; }.
template <class Opt>
struct ValueRef {
  Opt& value;
};
template <class Opt>
struct Schema<ValueRef<Opt>> {
  template <class M, class F>
  static void fields(M& m, F& f) {
    f(1, m.value);
  }
};
template <>
struct Codec<std::optional<std::string>> {
  using In = ValueRef<std::optional<std::string>>;
  using Out = ValueRef<const std::optional<std::string>>;
  static constexpr WireType wire = kLengthDelimited;
  static std::size_t size(const std::optional<std::string>& v) { return Codec<Out>::size(Out{v}); }
  static std::uint8_t* write(const std::optional<std::string>& v, std::uint8_t* p) {
    return Codec<Out>::write(Out{v}, p);
  }
  static bool read(CodedInputStream& in, std::optional<std::string>& v) {
    In ref{v};
    return Codec<In>::read(in, ref);
  }
};

// ---- the schema: field numbers and types of src/many_level.proto ----

#define MANY_LEVEL_WIRE_SCHEMA(Type, ...)        \
  template <>                                    \
  struct Schema<Type> {                          \
    template <class M, class F>                  \
    static void fields(M& m, F& f) {             \
      __VA_ARGS__;                               \
    }                                            \
  };

// Field 15 (snapshot) of the base reads belongs to the extension: it is
// present only in frames sent to a host that answered Hello.
MANY_LEVEL_WIRE_SCHEMA(GetRequest, f(1, m.id, kRequired); f(2, m.key, kRequired); f(15, m.snapshot))
MANY_LEVEL_WIRE_SCHEMA(PutRequest, f(1, m.id, kRequired); f(2, m.key, kRequired); f(3, m.value))
MANY_LEVEL_WIRE_SCHEMA(DelRequest, f(1, m.id, kRequired); f(2, m.key, kRequired))
MANY_LEVEL_WIRE_SCHEMA(BatchOp, f(1, m.type, kRequired); f(2, m.key, kRequired); f(3, m.value))
MANY_LEVEL_WIRE_SCHEMA(BatchRequest, f(1, m.id, kRequired); f(2, m.ops))
MANY_LEVEL_WIRE_SCHEMA(BatchOpView, f(1, m.type, kRequired); f(2, m.key, kRequired); f(3, m.value))
MANY_LEVEL_WIRE_SCHEMA(BatchRequestView, f(1, m.id, kRequired); f(2, m.ops))
MANY_LEVEL_WIRE_SCHEMA(IteratorOptions, f(1, m.keys); f(2, m.values); f(3, m.gt); f(4, m.gte);
                       f(5, m.lt); f(6, m.lte); f(7, m.limit); f(8, m.reverse))
MANY_LEVEL_WIRE_SCHEMA(IteratorRequest, f(1, m.id, kRequired); f(2, m.seq, kRequired);
                       f(3, m.options, kRequired); f(4, m.consumed, kRequired);
                       f(5, m.bookmark); f(6, m.seek); f(15, m.snapshot))
MANY_LEVEL_WIRE_SCHEMA(ClearOptions, f(3, m.gt); f(4, m.gte); f(5, m.lt); f(6, m.lte);
                       f(7, m.limit); f(8, m.reverse))
MANY_LEVEL_WIRE_SCHEMA(ClearRequest, f(1, m.id, kRequired); f(2, m.options))
MANY_LEVEL_WIRE_SCHEMA(GetManyRequest, f(1, m.id, kRequired); f(2, m.keys); f(15, m.snapshot))
MANY_LEVEL_WIRE_SCHEMA(IteratorClose, f(1, m.id, kRequired))
MANY_LEVEL_WIRE_SCHEMA(IteratorAck, f(1, m.id, kRequired); f(2, m.seq, kRequired);
                       f(3, m.consumed, kRequired))
MANY_LEVEL_WIRE_SCHEMA(IteratorSeek, f(1, m.id, kRequired); f(2, m.seq, kRequired);
                       f(3, m.target, kRequired))
MANY_LEVEL_WIRE_SCHEMA(Callback, f(1, m.id, kRequired); f(2, m.error); f(3, m.value))
MANY_LEVEL_WIRE_SCHEMA(IteratorData, f(1, m.id, kRequired); f(2, m.seq, kRequired);
                       f(3, m.data))
MANY_LEVEL_WIRE_SCHEMA(IteratorDataView, f(1, m.id, kRequired); f(2, m.seq, kRequired);
                       f(3, m.data))
MANY_LEVEL_WIRE_SCHEMA(GetManyCallback, f(1, m.id, kRequired); f(2, m.error); f(3, m.values))
MANY_LEVEL_WIRE_SCHEMA(IteratorError, f(1, m.id, kRequired); f(2, m.seq, kRequired);
                       f(3, m.error, kRequired))
MANY_LEVEL_WIRE_SCHEMA(IteratorEnd, f(1, m.id, kRequired); f(2, m.seq, kRequired))

// The extension (docs/PROTOCOL.md).
MANY_LEVEL_WIRE_SCHEMA(Hello, f(1, m.version, kRequired); f(2, m.features); f(3, m.token))
MANY_LEVEL_WIRE_SCHEMA(HasRequest, f(1, m.id, kRequired); f(2, m.keys); f(3, m.snapshot))
MANY_LEVEL_WIRE_SCHEMA(SnapshotRequest, f(1, m.id, kRequired); f(2, m.snapshot, kRequired))
MANY_LEVEL_WIRE_SCHEMA(SnapshotRelease, f(1, m.snapshot, kRequired))
MANY_LEVEL_WIRE_SCHEMA(WatchRange, f(3, m.gt); f(4, m.gte); f(5, m.lt); f(6, m.lte))
MANY_LEVEL_WIRE_SCHEMA(WatchRequest, f(1, m.id, kRequired); f(2, m.range, kRequired); f(3, m.since))
MANY_LEVEL_WIRE_SCHEMA(WatchAck, f(1, m.id, kRequired); f(2, m.seq, kRequired))
MANY_LEVEL_WIRE_SCHEMA(WatchClose, f(1, m.id, kRequired))
MANY_LEVEL_WIRE_SCHEMA(HostStatsRequest, f(1, m.id, kRequired))
MANY_LEVEL_WIRE_SCHEMA(HelloReply, f(1, m.version, kRequired); f(2, m.features); f(3, m.seq);
                       f(4, m.error); f(5, m.grant); f(6, m.confined))
MANY_LEVEL_WIRE_SCHEMA(HasCallback, f(1, m.id, kRequired); f(2, m.error); f(3, m.found))
MANY_LEVEL_WIRE_SCHEMA(WatchStarted, f(1, m.id, kRequired); f(2, m.seq, kRequired))
MANY_LEVEL_WIRE_SCHEMA(Commit, f(1, m.seq, kRequired); f(2, m.ops))
MANY_LEVEL_WIRE_SCHEMA(WatchData, f(1, m.id, kRequired); f(2, m.commits))
MANY_LEVEL_WIRE_SCHEMA(WatchError, f(1, m.id, kRequired); f(2, m.error, kRequired))
MANY_LEVEL_WIRE_SCHEMA(HostConnectionStats, f(1, m.id); f(2, m.address); f(3, m.since_ms);
                       f(4, m.requests); f(5, m.bytes_in); f(6, m.bytes_out); f(7, m.frames_in);
                       f(8, m.frames_out); f(9, m.iterators); f(10, m.watches); f(11, m.snapshots);
                       f(12, m.pending); f(13, m.extended))
MANY_LEVEL_WIRE_SCHEMA(HostStatsMessage, f(1, m.uptime_ms); f(2, m.connections_total);
                       f(3, m.connections); f(4, m.database_kind); f(5, m.database_path);
                       f(6, m.database_bytes); f(7, m.seq); f(8, m.version))
MANY_LEVEL_WIRE_SCHEMA(HostStatsReply, f(1, m.id, kRequired); f(2, m.error); f(3, m.stats))

#undef MANY_LEVEL_WIRE_SCHEMA

// IteratorData straight from a range of entries (see encode_iterator_data).
template <class Range>
struct IteratorDataRange {
  static constexpr HostTag tag = HostTag::iterator_data;
  std::uint32_t id;
  std::uint32_t seq;
  BytesRange<Range> data;
};
template <class Range>
struct Schema<IteratorDataRange<Range>> {
  template <class M, class F>
  static void fields(M& m, F& f) {
    f(1, m.id, kRequired);
    f(2, m.seq, kRequired);
    f(3, m.data);
  }
};

template <class M>
std::uint8_t tag_byte() {
  return static_cast<std::uint8_t>(M::tag);
}

}  // namespace detail

// Size of a message's protobuf encoding, without tag byte or length prefix.
template <class M>
std::size_t message_size(const M& message) {
  return detail::fields_size(message);
}

// Appends a message's protobuf encoding alone (no length prefix, no tag byte).
template <class M>
void encode_message(std::string& out, const M& message) {
  const std::size_t size = detail::fields_size(message);
  const std::size_t start = out.size();
  out.resize(start + size);
  detail::write_fields(message, reinterpret_cast<std::uint8_t*>(&out[start]));
}

// Appends one whole frame: varint length, tag byte, message. The size is
// computed first, so the output grows once and nothing is copied twice.
// Throws Error (LEVEL_PROTOCOL_ERROR) for a payload of 2^32 bytes or more.
template <class M>
void encode(std::string& out, const M& message) {
  using detail::CodedOutputStream;
  const std::size_t body = detail::fields_size(message);
  if (body >= UINT32_MAX) {
    throw Error(codes::protocol_error,
                "message of " + std::to_string(body) + " bytes is too large for a frame");
  }
  const auto payload = static_cast<std::uint32_t>(body + 1);
  const std::size_t start = out.size();
  out.resize(start + CodedOutputStream::VarintSize32(payload) + payload);
  auto* p = reinterpret_cast<std::uint8_t*>(&out[start]);
  p = CodedOutputStream::WriteVarint32ToArray(payload, p);
  *p++ = detail::tag_byte<M>();
  detail::write_fields(message, p);
}

// The hot path of iterators: appends an IteratorData frame whose data field is
// `entries`, any range of elements convertible to std::string_view (keys and
// values already interleaved as the frame wants them). No copy of the entries
// is made besides the one into `out`, and nothing is allocated per entry.
template <class Range>
void encode_iterator_data(std::string& out, std::uint32_t id, std::uint32_t seq,
                          const Range& entries) {
  encode(out, detail::IteratorDataRange<Range>{id, seq, detail::BytesRange<Range>{entries}});
}

// Decodes a protobuf message body (the payload without its tag byte). Fails,
// as the reference does, when a required field is missing, the input is
// truncated or a known field has another wire type; unknown fields are skipped.
// On failure `out` holds a partial result.
template <class M>
bool decode(std::string_view body, M& out) {
  if (body.size() >= static_cast<std::size_t>(INT_MAX)) return false;
  detail::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(body.data()),
                              static_cast<int>(body.size()));
  out = detail::decode_start<M>();
  return detail::read_fields(in, out);
}

enum class DecodeStatus {
  ok,
  ignored,    // empty payload or unknown tag: the reference ignores these
  malformed,  // known tag, message fails to decode: the reference ignores it too
};

namespace detail {
// The variant's first `base` alternatives have tags 0 .. base-1; the rest are
// the extension's, from first_extension_tag on.
template <class Variant, std::size_t base, std::size_t... I>
DecodeStatus decode_variant(std::string_view payload, Variant& out, std::index_sequence<I...>) {
  using Decoder = bool (*)(std::string_view, Variant&);
  static constexpr Decoder decoders[] = {+[](std::string_view body, Variant& v) {
    return decode(body, v.template emplace<I>());
  }...};
  if (payload.empty()) return DecodeStatus::ignored;
  const auto tag = static_cast<std::size_t>(static_cast<std::uint8_t>(payload[0]));
  std::size_t index = tag;
  if (tag >= base) {
    if (tag < first_extension_tag) return DecodeStatus::ignored;
    index = base + (tag - first_extension_tag);
  }
  if (index >= sizeof...(I)) return DecodeStatus::ignored;
  return decoders[index](payload.substr(1), out) ? DecodeStatus::ok : DecodeStatus::malformed;
}
}  // namespace detail

// Decodes a whole payload (tag byte and message) from a guest or from a host,
// base messages and the extension's alike. Unknown tags are ignored.
inline DecodeStatus decode_payload(std::string_view payload, GuestMessage& out) {
  return detail::decode_variant<GuestMessage, base_guest_messages>(
      payload, out, std::make_index_sequence<std::variant_size_v<GuestMessage>>{});
}

inline DecodeStatus decode_payload(std::string_view payload, HostMessage& out) {
  return detail::decode_variant<HostMessage, base_host_messages>(
      payload, out, std::make_index_sequence<std::variant_size_v<HostMessage>>{});
}

}  // namespace protocol
MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/protocol/codec.hpp ----
// ---- begin src/many_level/protocol/framing.hpp ----
// Length-prefixed framing of the many-level stream, sans I/O: a frame is a
// varint payload length, then the payload. FrameDecoder turns chunks of any
// size into payloads; append_length_prefix writes the other direction.

MANY_LEVEL_NAMESPACE_BEGIN
namespace protocol {

// Appends the varint that precedes a payload of `length` bytes.
inline void append_length_prefix(std::string& out, std::uint32_t length) {
  using google::protobuf::io::CodedOutputStream;
  const std::size_t start = out.size();
  out.resize(start + CodedOutputStream::VarintSize32(length));
  CodedOutputStream::WriteVarint32ToArray(length, reinterpret_cast<std::uint8_t*>(&out[start]));
}

// Splits a byte stream into payloads. The reference sets no limit on a frame's
// length, so one bad prefix would make it allocate anything; this decoder
// checks the length against max_frame_length as soon as its varint is
// complete, before it buffers or allocates anything for the frame.
//
// Payloads that arrive whole inside one chunk are handed out as views into
// that chunk, without a copy; only a payload split across chunks is buffered,
// and only as far as its bytes have arrived. Zero-length payloads are skipped,
// as the reference does.
//
// After a protocol error every further feed() throws the same error: the
// stream is out of sync and the connection must close.
class FrameDecoder {
 public:
  static constexpr std::size_t default_max_frame_length = std::size_t{64} << 20;

  // The limit counts payload bytes (tag byte and message), not the prefix.
  explicit FrameDecoder(std::size_t max_frame_length = default_max_frame_length)
      : max_frame_length_(max_frame_length) {}

  // Feeds a chunk and calls on_frame(std::string_view payload) for each
  // complete payload, in order. A view is valid only during its call. If
  // on_frame throws, the frames after it in this chunk are dropped, but the
  // decoder stays consistent and accepts the next chunk. Throws Error
  // (LEVEL_PROTOCOL_ERROR) on a length over the limit or a malformed varint.
  template <class OnFrame>
  void feed(const char* data, std::size_t size, OnFrame&& on_frame) {
    if (error_) throw *error_;
    const char* const end = data + size;
    while (data != end) {
      if (!have_length_) {
        if (!read_length_byte(static_cast<std::uint8_t>(*data++))) continue;
        if (length_ == 0) {
          reset_length();
          continue;
        }
        // A payload already whole in this chunk is not copied.
        if (static_cast<std::size_t>(end - data) >= length_) {
          std::string_view payload(data, length_);
          data += length_;
          reset_length();
          on_frame(payload);
          continue;
        }
      }
      const std::size_t take =
          std::min(static_cast<std::size_t>(end - data), length_ - buffer_.size());
      buffer_.append(data, take);
      data += take;
      if (buffer_.size() == length_) {
        // Moved out first, so a throwing on_frame leaves the decoder ready.
        std::string payload = std::move(buffer_);
        buffer_ = std::string();
        reset_length();
        on_frame(std::string_view(payload));
        recycle(std::move(payload));
      }
    }
  }

  template <class OnFrame>
  void feed(std::string_view chunk, OnFrame&& on_frame) {
    feed(chunk.data(), chunk.size(), std::forward<OnFrame>(on_frame));
  }

  std::size_t max_frame_length() const noexcept { return max_frame_length_; }
  bool failed() const noexcept { return error_.has_value(); }
  const std::optional<Error>& error() const noexcept { return error_; }

  // Bytes of a partial frame held back: the length varint and any payload.
  std::size_t buffered() const noexcept { return length_bytes_ + buffer_.size(); }

  // True between frames, i.e. the stream may end here without losing data.
  bool idle() const noexcept { return length_bytes_ == 0 && !have_length_; }

 private:
  // A buffer this large or smaller is kept for the next split frame; a larger
  // one is released, so one big frame does not pin its memory for good.
  static constexpr std::size_t kKeptCapacity = std::size_t{1} << 20;

  // Consumes one byte of the length varint; true once the length is known.
  bool read_length_byte(std::uint8_t byte) {
    ++length_bytes_;
    const std::uint64_t bits = byte & 0x7f;
    if (length_shift_ >= 32 ? bits != 0 : (bits << length_shift_) > UINT32_MAX) {
      fail("frame length varint exceeds 32 bits");
    }
    accumulated_ |= bits << length_shift_;
    length_shift_ += 7;
    if (byte & 0x80) {
      if (length_bytes_ >= 10) fail("frame length varint longer than 10 bytes");
      return false;
    }
    if (accumulated_ > max_frame_length_) {
      fail("frame length " + std::to_string(accumulated_) + " exceeds the limit of " +
           std::to_string(max_frame_length_) + " bytes");
    }
    length_ = static_cast<std::size_t>(accumulated_);
    have_length_ = true;
    return true;
  }

  void reset_length() noexcept {
    accumulated_ = 0;
    length_shift_ = 0;
    length_bytes_ = 0;
    length_ = 0;
    have_length_ = false;
  }

  void recycle(std::string&& spent) {
    if (buffer_.capacity() == 0 && spent.capacity() <= kKeptCapacity) {
      spent.clear();
      buffer_ = std::move(spent);
    }
  }

  [[noreturn]] void fail(const std::string& message) {
    error_.emplace(codes::protocol_error, message);
    throw *error_;
  }

  std::size_t max_frame_length_;
  std::uint64_t accumulated_ = 0;
  unsigned length_shift_ = 0;
  std::size_t length_bytes_ = 0;
  std::size_t length_ = 0;
  bool have_length_ = false;
  std::string buffer_;
  std::optional<Error> error_;
};

}  // namespace protocol
MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/protocol/framing.hpp ----
// ---- end src/many_level/protocol/protocol.hpp ----
// ---- begin src/many_level/transport/session.hpp ----
// The seam between protocol and I/O. A session (host or guest side) is fed
// the bytes that arrive and leaves the bytes to send in its OutputBuffer; it
// owns no socket and no thread. Transports (file descriptors, iostreams, an
// in-memory pair, QIODevice) are thin pumps between a stream and a Session.

MANY_LEVEL_NAMESPACE_BEGIN

// How a write wants its bytes to leave (see OutputBuffer::write).
enum class SendMode {
  // On the writing thread, if the transport can (a socket it may write to
  // from any thread): a request or reply that someone is waiting for skips
  // the hand-off to the transport's thread, which is most of a round trip's
  // latency on loopback.
  now,
  // By the transport's thread, which wakes and sends whatever accumulated by
  // then in one write: for a writer that is about to write more.
  queued,
};

// Outgoing bytes of one session. Thread-safe: a host's worker threads append
// replies while the transport's thread takes them out.
//
// The transport registers a listener to learn that bytes are waiting (called
// without the buffer's lock held, from whichever thread appended), and may
// register a direct sender, which a SendMode::now write calls first on the
// writer's thread.
class OutputBuffer {
 public:
  using Listener = std::function<void()>;
  // Sends pending bytes on the calling thread, without blocking; returns
  // true when it sent them all and the transport's thread need not be woken.
  // It must never wait for a lock that a session holds while writing: it is
  // called from inside writes made under such locks.
  using DirectSender = std::function<bool()>;

  explicit OutputBuffer(size_t high_water = 1 << 20) : high_water_(high_water) {}

  // Appends bytes produced by `write(std::string&)`, which appends to the
  // buffer directly (frames are encoded in place, never copied twice). When
  // that made the buffer non-empty, the transport is told: by its direct
  // sender (SendMode::now, if it has one) or by waking its thread.
  template <typename Writer>
  void write(Writer&& writer, SendMode mode = SendMode::now) {
    std::shared_ptr<const Listener> notify;
    std::shared_ptr<const DirectSender> send;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return;
      bool was_empty = pending() == 0;
      writer(buffer_);
      if (was_empty && pending() > 0) {
        notify = readable_;
        if (mode == SendMode::now) send = direct_sender_;
      }
    }
    if (send && (*send)()) return;
    if (notify) (*notify)();
  }

  // Moves all pending bytes into `out` (cleared first); returns their count.
  size_t take(std::string& out) {
    std::lock_guard<std::mutex> lock(mutex_);
    out.clear();
    if (read_ == sending_.size()) {
      out.swap(buffer_);
    } else {
      out.assign(sending_, read_, std::string::npos);
      out.append(buffer_);
      buffer_.clear();
    }
    sending_.clear();
    read_ = 0;
    return out.size();
  }

  // Looks at pending bytes without taking them (for transports that write
  // partially): call consume() with what was actually sent. Other threads may
  // keep appending meanwhile: the view stays valid until the consumer's next
  // peek(), consume(), take() (there is one consumer, the transport).
  std::string_view peek() const {
    std::lock_guard<std::mutex> lock(mutex_);
    gather();
    return std::string_view(sending_).substr(read_);
  }

  void consume(size_t count) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (count > sending_.size() - read_) gather();
    read_ += count;
    if (read_ >= sending_.size()) {
      sending_.clear();
      read_ = 0;
    } else if (read_ > (1 << 16) && read_ * 2 > sending_.size()) {
      sending_.erase(0, read_);  // compact, so the buffer never keeps sent bytes
      read_ = 0;
    }
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pending();
  }

  // Room left before the high-water mark (0 when at or over it).
  size_t room() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pending() >= high_water_ ? 0 : high_water_ - pending();
  }

  size_t high_water() const { return high_water_; }

  // Calls the readable listener even with nothing to send: how a session asks
  // its transport to look at it again (e.g. at failed(), to close the stream).
  void wake() {
    std::shared_ptr<const Listener> notify;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      notify = readable_;
    }
    if (notify) (*notify)();
  }

  // Once closed, writes are dropped: the peer is gone.
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    buffer_.clear();
    read_ = sending_.size();  // not freed here: the consumer may be sending from a peek()
  }

  bool is_closed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return closed_;
  }

  // Listeners are held by shared_ptr so that calling one costs no copy of
  // the function (and no allocation) per write. One may still be running on
  // another thread after it was replaced: the transport's own state decides
  // whether it still acts.
  void on_readable(Listener listener) { set(readable_, std::move(listener)); }
  void on_direct_send(DirectSender sender) { set(direct_sender_, std::move(sender)); }

 private:
  size_t pending() const { return sending_.size() - read_ + buffer_.size(); }

  template <typename F>
  void set(std::shared_ptr<const F>& slot, F function) {
    auto held = function ? std::make_shared<const F>(std::move(function)) : nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    slot = std::move(held);
  }

  // Moves appended bytes behind the ones being sent. Writers only ever touch
  // buffer_, so a view into sending_ survives their appends (a view into a
  // string that another thread appends to would dangle once it reallocates).
  void gather() const {
    if (read_ == sending_.size()) {
      sending_.clear();
      read_ = 0;
    }
    if (buffer_.empty()) return;
    if (sending_.empty()) {
      sending_.swap(buffer_);
    } else {
      sending_.append(buffer_);
      buffer_.clear();
    }
  }

  mutable std::mutex mutex_;
  // Pending bytes are sending_[read_..] then buffer_. Mutable because peek()
  // reshuffles them without changing what is pending.
  mutable std::string sending_;
  mutable std::string buffer_;
  mutable size_t read_ = 0;
  size_t high_water_;
  bool closed_ = false;
  std::shared_ptr<const Listener> readable_;
  std::shared_ptr<const DirectSender> direct_sender_;
};

// What a transport drives.
class Session {
 public:
  virtual ~Session() = default;

  // Feeds bytes that arrived, in any chunking. A protocol violation does not
  // throw: the session marks itself failed (see failed()) and the transport
  // closes the stream.
  virtual void receive(const char* data, size_t size) = 0;

  // The stream ended (peer closed, error, or our own close). Called once.
  virtual void end() = 0;

  // Bytes waiting to be sent.
  virtual OutputBuffer& output() = 0;

  // Non-empty once the session wants its stream closed, saying why. The
  // transport checks it after every receive() and every wake of the output,
  // sends what output is pending, then closes the stream.
  virtual std::string failed() const = 0;

  // Whether the transport should read more input now. False pauses reading,
  // which is how a session bounds the memory one peer can make it use: the
  // transport asks again whenever output drains or becomes readable.
  virtual bool wants_input() { return output().room() > 0; }

  // Whether the stream carries this session's own bytes yet: a session that
  // first sets up the stream (TLS: its handshake) says false until that is
  // done, so that whoever connected it (a Connector) does not call a stream
  // up that may still be refused. Safe to call from any thread.
  virtual bool established() const { return true; }
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/session.hpp ----
// ---- begin src/many_level/transport/address.hpp ----
// Where a host listens and a guest connects: `tcp://HOST:PORT` (IPv4, IPv6 in
// brackets, or a name resolved with getaddrinfo), `tls://HOST:PORT` (the same
// TCP socket, carrying TLS) and `unix:PATH`. Parsing and formatting, plus the
// sockets behind them: listen, connect with a timeout, and the address
// actually bound (port 0 becomes the real port).
//
// A tls:// address only says that its stream wants TLS: the sockets here are
// plain TCP either way, and whoever attaches a session to one wraps it
// (transport/tls.hpp: listen_tls() for an EventLoop, tls_wrapper() for a
// Connector, TlsSession for anything else).

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>

// ---- begin src/many_level/transport/fd.hpp ----
// POSIX file-descriptor plumbing shared by the transports: an owning fd, errors
// from errno, and reads and writes that never block past what poll() promised
// and never raise SIGPIPE (a peer that goes away must not kill the process).

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>

MANY_LEVEL_NAMESPACE_BEGIN

// Owns one file descriptor and closes it once.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  int release() noexcept { return std::exchange(fd_, -1); }

  void reset(int fd = -1) noexcept {
    // Not retried on EINTR: on Linux the descriptor is gone either way, and a
    // retry could close a descriptor another thread has just been given.
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

namespace detail {

inline Error errno_error(const std::string& what, int error = errno) {
  return Error(codes::io_error, what + ": " + std::strerror(error));
}

inline void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw errno_error("fcntl(O_NONBLOCK)");
}

// How to write to an fd without blocking longer than poll() promised, without
// changing its flags: stdin and stdout share their file description with
// other processes, so setting O_NONBLOCK on them would leak out of ours.
struct FdKind {
  bool socket = false;
  bool pipe = false;
  bool nonblocking = false;

  static FdKind of(int fd) {
    FdKind kind;
    struct stat st {};
    if (::fstat(fd, &st) == 0) {
      kind.socket = S_ISSOCK(st.st_mode);
      kind.pipe = S_ISFIFO(st.st_mode);
    }
    int flags = ::fcntl(fd, F_GETFL);
    kind.nonblocking = flags >= 0 && (flags & O_NONBLOCK) != 0;
    return kind;
  }
};

// write() with SIGPIPE held back for this thread, so a closed pipe shows up as
// EPIPE instead of killing the process. A SIGPIPE that was already pending for
// another reason is left alone.
inline ssize_t write_without_sigpipe(int fd, const char* data, size_t size) {
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;

  ssize_t written = ::write(fd, data, size);
  const int error = errno;
  if (written < 0 && error == EPIPE && !was_pending) {
    struct timespec zero {};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  errno = error;
  return written;
}

// Writes at most what an fd that poll() called writable takes without
// blocking: any amount for sockets (MSG_DONTWAIT) and non-blocking fds,
// PIPE_BUF for a blocking pipe (POSIX guarantees that much room), a bounded
// chunk for anything else (files and terminals do not stall for long).
// Returns the count written, or -1 with errno (EAGAIN when full).
inline ssize_t write_some(int fd, const FdKind& kind, const char* data, size_t size) {
  ssize_t written;
  if (kind.socket) {
    do {
      written = ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (written < 0 && errno == EINTR);
    return written;
  }
  if (!kind.nonblocking) size = std::min(size, kind.pipe ? size_t{PIPE_BUF} : size_t{1} << 16);
  do {
    written = write_without_sigpipe(fd, data, size);
  } while (written < 0 && errno == EINTR);
  return written;
}

// read() retried on EINTR.
inline ssize_t read_some(int fd, char* data, size_t size) {
  ssize_t got;
  do {
    got = ::read(fd, data, size);
  } while (got < 0 && errno == EINTR);
  return got;
}

inline bool would_block(int error) { return error == EAGAIN || error == EWOULDBLOCK; }

}  // namespace detail

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/fd.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

struct Address {
  // Not named `unix`: GNU modes predefine that as a macro.
  enum class Kind { tcp, unix_socket };

  Kind kind = Kind::tcp;
  std::string host;  // tcp: a name or a literal, IPv6 without brackets
  std::uint16_t port = 0;
  std::string path;  // unix_socket
  bool tls = false;  // tcp only: the stream carries TLS (tls://HOST:PORT)

  static Address tcp(std::string host, std::uint16_t port) {
    Address address;
    address.host = std::move(host);
    address.port = port;
    return address;
  }

  static Address unix_socket(std::string path) {
    Address address;
    address.kind = Kind::unix_socket;
    address.path = std::move(path);
    return address;
  }

  // The same TCP address, wanting TLS or not.
  Address with_tls(bool wants_tls = true) const {
    Address address = *this;
    address.tls = wants_tls && is_tcp();
    return address;
  }

  // True for tls:// too: TLS rides on a TCP socket.
  bool is_tcp() const { return kind == Kind::tcp; }
  bool is_unix() const { return kind == Kind::unix_socket; }

  // The form parse_address() reads back.
  std::string to_string() const {
    if (is_unix()) return "unix:" + path;
    const char* scheme = tls ? "tls://" : "tcp://";
    if (host.find(':') != std::string::npos) return scheme + ("[" + host + "]:") + std::to_string(port);
    return scheme + host + ":" + std::to_string(port);
  }

  friend bool operator==(const Address& a, const Address& b) {
    return a.kind == b.kind && a.host == b.host && a.port == b.port && a.path == b.path && a.tls == b.tls;
  }
  friend bool operator!=(const Address& a, const Address& b) { return !(a == b); }
};

namespace detail {

[[noreturn]] inline void bad_address(std::string_view text, const char* why) {
  throw Error(codes::invalid_argument, "expected tcp://HOST:PORT, tls://HOST:PORT or unix:PATH, got \"" +
                                           std::string(text) + "\" (" + why + ")");
}

}  // namespace detail

// Throws Error(LEVEL_INVALID_ARGUMENT) on anything that is not one of the
// three forms. Names are checked for shape only; they are resolved on use.
// `unix:@NAME` is Linux's abstract namespace: no file, gone with its socket.
inline Address parse_address(std::string_view text) {
  using detail::bad_address;
  auto starts_with = [&](std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; };
  if (starts_with("unix:")) {
    std::string_view path = text.substr(5);
    if (path.empty()) bad_address(text, "empty path");
    if (path.find('\0') != std::string_view::npos) bad_address(text, "NUL in path");
    if (path.size() >= sizeof(sockaddr_un{}.sun_path)) bad_address(text, "path longer than 107 bytes");
    return Address::unix_socket(std::string(path));
  }
  const bool tls = starts_with("tls://");
  if (!tls && !starts_with("tcp://")) bad_address(text, "unknown scheme");

  std::string_view rest = text.substr(6);
  std::string_view host;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) bad_address(text, "missing ]");
    host = rest.substr(1, close - 1);
    if (close + 1 >= rest.size() || rest[close + 1] != ':') bad_address(text, "missing :PORT");
    port = rest.substr(close + 2);
    in6_addr ignored;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &ignored) != 1) {
      bad_address(text, "not an IPv6 address in brackets");
    }
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) bad_address(text, "missing :PORT");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) bad_address(text, "IPv6 addresses go in brackets");
    for (char c : host) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-' || c == '_';
      if (!ok) bad_address(text, "bad character in host");
    }
  }
  if (host.empty()) bad_address(text, "empty host");
  if (port.empty() || port.size() > 5) bad_address(text, "bad port");
  unsigned long number = 0;
  for (char c : port) {
    if (c < '0' || c > '9') bad_address(text, "bad port");
    number = number * 10 + static_cast<unsigned long>(c - '0');
  }
  if (number > 65535) bad_address(text, "port out of range");
  return Address::tcp(std::string(host), static_cast<std::uint16_t>(number)).with_tls(tls);
}

// The address in a sockaddr (what getsockname/getpeername/accept give).
// An unnamed unix peer (a client that did not bind) has an empty path.
inline Address address_of(const sockaddr* sa, socklen_t length) {
  char text[INET6_ADDRSTRLEN] = {};
  switch (sa->sa_family) {
    case AF_INET: {
      auto* in = reinterpret_cast<const sockaddr_in*>(sa);
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
      return Address::tcp(text, ntohs(in->sin_port));
    }
    case AF_INET6: {
      auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
      return Address::tcp(text, ntohs(in6->sin6_port));
    }
    case AF_UNIX: {
      auto* un = reinterpret_cast<const sockaddr_un*>(sa);
      const size_t offset = offsetof(sockaddr_un, sun_path);
      if (length <= offset) return Address::unix_socket("");
      std::string path(un->sun_path, length - offset);
      if (!path.empty() && path[0] == '\0') {
        path[0] = '@';  // Linux abstract namespace, shown the way ss(8) does
      } else {
        path.resize(std::strlen(path.c_str()));
      }
      return Address::unix_socket(std::move(path));
    }
    default:
      throw Error(codes::invalid_argument, "unsupported address family " + std::to_string(sa->sa_family));
  }
}

inline Address local_address(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) < 0) {
    throw detail::errno_error("getsockname");
  }
  return address_of(reinterpret_cast<sockaddr*>(&storage), length);
}

inline Address peer_address(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &length) < 0) {
    throw detail::errno_error("getpeername");
  }
  return address_of(reinterpret_cast<sockaddr*>(&storage), length);
}

namespace detail {

struct AddrinfoDeleter {
  void operator()(addrinfo* list) const { freeaddrinfo(list); }
};
using AddrinfoList = std::unique_ptr<addrinfo, AddrinfoDeleter>;

inline AddrinfoList resolve_address(const Address& address, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* list = nullptr;
  int status = getaddrinfo(address.host.c_str(), std::to_string(address.port).c_str(), &hints, &list);
  if (status != 0) {
    throw Error(codes::io_error, "cannot resolve " + address.to_string() + ": " + gai_strerror(status));
  }
  return AddrinfoList(list);
}

inline sockaddr_un unix_sockaddr(const std::string& path, socklen_t& length) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  if (path.size() >= sizeof un.sun_path) {
    throw Error(codes::invalid_argument, "unix socket path longer than 107 bytes: " + path);
  }
  std::memcpy(un.sun_path, path.data(), path.size());
  if (!path.empty() && path[0] == '@') un.sun_path[0] = '\0';  // abstract namespace
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '@' ? 0 : 1));
  return un;
}

// A socket file left behind by a server that died is removed, but only when
// nothing accepts on it: a live server's socket (or any other file) is never
// touched. Two servers starting on one path at the same instant can still
// race; the bind of one of them then fails.
inline void remove_stale_unix_socket(const std::string& path) {
  if (path.empty() || path[0] == '@') return;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;  // nothing there: bind decides
  if (!S_ISSOCK(st.st_mode)) {
    throw Error(codes::io_error, "cannot listen on unix:" + path + ": the file exists and is not a socket");
  }
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!probe) throw errno_error("socket");
  socklen_t length;
  sockaddr_un un = unix_sockaddr(path, length);
  int result;
  do {
    result = ::connect(probe.get(), reinterpret_cast<sockaddr*>(&un), length);
  } while (result < 0 && errno == EINTR);
  // EAGAIN: its backlog is full, so it is alive.
  if (result == 0 || errno == EAGAIN || errno == EINPROGRESS) {
    throw Error(codes::io_error, "cannot listen on unix:" + path + ": a server is listening there");
  }
  if (errno == ECONNREFUSED) ::unlink(path.c_str());
}

inline void set_no_delay(int fd) {
  // Requests and replies are small frames; Nagle's algorithm would hold them
  // back waiting for delayed acknowledgements.
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace detail

// A listening socket (non-blocking, close-on-exec). For unix: its socket file
// is removed again when it is closed, if that file is still the one it bound.
class ListeningSocket {
 public:
  ListeningSocket() = default;
  ListeningSocket(ListeningSocket&&) noexcept = default;
  ListeningSocket& operator=(ListeningSocket&& other) noexcept {
    if (this != &other) {
      remove_socket_file();
      fd_ = std::move(other.fd_);
      address_ = std::move(other.address_);
      inode_ = std::exchange(other.inode_, Inode{});
    }
    return *this;
  }
  ~ListeningSocket() { remove_socket_file(); }

  int fd() const { return fd_.get(); }
  // The address actually bound: port 0 is replaced by the port the system chose.
  const Address& address() const { return address_; }

  static ListeningSocket open(const Address& address, int backlog = SOMAXCONN) {
    ListeningSocket socket;
    if (address.is_unix()) {
      detail::remove_stale_unix_socket(address.path);
      socket.fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!socket.fd_) throw detail::errno_error("socket");
      socklen_t length;
      sockaddr_un un = detail::unix_sockaddr(address.path, length);
      if (::bind(socket.fd_.get(), reinterpret_cast<sockaddr*>(&un), length) < 0) {
        throw detail::errno_error("cannot listen on " + address.to_string());
      }
      struct stat st {};
      if (address.path[0] != '@' && ::stat(address.path.c_str(), &st) == 0) {
        socket.inode_ = Inode{address.path, st.st_dev, st.st_ino};
      }
    } else {
      detail::AddrinfoList list = detail::resolve_address(address, true);
      int error = 0;
      for (addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
        UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
        if (!fd) {
          error = errno;
          continue;
        }
        int one = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
          socket.fd_ = std::move(fd);
          break;
        }
        error = errno;
      }
      if (!socket.fd_) throw detail::errno_error("cannot listen on " + address.to_string(), error);
    }
    if (::listen(socket.fd_.get(), backlog) < 0) {
      throw detail::errno_error("cannot listen on " + address.to_string());
    }
    socket.address_ = local_address(socket.fd_.get()).with_tls(address.tls);
    return socket;
  }

 private:
  struct Inode {
    std::string path;
    dev_t device = 0;
    ino_t inode = 0;
  };

  void remove_socket_file() {
    if (inode_.path.empty() || !fd_) return;
    struct stat st {};
    if (::lstat(inode_.path.c_str(), &st) == 0 && st.st_dev == inode_.device && st.st_ino == inode_.inode) {
      ::unlink(inode_.path.c_str());
    }
    inode_ = Inode{};
  }

  UniqueFd fd_;
  Address address_;
  Inode inode_;
};

inline ListeningSocket listen_on(const Address& address, int backlog = SOMAXCONN) {
  return ListeningSocket::open(address, backlog);
}

// Connects and returns a blocking, close-on-exec socket (TCP_NODELAY for
// tcp). The timeout covers the connection attempts, not name resolution:
// getaddrinfo cannot be bounded. Throws Error(LEVEL_IO_ERROR).
inline UniqueFd connect_to(const Address& address,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  const std::string where = "cannot connect to " + address.to_string();

  if (address.is_unix()) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw detail::errno_error("socket");
    // A blocking unix connect waits while the server's backlog is full, and
    // honours SO_SNDTIMEO while it waits.
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    timeval tv{static_cast<time_t>(micros / 1000000), static_cast<suseconds_t>(micros % 1000000)};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    socklen_t length;
    sockaddr_un un = detail::unix_sockaddr(address.path, length);
    int result;
    do {
      result = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&un), length);
    } while (result < 0 && errno == EINTR);
    if (result < 0) {
      if (errno == EAGAIN || errno == EINPROGRESS) throw Error(codes::io_error, where + ": timed out");
      throw detail::errno_error(where);
    }
    tv = timeval{};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
  }

  detail::AddrinfoList list = detail::resolve_address(address, false);
  int error = ETIMEDOUT;
  for (addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd) {
      error = errno;
      continue;
    }
    int result = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
    if (result < 0 && errno == EINPROGRESS) {
      for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
          errno = ETIMEDOUT;
          break;
        }
        pollfd pfd{fd.get(), POLLOUT, 0};
        int ready = ::poll(&pfd, 1, static_cast<int>(left));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
          errno = ready == 0 ? ETIMEDOUT : errno;
          break;
        }
        int so_error = 0;
        socklen_t length = sizeof so_error;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &length);
        result = so_error == 0 ? 0 : -1;
        errno = so_error;
        break;
      }
    }
    if (result == 0) {
      int flags = ::fcntl(fd.get(), F_GETFL);
      ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
      detail::set_no_delay(fd.get());
      return fd;
    }
    error = errno;
    if (error == ETIMEDOUT) break;
  }
  if (error == ETIMEDOUT) throw Error(codes::io_error, where + ": timed out");
  throw detail::errno_error(where, error);
}

inline UniqueFd connect_to(std::string_view address,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return connect_to(parse_address(address), timeout);
}

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/address.hpp ----
// ---- begin src/many_level/transport/event_loop.hpp ----
// One thread, one poll() over many connections: the host's transport. Each
// connection pumps bytes between a non-blocking socket and its Session, and
// stops reading while the session does not want input (by default: while its
// output is at its high-water mark), so a guest that never reads cannot make
// the host buffer without bound.

#include <exception>
#include <unordered_map>

// ---- begin src/many_level/transport/send_gate.hpp ----
// The right to write one descriptor, shared by a transport's thread and the
// threads that send a session's output themselves (SendMode::now): a
// sequential round trip then costs no hand-off to the transport's thread on
// the way out, which on loopback is most of its latency.
//
// Only one thread sends at a time, so the bytes of concurrent writers never
// interleave mid-frame. Writers only ever try the gate: one that finds it
// taken (the transport is sending, or another writer is) wakes the transport
// instead of waiting, so the gate is never waited for under a session's
// lock, and the transport, which does wait for it, holds no session lock
// while it does. After close() no thread touches the descriptor again, so
// the transport may close it (and the number be reused) right after.

// ---- begin src/many_level/transport/stats.hpp ----
// Live counters of one connection, written by its transport and read from any
// thread (the Inspector, host statistics) without locks.

MANY_LEVEL_NAMESPACE_BEGIN

class TransportStats {
 public:
  std::uint64_t bytes_in() const { return bytes_in_.load(std::memory_order_relaxed); }
  std::uint64_t bytes_out() const { return bytes_out_.load(std::memory_order_relaxed); }
  // True while the transport has stopped reading because the session's
  // output is at its high-water mark (backpressure on the peer).
  bool input_paused() const { return input_paused_.load(std::memory_order_relaxed); }

  // For transports.
  void add_in(std::uint64_t count) { bytes_in_.fetch_add(count, std::memory_order_relaxed); }
  void add_out(std::uint64_t count) { bytes_out_.fetch_add(count, std::memory_order_relaxed); }
  void set_input_paused(bool paused) { input_paused_.store(paused, std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> bytes_in_{0};
  std::atomic<std::uint64_t> bytes_out_{0};
  std::atomic<bool> input_paused_{false};
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/stats.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN
namespace detail {

class SendGate {
 public:
  enum class Result {
    all_sent,     // nothing is pending any more
    would_block,  // the descriptor is full: poll it for POLLOUT
    failed,       // a write error; error() says which
  };

  // `stats` must outlive the gate's last send (close() ends them).
  SendGate(int fd, FdKind kind, TransportStats& stats) : fd_(fd), kind_(kind), stats_(stats) {}

  // Whether threads other than the transport's may send: only when a write
  // can never block (a socket, or a descriptor that is non-blocking).
  bool allows_direct_sends() const { return kind_.socket || kind_.nonblocking; }

  // The transport's thread: sends what the descriptor takes now. With
  // `one_write`, at most one write (a blocking pipe takes only PIPE_BUF
  // safely after each poll()).
  Result send(OutputBuffer& output, bool one_write = false) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return Result::all_sent;
    return send_locked(output, one_write);
  }

  // Any thread, as an OutputBuffer direct sender: true only when it sent
  // everything and the transport has no reason to look (its input is not
  // paused, waiting for output to drain). False means: wake the transport.
  bool try_send(OutputBuffer& output) {
    std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock() || closed_) return false;
    return send_locked(output, false) == Result::all_sent && !stats_.input_paused();
  }

  // The transport's thread, before it closes the descriptor: waits for a
  // send in progress, and turns every later one into a no-op.
  void close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }

  // The errno of the last failed write.
  int error() const { return error_.load(); }

 private:
  Result send_locked(OutputBuffer& output, bool one_write) {
    for (;;) {
      std::string_view pending = output.peek();
      if (pending.empty()) return Result::all_sent;
      ssize_t sent = write_some(fd_, kind_, pending.data(), pending.size());
      if (sent > 0) {
        stats_.add_out(static_cast<std::uint64_t>(sent));
        output.consume(static_cast<size_t>(sent));
        if (one_write) return output.size() == 0 ? Result::all_sent : Result::would_block;
        continue;
      }
      if (sent < 0 && would_block(errno)) return Result::would_block;
      error_ = sent < 0 ? errno : EIO;
      return Result::failed;
    }
  }

  std::mutex mutex_;
  const int fd_;
  const FdKind kind_;
  TransportStats& stats_;
  bool closed_ = false;
  std::atomic<int> error_{0};
};

// Lets `output`'s SendMode::now writes be sent through `gate` on the
// writer's thread, when its descriptor allows that.
inline void attach_direct_sends(const std::shared_ptr<SendGate>& gate, OutputBuffer& output) {
  if (gate->allows_direct_sends()) output.on_direct_send([gate, &output] { return gate->try_send(output); });
}

// Undoes attach_direct_sends(). The hook is removed, then the gate closed:
// a writer that copied the hook just before still finds the gate closed, so
// once this returns no other thread writes the descriptor.
inline void detach_direct_sends(SendGate& gate, OutputBuffer& output) {
  output.on_direct_send(nullptr);
  gate.close();
}

}  // namespace detail
MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/send_gate.hpp ----
// ---- begin src/many_level/transport/wakeup.hpp ----
// Wakes a thread blocked in poll() from any other thread: how output that a
// worker thread produces reaches a transport that sleeps in poll().

#include <sys/eventfd.h>

MANY_LEVEL_NAMESPACE_BEGIN
namespace detail {

// An eventfd: signal() makes fd() readable until drain(). Held by shared_ptr
// wherever a listener may still fire after the transport has returned, so the
// descriptor is never written after it was closed (and perhaps reused).
class Wakeup {
 public:
  Wakeup() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (!fd_) throw errno_error("eventfd");
  }

  int fd() const { return fd_.get(); }

  void signal() const {
    const std::uint64_t one = 1;
    // EAGAIN means the counter is saturated, which is still readable: fine.
    while (::write(fd_.get(), &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

  void drain() const {
    std::uint64_t count;
    while (::read(fd_.get(), &count, sizeof count) < 0 && errno == EINTR) {
    }
  }

 private:
  UniqueFd fd_;
};

}  // namespace detail
MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/wakeup.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

// Who a connection is, for logs and the Inspector.
struct ConnectionInfo {
  std::uint64_t id = 0;  // unique within one EventLoop, never reused
  std::string peer;      // "tcp://127.0.0.1:40522"; "unix:" for an unnamed unix client
  std::string local;     // the listening address it came in on
};

struct ConnectionSnapshot {
  ConnectionInfo info;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  bool input_paused = false;
};

struct EventLoopOptions {
  // Bytes read from a socket and fed to its session at once. A session's
  // output can overshoot its high-water mark by what one such chunk makes.
  size_t read_chunk = 64 * 1024;
  // How long a failed session's pending output may take to go out before
  // its connection is closed anyway (a peer that stopped reading).
  std::chrono::milliseconds linger{5000};
};

// Threads:
// - run() drives everything on the calling thread until stop(); start() does
//   the same on a thread of the loop's own. Sessions (receive, end, failed,
//   wants_input), session factories and the connect/disconnect callbacks are all called on
//   that thread, never with a lock of the loop held. They must not block: one
//   loop serves every connection.
// - Thread-safe, from any thread (and from callbacks): post, stop, listen,
//   stop_listening, add_connection, close_connection, connection_count,
//   connections, stats. The ones that change the loop take effect on the
//   loop's thread, soon after they return.
// - A session's output may be written from any thread. A SendMode::now
//   write to a socket is sent on the writing thread when the connection's
//   SendGate is free (send_gate.hpp); otherwise the loop is woken
//   (OutputBuffer::on_readable) and sends it.
// - on_connect/on_disconnect are set before run()/start().
// - The destructor stops the loop, runs tasks still queued, then closes every
//   connection (each session's end() is called, on the destroying thread).
//   Never destroy the loop from its own thread, nor while another thread is
//   still inside run().
//
// A connection ends on EOF, a read or write error, a session that reports
// failed(), or close_connection(): its socket is closed, then its session's
// end() is called exactly once, then on_disconnect. failed() is asked after
// every receive() and every wake of the output; a failed session's pending
// output is still sent (for at most `linger`), with no more input read.
// Reading pauses while the session's wants_input() is false and is asked
// again whenever the loop has sent output or was woken. The loop does not
// close the session's OutputBuffer; ending the session is its own business.
class EventLoop {
 public:
  using SessionFactory = std::function<std::shared_ptr<Session>(const ConnectionInfo&)>;
  using ConnectCallback = std::function<void(const ConnectionInfo&)>;
  using DisconnectCallback = std::function<void(const ConnectionInfo&, const std::string& reason)>;

  EventLoop() : EventLoop(EventLoopOptions{}) {}
  explicit EventLoop(EventLoopOptions options)
      : options_(options), core_(std::make_shared<Core>()), read_buffer_(std::max<size_t>(options.read_chunk, 1)) {}

  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  ~EventLoop() {
    stop();
    if (thread_.joinable()) thread_.join();
    handle_wakeup();
    std::vector<Connection*> open;
    for (auto& entry : connections_) open.push_back(entry.second.get());
    for (Connection* connection : open) close(*connection, "event loop destroyed");
    closed_.clear();
    listeners_.clear();
  }

  void on_connect(ConnectCallback callback) { on_connect_ = std::move(callback); }
  void on_disconnect(DisconnectCallback callback) { on_disconnect_ = std::move(callback); }

  // Binds and listens at once, on the calling thread (so errors throw here),
  // and returns the address actually bound: listen on port 0 and read the
  // port from the result. Each accepted connection gets a session from
  // `factory`; one that throws or returns null refuses that connection.
  // A tls:// address is refused: plain sessions there would serve clear text
  // where TLS was asked for. listen_tls() (transport/tls.hpp) serves it.
  Address listen(const Address& address, SessionFactory factory, int backlog = SOMAXCONN) {
    if (address.tls) {
      throw Error(codes::invalid_argument,
                  address.to_string() + " wants TLS: listen with listen_tls(), which wraps every session in it");
    }
    return listen_secured(address, std::move(factory), backlog);
  }

  // listen(), taking tls:// addresses too: for code whose factory makes
  // sessions that secure their own stream (listen_tls()), so that the
  // connections' addresses say tls://.
  Address listen_secured(const Address& address, SessionFactory factory, int backlog = SOMAXCONN) {
    auto listener = std::make_shared<Listener>(Listener{ListeningSocket::open(address, backlog), std::move(factory)});
    Address bound = listener->socket.address();
    post([this, listener] { listeners_.push_back(listener); });
    return bound;
  }

  Address listen(std::string_view address, SessionFactory factory, int backlog = SOMAXCONN) {
    return listen(parse_address(address), std::move(factory), backlog);
  }

  // Closes every listening socket; open connections carry on.
  void stop_listening() {
    post([this] { listeners_.clear(); });
  }

  // Adopts a connected socket (or any stream fd; it is made non-blocking) with
  // its session, e.g. a guest's connection. Returns the connection's id.
  std::uint64_t add_connection(UniqueFd fd, std::shared_ptr<Session> session, std::string peer = {}) {
    if (!fd || !session) throw Error(codes::invalid_argument, "add_connection needs an fd and a session");
    detail::set_nonblocking(fd.get());
    ConnectionInfo info;
    info.id = next_id_.fetch_add(1);
    info.peer = std::move(peer);
    if (info.peer.empty()) {
      try {
        info.peer = peer_address(fd.get()).to_string();
      } catch (const Error&) {
        info.peer = "fd:" + std::to_string(fd.get());
      }
    }
    auto owned = std::make_shared<UniqueFd>(std::move(fd));
    const std::uint64_t id = info.id;
    post([this, owned, session, info]() mutable { adopt(std::move(*owned), std::move(session), std::move(info)); });
    return id;
  }

  // Closes a connection as if it had ended (end(), then on_disconnect with
  // reason "closed locally"). Unknown or already closed ids are ignored.
  void close_connection(std::uint64_t id) {
    post([this, id] {
      auto found = connections_.find(id);
      if (found != connections_.end()) close(*found->second, "closed locally");
    });
  }

  // Runs `task` on the loop's thread, in order of posting. A task that throws
  // is dropped with its exception: it must not take every connection down.
  void post(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(core_->mutex);
      core_->tasks.push_back(std::move(task));
    }
    core_->wake();
  }

  // Runs the loop on the calling thread until stop(). A stop() that came
  // before run() makes it return at once.
  void run() {
    if (running_.exchange(true)) throw Error(codes::invalid_argument, "EventLoop is already running");
    loop_thread_.store(std::this_thread::get_id());
    try {
      while (!stop_requested_.load()) iterate();
    } catch (...) {
      finish_run();
      throw;
    }
    finish_run();
  }

  // Runs the loop on a thread of its own (joined by the destructor).
  void start() {
    if (thread_.joinable()) throw Error(codes::invalid_argument, "EventLoop was already started");
    thread_ = std::thread([this] { run(); });
  }

  void stop() {
    stop_requested_.store(true);
    core_->wake();
  }

  bool in_loop_thread() const { return loop_thread_.load() == std::this_thread::get_id(); }

  size_t connection_count() const { return connection_count_.load(); }

  std::vector<ConnectionSnapshot> connections() const {
    std::lock_guard<std::mutex> lock(registry_mutex_);
    std::vector<ConnectionSnapshot> result;
    result.reserve(registry_.size());
    for (const auto& entry : registry_) {
      const TransportStats& stats = *entry.second.stats;
      result.push_back({entry.second.info, stats.bytes_in(), stats.bytes_out(), stats.input_paused()});
    }
    return result;
  }

  // Live counters of an open connection (null for an id not open, or not yet
  // adopted). Whoever holds them can still read them after it closed.
  std::shared_ptr<const TransportStats> stats(std::uint64_t id) const {
    std::lock_guard<std::mutex> lock(registry_mutex_);
    auto found = registry_.find(id);
    return found == registry_.end() ? nullptr : found->second.stats;
  }

 private:
  // What other threads reach: held by shared_ptr so that an output listener
  // that fires after a connection (or the loop) is gone finds nothing to
  // touch but this.
  struct Core {
    detail::Wakeup wakeup;
    std::mutex mutex;
    std::vector<std::function<void()>> tasks;
    std::vector<std::uint64_t> output_ready;
    std::atomic<bool> wake_pending{false};

    // One eventfd write per loop iteration at most, however many outputs
    // become readable.
    void wake() {
      if (!wake_pending.exchange(true)) wakeup.signal();
    }

    void output_readable(std::uint64_t id) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        output_ready.push_back(id);
      }
      wake();
    }
  };

  struct Listener {
    ListeningSocket socket;
    SessionFactory factory;
  };

  using Clock = std::chrono::steady_clock;

  struct Connection {
    ConnectionInfo info;
    UniqueFd fd;
    detail::FdKind kind;
    std::shared_ptr<Session> session;
    std::shared_ptr<TransportStats> stats;
    // Shared with the threads that send this session's output themselves.
    std::shared_ptr<detail::SendGate> gate;
    bool paused = false;      // not reading: the session wants no input now
    bool want_write = false;  // output pending and the socket was full
    bool closed = false;
    std::string failure;      // set: sending what is left, then closing
    Clock::time_point linger_until;
  };

  struct RegistryEntry {
    ConnectionInfo info;
    std::shared_ptr<TransportStats> stats;
  };

  static constexpr int max_reads_per_wakeup = 16;  // fairness between busy connections
  static constexpr int max_accepts_per_wakeup = 64;
  static constexpr int accept_retry_ms = 1000;  // after running out of descriptors

  void finish_run() {
    stop_requested_.store(false);
    loop_thread_.store(std::thread::id());
    running_.store(false);
  }

  void iterate() {
    pollfds_.clear();
    polled_.clear();
    pollfds_.push_back({core_->wakeup.fd(), POLLIN, 0});
    const size_t listeners_begin = pollfds_.size();
    const size_t listener_count = accept_paused_ ? 0 : listeners_.size();
    for (size_t i = 0; i < listener_count; ++i) pollfds_.push_back({listeners_[i]->socket.fd(), POLLIN, 0});
    const size_t connections_begin = pollfds_.size();
    int timeout = accept_paused_ ? accept_retry_ms : -1;
    const Clock::time_point now = Clock::now();
    bool lingering = false;
    for (auto& entry : connections_) {
      Connection& connection = *entry.second;
      if (!connection.failure.empty()) {
        lingering = true;
        timeout = earlier(timeout, connection.linger_until - now);
      } else if (connection.paused) {
        // Asked on every pass, not only after sends: a session may change
        // its mind for reasons of its own (a request finished elsewhere).
        update_paused(connection);
      }
      short events = static_cast<short>((connection.paused ? 0 : POLLIN) | (connection.want_write ? POLLOUT : 0));
      pollfds_.push_back({connection.fd.get(), events, 0});
      polled_.push_back(&connection);
    }

    int ready = ::poll(pollfds_.data(), pollfds_.size(), timeout);
    if (ready < 0) {
      if (errno == EINTR) return;
      throw detail::errno_error("poll");
    }
    if (ready == 0) accept_paused_ = false;

    for (size_t i = 0; i < polled_.size(); ++i) {
      const short revents = pollfds_[connections_begin + i].revents;
      if (revents == 0) continue;
      Connection& connection = *polled_[i];
      if (connection.closed) continue;
      if (revents & POLLNVAL) {
        close(connection, "invalid descriptor");
        continue;
      }
      if ((revents & (POLLOUT | POLLERR)) && !flush(connection)) continue;
      if (revents & (POLLIN | POLLHUP | POLLERR)) {
        if (!connection.paused) {
          read_from(connection);
        } else if (revents & (POLLHUP | POLLERR)) {
          close(connection, connection.failure.empty() ? "hang up" : connection.failure);
        }
      }
    }
    // listeners_ changes only in tasks, which run last, so the indices of
    // the poll set still match here.
    for (size_t i = 0; i < listener_count; ++i) {
      if (pollfds_[listeners_begin + i].revents & POLLIN) accept_all(listeners_[i]);
    }
    if (pollfds_[0].revents & POLLIN) handle_wakeup();
    if (lingering) close_lingering();
    closed_.clear();
  }

  void handle_wakeup() {
    // Drain, then clear the flag, then take the queues: a wake() that lands
    // after the take either signals again or follows one that did.
    core_->wakeup.drain();
    core_->wake_pending.store(false);
    {
      std::lock_guard<std::mutex> lock(core_->mutex);
      tasks_.swap(core_->tasks);
      ready_.swap(core_->output_ready);
    }
    for (auto& task : tasks_) {
      try {
        task();
      } catch (...) {
      }
    }
    tasks_.clear();
    for (std::uint64_t id : ready_) {
      auto found = connections_.find(id);
      if (found == connections_.end()) continue;
      Connection& connection = *found->second;
      // A wake may carry no bytes at all: a session asking to be closed.
      if (!check_failed(connection)) continue;
      flush(connection);
    }
    ready_.clear();
  }

  // Milliseconds for poll() until `left` is over, or the earlier `timeout`.
  static int earlier(int timeout, Clock::duration left) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(left).count() + 1;
    int bounded = static_cast<int>(std::max<decltype(ms)>(0, std::min<decltype(ms)>(ms, 1 << 30)));
    return timeout < 0 ? bounded : std::min(timeout, bounded);
  }

  void close_lingering() {
    const Clock::time_point now = Clock::now();
    std::vector<Connection*> expired;
    for (auto& entry : connections_) {
      Connection& connection = *entry.second;
      if (!connection.failure.empty() && connection.linger_until <= now) expired.push_back(&connection);
    }
    for (Connection* connection : expired) close(*connection, connection->failure + " (output not all sent)");
  }

  void accept_all(const std::shared_ptr<Listener>& listener) {
    for (int i = 0; i < max_accepts_per_wakeup; ++i) {
      sockaddr_storage storage{};
      socklen_t length = sizeof storage;
      int fd = ::accept4(listener->socket.fd(), reinterpret_cast<sockaddr*>(&storage), &length,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        // Out of descriptors: the pending connection would keep the listener
        // readable and spin the loop, so stop accepting until one closes.
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) accept_paused_ = true;
        return;
      }
      UniqueFd owned(fd);
      ConnectionInfo info;
      info.id = next_id_.fetch_add(1);
      info.local = listener->socket.address().to_string();
      try {
        info.peer = address_of(reinterpret_cast<sockaddr*>(&storage), length).to_string();
      } catch (const Error&) {
        info.peer = "unknown";
      }
      if (listener->socket.address().is_tcp()) detail::set_no_delay(fd);
      std::shared_ptr<Session> session;
      try {
        session = listener->factory(info);
      } catch (...) {
      }
      if (session) adopt(std::move(owned), std::move(session), std::move(info));
    }
  }

  void adopt(UniqueFd fd, std::shared_ptr<Session> session, ConnectionInfo info) {
    auto owned = std::make_unique<Connection>();
    Connection& connection = *owned;
    connection.info = std::move(info);
    connection.kind = detail::FdKind::of(fd.get());
    connection.fd = std::move(fd);
    connection.session = std::move(session);
    connection.stats = std::make_shared<TransportStats>();
    connection.gate = std::make_shared<detail::SendGate>(connection.fd.get(), connection.kind, *connection.stats);
    const std::uint64_t id = connection.info.id;
    {
      std::lock_guard<std::mutex> lock(registry_mutex_);
      registry_[id] = RegistryEntry{connection.info, connection.stats};
    }
    connection_count_.fetch_add(1);
    std::weak_ptr<Core> core = core_;
    OutputBuffer& output = connection.session->output();
    output.on_readable([core, id] {
      if (auto alive = core.lock()) alive->output_readable(id);
    });
    detail::attach_direct_sends(connection.gate, output);
    connections_.emplace(id, std::move(owned));
    if (on_connect_) {
      try {
        on_connect_(connection.info);
      } catch (...) {
      }
    }
    // Output written before the listener was registered raised no signal.
    flush(connection);
  }

  void read_from(Connection& connection) {
    for (int round = 0; round < max_reads_per_wakeup; ++round) {
      if (!update_paused(connection)) return;
      ssize_t got = detail::read_some(connection.fd.get(), read_buffer_.data(), read_buffer_.size());
      if (got > 0) {
        connection.stats->add_in(static_cast<std::uint64_t>(got));
        try {
          connection.session->receive(read_buffer_.data(), static_cast<size_t>(got));
        } catch (const std::exception& error) {
          close(connection, std::string("session threw: ") + error.what());
          return;
        } catch (...) {
          close(connection, "session threw");
          return;
        }
        if (!check_failed(connection) || !flush(connection)) return;
        if (static_cast<size_t>(got) < read_buffer_.size()) return;  // likely drained; poll tells if not
        continue;
      }
      if (got == 0) {
        flush(connection);  // best effort: the peer may only have shut down its sending side
        if (!connection.closed) close(connection, "closed by peer");
        return;
      }
      if (detail::would_block(errno)) return;
      close(connection, std::string("read error: ") + std::strerror(errno));
      return;
    }
  }

  // Sends what the socket takes now; false if that closed the connection.
  bool flush(Connection& connection) {
    auto result = connection.gate->send(connection.session->output());
    if (result == detail::SendGate::Result::failed) {
      close(connection, std::string("write error: ") + std::strerror(connection.gate->error()));
      return false;
    }
    connection.want_write = result == detail::SendGate::Result::would_block;
    if (!connection.failure.empty()) {
      if (connection.want_write) return true;
      close(connection, connection.failure);  // all sent
      return false;
    }
    if (connection.paused) update_paused(connection);
    return true;
  }

  // False once the session has failed: then no more input is read, what it
  // has to send goes out, and the connection closes.
  bool check_failed(Connection& connection) {
    if (!connection.failure.empty()) return false;
    std::string failure = connection.session->failed();
    if (failure.empty()) return true;
    connection.failure = "session failed: " + failure;
    connection.linger_until = Clock::now() + options_.linger;
    connection.paused = true;
    flush(connection);
    return false;
  }

  // Asks the session whether it wants input; true if reading goes on.
  bool update_paused(Connection& connection) {
    bool paused = !connection.failure.empty() || !connection.session->wants_input();
    connection.paused = paused;
    connection.stats->set_input_paused(paused);
    return !paused;
  }

  // The one way a connection ends, so end() runs exactly once. The object
  // lives on in closed_ until the iteration is over: the poll set still
  // points at it.
  void close(Connection& connection, const std::string& reason) {
    if (connection.closed) return;
    connection.closed = true;
    connection.session->output().on_readable(nullptr);
    detail::detach_direct_sends(*connection.gate, connection.session->output());
    connection.fd.reset();
    const std::uint64_t id = connection.info.id;
    {
      std::lock_guard<std::mutex> lock(registry_mutex_);
      registry_.erase(id);
    }
    connection_count_.fetch_sub(1);
    auto found = connections_.find(id);
    closed_.push_back(std::move(found->second));
    connections_.erase(found);
    accept_paused_ = false;  // a descriptor was freed
    try {
      connection.session->end();
    } catch (...) {
    }
    if (on_disconnect_) {
      try {
        on_disconnect_(connection.info, reason);
      } catch (...) {
      }
    }
  }

  EventLoopOptions options_;
  std::shared_ptr<Core> core_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<std::thread::id> loop_thread_{};
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<size_t> connection_count_{0};

  ConnectCallback on_connect_;
  DisconnectCallback on_disconnect_;

  mutable std::mutex registry_mutex_;
  std::unordered_map<std::uint64_t, RegistryEntry> registry_;

  // Touched only by the loop's thread.
  std::vector<char> read_buffer_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<std::unique_ptr<Connection>> closed_;
  std::vector<pollfd> pollfds_;
  std::vector<Connection*> polled_;
  std::vector<std::function<void()>> tasks_;
  std::vector<std::uint64_t> ready_;
  bool accept_paused_ = false;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/event_loop.hpp ----
// ---- begin src/many_level/transport/fd_transport.hpp ----
// Blocking pumps between file descriptors and a Session, one stream each:
// serve_fd() for a host on stdin/stdout or a pipe pair (`--stdio`), and
// FdConnection for a guest that owns one connected socket and a pump thread.

MANY_LEVEL_NAMESPACE_BEGIN

struct ServeFdOptions {
  // Counters to fill (optional; must outlive the call).
  TransportStats* stats = nullptr;
  size_t read_chunk = 64 * 1024;
  // How long a failed session's pending output may take to go out.
  std::chrono::milliseconds linger{5000};
};

namespace detail {

// What other threads reach: a stop request and the wakeup that delivers it
// (and the news that output is waiting). Shared, because the output listener
// may fire after the pump returned.
struct FdPumpControl {
  Wakeup wakeup;
  std::atomic<bool> stop{false};

  void request_stop() {
    stop.store(true);
    wakeup.signal();
  }
};

// Pumps until input ends, an I/O error, the session fails, or a stop request;
// returns why. Polls the input (while the session wants input), the output
// (only while bytes wait) and the wakeup, so output written by another
// thread is sent even while no input comes, and failed() is asked on every
// pass, so a wake with nothing to send is enough to close. When the output
// descriptor never blocks (a socket, or non-blocking), other threads'
// SendMode::now writes are sent on their own thread through a SendGate
// shared with the pump (send_gate.hpp). Never changes the descriptors'
// flags (stdin and stdout are shared with other processes); see
// write_some() for how writes stay non-blocking. Neither closes the
// descriptors nor calls end(): the callers do.
inline std::string pump_fd(int read_fd, int write_fd, Session& session,
                           const std::shared_ptr<FdPumpControl>& shared_control, TransportStats& stats,
                           size_t read_chunk, std::chrono::milliseconds linger) {
  using Clock = std::chrono::steady_clock;
  FdPumpControl& control = *shared_control;
  OutputBuffer& output = session.output();
  std::weak_ptr<FdPumpControl> weak = shared_control;
  output.on_readable([weak] {
    if (auto alive = weak.lock()) alive->wakeup.signal();
  });
  const FdKind out_kind = FdKind::of(write_fd);
  // A blocking pipe takes only PIPE_BUF safely after each poll().
  const bool one_write_per_poll = !out_kind.socket && !out_kind.nonblocking;
  auto gate = std::make_shared<SendGate>(write_fd, out_kind, stats);
  attach_direct_sends(gate, output);
  std::vector<char> buffer(std::max<size_t>(read_chunk, 1));

  // Sends what the descriptor takes now; false on a write error (errno set).
  auto send_pending = [&]() -> bool {
    if (gate->send(output, one_write_per_poll) != SendGate::Result::failed) return true;
    errno = gate->error();
    return false;
  };

  // Sends everything pending, stopping early on a write error, a stop
  // request or the deadline (if any); true if all went out.
  auto drain = [&](const Clock::time_point* deadline) -> bool {
    while (output.size() > 0) {
      if (control.stop.load()) return false;
      int timeout = -1;
      if (deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
        if (left <= 0) return false;
        timeout = static_cast<int>(std::min<decltype(left)>(left + 1, 1 << 30));
      }
      pollfd fds[2] = {{control.wakeup.fd(), POLLIN, 0}, {write_fd, POLLOUT, 0}};
      if (::poll(fds, 2, timeout) < 0 && errno != EINTR) return false;
      if (fds[0].revents) control.wakeup.drain();
      if (fds[1].revents && !send_pending()) return false;
    }
    return true;
  };

  std::string reason;
  for (;;) {
    if (control.stop.load()) {
      reason = "closed locally";
      break;
    }
    std::string failure = session.failed();
    if (!failure.empty()) {
      reason = "session failed: " + failure;
      const Clock::time_point deadline = Clock::now() + linger;
      if (!drain(&deadline)) reason += " (output not all sent)";
      break;
    }
    const bool want_write = output.size() > 0;
    const bool reading = session.wants_input();
    stats.set_input_paused(!reading);
    pollfd fds[3];
    nfds_t count = 0;
    fds[count++] = {control.wakeup.fd(), POLLIN, 0};
    int in_index = -1;
    int out_index = -1;
    if (reading) {
      in_index = static_cast<int>(count);
      fds[count++] = {read_fd, POLLIN, 0};
    }
    if (want_write) {
      out_index = static_cast<int>(count);
      fds[count++] = {write_fd, POLLOUT, 0};
    }
    if (::poll(fds, count, -1) < 0) {
      if (errno == EINTR) continue;
      reason = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (fds[0].revents) control.wakeup.drain();
    if (out_index >= 0 && fds[out_index].revents && !send_pending()) {
      reason = std::string("write error: ") + std::strerror(errno);
      break;
    }
    if (in_index < 0 || !fds[in_index].revents) continue;
    ssize_t got = read_some(read_fd, buffer.data(), buffer.size());
    if (got > 0) {
      stats.add_in(static_cast<std::uint64_t>(got));
      try {
        session.receive(buffer.data(), static_cast<size_t>(got));
      } catch (const std::exception& error) {
        reason = std::string("session threw: ") + error.what();
        break;
      }
      continue;  // the next pass asks failed() and sends the replies
    }
    if (got < 0 && (errno == EINTR || would_block(errno))) continue;
    if (got < 0) {
      reason = std::string("read error: ") + std::strerror(errno);
      break;
    }
    // Input ended. What the session has already produced still goes out (a
    // peer may have shut down only its sending side), unless stopped.
    reason = "input ended";
    drain(nullptr);
    break;
  }
  output.on_readable(nullptr);
  detach_direct_sends(*gate, output);
  stats.set_input_paused(false);
  return reason;
}

}  // namespace detail

// Pumps one stream on the calling thread until its input ends (or a read or
// write error, or the session fails); then calls session.end() and returns
// why it stopped. Output pending when input ends is written first (waiting
// as long as that takes); a failed session's, for at most options.linger.
// Output that other threads write meanwhile is sent at once. Reading pauses
// while session.wants_input() is false. The descriptors stay open (the
// caller owns them); read_fd may equal write_fd (a socket). Writes never
// raise SIGPIPE.
inline std::string serve_fd(int read_fd, int write_fd, Session& session, const ServeFdOptions& options = {}) {
  auto control = std::make_shared<detail::FdPumpControl>();
  TransportStats local_stats;
  TransportStats& stats = options.stats ? *options.stats : local_stats;
  std::string reason =
      detail::pump_fd(read_fd, write_fd, session, control, stats, options.read_chunk, options.linger);
  session.end();
  return reason;
}

// A guest's connection: owns a connected socket and a thread that pumps it
// to and from `session`, which must outlive this object.
//
// Threads: the pump thread calls the session (receive, end, failed) and the
// close callback. close() is thread-safe; from any other thread it returns
// after the socket is closed, session.end() was called and the callback ran.
// Called on the pump thread (from the session or the callback), it returns
// at once and the pump ends right after. Destroying the object closes it.
//
// As serve_fd: reading pauses while session.wants_input() is false, and a
// failed session's pending output goes out (for at most 5 s) before closing.
class FdConnection {
 public:
  using CloseCallback = std::function<void(const std::string& reason)>;

  FdConnection() = default;

  FdConnection(UniqueFd fd, Session& session, CloseCallback on_close = nullptr) {
    if (!fd) throw Error(codes::invalid_argument, "FdConnection needs an open descriptor");
    state_ = std::make_shared<State>();
    state_->session = &session;
    state_->on_close = std::move(on_close);
    try {
      state_->peer = peer_address(fd.get()).to_string();
    } catch (const Error&) {
      state_->peer = "fd:" + std::to_string(fd.get());
    }
    state_->fd = std::move(fd);
    thread_ = std::thread([state = state_] { pump(*state); });
  }

  FdConnection(FdConnection&&) noexcept = default;
  FdConnection& operator=(FdConnection&& other) noexcept {
    if (this != &other) {
      close();
      state_ = std::move(other.state_);
      thread_ = std::move(other.thread_);
    }
    return *this;
  }
  FdConnection(const FdConnection&) = delete;
  FdConnection& operator=(const FdConnection&) = delete;

  ~FdConnection() { close(); }

  // Drops the connection on purpose (the close reason is "closed locally").
  void close() {
    if (!state_) return;
    state_->control->request_stop();
    if (!thread_.joinable()) return;
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // the pump holds its own reference to the state
    } else {
      thread_.join();
    }
  }

  bool is_open() const { return state_ && state_->open.load(); }

  // "tcp://127.0.0.1:8000", "unix:/run/db.sock", or "fd:N"; empty when
  // default-constructed.
  const std::string& peer() const {
    static const std::string none;
    return state_ ? state_->peer : none;
  }

  const TransportStats& stats() const {
    static const TransportStats none;
    return state_ ? state_->stats : none;
  }

 private:
  struct State {
    std::shared_ptr<detail::FdPumpControl> control = std::make_shared<detail::FdPumpControl>();
    UniqueFd fd;
    Session* session = nullptr;
    CloseCallback on_close;
    TransportStats stats;
    std::atomic<bool> open{true};
    std::string peer;
  };

  static void pump(State& state) {
    std::string reason = detail::pump_fd(state.fd.get(), state.fd.get(), *state.session, state.control,
                                         state.stats, 64 * 1024, std::chrono::seconds(5));
    // The socket first, so the peer sees the end before anything below runs.
    state.fd.reset();
    state.open.store(false);
    try {
      state.session->end();
    } catch (...) {
    }
    if (state.on_close) {
      try {
        state.on_close(reason);
      } catch (...) {
      }
    }
  }

  std::shared_ptr<State> state_;
  std::thread thread_;
};

// Connects (see connect_to) and starts pumping.
inline FdConnection connect_fd(const Address& address, Session& session,
                               FdConnection::CloseCallback on_close = nullptr,
                               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return FdConnection(connect_to(address, timeout), session, std::move(on_close));
}

inline FdConnection connect_fd(std::string_view address, Session& session,
                               FdConnection::CloseCallback on_close = nullptr,
                               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return connect_fd(parse_address(address), session, std::move(on_close), timeout);
}

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/fd_transport.hpp ----
// ---- begin src/many_level/transport/iostream_transport.hpp ----
// Pumps a Session over standard streams: the mission's "any iostream-like
// stream". A blocking istream read cannot be woken, so input is read on the
// caller's thread and output is written by a thread of the pump's own.

#include <istream>
#include <ostream>

MANY_LEVEL_NAMESPACE_BEGIN

namespace detail {

// Shared with the output listener, which may fire after the pump returned.
struct IostreamPumpState {
  std::mutex mutex;
  std::condition_variable changed;
  bool readable = true;  // check once at the start: output may already wait
  bool input_done = false;
  bool write_failed = false;
  std::string session_failure;  // seen by the writer on a wake
  // Bumped on every wake and every batch written: the reader, waiting for
  // the session to want input again, asks it after each bump. (Never asked
  // under this mutex: a session's wants_input() may take its own lock, and
  // sessions write output, which takes this one, while holding theirs.)
  std::uint64_t generation = 0;
};

}  // namespace detail

// Pumps until `in` ends (EOF or a read error), the session fails, or `out`
// fails; then writes the output still pending, calls session.end() and
// returns why it stopped. Reading pauses while session.wants_input() is false.
//
// Threads: the caller's thread reads `in` and calls session.receive() and
// end(); a writer thread waits for the output listener and writes to `out`
// (flushed after each batch), so a peer that needs our replies before it
// sends more never deadlocks against us. Input is read as one byte (the only
// read that waits) followed by whatever the stream has buffered (readsome),
// so a chunk never waits for bytes that are not coming yet. Reading pauses
// while the session's output is at its high-water mark.
//
// A blocking read cannot be interrupted: when `out` fails, or the session
// fails on a wake of its output (rather than in receive()), its pending
// output is written at once but the pump returns only when the next input
// arrives or `in` ends. With std::cin, call
// std::ios::sync_with_stdio(false) first, or readsome() sees nothing buffered
// and input goes one byte per receive().
inline std::string pump_iostream(std::istream& in, std::ostream& out, Session& session,
                                 TransportStats* stats = nullptr) {
  TransportStats local_stats;
  TransportStats& counters = stats ? *stats : local_stats;
  OutputBuffer& output = session.output();
  auto state = std::make_shared<detail::IostreamPumpState>();
  std::weak_ptr<detail::IostreamPumpState> weak = state;
  output.on_readable([weak] {
    if (auto alive = weak.lock()) {
      {
        std::lock_guard<std::mutex> lock(alive->mutex);
        alive->readable = true;
        ++alive->generation;
      }
      alive->changed.notify_all();
    }
  });

  std::thread writer([&] {
    for (;;) {
      bool finishing;
      {
        std::unique_lock<std::mutex> lock(state->mutex);
        state->changed.wait(lock, [&] { return state->readable || state->input_done; });
        state->readable = false;
        finishing = state->input_done;
      }
      // A wake may be the session asking to be closed: its output still goes.
      std::string failure = session.failed();
      bool ok = true;
      try {
        // Until empty: bytes appended while we write raise no new signal.
        for (std::string_view pending = output.peek(); !pending.empty(); pending = output.peek()) {
          out.write(pending.data(), static_cast<std::streamsize>(pending.size()));
          if (!out) {
            ok = false;
            break;
          }
          counters.add_out(pending.size());
          output.consume(pending.size());
        }
        if (ok && !out.flush()) ok = false;
      } catch (...) {
        ok = false;  // an ostream with exceptions() set
      }
      {
        std::lock_guard<std::mutex> lock(state->mutex);
        if (!ok) state->write_failed = true;
        if (!failure.empty()) state->session_failure = failure;
        ++state->generation;
      }
      state->changed.notify_all();  // a reader may wait for room
      if (!ok || finishing || !failure.empty()) return;
    }
  });

  std::string reason = "input ended";
  auto stopped_by_writer = [&] {
    std::lock_guard<std::mutex> lock(state->mutex);
    if (state->write_failed) {
      reason = "write error";
    } else if (!state->session_failure.empty()) {
      reason = "session failed: " + state->session_failure;
    } else {
      return false;
    }
    return true;
  };
  std::vector<char> buffer(64 * 1024);
  try {
    for (;;) {
      if (stopped_by_writer()) break;
      std::uint64_t seen;
      {
        std::lock_guard<std::mutex> lock(state->mutex);
        seen = state->generation;
      }
      if (!session.wants_input()) {
        std::unique_lock<std::mutex> lock(state->mutex);
        state->changed.wait(lock, [&] { return state->generation != seen || state->write_failed; });
        continue;
      }
      in.read(buffer.data(), 1);
      if (in.gcount() == 0) break;
      std::streamsize more = in.readsome(buffer.data() + 1, static_cast<std::streamsize>(buffer.size() - 1));
      const size_t size = 1 + static_cast<size_t>(std::max<std::streamsize>(more, 0));
      counters.add_in(size);
      session.receive(buffer.data(), size);
      std::string failure = session.failed();
      if (!failure.empty()) {
        reason = "session failed: " + failure;
        break;
      }
    }
  } catch (const std::exception& error) {
    reason = std::string("error: ") + error.what();
  }
  {
    std::lock_guard<std::mutex> lock(state->mutex);
    state->input_done = true;
  }
  state->changed.notify_all();
  writer.join();
  if (reason == "input ended") stopped_by_writer();
  output.on_readable(nullptr);
  session.end();
  return reason;
}

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/iostream_transport.hpp ----
// ---- begin src/many_level/transport/memory_pair.hpp ----
// Two Sessions wired together in one process, with no sockets: a guest and a
// host for tests. Bytes move on a pump thread of the pair's own, never inside
// the other session's call (which would deadlock on the sessions' locks), and
// can be cut into random small pieces to exercise framing.

#include <random>

MANY_LEVEL_NAMESPACE_BEGIN

struct MemoryPairOptions {
  // 0 delivers what is waiting in one receive(); n delivers it in pieces of
  // 1..n bytes, sized by a generator seeded with `seed` (reproducible).
  size_t max_chunk = 0;
  std::uint32_t seed = 1;
};

// Threads: every receive() and end() runs on the pump thread. Sessions may
// write their output from any thread. close() and cut() are thread-safe;
// from any other thread they return after both sessions' end() ran, on the
// pump thread they return at once. Both sessions must outlive the pair.
//
// As over a socket to an EventLoop, a side receives only while its
// wants_input() says so, and failed() is asked after every receive() and
// every wake: a failed side's pending output is delivered, then both end.
class MemoryPair {
 public:
  MemoryPair(Session& guest, Session& host) : MemoryPair(guest, host, MemoryPairOptions{}) {}

  MemoryPair(Session& guest, Session& host, MemoryPairOptions options)
      : state_(std::make_shared<State>()), guest_(guest), host_(host), options_(options) {
    std::weak_ptr<State> weak = state_;
    auto signal = [weak] {
      if (auto alive = weak.lock()) alive->notify([&] { alive->signalled = true; });
    };
    guest_.output().on_readable(signal);
    host_.output().on_readable(signal);
    thread_ = std::thread([this] { pump(); });
  }

  MemoryPair(const MemoryPair&) = delete;
  MemoryPair& operator=(const MemoryPair&) = delete;

  ~MemoryPair() {
    cut();
    if (thread_.joinable()) thread_.join();
  }

  // A clean close: what both outputs hold now is delivered, then both
  // sessions end. Replies to those last bytes are not.
  void close() { stop(Stop::close); }

  // A dropped connection: nothing more is delivered; both sessions end.
  void cut() { stop(Stop::cut); }

  bool is_open() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return !state_->ended;
  }

  // Why the pair ended ("closed", "cut", "guest failed: ..."); empty while open.
  std::string end_reason() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->reason;
  }

  // bytes_out: taken from that side's output; bytes_in: delivered to it.
  const TransportStats& guest_stats() const { return guest_stats_; }
  const TransportStats& host_stats() const { return host_stats_; }

 private:
  enum class Stop { none, close, cut };

  struct State {
    mutable std::mutex mutex;
    std::condition_variable changed;
    bool signalled = true;  // look once at the start: output may already wait
    Stop stop = Stop::none;
    bool ended = false;
    std::string reason;

    template <typename Change>
    void notify(Change&& change) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        change();
      }
      changed.notify_all();
    }
  };

  // Bytes taken from one output and not yet all delivered.
  struct Pending {
    std::string bytes;
    size_t offset = 0;
    bool empty() const { return offset == bytes.size(); }
  };

  void stop(Stop how) {
    state_->notify([&] {
      if (state_->stop == Stop::none || how == Stop::cut) state_->stop = how;
    });
    if (std::this_thread::get_id() == thread_.get_id()) return;
    std::unique_lock<std::mutex> lock(state_->mutex);
    state_->changed.wait(lock, [&] { return state_->ended; });
  }

  Stop requested() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->stop;
  }

  // Feeds `pending` to `to`; false once `to` failed (or threw: then
  // `failure` says so). With `when_wanted`, stops early while `to` does not
  // want input.
  bool deliver(Session& to, const char* name, Pending& pending, TransportStats& stats, bool when_wanted,
               std::string& failure) {
    while (!pending.empty()) {
      if (when_wanted && !to.wants_input()) return true;
      size_t size = pending.bytes.size() - pending.offset;
      if (options_.max_chunk > 0) {
        std::uniform_int_distribution<size_t> pick(1, options_.max_chunk);
        size = std::min(size, pick(random_));
      }
      try {
        to.receive(pending.bytes.data() + pending.offset, size);
      } catch (const std::exception& error) {
        failure = std::string(name) + " threw: " + error.what();
        return false;
      }
      pending.offset += size;
      stats.add_in(size);
      if (!to.failed().empty()) return false;
    }
    return true;
  }

  // Appends what `from`'s output holds to `pending`; true if anything.
  static bool take_all(Session& from, Pending& pending, TransportStats& stats) {
    std::string more;
    const size_t taken = from.output().take(more);
    stats.add_out(taken);
    if (pending.empty()) {
      pending.bytes.swap(more);
      pending.offset = 0;
    } else {
      pending.bytes += more;
    }
    return taken > 0;
  }

  // Why the pair must end because a side failed, or empty. A failed side's
  // pending output still reaches the other side first.
  std::string failures() {
    std::string ignored;
    std::string failure = guest_.failed();
    if (!failure.empty()) {
      take_all(guest_, to_host_, guest_stats_);
      deliver(host_, "host", to_host_, host_stats_, false, ignored);
      return "guest failed: " + failure;
    }
    failure = host_.failed();
    if (!failure.empty()) {
      take_all(host_, to_guest_, host_stats_);
      deliver(guest_, "guest", to_guest_, guest_stats_, false, ignored);
      return "host failed: " + failure;
    }
    return {};
  }

  // One pass in each direction; true if any byte moved. Sets `reason` when
  // the pair must end. failed() is asked on every pass: a session may ask
  // to be closed with a wake that carries no bytes.
  bool move_once(std::string& reason) {
    reason = failures();
    if (!reason.empty()) return false;
    bool moved = false;
    std::string failure;
    // Nothing is taken from one side while the other wants no input.
    if (to_host_.empty() && host_.wants_input()) moved |= take_all(guest_, to_host_, guest_stats_);
    size_t before = to_host_.offset;
    bool ok = deliver(host_, "host", to_host_, host_stats_, true, failure);
    moved |= to_host_.offset != before;
    if (ok) {
      if (to_guest_.empty() && guest_.wants_input()) moved |= take_all(host_, to_guest_, host_stats_);
      before = to_guest_.offset;
      ok = deliver(guest_, "guest", to_guest_, guest_stats_, true, failure);
      moved |= to_guest_.offset != before;
    }
    if (!ok) {
      reason = failures();
      if (reason.empty()) reason = failure;
    }
    return moved;
  }

  // close(): both outputs as they are now, delivered whether wanted or not.
  std::string deliver_last() {
    take_all(guest_, to_host_, guest_stats_);
    take_all(host_, to_guest_, host_stats_);
    std::string failure;
    if (!deliver(host_, "host", to_host_, host_stats_, false, failure) ||
        !deliver(guest_, "guest", to_guest_, guest_stats_, false, failure)) {
      std::string reason = failures();
      return reason.empty() ? failure : reason;
    }
    return "closed";
  }

  void pump() {
    std::string reason;
    while (reason.empty()) {
      {
        std::unique_lock<std::mutex> lock(state_->mutex);
        state_->changed.wait(lock, [&] { return state_->signalled || state_->stop != Stop::none; });
        state_->signalled = false;
      }
      // Until nothing moves (a ping-pong pair keeps this busy, as it would a
      // socket), looking for close() and cut() between passes.
      for (;;) {
        const Stop stop = requested();
        if (stop != Stop::none) {
          reason = stop == Stop::cut ? "cut" : deliver_last();
          break;
        }
        const bool moved = move_once(reason);
        if (!reason.empty() || !moved) break;
      }
    }
    guest_.output().on_readable(nullptr);
    host_.output().on_readable(nullptr);
    try {
      guest_.end();
    } catch (...) {
    }
    try {
      host_.end();
    } catch (...) {
    }
    state_->notify([&] {
      state_->ended = true;
      state_->reason = reason;
    });
  }

  std::shared_ptr<State> state_;
  Session& guest_;
  Session& host_;
  MemoryPairOptions options_;
  std::mt19937 random_{options_.seed};
  TransportStats guest_stats_;
  TransportStats host_stats_;
  Pending to_host_;
  Pending to_guest_;
  std::thread thread_;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/memory_pair.hpp ----
// ---- begin src/many_level/host/host.hpp ----
// A host exposes any Database to guests: one HostSession per stream, all of
// them sharing one worker pool. The counterpart of many-level's ManyLevelHost.

// ---- begin src/many_level/host/host_context.hpp ----
// What the sessions of one host share: when the host started, how many
// connections it accepted, and which are open, so that any session can
// answer a HostStatsRequest with the whole host's statistics; and the views
// of the database that guests confined to a sublevel see. Sessions hold
// it by shared_ptr rather than a reference to the Host: a statistics job
// still running on a worker while the Host is destroyed finds it alive.

MANY_LEVEL_NAMESPACE_BEGIN

// Who a connection is: its number on this host, its peer, when it began.
struct HostConnectionIdentity {
  uint64_t id = 0;
  std::string address;  // as the transport names the peer; "" when unknown
  uint64_t since_ms = 0;  // ms since the Unix epoch
};

// What the context asks of each open connection (a HostSession).
class HostConnection {
 public:
  // Its statistics, or nullopt once its stream has ended.
  virtual std::optional<HostConnectionStats> connection_stats() const = 0;

 protected:
  ~HostConnection() = default;
};

class HostContext {
 public:
  // `db` must outlive every session that holds the context (Host ends its
  // sessions before it goes).
  explicit HostContext(Database& db) : db_(db), started_(std::chrono::steady_clock::now()) {}

  HostContext(const HostContext&) = delete;
  HostContext& operator=(const HostContext&) = delete;

  // Counts a new connection and names it.
  HostConnectionIdentity accept(std::string address) {
    HostConnectionIdentity identity;
    identity.id = ++connections_total_;
    identity.address = std::move(address);
    identity.since_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  std::chrono::system_clock::now().time_since_epoch())
                                                  .count());
    return identity;
  }

  // Lists a connection while it is alive.
  void add(std::weak_ptr<HostConnection> connection) {
    std::lock_guard<std::mutex> lock(mutex_);
    connections_.erase(std::remove_if(connections_.begin(), connections_.end(),
                                      [](const std::weak_ptr<HostConnection>& c) { return c.expired(); }),
                       connections_.end());
    connections_.push_back(std::move(connection));
  }

  // The connections still alive, as the type they were added as.
  template <class T>
  std::vector<std::shared_ptr<T>> connections() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::shared_ptr<T>> alive;
    for (const auto& weak : connections_) {
      if (auto connection = weak.lock()) alive.push_back(std::static_pointer_cast<T>(connection));
    }
    return alive;
  }

  // The host's statistics now. Asks each connection for its own (taking its
  // lock), so it must not be called with a session's lock held.
  HostStats stats() const {
    HostStats stats;
    stats.uptime_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::steady_clock::now() - started_)
                                                .count());
    stats.connections_total = connections_total_.load();
    for (const auto& connection : connections<const HostConnection>()) {
      if (auto connection_stats = connection->connection_stats()) stats.connections.push_back(std::move(*connection_stats));
    }
    std::sort(stats.connections.begin(), stats.connections.end(),
              [](const HostConnectionStats& a, const HostConnectionStats& b) { return a.id < b.id; });
    try {
      StorageInfo storage = db_.storage_info();
      stats.database_kind = std::move(storage.kind);
      stats.database_path = std::move(storage.path);
      stats.database_bytes = storage.bytes;
      if (auto source = db_.change_source()) stats.seq = source->feed->last_seq();
    } catch (const std::exception&) {
      // A store that cannot say (closed, say) leaves these empty: the rest still helps.
    }
    stats.version = MANY_LEVEL_VERSION_STRING;
    return stats;
  }

  Database& database() const { return db_; }

  // What a guest confined to sublevel `name` sees as its whole database: one
  // view per name, made at first use and kept while the host lives (there
  // are as many as the token file names). Throws LEVEL_INVALID_PREFIX.
  Database& confined(const std::string& name) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& view = confined_[name];
    if (!view) view = std::make_unique<Sublevel>(db_, name);
    return *view;
  }

 private:
  Database& db_;
  std::map<std::string, std::unique_ptr<Sublevel>> confined_;
  const std::chrono::steady_clock::time_point started_;
  std::atomic<uint64_t> connections_total_{0};
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<HostConnection>> connections_;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/host/host_context.hpp ----
// ---- begin src/many_level/host/host_options.hpp ----
// What a host lets its guests do, and the limits that keep one guest from
// hurting the host or the others. The reference host has readonly and the
// three hooks; the limits are ours.

// ---- begin src/many_level/host/access.hpp ----
// Who may use a host, and how much of it: tokens and grants (docs/SECURITY.md).
//
// A guest presents a token in its Hello (the extension's first frame). The
// host keeps only SHA-256 hashes of tokens, each with a grant: read-write or
// read-only, and optionally a sublevel name the guest is confined to (it sees
// that subtree as its whole database, as a sublevel does). A guest that says
// no Hello (a Node many-level guest) or no token gets the listener's
// anonymous grant, if it has one; else it is refused, and so is a wrong token.
//
// The token file (`many-level serve --auth FILE`), one grant per line:
//
//   # SHA-256 of the token (hex)                                    grant      confined to
//   9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 read-write
//   60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752 read-only  reports
//
// `many-level token create` makes a token and prints its line.

#include <fstream>
#include <sstream>

// ---- begin src/many_level/host/sha256.hpp ----
// SHA-256 (FIPS 180-4), for the host's token file: tokens are stored as their
// hashes, never in plain. Here rather than from OpenSSL so that tokens work in
// a build without it (a unix socket needs no TLS to want authentication).

#include <array>

MANY_LEVEL_NAMESPACE_BEGIN
namespace detail {

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  static Digest digest(std::string_view data) {
    Sha256 hash;
    hash.update(data);
    return hash.finish();
  }

  static std::string hex(std::string_view data) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (uint8_t byte : digest(data)) {
      out += digits[byte >> 4];
      out += digits[byte & 15];
    }
    return out;
  }

  void update(std::string_view data) {
    for (unsigned char c : data) {
      block_[block_size_++] = c;
      if (block_size_ == 64) {
        compress();
        block_size_ = 0;
      }
    }
    length_ += data.size();
  }

  Digest finish() {
    const uint64_t bits = length_ * 8;
    block_[block_size_++] = 0x80;
    if (block_size_ > 56) {
      while (block_size_ < 64) block_[block_size_++] = 0;
      compress();
      block_size_ = 0;
    }
    while (block_size_ < 56) block_[block_size_++] = 0;
    for (int i = 7; i >= 0; --i) block_[block_size_++] = static_cast<uint8_t>(bits >> (i * 8));
    compress();
    Digest out{};
    for (int i = 0; i < 8; ++i) {
      for (int j = 0; j < 4; ++j) out[i * 4 + j] = static_cast<uint8_t>(state_[i] >> (24 - j * 8));
    }
    return out;
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void compress() {
    static constexpr uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = (uint32_t{block_[i * 4]} << 24) | (uint32_t{block_[i * 4 + 1]} << 16) |
             (uint32_t{block_[i * 4 + 2]} << 8) | uint32_t{block_[i * 4 + 3]};
    }
    for (int i = 16; i < 64; ++i) {
      uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
    uint32_t e = state_[4], f = state_[5], g = state_[6], h = state_[7];
    for (int i = 0; i < 64; ++i) {
      uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state_[0] += a;
    state_[1] += b;
    state_[2] += c;
    state_[3] += d;
    state_[4] += e;
    state_[5] += f;
    state_[6] += g;
    state_[7] += h;
  }

  uint32_t state_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t block_[64] = {};
  size_t block_size_ = 0;
  uint64_t length_ = 0;
};

}  // namespace detail
MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/host/sha256.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

// What one guest may do.
struct Grant {
  bool read_only = false;
  // The sublevel name the guest is confined to; empty: the whole database.
  std::string prefix;

  static Grant read_write_all() { return {}; }
  static Grant read_only_all() { return {true, {}}; }

  // "read-only" or "read-write": the word the token file and the CLI use.
  const char* access() const { return read_only ? "read-only" : "read-write"; }

  // For messages: "read-only", "read-write, confined to sublevel 'a'".
  std::string describe() const {
    std::string out = access();
    if (!prefix.empty()) out += ", confined to sublevel '" + prefix + "'";
    return out;
  }

  // "read-only" / "read-write"; nullopt for anything else.
  static std::optional<Grant> parse_access(std::string_view word) {
    if (word == "read-only") return read_only_all();
    if (word == "read-write") return read_write_all();
    return std::nullopt;
  }

  bool operator==(const Grant& other) const { return read_only == other.read_only && prefix == other.prefix; }
};

// The SHA-256 of a token, in lower-case hex: what the token file holds.
inline std::string token_hash(std::string_view token) { return detail::Sha256::hex(token); }

// A new token: 32 bytes from the kernel's random source, in hex.
inline std::string generate_token() {
  unsigned char bytes[32];
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(codes::io_error, std::string("cannot open /dev/urandom: ") + std::strerror(errno));
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::read(fd, bytes + got, sizeof bytes - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      throw Error(codes::io_error, "cannot read /dev/urandom");
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  static const char digits[] = "0123456789abcdef";
  std::string token;
  for (unsigned char byte : bytes) {
    token += digits[byte >> 4];
    token += digits[byte & 15];
  }
  return token;
}

// The token file's line for a token's hash and its grant.
inline std::string token_file_line(std::string_view hash, const Grant& grant) {
  std::string line = std::string(hash) + " " + grant.access();
  if (!grant.prefix.empty()) line += " " + grant.prefix;
  return line;
}

// Token hashes and their grants.
class TokenTable {
 public:
  // Adds a grant for the token whose SHA-256 is `hash` (64 hex digits).
  void add_hash(std::string_view hash, Grant grant) {
    std::string lower;
    for (char c : hash) lower += static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    if (!is_hash(lower)) throw Error(codes::invalid_argument, "a token hash is 64 hex digits (SHA-256)");
    if (!grant.prefix.empty()) Sublevel::prefix_of(grant.prefix);  // LEVEL_INVALID_PREFIX now, not at connect
    entries_.push_back({std::move(lower), std::move(grant)});
  }

  void add_token(std::string_view token, Grant grant) { add_hash(token_hash(token), std::move(grant)); }

  // The grant of `token`, if any. Every entry is compared, each in constant
  // time, so the time taken says nothing of which hash came close.
  std::optional<Grant> grant_for(std::string_view token) const {
    const std::string hash = token_hash(token);
    const Entry* found = nullptr;
    for (const auto& entry : entries_) {
      unsigned char difference = 0;
      for (size_t i = 0; i < hash.size(); ++i) difference |= static_cast<unsigned char>(hash[i] ^ entry.hash[i]);
      if (difference == 0 && !found) found = &entry;
    }
    if (!found) return std::nullopt;
    return found->grant;
  }

  size_t size() const { return entries_.size(); }

  // A token file's text; `source` names it in errors ("FILE:LINE: ...").
  static TokenTable parse(std::string_view text, const std::string& source = "token file") {
    TokenTable table;
    std::istringstream lines{std::string(text)};
    std::string line;
    for (int number = 1; std::getline(lines, line); ++number) {
      auto where = source + ":" + std::to_string(number) + ": ";
      if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
      std::istringstream words(line);
      std::vector<std::string> fields;
      for (std::string word; words >> word;) fields.push_back(word);
      if (fields.empty()) continue;
      if (fields.size() < 2 || fields.size() > 3) {
        throw Error(codes::invalid_argument, where + "expected 'HASH read-only|read-write [SUBLEVEL]'");
      }
      auto grant = Grant::parse_access(fields[1]);
      if (!grant) throw Error(codes::invalid_argument, where + "the grant is read-only or read-write, not '" + fields[1] + "'");
      if (fields.size() == 3) grant->prefix = fields[2];
      try {
        table.add_hash(fields[0], *grant);
      } catch (const Error& e) {
        throw Error(e.code(), where + e.message());
      }
    }
    return table;
  }

  // Reads a token file. Refuses one that others than its owner may write:
  // it says who may use the database. (Others may read it: it holds hashes.)
  static TokenTable load(const std::string& path) {
    struct stat status {};
    if (::stat(path.c_str(), &status) == 0 && (status.st_mode & (S_IWGRP | S_IWOTH))) {
      throw Error(codes::invalid_argument, "the token file " + path + " may be written by others than its owner (chmod go-w)");
    }
    std::ifstream file(path, std::ios::binary);
    if (!file) throw Error(codes::io_error, "cannot read the token file " + path + ": " + std::strerror(errno));
    std::ostringstream text;
    text << file.rdbuf();
    return parse(text.str(), path);
  }

 private:
  struct Entry {
    std::string hash;
    Grant grant;
  };

  static bool is_hash(const std::string& text) {
    if (text.size() != 64) return false;
    for (char c : text) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
  }

  std::vector<Entry> entries_;
};

// Who may use a listener (or a whole host, as HostOptions::access).
struct HostAccess {
  // The tokens it accepts; none: it does not authenticate, and every guest
  // gets `anonymous`.
  std::shared_ptr<const TokenTable> tokens;
  // What a guest without a token gets (a Node guest cannot send one); none:
  // such a guest is refused.
  std::optional<Grant> anonymous = Grant::read_write_all();

  // Everyone may do everything: a host without authentication, as today.
  static HostAccess open() { return {}; }

  // Tokens only; `anonymous` lets guests without one in with that grant.
  static HostAccess with_tokens(std::shared_ptr<const TokenTable> tokens, std::optional<Grant> anonymous = std::nullopt) {
    HostAccess access;
    access.tokens = std::move(tokens);
    access.anonymous = std::move(anonymous);
    return access;
  }

  bool authenticates() const { return tokens != nullptr; }
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/host/access.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

struct HostOptions {
  // Refuse put, del, batch and clear with LEVEL_READONLY.
  bool readonly = false;

  // Who may connect and what each may do (tokens and grants, access.hpp);
  // open to everyone by default. Host::create_session takes one per listener.
  HostAccess access = HostAccess::open();

  // Hooks run before an operation reaches the database; one that throws
  // rejects the operation, and the guest gets the thrown Error's LEVEL_* code
  // (any other exception: LEVEL_REMOTE_ERROR). They run on worker threads.
  std::function<void(std::string_view key, std::string_view value)> preput;
  std::function<void(std::string_view key)> predel;
  std::function<void(const std::vector<BatchOperation>& operations)> prebatch;
  // The reference runs no hook on clear, so a guest could delete what predel
  // refuses. Here clear runs preclear; with predel or prebatch set and no
  // preclear, clear is refused (LEVEL_NOT_SUPPORTED) rather than let through.
  std::function<void(const RangeOptions& range)> preclear;

  // A frame longer than this closes the connection before anything is
  // allocated for it (the reference has no limit).
  size_t max_frame_length = size_t{64} << 20;

  // Replies waiting to be sent, per connection. Iterators read ahead only into
  // the room left below it, and input pauses while it is full.
  size_t output_high_water = size_t{1} << 20;

  // The most an iterator's data frame holds, in bytes (estimated) and in
  // entries. Bigger frames help a C++ guest little and hurt a Node guest a
  // lot (it consumes a frame with Array#shift, slow on large arrays).
  size_t iterator_frame_bytes = size_t{64} << 10;
  size_t iterator_frame_entries = 1000;

  // Requests of one connection that may be in flight at once; past it, the
  // host stops reading that connection until some are answered.
  size_t max_pending_requests = 4096;

  // Open iterators per connection; one more is answered with an error.
  size_t max_iterators = 1024;

  // The extension. Explicit snapshots one connection may hold open; one more
  // is refused with LEVEL_LIMIT_REACHED. Each holds what the store needs to
  // read the past (a SQLite read transaction keeps the WAL from shrinking).
  size_t max_snapshots = 64;

  // Watches per connection; one more is refused (WatchError LEVEL_LIMIT_REACHED).
  size_t max_watches = 64;

  // The most a WatchData frame holds, in bytes of keys and values and in
  // commits; a single commit bigger than that still goes, alone. A watch has
  // at most two frames unacknowledged, so these bound what it can hold up.
  size_t watch_frame_bytes = size_t{64} << 10;
  size_t watch_frame_commits = 1000;

  // Frames that fail to decode are ignored as the reference does, but a
  // connection that sends this many is closed: it is not a many-level guest.
  size_t max_malformed_frames = 100;

  // Where the host reports connection events and protocol failures; none by default.
  std::function<void(std::string_view line)> log;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/host/host_options.hpp ----
// ---- begin src/many_level/host/host_session.hpp ----
// One guest's connection to a host, sans I/O: frames in through receive(),
// replies out through output(). Requests are answered on the host's worker
// pool, so no database call ever runs on the transport's thread.
//
// Order: requests of one connection reach the database in arrival order (a
// guest that pipelines a put and then a get reads its own write), but run
// off the I/O thread; consecutive writes are committed as one batch and
// consecutive gets read as one getMany, which is where a pipelining guest
// gets its speed. Iterators read on their own jobs, so a slow iterator does
// not hold up the requests behind it, and each connection has its own queue,
// so one guest's large clear does not hold up another guest.
//
// The extension (docs/PROTOCOL.md) begins when the guest says Hello, which is
// answered as it is decoded, before the next frame is acted on. Until then
// extension frames are ignored, as the Node reference would, so a Node guest
// sees nothing new. has and snapshots run in request order with the rest;
// watches are pumped from the database's change feed on the worker pool.
//
// Access (access.hpp) is decided at the stream's first frame: a Hello's
// token, or the listener's anonymous grant for a guest without one. A guest
// refused there gets LEVEL_UNAUTHENTICATED for every request and no data; a
// confined one works on a sublevel of the database, which no range, seek or
// clear can leave.

#include <iterator>

// ---- begin src/many_level/host/host_iterator.hpp ----
// The host's side of one remote iterator: its state in the reference's flow
// control (seq, consumed, unacknowledged frames, read-ahead) and how a
// retrying guest's bookmark becomes a range to resume from.

MANY_LEVEL_NAMESPACE_BEGIN

struct HostIterator {
  uint32_t id = 0;
  uint32_t seq = 0;
  protocol::IteratorOptions options;
  std::unique_ptr<Iterator> iterator;  // null until created in request order
  // The guest's snapshot it reads at (extension), kept to recreate the store
  // iterator when a seek leaves a range cut at a bookmark.
  std::shared_ptr<Snapshot> snapshot;

  int64_t limit = -1;      // the guest's limit, counted here (the store's iterator has none)
  uint64_t consumed = 0;   // what the guest says it consumed
  uint64_t sent = 0;       // consumed plus what was sent since, in this seq
  unsigned pending_acks = 0;
  size_t max_item_length = 1;  // bytes per entry seen so far, to size read-ahead

  bool busy = true;  // a worker holds `iterator` (creating, reading or seeking)
  bool ended = false;
  bool closed = false;
  bool read_ahead = false;
  bool narrowed = false;  // range cut at a bookmark; a seek needs the whole range back
  std::optional<std::pair<std::string, uint32_t>> pending_seek;

  // Entries the guest may still receive, by its limit.
  uint64_t budget() const {
    if (limit < 0) return UINT64_MAX;
    return static_cast<uint64_t>(limit) > sent ? static_cast<uint64_t>(limit) - sent : 0;
  }
};

// The store iterator's options for a guest's request: raw bytes, no limit
// (the host counts it, because it reads ahead and can seek), and, after a
// reconnect, the range cut just past the bookmark. Cutting the range rather
// than seeking to a computed key is what makes reverse resumption exact: the
// reference seeks to the bookmark with its last byte decremented, which skips
// keys (PROTOCOL.md, "Known weak spots").
inline IteratorOptions store_iterator_options(const protocol::IteratorOptions& wire,
                                              const std::optional<std::string>& bookmark) {
  IteratorOptions options;
  options.keys = wire.keys;
  options.values = wire.values;
  options.gt = wire.gt;
  options.gte = wire.gte;
  options.lt = wire.lt;
  options.lte = wire.lte;
  options.reverse = wire.reverse;
  options.limit = -1;
  options.key_encoding = "buffer";
  options.value_encoding = "buffer";
  if (bookmark) {
    KeyRange range = KeyRange::from(options);
    if (!wire.reverse && (!range.lower || compare_keys(*bookmark, range.lower->key) >= 0)) {
      options.gte.reset();
      options.gt = *bookmark;
    } else if (wire.reverse && (!range.upper || compare_keys(*bookmark, range.upper->key) <= 0)) {
      options.lte.reset();
      options.lt = *bookmark;
    }
  }
  return options;
}

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/host/host_iterator.hpp ----
// ---- begin src/many_level/host/host_snapshots.hpp ----
// The explicit snapshots one guest holds open on a host, by the ids it chose
// (the extension's SnapshotRequest / SnapshotRelease). Making, reading from
// and releasing them all happen in request order on the session's drain;
// statistics and the stream's end come from other threads, hence its own lock.

MANY_LEVEL_NAMESPACE_BEGIN

class HostSnapshots {
 public:
  explicit HostSnapshots(size_t limit) : limit_(limit) {}

  HostSnapshots(const HostSnapshots&) = delete;
  HostSnapshots& operator=(const HostSnapshots&) = delete;

  // Makes snapshot `id` of `db`. Returns "" when it is open, else the LEVEL_*
  // code it was refused with, and in `why` words for the host's log.
  std::string open(uint32_t id, Database& db, std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return codes::database_not_open;  // the stream ended
      if (snapshots_.count(id)) {
        why = "snapshot id " + std::to_string(id) + " is in use";
        return codes::invalid_argument;
      }
      if (snapshots_.size() >= limit_) {
        why = std::to_string(limit_) + " snapshots are open on this connection";
        return codes::limit_reached;
      }
    }
    if (!db.supports().explicit_snapshots) {
      why = "the database has no explicit snapshots";
      return codes::not_supported;
    }
    std::shared_ptr<Snapshot> snapshot;
    try {
      snapshot = db.snapshot();
    } catch (const std::exception& e) {
      why = e.what();
      return wire_error_code(e);
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (closed_) {
      lock.unlock();
      snapshot->close();
      return codes::database_not_open;
    }
    snapshots_.emplace(id, std::move(snapshot));
    return {};
  }

  // Snapshot `id`; throws LEVEL_SNAPSHOT_NOT_OPEN when no such one is open.
  std::shared_ptr<Snapshot> at(uint32_t id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = snapshots_.find(id);
    if (found == snapshots_.end() || !found->second->is_open()) {
      throw Error(codes::snapshot_not_open, "Snapshot " + std::to_string(id) + " is not open");
    }
    return found->second;
  }

  // Closes snapshot `id`, if open. Closing may wait on the store: call it on a worker.
  void release(uint32_t id) {
    std::shared_ptr<Snapshot> released;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto found = snapshots_.find(id);
      if (found == snapshots_.end()) return;
      released = std::move(found->second);
      snapshots_.erase(found);
    }
    released->close();
  }

  // Takes every snapshot out, to close, and refuses new ones from now on.
  std::vector<std::shared_ptr<Snapshot>> take_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    std::vector<std::shared_ptr<Snapshot>> all;
    for (auto& [id, snapshot] : snapshots_) all.push_back(std::move(snapshot));
    snapshots_.clear();
    return all;
  }

  std::vector<uint32_t> ids() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<uint32_t> ids;
    for (const auto& [id, snapshot] : snapshots_) ids.push_back(id);
    return ids;
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return snapshots_.size();
  }

 private:
  const size_t limit_;
  mutable std::mutex mutex_;
  std::map<uint32_t, std::shared_ptr<Snapshot>> snapshots_;
  bool closed_ = false;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/host/host_snapshots.hpp ----
// ---- begin src/many_level/host/host_watches.hpp ----
// The watches of one connection (the extension's WatchRequest, WatchAck,
// WatchClose): started, acknowledged and closed on the I/O thread, at once,
// not in request order; brought up to date by a pump that reads the feed and
// encodes on a worker, one pump at a time. The feed's listener only asks for
// the pump, from the committing thread, so a commit costs its writer an
// atomic increment per watching connection, never a read or an encode.
//
// A HostWatches lives inside its HostSession and shares the session's lock:
// every method but pump() is called with it held, and pump() takes it to
// send, so that WatchStarted precedes a watch's data and nothing is sent
// after the stream's end.

// ---- begin src/many_level/host/coalesced_job.hpp ----
// A job that runs on a worker pool at most once at a time, however often it
// is asked for: asking while it runs makes it run once more afterwards, and
// asking while it is queued costs nothing. A session's watch pump is one: a
// commit asks for it from the committing thread, an ack from the I/O thread,
// and the pump then catches up on everything at once on a worker.
//
// Asking never blocks and takes no lock of the caller's (an atomic counter,
// then, on the first ask only, the pool's queue), so it is safe from a change
// feed's listener.

// ---- begin src/many_level/host/worker_pool.hpp ----
// A fixed pool of threads that runs the host's database calls, so a slow
// store call (a large clear, a cold read) never blocks the I/O thread or the
// other guests' requests.

MANY_LEVEL_NAMESPACE_BEGIN

class WorkerPool {
 public:
  // Database calls block on I/O more than on CPU, so a few more threads than
  // cores keeps the cores busy.
  static size_t default_size() { return std::max(4u, std::thread::hardware_concurrency() * 2); }

  explicit WorkerPool(size_t threads = default_size()) {
    workers_.reserve(threads);
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs every job already submitted, then joins the threads.
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  void submit(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
  }

  size_t size() const { return workers_.size(); }

  size_t queued() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return jobs_.size();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      // A job reports its own failures; one that escapes must not kill the host.
      try {
        job();
      } catch (...) {
      }
    }
  }

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/host/worker_pool.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

class CoalescedJob : public std::enable_shared_from_this<CoalescedJob> {
 public:
  // `pool` must outlive every request(); `job` is called on the pool's threads.
  CoalescedJob(WorkerPool& pool, std::function<void()> job) : pool_(pool), job_(std::move(job)) {}

  CoalescedJob(const CoalescedJob&) = delete;
  CoalescedJob& operator=(const CoalescedJob&) = delete;

  // Makes the job run (again) soon. Only the request that finds nothing
  // pending submits; the runner sees the others when it is done.
  void request() {
    if (requests_.fetch_add(1) == 0) pool_.submit([self = shared_from_this()] { self->run(); });
  }

 private:
  void run() {
    unsigned seen = requests_.load();
    for (;;) {
      try {
        job_();
      } catch (...) {
        // The job reports its own failures; one that escapes must not leave
        // the counter up, or no request would ever submit it again.
      }
      // Requests that came while it ran: run again for them (they may have
      // come after the job looked), else stop, leaving the counter at zero
      // so that the next request submits.
      unsigned now = requests_.fetch_sub(seen) - seen;
      if (now == 0) return;
      seen = now;
    }
  }

  WorkerPool& pool_;
  std::function<void()> job_;
  std::atomic<unsigned> requests_{0};
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/host/coalesced_job.hpp ----
// ---- begin src/many_level/host/host_watch.hpp ----
// The host's side of one watch (the extension's WatchRequest): the guest's
// range, a cursor into the database's change feed, and the frames the guest
// has not acknowledged yet; and how the next WatchData frame is read from the
// feed. Flow control is the iterators': nothing more is read for a watch with
// two frames unacknowledged, so a watcher that never reads costs two frames
// and a cursor, and is told LEVEL_WATCH_TOO_OLD once the history has moved
// past its cursor.

MANY_LEVEL_NAMESPACE_BEGIN

struct HostWatch {
  // Unacknowledged frames past which nothing more is read (as for iterators).
  static constexpr size_t max_unacknowledged = 2;

  uint32_t id = 0;
  KeyRange range;
  // Every commit up to here was sent or did not touch the range. Only the
  // session's pump moves it, one pump at a time.
  uint64_t cursor = 0;
  // The seq of each unacknowledged frame's last commit, oldest first.
  std::deque<uint64_t> unacknowledged;
  bool ended = false;  // closed, failed, or its stream ended

  bool may_send() const { return unacknowledged.size() < max_unacknowledged; }

  // One WatchAck{seq}: releases the oldest frame if the ack covers it. An ack
  // of something never sent (or of an earlier watch with the same id) does not.
  bool acknowledge(uint64_t seq) {
    if (unacknowledged.empty() || seq < unacknowledged.front()) return false;
    unacknowledged.pop_front();
    return true;
  }
};

inline KeyRange watch_key_range(const protocol::WatchRange& wire) {
  RangeOptions range;
  range.gt = wire.gt;
  range.gte = wire.gte;
  range.lt = wire.lt;
  range.lte = wire.lte;
  return KeyRange::from(range);
}

// How much one WatchData frame holds: keys and values in bytes, and commits.
// The first commit goes in whatever its size, so a huge one is never stuck.
struct WatchFrameLimits {
  size_t max_bytes = size_t{64} << 10;
  size_t max_commits = 1000;
};

struct WatchFrame {
  std::vector<protocol::Commit> commits;  // in range only; may be empty
  uint64_t cursor = 0;                    // where the next frame starts reading
};

// Reads, after `after`, the commits of one frame: each commit with only its
// operations under `prefix` and in `range` (keys without the prefix), those
// with none skipped. The cursor passes skipped commits too, so a watch of a
// quiet range keeps up with a busy feed. too_old: commits after `after` have
// left the history.
inline ChangeFeed::ReadStatus read_watch_frame(const ChangeFeed& feed, std::string_view prefix,
                                               const KeyRange& range, uint64_t after,
                                               const WatchFrameLimits& limits, WatchFrame& frame) {
  frame.cursor = after;
  size_t bytes = 0;
  std::vector<std::shared_ptr<const Commit>> commits;
  while (frame.commits.size() < limits.max_commits && bytes < limits.max_bytes) {
    commits.clear();
    if (feed.read(frame.cursor, limits.max_commits, limits.max_bytes, commits) == ChangeFeed::ReadStatus::too_old) {
      return ChangeFeed::ReadStatus::too_old;
    }
    if (commits.empty()) break;  // caught up
    for (const auto& commit : commits) {
      auto operations = operations_in(*commit, prefix, range);
      if (!operations.empty()) {
        size_t weight = 0;
        for (const auto& op : operations) weight += op.key.size() + op.value.size() + 8;
        // It opens the next frame instead; the cursor stays before it.
        if (!frame.commits.empty() && (bytes + weight > limits.max_bytes || frame.commits.size() >= limits.max_commits)) {
          return ChangeFeed::ReadStatus::ok;
        }
        bytes += weight;
        protocol::Commit wire;
        wire.seq = commit->seq;
        wire.ops.reserve(operations.size());
        for (auto& op : operations) {
          bool put = op.type == BatchOperation::Type::put;
          wire.ops.push_back({put ? protocol::BatchOp::Type::put : protocol::BatchOp::Type::del, std::move(op.key),
                              put ? std::optional<std::string>(std::move(op.value)) : std::nullopt});
        }
        frame.commits.push_back(std::move(wire));
      }
      frame.cursor = commit->seq;
    }
  }
  return ChangeFeed::ReadStatus::ok;
}

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/host/host_watch.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

// One watch, for introspection.
struct HostWatchInfo {
  uint32_t id = 0;
  uint64_t seq = 0;  // its cursor: every commit up to here was sent or skipped
  unsigned unacknowledged_frames = 0;
};

class HostWatches {
 public:
  // What the watches need of their session: to send a message (its lock
  // held), to log, and to run the pump on a worker (`pump_job` must reach
  // this object's pump() only while the session lives: it holds it weakly).
  using Send = std::function<void(protocol::HostMessage message)>;
  using Log = std::function<void(const std::string& line)>;

  HostWatches(Database& db, const HostOptions& options, WorkerPool& pool, std::mutex& session_mutex, Send send,
              Log log, std::function<void()> pump_job)
      : db_(db),
        options_(options),
        session_mutex_(session_mutex),
        send_(std::move(send)),
        log_(std::move(log)),
        pump_(std::make_shared<CoalescedJob>(pool, std::move(pump_job))) {}

  HostWatches(const HostWatches&) = delete;
  HostWatches& operator=(const HostWatches&) = delete;

  // ---- with the session's lock held --------------------------------------

  // Answers WatchStarted, then data as the pump finds it; or WatchError.
  void start(const protocol::WatchRequest& request) {
    auto refuse = [&](const char* code, const std::string& why) {
      send_(protocol::WatchError{request.id, code});
      log_("refusing watch " + std::to_string(request.id) + " (" + code + "): " + why);
    };
    if (!source_) source_ = db_.change_source();
    if (!source_) return refuse(codes::not_supported, "the database has no change feed");
    if (watches_.count(request.id)) return refuse(codes::invalid_argument, "the id is in use");
    if (watches_.size() >= options_.max_watches) {
      return refuse(codes::limit_reached, std::to_string(options_.max_watches) + " watches are open on this connection");
    }
    const ChangeFeed& feed = *source_->feed;
    // Subscribed before the cursor is read: the feed records from then on, so
    // no commit after the cursor can be missing from its history.
    subscribe();
    uint64_t cursor = request.since ? *request.since : feed.last_seq();
    if (request.since && !feed.can_resume_after(cursor)) {
      refuse(codes::watch_too_old, "its history does not reach back to " + std::to_string(cursor));
      return unsubscribe_if_idle();
    }
    auto watch = std::make_shared<HostWatch>();
    watch->id = request.id;
    watch->range = watch_key_range(request.range);
    watch->cursor = cursor;
    watches_[request.id] = watch;
    // Written before the watch can be pumped, so WatchStarted precedes its data.
    send_(protocol::WatchStarted{request.id, cursor});
    if (cursor < feed.last_seq()) pump_->request();
  }

  void acknowledge(const protocol::WatchAck& ack) {
    auto found = watches_.find(ack.id);
    if (found != watches_.end() && found->second->acknowledge(ack.seq)) pump_->request();
  }

  void close(uint32_t id) {
    auto found = watches_.find(id);
    if (found == watches_.end()) return;
    found->second->ended = true;
    watches_.erase(found);
    unsubscribe_if_idle();
  }

  // The stream ended: every watch ends, and no commit wakes the pump again.
  void end_all() {
    for (auto& [id, watch] : watches_) watch->ended = true;
    watches_.clear();
    subscription_.reset();
  }

  std::vector<HostWatchInfo> info() const {
    std::vector<HostWatchInfo> out;
    for (const auto& [id, watch] : watches_) {
      out.push_back({watch->id, watch->cursor, static_cast<unsigned>(watch->unacknowledged.size())});
    }
    return out;
  }

  // ---- on a worker, without the lock -----------------------------------------

  // Brings every watch up to date, as far as flow control lets it.
  void pump() {
    std::vector<std::shared_ptr<HostWatch>> watches;
    std::shared_ptr<ChangeFeed> feed;
    std::string prefix;
    {
      std::lock_guard<std::mutex> lock(session_mutex_);
      if (watches_.empty() || !source_) return;
      for (const auto& [id, watch] : watches_) watches.push_back(watch);
      feed = source_->feed;
      prefix = source_->prefix;
    }
    const WatchFrameLimits limits{options_.watch_frame_bytes, options_.watch_frame_commits};
    for (const auto& watch : watches) pump(*watch, *feed, prefix, limits);
  }

 private:
  void pump(HostWatch& watch, const ChangeFeed& feed, const std::string& prefix, const WatchFrameLimits& limits) {
    for (;;) {
      uint64_t cursor;
      bool may_send;
      {
        std::lock_guard<std::mutex> lock(session_mutex_);
        if (watch.ended) return;
        cursor = watch.cursor;  // only this pump moves it: it stays valid unlocked
        may_send = watch.may_send();
      }
      WatchFrame frame;
      auto status = ChangeFeed::ReadStatus::ok;
      if (may_send) {
        status = read_watch_frame(feed, prefix, watch.range, cursor, limits, frame);
      } else if (!feed.can_resume_after(cursor)) {
        // A watcher that does not read holds two frames; once its cursor has
        // left the history, it is told so rather than keep anything more.
        status = ChangeFeed::ReadStatus::too_old;
      }
      std::lock_guard<std::mutex> lock(session_mutex_);
      if (watch.ended) return;
      if (status == ChangeFeed::ReadStatus::too_old) {
        send_(protocol::WatchError{watch.id, codes::watch_too_old});
        log_("watch " + std::to_string(watch.id) + " fell behind the change history past " + std::to_string(cursor));
        close(watch.id);
        return;
      }
      if (!may_send || frame.cursor == cursor) return;  // held by flow control, or caught up
      watch.cursor = frame.cursor;
      if (frame.commits.empty()) continue;  // nothing in range: read on
      watch.unacknowledged.push_back(frame.commits.back().seq);
      protocol::WatchData data;
      data.id = watch.id;
      data.commits = std::move(frame.commits);
      send_(std::move(data));
    }
  }

  void subscribe() {
    if (!subscription_) subscription_ = ChangeFeed::subscribe(source_->feed, [pump = pump_] { pump->request(); });
  }

  // With no watch left, commits need not wake the pump. Destroying the
  // subscription waits for its listener if that is running, which takes no
  // lock of ours, so it is safe with the session's lock held.
  void unsubscribe_if_idle() {
    if (watches_.empty()) subscription_.reset();
  }

  Database& db_;
  const HostOptions& options_;
  std::mutex& session_mutex_;
  const Send send_;
  const Log log_;
  const std::shared_ptr<CoalescedJob> pump_;
  std::optional<ChangeSource> source_;  // looked up at the first watch
  std::map<uint32_t, std::shared_ptr<HostWatch>> watches_;
  std::unique_ptr<ChangeFeed::Subscription> subscription_;  // while any watch is open
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/host/host_watches.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

// A snapshot of one remote iterator, for introspection.
struct HostIteratorInfo {
  uint32_t id = 0;
  uint32_t seq = 0;
  uint64_t consumed = 0;
  uint64_t sent = 0;
  unsigned unacknowledged_frames = 0;
  bool busy = false;
  bool ended = false;
  bool reverse = false;
  int64_t limit = -1;
};

struct HostSessionStats {
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t requests = 0;
  uint64_t malformed_frames = 0;
  size_t pending_requests = 0;
  size_t buffered_output = 0;
  bool extended = false;  // the guest said Hello
  std::vector<HostIteratorInfo> iterators;
  std::vector<HostWatchInfo> watches;
  std::vector<uint32_t> snapshots;  // the ids open
};

class HostSession final : public Session,
                          public HostConnection,
                          public std::enable_shared_from_this<HostSession> {
 public:
  // The database, options and pool must outlive the session's work; Host
  // guarantees that by ending its sessions before it goes. `context` is what
  // the host's sessions share (statistics); `identity` names this one in them.
  // `access` is the listener's (HostOptions::access unless the host was told otherwise).
  HostSession(Database& db, const HostOptions& options, WorkerPool& pool, std::shared_ptr<HostContext> context,
              HostConnectionIdentity identity, HostAccess access)
      : db_(&db), options_(options), pool_(pool), context_(std::move(context)), identity_(std::move(identity)),
        access_(std::move(access)), decoder_(options.max_frame_length), output_(options.output_high_water),
        snapshots_(options.max_snapshots) {}

  // A session outside any Host: its statistics list no connections.
  HostSession(Database& db, const HostOptions& options, WorkerPool& pool)
      : HostSession(db, options, pool, std::make_shared<HostContext>(db), {}, options.access) {}

  void receive(const char* data, size_t size) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (ended_ || !failure_.empty()) return;
      bytes_in_ += size;
    }
    try {
      decoder_.feed(data, size, [this](std::string_view payload) { on_payload(payload); });
    } catch (const Error& e) {
      fail(e.what());
    }
  }

  void end() override {
    std::vector<std::unique_ptr<Iterator>> idle;
    bool release_snapshots = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (ended_) return;
      ended_ = true;
      queue_.clear();
      for (auto& [id, iterator] : iterators_) {
        iterator->closed = true;
        if (!iterator->busy && iterator->iterator) idle.push_back(std::move(iterator->iterator));
      }
      iterators_.clear();
      if (watches_) watches_->end_all();
      // A drain in progress may be reading at a snapshot: it releases them
      // when it stops, so none is closed under a read.
      release_snapshots = !draining_;
    }
    output_.close();
    release(std::move(idle));
    if (release_snapshots) release(snapshots_.take_all());
  }

  OutputBuffer& output() override { return output_; }

  // Both are asked by the transport after every read, right when a worker
  // it just woke takes the lock: they read atomics instead.
  std::string failed() const override {
    if (!has_failed_.load()) return {};
    std::lock_guard<std::mutex> lock(mutex_);
    return failure_;
  }

  bool wants_input() override {
    return pending_.load() < options_.max_pending_requests && output_.room() > 0;
  }

  HostSessionStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    HostSessionStats stats;
    stats.frames_in = frames_in_;
    stats.frames_out = frames_out_;
    stats.bytes_in = bytes_in_;
    stats.bytes_out = bytes_out_;
    stats.requests = requests_;
    stats.malformed_frames = malformed_;
    stats.pending_requests = pending_;
    stats.buffered_output = output_.size();
    stats.extended = extended_;
    for (const auto& [id, it] : iterators_) {
      stats.iterators.push_back({it->id, it->seq, it->consumed, it->sent, it->pending_acks, it->busy,
                                 it->ended, it->options.reverse, it->limit});
    }
    if (watches_) stats.watches = watches_->info();
    stats.snapshots = snapshots_.ids();
    return stats;
  }

  // This connection as the host's statistics list it (HostStatsReply).
  std::optional<HostConnectionStats> connection_stats() const override {
    auto session = stats();
    std::lock_guard<std::mutex> lock(mutex_);
    if (ended_) return std::nullopt;
    HostConnectionStats out;
    out.id = identity_.id;
    out.address = identity_.address;
    out.since_ms = identity_.since_ms;
    out.requests = session.requests;
    out.bytes_in = session.bytes_in;
    out.bytes_out = session.bytes_out;
    out.frames_in = session.frames_in;
    out.frames_out = session.frames_out;
    out.iterators = static_cast<uint32_t>(session.iterators.size());
    out.watches = static_cast<uint32_t>(session.watches.size());
    out.snapshots = static_cast<uint32_t>(session.snapshots.size());
    out.pending = static_cast<uint32_t>(session.pending_requests);
    out.extended = session.extended;
    return out;
  }

  const HostConnectionIdentity& identity() const { return identity_; }

 private:
  // An iterator request waiting in the queue, with the slot reserved for it:
  // looking the slot up by id when it runs could find a later iterator that
  // reused the id after this one was closed.
  struct QueuedIterator {
    protocol::IteratorRequest request;
    std::shared_ptr<HostIterator> iterator;
  };

  // Requests that reach the database in arrival order.
  using Request = std::variant<protocol::GetRequest, protocol::PutRequest, protocol::DelRequest,
                               protocol::BatchRequest, protocol::ClearRequest, protocol::GetManyRequest,
                               QueuedIterator, protocol::HasRequest, protocol::SnapshotRequest,
                               protocol::SnapshotRelease>;

  // What this host offers in HelloReply.
  static constexpr const char* feature_has = "has";
  static constexpr const char* feature_stats = "stats";
  static constexpr const char* feature_snapshots = "snapshots";
  static constexpr const char* feature_watch = "watch";
  static constexpr uint32_t extension_version = 1;

  // ---- input -------------------------------------------------------------

  void on_payload(std::string_view payload) {
    protocol::GuestMessage message;
    auto status = protocol::decode_payload(payload, message);
    std::unique_lock<std::mutex> lock(mutex_);
    // Once failed, the rest of the chunk is not acted on either: the
    // connection is closing, whichever way its bytes were chunked.
    if (ended_ || !failure_.empty()) return;
    if (status == protocol::DecodeStatus::malformed) {
      if (++malformed_ >= options_.max_malformed_frames) {
        lock.unlock();
        fail("closing a connection that sent " + std::to_string(malformed_) + " malformed frames");
      }
      return;
    }
    if (status != protocol::DecodeStatus::ok) return;
    ++frames_in_;
    if (admission_ == Admission::waiting) {
      const auto* hello = std::get_if<protocol::Hello>(&message);
      admit(hello ? hello->token : std::nullopt, hello != nullptr);
    }
    bool start_drain = std::visit([&](auto& m) { return dispatch(lock, std::move(m)); }, message);
    if (start_drain) {
      // Submitted once the lock is released: a worker that wakes at once
      // (the other core is idle) would only block on it.
      lock.unlock();
      pool_.submit([self = shared_from_this()] { self->drain(); });
    }
  }

  // Acts on one message, lock held; true when it queued the first request
  // of a new drain, which the caller then submits.
  template <typename M>
  bool dispatch(std::unique_lock<std::mutex>& lock, M&& message) {
    using T = std::decay_t<M>;
    if constexpr (std::is_same_v<T, protocol::Hello>) {
      on_hello(message);
      return false;
    } else if (admission_ == Admission::refused) {
      return refuse(message);
    } else if constexpr (static_cast<unsigned>(T::tag) >= protocol::first_extension_tag) {
      if (!extended_) return false;  // as the reference does with a tag it does not know
      return dispatch_extension(std::forward<M>(message));
    } else if constexpr (std::is_same_v<T, protocol::IteratorAck>) {
      on_ack(message);
      return false;
    } else if constexpr (std::is_same_v<T, protocol::IteratorSeek>) {
      on_seek(message);
      return false;
    } else if constexpr (std::is_same_v<T, protocol::IteratorClose>) {
      on_close(lock, message.id);
      return false;
    } else {
      ++requests_;
      if constexpr (std::is_same_v<T, protocol::PutRequest> || std::is_same_v<T, protocol::DelRequest> ||
                    std::is_same_v<T, protocol::BatchRequest> || std::is_same_v<T, protocol::ClearRequest>) {
        if (read_only_) {
          send(protocol::Callback{message.id, std::string(codes::readonly), std::nullopt});
          return false;
        }
      }
      if constexpr (std::is_same_v<T, protocol::GetRequest> || std::is_same_v<T, protocol::GetManyRequest> ||
                    std::is_same_v<T, protocol::IteratorRequest>) {
        // The field belongs to the extension: a guest that did not say Hello
        // reads the database as it is, as the reference would.
        if (!extended_) message.snapshot.reset();
      }
      if constexpr (std::is_same_v<T, protocol::IteratorRequest>) {
        auto iterator = open_iterator_slot(message);
        if (!iterator) return false;
        return enqueue(QueuedIterator{std::forward<M>(message), std::move(iterator)});
      } else {
        return enqueue(std::forward<M>(message));
      }
    }
  }

  // An extension message on a stream that said Hello, lock held.
  template <typename M>
  bool dispatch_extension(M&& message) {
    using T = std::decay_t<M>;
    if constexpr (std::is_same_v<T, protocol::WatchRequest>) {
      ++requests_;
      watches().start(message);
      return false;
    } else if constexpr (std::is_same_v<T, protocol::WatchAck>) {
      if (watches_) watches_->acknowledge(message);
      return false;
    } else if constexpr (std::is_same_v<T, protocol::WatchClose>) {
      if (watches_) watches_->close(message.id);
      return false;
    } else if constexpr (std::is_same_v<T, protocol::HostStatsRequest>) {
      ++requests_;
      if (confined_) {
        // The statistics name the other connections and the database file.
        send(protocol::HostStatsReply{message.id, std::string(codes::access_denied), std::nullopt});
      } else {
        answer_host_stats(message.id);
      }
      return false;
    } else {
      // has, snapshot and snapshot release: in request order.
      if constexpr (!std::is_same_v<T, protocol::SnapshotRelease>) ++requests_;
      return enqueue(std::forward<M>(message));
    }
  }

  // Queues a request for the drain; true when the drain must be started.
  bool enqueue(Request request) {
    queue_.push_back(std::move(request));
    ++pending_;
    if (draining_) return false;
    draining_ = true;
    return true;
  }

  // ---- access (I/O thread, lock held) -----------------------------------------

  // Decides at the stream's first frame what this guest may do: with the
  // token of its Hello, or as a guest without one (said no Hello: a Node
  // guest, or a Hello without a token). A wrong token is refused, not let in
  // as anonymous: its user meant to authenticate and should hear it failed.
  void admit(const std::optional<std::string>& token, bool said_hello) {
    std::optional<Grant> grant;
    const bool has_token = token && !token->empty();
    if (access_.authenticates() && has_token) {
      grant = access_.tokens->grant_for(*token);
    } else {
      grant = access_.anonymous;
    }
    if (grant && !grant->prefix.empty()) {
      try {
        db_ = &context_->confined(grant->prefix);
        confined_ = true;
      } catch (const std::exception& e) {
        log("refusing a guest on " + identity_.address + ": its grant's sublevel: " + e.what());
        grant.reset();
      }
    }
    if (!grant) {
      admission_ = Admission::refused;
      log(std::string("refusing a guest") + (identity_.address.empty() ? "" : " on " + identity_.address) + ": " +
          (has_token ? "its token is not accepted"
                     : said_hello ? "it presented no token" : "it said no hello with a token (a Node guest?)"));
      return;
    }
    admission_ = Admission::admitted;
    read_only_ = options_.readonly || grant->read_only;
  }

  // A request of a refused guest: answered with LEVEL_UNAUTHENTICATED and no
  // data. Its replies are paced by the output buffer like any others.
  template <typename T>
  bool refuse(const T& message) {
    const std::string code = codes::unauthenticated;
    if constexpr (std::is_same_v<T, protocol::GetManyRequest>) {
      ++requests_;
      send(protocol::GetManyCallback{message.id, code, {}});
    } else if constexpr (std::is_same_v<T, protocol::IteratorRequest>) {
      ++requests_;
      send(protocol::IteratorError{message.id, message.seq, code});
    } else if constexpr (std::is_same_v<T, protocol::GetRequest> || std::is_same_v<T, protocol::PutRequest> ||
                         std::is_same_v<T, protocol::DelRequest> || std::is_same_v<T, protocol::BatchRequest> ||
                         std::is_same_v<T, protocol::ClearRequest>) {
      ++requests_;
      send(protocol::Callback{message.id, code, std::nullopt});
    }
    // Iterator acks, seeks and closes name nothing open; extension requests
    // are ignored as on a stream that did not say Hello.
    return false;
  }

  // ---- the extension: negotiation and statistics (I/O thread) ----------------

  // Answered here, as the frame is decoded, so the reply goes out before any
  // reply to a later frame: the guest tells a C++ host from the reference by
  // which comes first. A refused guest hears why, and nothing is extended.
  void on_hello(const protocol::Hello&) {
    protocol::HelloReply reply;
    reply.version = extension_version;
    if (admission_ == Admission::refused) {
      reply.error = codes::unauthenticated;
      send(reply);
      return;
    }
    extended_ = true;
    reply.grant = read_only_ ? "read-only" : "read-write";
    reply.confined = confined_;
    reply.features = {feature_has};
    if (!confined_) reply.features.push_back(feature_stats);
    if (db().supports().explicit_snapshots) reply.features.push_back(feature_snapshots);
    auto source = db().change_source();
    if (source) {
      reply.features.push_back(feature_watch);
      reply.seq = source->feed->last_seq();
    }
    send(reply);
  }

  // Answered at once, not in request order, but on a worker: the store's
  // size may take a file system or database call. Counted as pending until
  // then, so a guest that floods them is paused like any other.
  void answer_host_stats(uint32_t id) {
    ++pending_;
    pool_.submit([weak = weak_from_this(), id] {
      auto self = weak.lock();
      if (!self) return;
      protocol::HostStatsReply reply;
      reply.id = id;
      reply.stats = self->context_->stats();
      std::lock_guard<std::mutex> lock(self->mutex_);
      --self->pending_;
      if (!self->ended_) self->send(reply);
    });
  }

  // This connection's watches, made at its first WatchRequest (when the
  // session is owned by a shared_ptr, so its pump can hold it weakly). Lock held.
  HostWatches& watches() {
    if (!watches_) {
      watches_ = std::make_unique<HostWatches>(
          db(), options_, pool_, mutex_,
          [this](protocol::HostMessage message) { std::visit([this](const auto& m) { send(m); }, message); },
          [this](const std::string& line) { log(line); },
          [weak = weak_from_this()] {
            // Set once, before any pump can run, and kept for the session's life.
            if (auto self = weak.lock()) self->watches_->pump();
          });
    }
    return *watches_;
  }

  // Reserves the iterator's id at once, so an ack, seek or close that arrives
  // before the iterator is created finds it.
  std::shared_ptr<HostIterator> open_iterator_slot(const protocol::IteratorRequest& request) {
    if (iterators_.count(request.id)) return nullptr;  // the reference ignores a reused id
    if (iterators_.size() >= options_.max_iterators) {
      send(protocol::IteratorError{request.id, request.seq, "LEVEL_REMOTE_ERROR"});
      log("refusing iterator " + std::to_string(request.id) + ": " + std::to_string(options_.max_iterators) +
          " are open on this connection");
      return nullptr;
    }
    auto iterator = std::make_shared<HostIterator>();
    iterator->id = request.id;
    iterator->seq = request.seq;
    iterator->options = request.options;
    iterator->limit = request.options.limit < 0 ? -1 : request.options.limit;
    iterator->consumed = iterator->sent = request.consumed;
    iterators_[request.id] = iterator;
    return iterator;
  }

  // ---- ordered requests (worker threads) -----------------------------------

  void drain() {
    size_t answered = 0;
    for (;;) {
      std::deque<Request> batch;
      {
        // One lock a round: the answers of the last batch are counted with
        // the look for more, so that a guest's next request, which the
        // reply may already have brought in, rarely finds the lock taken.
        std::unique_lock<std::mutex> lock(mutex_);
        pending_ -= std::min(pending_.load(), answered);
        if (queue_.empty() || ended_) {
          draining_ = false;
          if (ended_) {
            // end() left the snapshots to the drain it found running.
            lock.unlock();
            for (auto& snapshot : snapshots_.take_all()) snapshot->close();
          }
          return;
        }
        batch.swap(queue_);
      }
      answered = batch.size();
      while (!batch.empty()) {
        if (std::holds_alternative<protocol::GetRequest>(batch.front())) {
          run_gets(batch);
        } else if (is_write(batch.front())) {
          run_writes(batch);
        } else {
          std::visit([this](auto& request) { run(request); }, batch.front());
          batch.pop_front();
        }
      }
    }
  }

  static bool is_write(const Request& request) {
    return std::holds_alternative<protocol::PutRequest>(request) ||
           std::holds_alternative<protocol::DelRequest>(request) ||
           std::holds_alternative<protocol::BatchRequest>(request);
  }

  // Consecutive gets, read together as one getMany (one read transaction),
  // as long as they read at the same snapshot (or none).
  void run_gets(std::deque<Request>& batch) {
    std::vector<uint32_t> ids;
    std::vector<std::string> keys;
    const std::optional<uint32_t> snapshot = std::get<protocol::GetRequest>(batch.front()).snapshot;
    while (!batch.empty() && std::holds_alternative<protocol::GetRequest>(batch.front()) &&
           std::get<protocol::GetRequest>(batch.front()).snapshot == snapshot) {
      auto& get = std::get<protocol::GetRequest>(batch.front());
      ids.push_back(get.id);
      keys.push_back(std::move(get.key));
      batch.pop_front();
    }
    std::vector<protocol::Callback> replies;
    replies.reserve(ids.size());
    try {
      auto values = db().get_many(keys, read_options(snapshot));
      for (size_t i = 0; i < ids.size(); ++i) {
        if (values[i]) {
          replies.push_back({ids[i], std::nullopt, std::move(values[i])});
        } else {
          replies.push_back({ids[i], std::string(codes::not_found), std::nullopt});
        }
      }
    } catch (const std::exception& e) {
      replies.clear();
      for (uint32_t id : ids) replies.push_back({id, wire_error_code(e), std::nullopt});
    }
    send_all(replies);
  }

  // Consecutive puts, dels and batches, committed as one atomic batch. Each
  // passes its hook first; a rejected one is answered alone and left out.
  void run_writes(std::deque<Request>& batch) {
    std::vector<uint32_t> ids;
    std::vector<BatchOperation> operations;
    while (!batch.empty() && is_write(batch.front())) {
      uint32_t id = 0;
      size_t before = operations.size();
      std::string rejection = std::visit([&](auto& request) { return admit(request, id, operations); },
                                         batch.front());
      batch.pop_front();
      if (!rejection.empty()) {
        operations.resize(before);
        send(protocol::Callback{id, rejection, std::nullopt});
      } else {
        ids.push_back(id);
      }
    }
    std::optional<std::string> error;
    if (!operations.empty()) {
      try {
        db().batch(operations, raw_write);
      } catch (const std::exception& e) {
        error = wire_error_code(e);
      }
    }
    std::vector<protocol::Callback> replies;
    replies.reserve(ids.size());
    for (uint32_t id : ids) replies.push_back({id, error, std::nullopt});
    send_all(replies);
  }

  // Appends a write's operations after its hook; returns an error code to
  // reject it with, or "" to accept it.
  std::string admit(protocol::PutRequest& put, uint32_t& id, std::vector<BatchOperation>& out) {
    id = put.id;
    if (!put.value) return codes::invalid_value;
    return guarded([&] {
      if (options_.preput) options_.preput(put.key, *put.value);
      out.push_back(BatchOperation::put(std::move(put.key), std::move(*put.value)));
    });
  }

  std::string admit(protocol::DelRequest& del, uint32_t& id, std::vector<BatchOperation>& out) {
    id = del.id;
    return guarded([&] {
      if (options_.predel) options_.predel(del.key);
      out.push_back(BatchOperation::del(std::move(del.key)));
    });
  }

  std::string admit(protocol::BatchRequest& request, uint32_t& id, std::vector<BatchOperation>& out) {
    id = request.id;
    std::vector<BatchOperation> operations;
    operations.reserve(request.ops.size());
    for (auto& op : request.ops) {
      if (op.type == protocol::BatchOp::Type::put) {
        if (!op.value) return codes::invalid_value;
        operations.push_back(BatchOperation::put(std::move(op.key), std::move(*op.value)));
      } else {
        operations.push_back(BatchOperation::del(std::move(op.key)));
      }
    }
    return guarded([&] {
      if (options_.prebatch) options_.prebatch(operations);
      std::move(operations.begin(), operations.end(), std::back_inserter(out));
    });
  }

  template <typename M>
  std::string admit(M&, uint32_t&, std::vector<BatchOperation>&) {
    return codes::not_supported;  // never reached: only writes are admitted
  }

  template <typename F>
  static std::string guarded(F&& body) {
    try {
      body();
      return {};
    } catch (const std::exception& e) {
      return wire_error_code(e);
    } catch (...) {
      // A hook is user code and may throw anything; letting it escape would
      // abort drain() with draining_ still set and wedge the connection.
      return codes::remote_error;
    }
  }

  // Raw reads, at the guest's snapshot `id` if it names one; throws
  // LEVEL_SNAPSHOT_NOT_OPEN for an id that is not open.
  ReadOptions read_options(const std::optional<uint32_t>& id) const {
    ReadOptions options = raw_read;
    if (id) options.snapshot = snapshots_.at(*id);
    return options;
  }

  void run(protocol::GetManyRequest& request) {
    try {
      auto values = db().get_many(request.keys, read_options(request.snapshot));
      send(protocol::GetManyCallback{request.id, std::nullopt, std::move(values)});
    } catch (const std::exception& e) {
      // The reference host throws here and its guest waits forever; ours answers.
      send(protocol::GetManyCallback{request.id, wire_error_code(e), {}});
    }
  }

  void run(protocol::ClearRequest& request) {
    ClearOptions options;
    options.key_encoding = "buffer";
    if (request.options) {
      const auto& wire = *request.options;
      options.gt = wire.gt;
      options.gte = wire.gte;
      options.lt = wire.lt;
      options.lte = wire.lte;
      options.limit = wire.limit < 0 ? -1 : wire.limit;
      options.reverse = wire.reverse;
    }
    std::optional<std::string> error;
    if (!options_.preclear && (options_.predel || options_.prebatch)) {
      error = codes::not_supported;
    } else {
      error = optional_error(guarded([&] {
        if (options_.preclear) options_.preclear(options);
        db().clear(options);
      }));
    }
    send(protocol::Callback{request.id, error, std::nullopt});
  }

  void run(protocol::HasRequest& request) {
    protocol::HasCallback reply;
    reply.id = request.id;
    try {
      auto found = db().has_many(request.keys, read_options(request.snapshot));
      reply.found.reserve(found.size());
      for (bool present : found) reply.found.push_back(present ? '\1' : '\0');
    } catch (const std::exception& e) {
      reply.error = wire_error_code(e);
    }
    send(reply);
  }

  // In request order: the snapshot sees every write the guest sent before it.
  void run(protocol::SnapshotRequest& request) {
    std::string why;
    std::string error = snapshots_.open(request.snapshot, db(), why);
    if (!error.empty() && !why.empty()) {
      log("refusing snapshot " + std::to_string(request.snapshot) + " (" + error + "): " + why);
    }
    send(protocol::Callback{request.id, optional_error(std::move(error)), std::nullopt});
  }

  // In request order, so the reads sent before it have read at it.
  void run(protocol::SnapshotRelease& release) { snapshots_.release(release.snapshot); }

  // Creates the store iterator in request order, so it sees every write the
  // guest sent before it, then starts it as the reference does.
  void run(QueuedIterator& queued) {
    protocol::IteratorRequest& request = queued.request;
    std::shared_ptr<HostIterator> iterator = queued.iterator;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (iterator->closed) return;  // closed before it was created: nothing to release
    }
    std::unique_ptr<Iterator> created;
    std::string error;
    try {
      iterator->snapshot = read_options(request.snapshot).snapshot;
      created = db().iterator(iterator_options(*iterator, request.seek ? std::nullopt : request.bookmark));
    } catch (const std::exception& e) {
      error = wire_error_code(e);
    }
    std::unique_lock<std::mutex> lock(mutex_);
    iterator->busy = false;
    iterator->narrowed = request.bookmark && !request.seek;
    if (iterator->closed) {
      lock.unlock();
      if (created) created->close();
      return;
    }
    if (!error.empty()) {
      iterators_.erase(request.id);
      send(protocol::IteratorError{iterator->id, iterator->seq, error});
      return;
    }
    iterator->iterator = std::move(created);
    if (iterator->pending_seek) {
      auto [target, seq] = std::move(*iterator->pending_seek);
      start_seek(*iterator, std::move(target), seq);
    } else if (request.seek) {
      start_seek(*iterator, std::move(*request.seek), request.seq);
    } else {
      step(iterator, true);
    }
  }

  template <typename M>
  void run(M&) {}  // gets and writes are handled in runs, above

  // ---- iterators -----------------------------------------------------------

  // The store iterator's options for a remote iterator, at its snapshot if any.
  static IteratorOptions iterator_options(const HostIterator& iterator, const std::optional<std::string>& bookmark) {
    IteratorOptions options = store_iterator_options(iterator.options, bookmark);
    options.snapshot = iterator.snapshot;
    return options;
  }

  void on_ack(const protocol::IteratorAck& ack) {
    auto found = iterators_.find(ack.id);
    if (found == iterators_.end() || found->second->seq != ack.seq) return;
    auto& iterator = found->second;
    if (iterator->pending_acks > 0) --iterator->pending_acks;
    iterator->consumed = std::max(iterator->consumed, ack.consumed);
    iterator->sent = std::max(iterator->sent, iterator->consumed);
    step(iterator, false);
  }

  void on_seek(protocol::IteratorSeek& seek) {
    auto found = iterators_.find(seek.id);
    if (found == iterators_.end()) return;
    auto& iterator = *found->second;
    if (iterator.busy) {
      iterator.pending_seek = std::make_pair(std::move(seek.target), seek.seq);
    } else {
      start_seek(iterator, std::move(seek.target), seek.seq);
    }
  }

  void on_close(std::unique_lock<std::mutex>& lock, uint32_t id) {
    auto found = iterators_.find(id);
    if (found == iterators_.end()) return;
    auto iterator = found->second;
    iterators_.erase(found);
    iterator->closed = true;
    if (iterator->busy || !iterator->iterator) return;  // its worker releases it
    std::vector<std::unique_ptr<Iterator>> idle;
    idle.push_back(std::move(iterator->iterator));
    lock.unlock();
    release(std::move(idle));
    lock.lock();
  }

  // Reads the next frame's worth, as the reference does: 1 entry first (cheap
  // early termination), then as many as fit the output buffer's free room, and
  // nothing while more than one frame is unacknowledged. Lock held.
  void step(const std::shared_ptr<HostIterator>& iterator, bool first) {
    if (iterator->busy || iterator->closed || iterator->ended || iterator->pending_acks > 1) return;
    uint64_t size = iterator->budget();
    size_t reservation = 0;
    if (first) {
      size = std::min<uint64_t>(size, 1);
      iterator->read_ahead = false;
    } else {
      // The room left is shared by every iterator of the connection: read-aheads
      // still in flight have claimed part of it, or each would fill it alone.
      size_t room = output_.room();
      room = room > reserved_ ? room - reserved_ : 0;
      // One frame stays about as small as the reference's (its stream buffer
      // is 16 KiB): Node's guest takes entries with Array#shift, which turns
      // quadratic on arrays of more than ~16k items.
      room = std::min(room, options_.iterator_frame_bytes);
      size = std::min<uint64_t>(size, std::max<size_t>(16, std::max<size_t>(1, room) / iterator->max_item_length));
      size = std::min<uint64_t>(size, options_.iterator_frame_entries);
      reservation = static_cast<size_t>(size) * iterator->max_item_length;
      reserved_ += reservation;
      iterator->read_ahead = true;
    }
    iterator->busy = true;
    pool_.submit([self = shared_from_this(), iterator, size, reservation] {
      self->read(iterator, static_cast<size_t>(size), reservation);
    });
  }

  void start_seek(HostIterator& iterator, std::string target, uint32_t seq) {
    iterator.pending_seek.reset();
    iterator.ended = false;
    iterator.seq = seq;
    iterator.pending_acks = 0;
    // Entries sent before the seek but not consumed are dropped by the guest.
    iterator.sent = iterator.consumed;
    iterator.busy = true;
    auto shared = iterators_.at(iterator.id);
    pool_.submit([self = shared_from_this(), shared, target = std::move(target)] { self->seek(shared, target); });
  }

  void seek(const std::shared_ptr<HostIterator>& iterator, const std::string& target) {
    std::string error;
    try {
      if (iterator->narrowed) {
        // The range was cut at a bookmark; a seek may go anywhere in the whole range.
        iterator->iterator = db().iterator(iterator_options(*iterator, std::nullopt));
        iterator->narrowed = false;
      }
      iterator->iterator->seek(target);
    } catch (const std::exception& e) {
      error = wire_error_code(e);
    }
    std::unique_lock<std::mutex> lock(mutex_);
    iterator->busy = false;
    if (settle(lock, iterator)) return;
    if (!error.empty()) {
      send(protocol::IteratorError{iterator->id, iterator->seq, error});
      return;
    }
    step(iterator, true);
  }

  void read(const std::shared_ptr<HostIterator>& iterator, size_t size, size_t reservation) {
    std::vector<Entry> entries;
    std::string error;
    if (size > 0) {
      try {
        entries = iterator->iterator->nextv(size);
      } catch (const std::exception& e) {
        error = wire_error_code(e);
      }
    }
    std::unique_lock<std::mutex> lock(mutex_);
    iterator->busy = false;
    reserved_ -= std::min(reserved_, reservation);
    if (settle(lock, iterator)) return;
    if (!error.empty()) {
      send(protocol::IteratorError{iterator->id, iterator->seq, error});
    } else if (entries.empty()) {
      iterator->ended = true;
      send(protocol::IteratorEnd{iterator->id, iterator->seq});
    } else {
      size_t bytes = send_data(*iterator, entries);
      iterator->sent += entries.size();
      ++iterator->pending_acks;
      iterator->max_item_length = std::max(iterator->max_item_length, (bytes + entries.size() - 1) / entries.size());
      if (iterator->read_ahead) step(iterator, false);
    }
  }

  // After a worker hands an iterator back: releases it if it was closed
  // meanwhile, or runs the seek that waited for it. True if it did either.
  bool settle(std::unique_lock<std::mutex>& lock, const std::shared_ptr<HostIterator>& iterator) {
    if (iterator->closed) {
      std::vector<std::unique_ptr<Iterator>> idle;
      if (iterator->iterator) idle.push_back(std::move(iterator->iterator));
      lock.unlock();
      release(std::move(idle));
      return true;
    }
    if (iterator->pending_seek) {
      auto [target, seq] = std::move(*iterator->pending_seek);
      start_seek(*iterator, std::move(target), seq);
      return true;
    }
    return false;
  }

  size_t send_data(const HostIterator& iterator, const std::vector<Entry>& entries) {
    std::vector<std::string_view> data;
    bool keys = iterator.options.keys;
    bool values = iterator.options.values;
    data.reserve(entries.size() * (keys && values ? 2 : 1));
    for (const auto& entry : entries) {
      if (keys) data.push_back(entry.key);
      if (values) data.push_back(entry.value);
    }
    return write_frames(1, [&](std::string& out) { protocol::encode_iterator_data(out, iterator.id, iterator.seq, data); });
  }

  // Store iterators and snapshots are closed on a worker: closing one can
  // wait on its store.
  void release(std::vector<std::unique_ptr<Iterator>> idle) {
    if (idle.empty()) return;
    auto shared = std::make_shared<std::vector<std::unique_ptr<Iterator>>>(std::move(idle));
    pool_.submit([shared] {
      for (auto& iterator : *shared) iterator->close();
    });
  }

  void release(std::vector<std::shared_ptr<Snapshot>> snapshots) {
    if (snapshots.empty()) return;
    pool_.submit([snapshots = std::move(snapshots)] {
      for (const auto& snapshot : snapshots) snapshot->close();
    });
  }

  // ---- output --------------------------------------------------------------

  template <typename M>
  void send(const M& message) {
    write_frames(1, [&](std::string& out) { protocol::encode(out, message); });
  }

  // The replies of one run in one write: one wake of the transport, or one
  // direct send, for all of them rather than one each.
  void send_all(const std::vector<protocol::Callback>& replies) {
    if (replies.empty()) return;
    write_frames(replies.size(), [&](std::string& out) {
      for (const auto& reply : replies) protocol::encode(out, reply);
    });
  }

  // Every write to the output goes through here, so frames and bytes out are
  // counted in one place. Returns the bytes written.
  template <typename Encode>
  size_t write_frames(size_t frames, Encode&& encode) {
    size_t bytes = 0;
    output_.write([&](std::string& out) {
      size_t before = out.size();
      encode(out);
      bytes = out.size() - before;
    });
    frames_out_ += frames;
    bytes_out_ += bytes;
    return bytes;
  }

  static std::optional<std::string> optional_error(std::string code) {
    if (code.empty()) return std::nullopt;
    return code;
  }

  void fail(const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_.empty()) return;
      failure_ = why;
      has_failed_.store(true);
    }
    log("closing connection: " + why);
  }

  void log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }


  // The database this guest works on: the host's, or the sublevel its grant
  // confines it to. Set once, at admission, before any request is queued.
  Database& db() const { return *db_; }

  Database* db_;
  const HostOptions& options_;
  WorkerPool& pool_;
  const std::shared_ptr<HostContext> context_;
  const HostConnectionIdentity identity_;
  const HostAccess access_;
  protocol::FrameDecoder decoder_;  // used by the transport's thread only
  OutputBuffer output_;
  HostSnapshots snapshots_;  // has its own lock

  mutable std::mutex mutex_;
  std::deque<Request> queue_;
  bool draining_ = false;
  bool ended_ = false;
  std::string failure_;
  std::atomic<bool> has_failed_{false};  // failure_ is set
  std::atomic<size_t> pending_{0};       // changed under mutex_, read without it
  size_t reserved_ = 0;  // output bytes claimed by read-aheads in flight
  std::map<uint32_t, std::shared_ptr<HostIterator>> iterators_;
  bool extended_ = false;  // the guest said Hello
  // What the first frame decided (admit()); lock held.
  enum class Admission { waiting, admitted, refused };
  Admission admission_ = Admission::waiting;
  bool read_only_ = false;  // HostOptions::readonly, or the guest's grant
  bool confined_ = false;   // the grant confines it to a sublevel
  std::unique_ptr<HostWatches> watches_;  // from the first WatchRequest; uses mutex_
  std::atomic<uint64_t> frames_in_{0};
  std::atomic<uint64_t> frames_out_{0};
  std::atomic<uint64_t> bytes_out_{0};  // written by workers without the lock (send_all)
  uint64_t bytes_in_ = 0;
  uint64_t requests_ = 0;
  uint64_t malformed_ = 0;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/host/host_session.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

class Host {
 public:
  // `db` must outlive the host. The host opens it passively when a session
  // starts, as the reference does (db.open({ passive: true })): a database
  // that is closed stays closed and its requests fail with LEVEL_DATABASE_NOT_OPEN.
  explicit Host(Database& db, HostOptions options = {}, size_t worker_threads = WorkerPool::default_size())
      : db_(db), options_(std::move(options)), pool_(worker_threads), context_(std::make_shared<HostContext>(db)) {}

  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  // Ends every session still alive, so none can reach the database or the
  // pool after this; then the pool finishes the jobs already queued.
  ~Host() {
    for (auto& session : sessions()) session->end();
  }

  // A new session for one stream (many-level's createRpcStream). Hand it to
  // a transport; it ends when the stream does. `address` names the peer in
  // the host's statistics, e.g. an EventLoop's ConnectionInfo::peer.
  std::shared_ptr<HostSession> create_session(std::string address = {}) {
    return create_session(std::move(address), options_.access);
  }

  // The same with the access of one listener instead of HostOptions::access:
  // say, tokens on a TCP port and anonymous guests on a unix socket.
  std::shared_ptr<HostSession> create_session(std::string address, HostAccess access) {
    auto session = std::make_shared<HostSession>(db_, options_, pool_, context_, context_->accept(std::move(address)),
                                                 std::move(access));
    context_->add(session);
    return session;
  }

  // The same for a connection that an EventLoop accepted: named by its
  // ConnectionInfo's peer. (A template over anything with a `peer`, so that
  // the host does not pull in the POSIX event loop.)
  template <class Connection, class = decltype(std::string(std::declval<const Connection&>().peer))>
  std::shared_ptr<HostSession> create_session(const Connection& connection) {
    return create_session(std::string(connection.peer));
  }

  template <class Connection, class = decltype(std::string(std::declval<const Connection&>().peer))>
  std::shared_ptr<HostSession> create_session(const Connection& connection, HostAccess access) {
    return create_session(std::string(connection.peer), std::move(access));
  }

  // The sessions that are still alive, for introspection.
  std::vector<std::shared_ptr<HostSession>> sessions() const { return context_->connections<HostSession>(); }

  // Uptime, connections (every open one with its counters), the database
  // and its commit sequence: what a guest's HostStatsRequest is answered with.
  HostStats stats() const { return context_->stats(); }

  Database& database() { return db_; }
  const HostOptions& options() const { return options_; }

 private:
  Database& db_;
  HostOptions options_;
  WorkerPool pool_;
  std::shared_ptr<HostContext> context_;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/host/host.hpp ----
// ---- begin src/many_level/guest/guest.hpp ----
// A guest: a Database whose data lives behind a stream, on a host. The C++
// counterpart of many-level's ManyLevelGuest, wire-compatible with it.
//
// Concurrency: the Database methods block until the host answers; the
// *_async twins return at once (up to thousands may be in flight), either a
// std::future or, given a callback as their last argument, nothing: the
// callback gets the error or the result. Everything is thread-safe. Replies
// are processed on the thread that drives the stream's transport; futures
// are fulfilled and callbacks run there.
//
// Usage: construct, attach a stream with connect() (a transport pumps the
// returned Session), and use it like any database. Requests made before a
// stream is attached wait for it.
//
// The extension (docs/PROTOCOL.md): against a C++ host, has() and has_many()
// move no values, snapshot() makes a snapshot on the host, watch() follows
// the host's change feed and host_stats() reports on the host. The guest
// says Hello first on every stream and learns from the host's first answer
// whether it has the extension (host_extension()); against the Node
// reference, has() reads values instead and the rest fails with
// LEVEL_NOT_SUPPORTED. GuestOptions::extension = false sends nothing of it.

#include <future>

// ---- begin src/many_level/guest/await_reply.hpp ----
// How a blocking guest call waits for its reply: it polls the future for
// about one loopback round trip, yielding the core between looks, before it
// sleeps on it.
//
// Why: the reply is completed on the guest's I/O thread, and waking a thread
// that went to sleep costs, on an idle core (and more so in a VM), about as
// much as the round trip itself. Measured on the 2-core VM of
// docs/BENCHMARKS.md, sequential gets and puts against a C++ host on SQLite:
// 11,000 gets/s and 8,800 puts/s sleeping at once; 18,000-26,000 and
// 14,500-17,400 polling for up to 100 us first (20 us was too short to
// help, 200 us no better). Yielding rather than spinning leaves the core to
// the I/O threads when they need it. A reply slower than that costs the
// polling once, then the caller sleeps as before. The *_async calls never
// poll: their futures are the caller's to wait on.

MANY_LEVEL_NAMESPACE_BEGIN
namespace detail {

inline constexpr std::chrono::microseconds reply_poll_time{100};

template <typename T>
T await_reply(std::future<T>& future) {
  const auto until = std::chrono::steady_clock::now() + reply_poll_time;
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
  return future.get();
}

}  // namespace detail
MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/guest/await_reply.hpp ----
// ---- begin src/many_level/guest/guest_core.hpp ----
// The state a guest shares with its stream and its iterators: requests
// waiting for replies, remote iterators and their flow control, the one
// stream currently attached, and the extension (docs/PROTOCOL.md): its
// negotiation per stream, remote snapshots and remote watches. Shared
// ownership lets a stream or an iterator outlive the Guest object safely:
// once the guest is closed they only fail.
//
// Locking: the core's mutex guards requests, iterators, snapshots, watches
// and the stream; each iterator channel has its own mutex, always taken
// after the core's. No completion, watch callback or observer runs with
// either held.

// ---- begin src/many_level/guest/guest_options.hpp ----
// Options of a guest, as many-level's ManyLevelGuest takes them, plus the
// frame limit the reference lacks and the switch of the extension.

MANY_LEVEL_NAMESPACE_BEGIN

struct GuestOptions {
  // Keep unanswered requests and open iterators when the stream closes and
  // resume them on the next stream. Iterators then cannot promise snapshots.
  bool retry = false;

  // Default key and value encodings, as for any database.
  DatabaseOptions encodings;

  // A reply frame longer than this drops the stream (64 MiB by default).
  size_t max_frame_length = size_t{64} << 20;

  // Speak the extension (docs/PROTOCOL.md) with hosts that know it: say
  // Hello first on every stream. false: never send Hello, and behave exactly
  // as the reference guest (snapshot(), watch() and host_stats() then fail
  // with LEVEL_NOT_SUPPORTED).
  bool extension = true;

  // The token a host that authenticates asks for (docs/SECURITY.md), sent in
  // the Hello of every stream; needs the extension. Read it from a file or
  // the environment (the many-level program: --token-file, MANY_LEVEL_TOKEN),
  // never from a command line, which other users of the machine can see.
  std::optional<std::string> token;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/guest/guest_options.hpp ----
// ---- begin src/many_level/guest/guest_snapshot.hpp ----
// A guest's explicit snapshot: a slot on the host, named by an id the guest
// chose (as for iterators) and opened by a SnapshotRequest. Reads that name
// it carry the id (the `snapshot` field of Get, GetMany, Has and Iterator);
// close() releases it. A host releases every snapshot of a stream when the
// stream ends, so after a reconnect the snapshot is gone: reads that name it
// fail with LEVEL_SNAPSHOT_NOT_OPEN, and the guest never sends its id again
// (another snapshot may have it on the new stream).

// ---- begin src/many_level/guest/id_allocator.hpp ----
// Request and iterator ids for one guest. Ids start at 1 and wrap after
// 0xffffffff like the reference's, but never hand out an id still in use
// (the reference does not check, so a long-lived guest could mix up replies).

MANY_LEVEL_NAMESPACE_BEGIN

class IdAllocator {
 public:
  // `last` is the id handed out last (0: none yet); tests start near the wrap.
  explicit IdAllocator(uint32_t last = 0) : last_(last) {}

  // `in_use(id)` tells whether an id is still taken.
  template <typename InUse>
  uint32_t next(InUse&& in_use) {
    for (uint64_t tries = 0; tries < UINT32_MAX; ++tries) {
      last_ = last_ == UINT32_MAX ? 1 : last_ + 1;
      if (!in_use(last_)) return last_;
    }
    throw Error(codes::not_supported, "every request id is in use");
  }

  // Restarts at 1, as the reference does once nothing is pending.
  void reset() { last_ = 0; }

 private:
  uint32_t last_ = 0;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/guest/id_allocator.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

// The guest's record of one snapshot, guarded by GuestCore's lock.
struct SnapshotSlot {
  uint32_t id = 0;
  bool open = false;      // the host made it (its Callback came)
  bool lost = false;      // its stream ended
  bool released = false;  // close() was called
  uint64_t stream = 0;    // the stream (GuestCore's connect count) it lives on
};

struct GuestSnapshotInfo {
  uint32_t id = 0;
  bool open = false;  // false once lost with its stream
};

// Every snapshot a guest holds, by id. Bookkeeping only: GuestCore calls it
// with its lock held and does the sending.
class SnapshotTable {
 public:
  // A new slot with a free id, for a SnapshotRequest about to go out.
  std::shared_ptr<SnapshotSlot> reserve() {
    auto slot = std::make_shared<SnapshotSlot>();
    slot->id = ids_.next([&](uint32_t id) { return slots_.count(id) > 0; });
    slots_[slot->id] = slot;
    return slot;
  }

  // The host made it, on stream `stream`.
  static void opened(SnapshotSlot& slot, uint64_t stream) {
    slot.open = true;
    slot.stream = stream;
  }

  // Frees the slot's id: refused by the host, or closed. A lost slot keeps
  // its id until closed, so that its reads can never name another snapshot.
  void forget(const SnapshotSlot& slot) {
    auto found = slots_.find(slot.id);
    if (found != slots_.end() && found->second.get() == &slot) slots_.erase(found);
  }

  // close(): true when the host still holds it on `current`, so a release must go.
  bool release(SnapshotSlot& slot, uint64_t current) {
    if (slot.released) return false;
    slot.released = true;
    forget(slot);
    return slot.open && !slot.lost && slot.stream == current;
  }

  // The stream ended: the host released them all.
  void lose_all() {
    for (auto& [id, slot] : slots_) slot->lost = true;
  }

  // Why a read at `slot` cannot go out on stream `current` (nullptr: it can).
  static const char* unusable(const SnapshotSlot& slot, uint64_t current) {
    if (slot.released) return "Snapshot is not open";
    if (slot.lost || slot.stream != current) return "The snapshot was lost with the connection to the host";
    return nullptr;
  }

  std::vector<GuestSnapshotInfo> info() const {
    std::vector<GuestSnapshotInfo> out;
    for (const auto& [id, slot] : slots_) {
      if (slot->open) out.push_back({id, !slot->lost});
    }
    return out;
  }

  // Forgets everything (the guest closed).
  void clear() { slots_.clear(); }

 private:
  IdAllocator ids_;
  std::map<uint32_t, std::shared_ptr<SnapshotSlot>> slots_;
};

class GuestSnapshot final : public Snapshot {
 public:
  // `owner` is the guest that made it (reads go through it: it knows the
  // stream); `release` tells the core it is closed.
  GuestSnapshot(Database& owner, std::shared_ptr<SnapshotSlot> slot, std::function<void()> release)
      : owner_(owner), slot_(std::move(slot)), release_(std::move(release)) {}

  ~GuestSnapshot() override { close(); }

  uint32_t id() const { return slot_->id; }
  const std::shared_ptr<SnapshotSlot>& slot() const { return slot_; }
  // Whether `database` is the guest that made it.
  bool made_by(const Database& database) const { return &owner_ == &database; }

 protected:
  // Reached only if a caller bypasses the guest's routing of reads at a
  // snapshot; they go through it all the same.
  std::optional<std::string> do_get(std::string_view key) override { return owner_.try_get(key, at()); }
  std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) override {
    return owner_.get_many(keys, at());
  }
  std::vector<bool> do_has_many(const std::vector<std::string>& keys) override { return owner_.has_many(keys, at()); }
  std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                        std::shared_ptr<const Encoding> key_encoding,
                                        std::shared_ptr<const Encoding> value_encoding) override {
    IteratorOptions inner = PrefixedIterator::inner_options(options, options);
    inner.snapshot = self();
    return std::make_unique<PrefixedIterator>(owner_.iterator(inner), "", options, std::move(key_encoding),
                                              std::move(value_encoding));
  }
  void do_close() override {
    if (release_) release_();
  }

 private:
  // Reads name the snapshot by shared_ptr; a non-owning one to this object,
  // which the caller of the read holds for its duration.
  std::shared_ptr<Snapshot> self() { return std::shared_ptr<Snapshot>(std::shared_ptr<Snapshot>(), this); }
  ReadOptions at() {
    ReadOptions options{"buffer", "buffer"};
    options.snapshot = self();
    return options;
  }

  Database& owner_;
  std::shared_ptr<SnapshotSlot> slot_;
  std::function<void()> release_;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/guest/guest_snapshot.hpp ----
// ---- begin src/many_level/guest/guest_stats.hpp ----
// What a guest reports about itself (Guest::stats()), for monitoring and the
// Inspector: its stream, the requests waiting for replies, its iterators, and
// the extension: the host's answer, its watches and its snapshots.

// ---- begin src/many_level/guest/guest_watch.hpp ----
// A guest's watch: the host's change feed for a key range, over the wire. The
// guest picks the watch's id, sends WatchRequest{range, since}, and the host
// answers WatchStarted{seq}, then WatchData frames of commits, or a
// WatchError. Each frame's commits go to the callback in order, on the
// stream's thread with no lock of the guest held; then one WatchAck tells
// the host the frame is consumed (it sends nothing more to a watch with two
// frames unacknowledged, so a slow callback slows its own watch only).
//
// Exactly once across reconnects (retry): the seq of the last commit given to
// the callback is where the next stream's WatchRequest resumes (`since`).
// Since a frame is delivered whole on the thread that received it, before
// that stream can end, nothing is received and then dropped half done: the
// host sends the rest again after `since`.

MANY_LEVEL_NAMESPACE_BEGIN

// One remote watch's receiving end. All but `seq` is guarded by GuestCore's lock.
struct WatchChannel {
  uint32_t id = 0;
  protocol::WatchRange range;
  WatchCallback callback;  // set once, called without any lock

  // The last commit delivered (or where the host started the watch): what a
  // resume asks for. Written under GuestCore's lock, read by seq() without it.
  std::atomic<uint64_t> seq{0};
  bool seq_known = false;  // `since` was given, or WatchStarted came
  uint64_t stream = 0;     // the stream (GuestCore's connect count) its request last went out on
  bool started = false;    // WatchStarted came on that stream
  uint64_t commits = 0;    // delivered
  size_t unacknowledged_frames = 0;  // received and not yet acknowledged
  bool errored = false;    // an error went to the callback: the watch is over
  bool closed = false;     // close() was called

  // Whether the channel still wants frames of stream `current`.
  bool live_on(uint64_t current) const { return !closed && !errored && stream == current && started; }

  protocol::WatchRequest request() const {
    protocol::WatchRequest request;
    request.id = id;
    request.range = range;
    if (seq_known) request.since = seq.load(std::memory_order_relaxed);
    return request;
  }
};

struct GuestWatchInfo {
  uint32_t id = 0;
  uint64_t seq = 0;
  uint64_t commits = 0;
  size_t unacknowledged_frames = 0;
  bool errored = false;
};

// Every watch a guest holds, by id. Bookkeeping only: GuestCore calls it with
// its lock held and does the sending and the calling.
class WatchTable {
 public:
  std::shared_ptr<WatchChannel> open(protocol::WatchRange range, std::optional<uint64_t> since,
                                     WatchCallback callback) {
    auto channel = std::make_shared<WatchChannel>();
    channel->id = ids_.next([&](uint32_t id) { return channels_.count(id) > 0; });
    channel->range = std::move(range);
    channel->callback = std::move(callback);
    if (since) {
      channel->seq.store(*since, std::memory_order_relaxed);
      channel->seq_known = true;
    }
    channels_[channel->id] = channel;
    return channel;
  }

  std::shared_ptr<WatchChannel> find(uint32_t id) const {
    auto found = channels_.find(id);
    return found == channels_.end() ? nullptr : found->second;
  }

  // Frees the watch's id (close()). An errored watch keeps it until then.
  void forget(const WatchChannel& channel) {
    auto found = channels_.find(channel.id);
    if (found != channels_.end() && found->second.get() == &channel) channels_.erase(found);
  }

  // Ends every watch `matching` that is still running; returns them, for
  // their callbacks to be told why (outside the lock).
  template <typename Matching>
  std::vector<std::shared_ptr<WatchChannel>> fail(Matching&& matching) {
    std::vector<std::shared_ptr<WatchChannel>> failed;
    for (auto& [id, channel] : channels_) {
      if (channel->closed || channel->errored || !matching(*channel)) continue;
      channel->errored = true;
      failed.push_back(channel);
    }
    return failed;
  }

  // The watches a new stream must (re)start.
  std::vector<std::shared_ptr<WatchChannel>> running() const {
    std::vector<std::shared_ptr<WatchChannel>> out;
    for (const auto& [id, channel] : channels_) {
      if (!channel->closed && !channel->errored) out.push_back(channel);
    }
    return out;
  }

  std::vector<GuestWatchInfo> info() const {
    std::vector<GuestWatchInfo> out;
    for (const auto& [id, channel] : channels_) {
      out.push_back({id, channel->seq.load(std::memory_order_relaxed), channel->commits,
                     channel->unacknowledged_frames, channel->errored});
    }
    return out;
  }

  // Stops every watch for good (the guest closed): no more deliveries.
  void close_all() {
    for (auto& [id, channel] : channels_) channel->closed = true;
    channels_.clear();
  }

 private:
  IdAllocator ids_;
  std::map<uint32_t, std::shared_ptr<WatchChannel>> channels_;
};

// What a WatchError's code means, for the callback's Error.
inline std::string watch_error_message(std::string_view code, uint64_t seq) {
  if (code == codes::watch_too_old) {
    return "the host's change history no longer holds the commits after sequence " + std::to_string(seq) +
           " (or it is newer than the host's): reload, then watch again";
  }
  if (code == codes::not_supported) return "the host's database has no change feed";
  if (code == codes::limit_reached) return "the host refused the watch: this connection has too many";
  return "the watch failed on the host";
}

// A commit as it travels, as watchers see it.
inline Commit to_commit(protocol::Commit&& wire) {
  Commit commit;
  commit.seq = wire.seq;
  commit.operations.reserve(wire.ops.size());
  for (auto& op : wire.ops) {
    if (op.type == protocol::BatchOp::Type::put) {
      commit.operations.push_back(BatchOperation::put(std::move(op.key), op.value ? std::move(*op.value) : ""));
    } else {
      commit.operations.push_back(BatchOperation::del(std::move(op.key)));
    }
  }
  return commit;
}

// What do_watch() returns; Database::watch() wraps it in the gate that keeps
// watch.hpp's promises (no call after close() returns, one error at most).
class GuestWatch final : public Watch {
 public:
  // `close` tells the core (which sends WatchClose if the host still has it).
  GuestWatch(std::shared_ptr<WatchChannel> channel, std::function<void()> close)
      : channel_(std::move(channel)), close_(std::move(close)) {}

  ~GuestWatch() override { close(); }

  void close() override { std::call_once(closed_, [this] { close_(); }); }

  uint64_t seq() const override { return channel_->seq.load(std::memory_order_acquire); }

  uint32_t id() const { return channel_->id; }

 private:
  std::shared_ptr<WatchChannel> channel_;
  std::function<void()> close_;
  std::once_flag closed_;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/guest/guest_watch.hpp ----
// ---- begin src/many_level/guest/negotiation.hpp ----
// Whether the host of a guest's stream speaks the extension (docs/PROTOCOL.md,
// "Negotiation"). The guest says Hello first on every stream and goes on at
// once; the host's first answer tells: a HelloReply (a C++ host), or a base
// reply (the Node reference, which ignores Hello). Order is the signal, so
// nothing waits and nothing times out.
//
// Negotiation is only the state of one stream; GuestCore guards it with its
// lock and acts on what it reports (sends the probe, fails what waits).

MANY_LEVEL_NAMESPACE_BEGIN

enum class HostExtension {
  unknown,      // the host has not answered anything on this stream yet
  available,    // it answered Hello: a C++ host
  unavailable,  // a base reply came first (the Node reference), or the guest's extension is off
};

inline const char* to_string(HostExtension extension) {
  switch (extension) {
    case HostExtension::unknown: return "unknown";
    case HostExtension::available: return "available";
    case HostExtension::unavailable: return "unavailable";
  }
  return "unknown";
}

// The features of the extension's version 1, as Hello and HelloReply name them.
namespace features {
inline constexpr const char* has = "has";
inline constexpr const char* snapshots = "snapshots";
inline constexpr const char* watch = "watch";
inline constexpr const char* stats = "stats";
}  // namespace features

class Negotiation {
 public:
  static constexpr uint32_t version = 1;

  explicit Negotiation(bool enabled)
      : enabled_(enabled), state_(enabled ? HostExtension::unknown : HostExtension::unavailable) {}

  bool enabled() const { return enabled_; }

  // A new stream: nothing is known of its host.
  void begin_stream() {
    set(enabled_ ? HostExtension::unknown : HostExtension::unavailable);
    features_.clear();
    refused_.clear();
    grant_.clear();
    confined_ = false;
    probed_ = false;
    probe_.reset();
  }

  // The first frame of every stream (only when enabled), with the guest's
  // token for a host that authenticates.
  static protocol::Hello hello(std::optional<std::string> token = std::nullopt) {
    protocol::Hello hello;
    hello.version = version;
    hello.features = {features::has, features::snapshots, features::watch, features::stats};
    hello.token = std::move(token);
    return hello;
  }

  // A HelloReply; true when it settled the stream. One that comes after a
  // base reply is ignored: the stream was settled by then.
  bool on_hello_reply(const protocol::HelloReply& reply) {
    if (state() != HostExtension::unknown) return false;
    if (reply.error && !reply.error->empty()) {
      refused_ = *reply.error;
      set(HostExtension::unavailable);
      return true;
    }
    features_ = reply.features;
    grant_ = reply.grant.value_or("");
    confined_ = reply.confined;
    set(HostExtension::available);
    return true;
  }

  // What the host's HelloReply said this guest may do: "read-only",
  // "read-write", or "" (a host that did not say: a Node host, or none yet).
  const std::string& grant() const { return grant_; }

  // Set when the host's HelloReply refused this guest (a host that
  // authenticates, and no token it accepts): its code, explained.
  std::optional<Error> refusal() const {
    if (refused_.empty()) return std::nullopt;
    std::string why = explain(refused_);
    return Error(refused_, why.empty() ? "the host refused this guest" : why);
  }

  // A message that says why the host refused a request with `code`, from
  // what it said in its HelloReply; "" when there is nothing to add.
  std::string explain(std::string_view code) const {
    if (code == codes::readonly && grant_ == "read-only") {
      return "this guest's grant on the host is read-only: nothing was written";
    }
    if (code == codes::unauthenticated) {
      return "the host requires a token it accepts (GuestOptions::token; many-level: --token-file or "
             "MANY_LEVEL_TOKEN) and refused this guest";
    }
    if (code == codes::access_denied) {
      return std::string("this guest's grant does not allow it") + (confined_ ? " (it is confined to a sublevel)" : "");
    }
    return {};
  }

  // A base reply; true when it settled the stream: no HelloReply came
  // before it, so the host does not know the extension.
  bool on_base_reply() {
    if (state() != HostExtension::unknown) return false;
    set(HostExtension::unavailable);
    return true;
  }

  // Readable without the core's lock (the reply path checks it per frame).
  HostExtension state() const { return state_.load(std::memory_order_acquire); }

  std::vector<std::string> features() const {
    return state() == HostExtension::available ? features_ : std::vector<std::string>{};
  }

  bool offers(std::string_view feature) const {
    return state() == HostExtension::available &&
           std::find(features_.begin(), features_.end(), feature) != features_.end();
  }

  // Why a request for `feature` must fail at once; nullopt: send it (while
  // unknown, the host's answer or the probe's will settle it).
  std::optional<Error> refusal(std::string_view feature) const {
    switch (state()) {
      case HostExtension::unknown: return std::nullopt;
      case HostExtension::available:
        if (offers(feature)) return std::nullopt;
        return Error(codes::not_supported, missing_feature(feature));
      case HostExtension::unavailable: return Error(codes::not_supported, unavailable_reason());
    }
    return std::nullopt;
  }

  // What the guest says to the extension requests still waiting when the
  // stream turns out to be base.
  std::string unavailable_reason() const {
    if (!enabled_) return "the guest's extension is off (GuestOptions::extension)";
    if (!refused_.empty()) return "the host refused the extension (" + refused_ + ")";
    return "the host has no extension (a Node many-level host?)";
  }

  // ---- the probe: an empty GetMany behind the first extension request of a
  // stream whose host has not answered yet, so that a reference host (which
  // ignores extension requests) surely answers something.
  bool needs_probe() const { return state() == HostExtension::unknown && !probed_; }
  void probe_sent(uint32_t id) {
    probed_ = true;
    probe_ = id;
  }
  bool probe_in_flight(uint32_t id) const { return probe_ && *probe_ == id; }
  // The probe's reply, which no caller sees.
  bool take_probe_reply(uint32_t id) {
    if (!probe_in_flight(id)) return false;
    probe_.reset();
    return true;
  }

 private:
  static std::string missing_feature(std::string_view feature) {
    if (feature == features::snapshots) return "the host's database has no explicit snapshots";
    if (feature == features::watch) return "the host's database has no change feed";
    return "the host does not offer '" + std::string(feature) + "'";
  }

  void set(HostExtension state) { state_.store(state, std::memory_order_release); }

  const bool enabled_;
  std::atomic<HostExtension> state_;
  std::vector<std::string> features_;
  std::string refused_;  // HelloReply.error
  std::string grant_;    // HelloReply.grant
  bool confined_ = false;
  bool probed_ = false;  // the probe went out on this stream
  std::optional<uint32_t> probe_;  // its request id, until answered
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/guest/negotiation.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

struct PendingRequestInfo {
  uint32_t id = 0;
  const char* operation = "";
  std::string key;
  std::chrono::steady_clock::duration age{};
};

struct GuestIteratorInfo {
  uint32_t id = 0;
  uint32_t seq = 0;
  uint64_t consumed = 0;
  size_t buffered_entries = 0;
  size_t unacknowledged_frames = 0;
  bool ended = false;
  bool errored = false;
  bool reverse = false;
  int64_t limit = -1;
};

struct GuestStats {
  bool connected = false;
  uint64_t connects = 0;
  uint64_t disconnects = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  std::vector<PendingRequestInfo> pending;
  std::vector<GuestIteratorInfo> iterators;
  // The extension, for the current stream (or the last one).
  HostExtension extension = HostExtension::unknown;
  std::vector<std::string> features;  // what the host offered; empty unless available
  std::vector<GuestWatchInfo> watches;
  std::vector<GuestSnapshotInfo> snapshots;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/guest/guest_stats.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

// What a request gets back: a host reply, or a local failure (connection
// lost, aborted by close) as an error code with a message.
struct Reply {
  std::optional<std::string> error;  // a LEVEL_* code
  std::string message;               // for local failures
  std::optional<std::string> value;  // Callback.value
  std::vector<std::optional<std::string>> values;  // GetManyCallback.values
  std::optional<std::string> found;                // HasCallback.found
  std::optional<HostStats> host_stats;             // HostStatsReply.stats
  std::shared_ptr<SnapshotSlot> snapshot;          // what a SnapshotRequest opened
};

// What a request is beyond its message.
struct RequestScope {
  // An extension request: refused at once while the host has no extension
  // (or lacks this feature), and failed with LEVEL_NOT_SUPPORTED if the
  // stream turns out to be base while it waits.
  const char* feature = nullptr;
  // A read at this snapshot: refused once the snapshot is closed or lost,
  // and failed (never re-sent) when its stream ends.
  std::shared_ptr<SnapshotSlot> at;
};

enum class FrameDirection { in, out };

// One remote iterator's receiving end.
struct IteratorChannel {
  uint32_t id = 0;
  protocol::IteratorOptions options;

  std::mutex mutex;
  std::condition_variable changed;
  uint32_t seq = 0;
  uint64_t consumed = 0;
  std::optional<std::string> bookmark;     // last key yielded (retry only)
  std::optional<std::string> seek_target;  // a seek whose result is not consumed yet
  std::deque<std::vector<std::string>> frames;  // received, not yet consumed
  size_t offset = 0;                            // items consumed of frames.front()
  bool ended = false;
  std::optional<Error> error;
  // The stream (GuestCore's connect count) that last got this iterator's
  // state in an Iterator request; an ack or seek made before a newer stream
  // was attached is already carried by that stream's request.
  uint64_t stream = 0;
  // Reads at this snapshot (the extension); it cannot resume on another stream.
  std::shared_ptr<SnapshotSlot> at;

  size_t buffered_entries() const {
    size_t items = 0;
    for (const auto& frame : frames) items += frame.size();
    items -= offset;
    size_t per_entry = options.keys && options.values ? 2 : 1;
    return items / per_entry;
  }
};

class GuestCore;

namespace detail {
// The core whose frames this thread is delivering right now, if any: a call
// made from a callback must not wait for a frame this very thread delivers.
inline const GuestCore*& delivering_core() {
  static thread_local const GuestCore* core = nullptr;
  return core;
}
}  // namespace detail

// The stream side of a guest: what a transport drives.
class GuestConnection final : public Session {
 public:
  GuestConnection(std::shared_ptr<GuestCore> core, size_t max_frame_length)
      : core_(std::move(core)), decoder_(max_frame_length) {}

  inline void receive(const char* data, size_t size) override;
  inline void end() override;
  OutputBuffer& output() override { return output_; }

  std::string failed() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return failure_;
  }

  // Asks the transport to close the stream (a close() of the guest, or the
  // Inspector's "drop connection" button).
  void drop(const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (failure_.empty()) failure_ = why;
    }
    output_.wake();
  }

 private:
  std::shared_ptr<GuestCore> core_;
  protocol::FrameDecoder decoder_;  // transport thread only
  OutputBuffer output_{SIZE_MAX};   // requests are bounded by the caller, not here
  mutable std::mutex mutex_;
  std::string failure_;
};

class GuestCore : public std::enable_shared_from_this<GuestCore> {
 public:
  using Completion = std::function<void(Reply)>;
  using FrameObserver = std::function<void(FrameDirection, std::string_view payload)>;

  explicit GuestCore(GuestOptions options) : options_(std::move(options)), negotiation_(options_.extension) {}

  bool retry() const { return options_.retry; }

  // Sends a request (now, or when a stream is attached) and calls `done` with
  // its reply, on the thread that receives it; or at once with the reason it
  // cannot go (see RequestScope).
  template <typename M>
  void request(M message, std::string key_for_stats, Completion done, RequestScope scope = {}) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (auto refused = refusal_locked(scope)) {
      lock.unlock();
      done(std::move(*refused));
      return;
    }
    message.id = next_request_id_locked();
    Pending pending = pending_locked(M::tag, std::move(key_for_stats), std::move(done), std::move(scope));
    if constexpr (std::is_same_v<M, protocol::SnapshotRequest>) {
      pending.opens = snapshots_.reserve();
      message.snapshot = pending.opens->id;
    }
    protocol::encode(pending.frame, message);
    enqueue_locked(message.id, std::move(pending));
  }

  // has / hasMany: a HasRequest when this stream's host offers it, else a
  // GetMany, whose values only tell presence (what the reference host can
  // answer). Decided under the lock, for the stream it goes out on; on a
  // later stream, whose host is not known yet, it is re-sent as the GetMany.
  void request_has(std::vector<std::string> keys, std::string key_for_stats, Completion done,
                   std::shared_ptr<SnapshotSlot> at) {
    RequestScope scope;
    scope.at = std::move(at);
    std::unique_lock<std::mutex> lock(mutex_);
    if (auto refused = refusal_locked(scope)) {
      lock.unlock();
      done(std::move(*refused));
      return;
    }
    const uint32_t id = next_request_id_locked();
    const auto snapshot = scope.at ? std::optional<uint32_t>(scope.at->id) : std::nullopt;
    Pending pending = pending_locked(protocol::HasRequest::tag, std::move(key_for_stats), std::move(done),
                                     std::move(scope));
    if (connection_ && negotiation_.offers(features::has)) {
      if (options_.retry && !snapshot) protocol::encode(pending.frame, protocol::GetManyRequest{id, keys, snapshot});
      std::string has;
      protocol::encode(has, protocol::HasRequest{id, std::move(keys), snapshot});
      enqueue_locked(id, std::move(pending), &has);
    } else {
      protocol::encode(pending.frame, protocol::GetManyRequest{id, std::move(keys), snapshot});
      enqueue_locked(id, std::move(pending));
    }
  }

  std::shared_ptr<IteratorChannel> open_iterator(const protocol::IteratorOptions& options,
                                                 std::shared_ptr<SnapshotSlot> at = nullptr) {
    auto channel = std::make_shared<IteratorChannel>();
    channel->options = options;
    // A retrying guest needs keys to know where to resume.
    if (options_.retry) channel->options.keys = true;
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) throw Error(codes::database_not_open, "Database is not open");
    if (at) {
      if (const char* why = SnapshotTable::unusable(*at, connects_)) throw Error(codes::snapshot_not_open, why);
    }
    channel->at = std::move(at);
    channel->id = iterator_ids_.next([&](uint32_t id) { return iterators_.count(id) > 0; });
    channel->stream = connects_;
    iterators_[channel->id] = channel;
    std::string frame;
    protocol::encode(frame, iterator_request(*channel));
    send_locked(frame);
    return channel;
  }

  // Acks and seeks go out only on the current stream: on a new stream the
  // iterator request itself carries the state they would have told. So one
  // made (under the channel's lock) while `stream` was current is dropped
  // once a newer stream is attached: re-sending a seek there would make the
  // host answer it twice, and the guest yield its entries twice.
  template <typename M>
  void send_control(const M& message, const IteratorChannel& channel, uint64_t stream) {
    std::string frame;
    protocol::encode(frame, message);
    std::lock_guard<std::mutex> lock(mutex_);
    if (channel.stream != stream) return;  // written only with mutex_ held
    send_locked(frame);
  }

  // Forgets an iterator; `channel` guards against an id that was forgotten
  // (stream lost) and has since been handed to another iterator.
  void close_iterator(uint32_t id, const IteratorChannel* channel = nullptr) {
    std::function<void()> flushed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto found = iterators_.find(id);
      if (found == iterators_.end() || (channel && found->second.get() != channel)) return;
      iterators_.erase(found);
      send_encoded_locked(protocol::IteratorClose{id});
      flushed = flushed_callback_locked();
    }
    if (flushed) flushed();
  }

  // ---- the extension: snapshots and watches ------------------------------

  // A snapshot's close(): the host releases it, after the reads sent before.
  void release_snapshot(SnapshotSlot& slot) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (snapshots_.release(slot, connects_) && connection_) send_encoded_locked(protocol::SnapshotRelease{slot.id});
  }

  // Starts a watch: its request goes out now, or on the next stream. Throws
  // LEVEL_NOT_SUPPORTED at once when this stream's host has no change feed
  // (while that is not known yet, the callback gets it, as it gets every
  // refusal of the host). With a stream attached, it returns once the host
  // said where the watch starts (or refused it): seq() is then a point to
  // resume from, as a local watch's is. Not from the stream's own thread
  // (a callback), which would deliver that answer: that returns at once.
  std::shared_ptr<WatchChannel> open_watch(protocol::WatchRange range, std::optional<uint64_t> since,
                                           WatchCallback callback) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (closed_) throw Error(codes::database_not_open, "Database is not open");
    if (auto refused = negotiation_.refusal(features::watch)) throw *refused;
    auto channel = watches_.open(std::move(range), since, std::move(callback));
    if (!connection_) return channel;
    send_encoded_locked(channel->request());
    const uint64_t stream = channel->stream = connects_;
    probe_locked();
    if (detail::delivering_core() != this) {
      watch_settled_.wait(lock, [&] {
        return channel->started || channel->errored || channel->closed || closed_ || connects_ != stream ||
               !connection_;
      });
    }
    return channel;
  }

  // A watch's close(): the host stops it, if it still has it.
  void close_watch(WatchChannel& channel) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (channel.closed) return;
    channel.closed = true;
    watch_settled_.notify_all();
    watches_.forget(channel);
    if (!channel.errored && connection_ && channel.stream == connects_) {
      send_encoded_locked(protocol::WatchClose{channel.id});
    }
  }

  HostExtension host_extension() const { return negotiation_.state(); }

  std::vector<std::string> host_features() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return negotiation_.features();
  }

  std::string host_grant() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return negotiation_.grant();
  }

  std::optional<Error> host_refusal() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return negotiation_.refusal();
  }

  // ---- streams -------------------------------------------------------------

  // Attaches a new stream (many-level's createRpcStream / connect) and sends
  // everything that waits: Hello first, then unsent or (with retry)
  // unanswered requests, a request for every open iterator, resuming where
  // it was, and one for every running watch, resuming after the last commit
  // it delivered.
  std::shared_ptr<GuestConnection> connect() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) throw Error(codes::database_not_open, "Database is not open");
    if (connection_) throw Error(codes::not_supported, "Only one rpc stream can be active");
    connection_ = std::make_shared<GuestConnection>(shared_from_this(), options_.max_frame_length);
    ++connects_;
    negotiation_.begin_stream();
    // First, so that a C++ host answers it before any other reply.
    if (negotiation_.enabled()) send_encoded_locked(Negotiation::hello(options_.token), SendMode::queued);
    bool extension_sent = false;
    for (auto& [id, pending] : requests_) {
      if (!pending.frame.empty()) {
        send_locked(pending.frame, SendMode::queued);
        extension_sent = extension_sent || pending.extension;
      }
      if (!options_.retry) {
        pending.frame.clear();
      }
    }
    for (auto& [id, channel] : iterators_) {
      std::string frame;
      {
        std::lock_guard<std::mutex> channel_lock(channel->mutex);
        protocol::encode(frame, iterator_request(*channel));
        channel->stream = connects_;
      }
      send_locked(frame, SendMode::queued);
    }
    for (auto& watch : watches_.running()) {
      send_encoded_locked(watch->request(), SendMode::queued);
      watch->stream = connects_;
      watch->started = false;
      extension_sent = true;
    }
    if (extension_sent) probe_locked();
    return connection_;
  }

  // The attached stream ended, and with it the host's snapshots of it. With
  // retry, everything else waits for the next one (but reads at a snapshot,
  // which fail); without, everything in flight fails with
  // LEVEL_CONNECTION_LOST, and so do watches.
  void stream_ended(GuestConnection* connection) {
    std::vector<Completion> failed;
    std::vector<Completion> lost_snapshot_reads;
    std::vector<std::shared_ptr<WatchChannel>> lost_watches;
    bool forgot = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (connection_.get() != connection) return;
      connection_.reset();
      ++disconnects_;
      watch_settled_.notify_all();
      snapshots_.lose_all();
      if (options_.retry) {
        lost_snapshot_reads = take_requests_locked([](const Pending& pending) { return pending.at != nullptr; });
        for (auto it = iterators_.begin(); it != iterators_.end();) {
          if (it->second->at) {
            lose_snapshot(*it->second);
            it = iterators_.erase(it);
            forgot = true;
          } else {
            forget_unconsumed(*it->second);
            ++it;
          }
        }
        forgot = forgot || !lost_snapshot_reads.empty();
      } else {
        failed = take_requests_locked([](const Pending&) { return true; });
        fail_iterators_locked(Error(codes::connection_lost, "Connection to host lost"));
        // Forgotten, as the reference's abort does: a failed iterator must not
        // be re-sent on the next stream, nor keep the guest from being flushed.
        iterators_.clear();
        lost_watches = watches_.fail([](const WatchChannel&) { return true; });
        forgot = true;
      }
    }
    for (auto& done : lost_snapshot_reads) done(local_failure(codes::snapshot_not_open, snapshot_lost));
    for (auto& done : failed) done(local_failure(codes::connection_lost, "Connection to host lost"));
    tell(lost_watches, Error(codes::connection_lost, "Connection to host lost"));
    if (forgot) notify_flushed();
  }

  // Frames from the host.
  void deliver(protocol::HostMessage& message) {
    // Order is the signal: a base reply before any HelloReply means this
    // stream's host knows no extension.
    if (message.index() < protocol::base_host_messages && negotiation_.state() == HostExtension::unknown) {
      settle([&] { return negotiation_.on_base_reply(); });
    }
    std::visit([this](auto& m) { on_reply(m); }, message);
  }

  // Aborts everything (close of the guest) and drops the stream. Watches
  // stop here; Database::close() then tells their callbacks.
  void shutdown() {
    std::vector<Completion> aborted;
    std::shared_ptr<GuestConnection> connection;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return;
      closed_ = true;
      aborted = take_requests_locked([](const Pending&) { return true; });
      fail_iterators_locked(Error(codes::database_not_open, "Aborted on database close()"));
      iterators_.clear();
      watches_.close_all();
      watch_settled_.notify_all();
      snapshots_.clear();
      connection = std::move(connection_);
    }
    for (auto& done : aborted) done(local_failure(codes::database_not_open, "Aborted on database close()"));
    if (connection) connection->drop("guest closed");
  }

  // Drops the attached stream on purpose; with retry the guest resumes on
  // the next one. Returns false when no stream is attached.
  bool drop_connection(const std::string& why) {
    std::shared_ptr<GuestConnection> connection;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      connection = connection_;
    }
    if (!connection) return false;
    connection->drop(why);
    return true;
  }

  bool is_flushed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_.empty() && iterators_.empty();
  }

  void on_flush(std::function<void()> listener) {
    std::lock_guard<std::mutex> lock(mutex_);
    flush_listener_ = std::move(listener);
  }

  void set_frame_observer(FrameObserver observer) {
    std::lock_guard<std::mutex> lock(mutex_);
    observer_ = std::make_shared<FrameObserver>(std::move(observer));
  }

  void observe(FrameDirection direction, std::string_view payload) {
    std::shared_ptr<FrameObserver> observer;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      observer = observer_;
      if (direction == FrameDirection::in) {
        ++frames_in_;
        bytes_in_ += payload.size();
      }
    }
    if (observer && *observer) (*observer)(direction, payload);
  }

  GuestStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    GuestStats stats;
    stats.connected = connection_ != nullptr;
    stats.connects = connects_;
    stats.disconnects = disconnects_;
    stats.bytes_in = bytes_in_;
    stats.bytes_out = bytes_out_;
    stats.frames_in = frames_in_;
    stats.frames_out = frames_out_;
    auto now = std::chrono::steady_clock::now();
    for (const auto& [id, pending] : requests_) {
      stats.pending.push_back({id, pending.operation, pending.key, now - pending.started});
    }
    for (const auto& [id, channel] : iterators_) {
      std::lock_guard<std::mutex> channel_lock(channel->mutex);
      stats.iterators.push_back({id, channel->seq, channel->consumed, channel->buffered_entries(),
                                 channel->frames.size(), channel->ended, channel->error.has_value(),
                                 channel->options.reverse, channel->options.limit});
    }
    stats.extension = negotiation_.state();
    stats.features = negotiation_.features();
    stats.watches = watches_.info();
    stats.snapshots = snapshots_.info();
    return stats;
  }

 private:
  struct Pending {
    const char* operation = "";
    std::string key;
    std::chrono::steady_clock::time_point started;
    std::string frame;  // kept while it may need (re)sending
    Completion done;
    bool extension = false;               // fails if the stream turns out base
    std::shared_ptr<SnapshotSlot> at;     // a read at this snapshot
    std::shared_ptr<SnapshotSlot> opens;  // a SnapshotRequest's snapshot
  };

  static constexpr const char* snapshot_lost = "The snapshot was lost with the connection to the host";

  static Reply local_failure(std::string code, std::string message) {
    Reply reply;
    reply.error = std::move(code);
    reply.message = std::move(message);
    return reply;
  }

  // Why a request cannot go at all; nullopt when it can.
  std::optional<Reply> refusal_locked(const RequestScope& scope) const {
    if (closed_) return local_failure(codes::database_not_open, "Database is not open");
    if (scope.feature) {
      if (auto refused = negotiation_.refusal(scope.feature)) return local_failure(refused->code(), refused->message());
    }
    if (scope.at) {
      if (const char* why = SnapshotTable::unusable(*scope.at, connects_)) {
        return local_failure(codes::snapshot_not_open, why);
      }
    }
    return std::nullopt;
  }

  uint32_t next_request_id_locked() {
    return request_ids_.next(
        [&](uint32_t id) { return requests_.count(id) > 0 || negotiation_.probe_in_flight(id); });
  }

  static Pending pending_locked(protocol::GuestTag tag, std::string key, Completion done, RequestScope scope) {
    Pending pending;
    pending.operation = protocol::tag_name(tag);
    pending.key = std::move(key);
    pending.started = std::chrono::steady_clock::now();
    pending.done = std::move(done);
    pending.extension = scope.feature != nullptr;
    pending.at = std::move(scope.at);
    return pending;
  }

  // Sends a request's frame (or `now`, its form for this stream) and keeps
  // it until its reply.
  void enqueue_locked(uint32_t id, Pending pending, const std::string* now = nullptr) {
    // A lone request goes out on this thread at once (its caller is likely
    // waiting for it); behind others, it waits for the transport's thread,
    // which sends a pipelining caller's requests many to a write.
    const bool sent = send_locked(now ? *now : pending.frame, requests_.empty() ? SendMode::now : SendMode::queued);
    // Never re-sent without retry, nor a read at a snapshot: no need to keep it.
    if (sent && (!options_.retry || pending.at)) {
      pending.frame.clear();
      pending.frame.shrink_to_fit();
    }
    const bool extension = pending.extension;
    requests_.emplace(id, std::move(pending));
    if (sent && extension) probe_locked();
  }

  // Behind the first extension request of a stream whose host has not
  // answered yet: an empty GetMany, which every host answers, so that the
  // stream is surely settled (a reference host ignores extension requests
  // and would otherwise never say anything). Its reply finds no request.
  void probe_locked() {
    if (!connection_ || !negotiation_.needs_probe()) return;
    const uint32_t id = next_request_id_locked();
    send_encoded_locked(protocol::GetManyRequest{id, {}}, SendMode::queued);
    negotiation_.probe_sent(id);
  }

  // Writes a frame to the attached stream; false when there is none.
  bool send_locked(std::string_view frame, SendMode mode = SendMode::now) {
    if (!connection_) return false;
    connection_->output().write([&](std::string& out) { out.append(frame); }, mode);
    ++frames_out_;
    bytes_out_ += frame.size();
    if (observer_ && *observer_) {
      // The payload, without its length prefix, as the frame log shows it.
      size_t prefix = 1;
      while (prefix < frame.size() && (static_cast<unsigned char>(frame[prefix - 1]) & 0x80)) ++prefix;
      (*observer_)(FrameDirection::out, frame.substr(prefix));
    }
    return true;
  }

  template <typename M>
  bool send_encoded_locked(const M& message, SendMode mode = SendMode::now) {
    if (!connection_) return false;
    std::string frame;
    protocol::encode(frame, message);
    return send_locked(frame, mode);
  }

  static protocol::IteratorRequest iterator_request(const IteratorChannel& channel) {
    protocol::IteratorRequest request;
    request.id = channel.id;
    request.seq = channel.seq;
    request.options = channel.options;
    request.consumed = channel.consumed;
    if (channel.seek_target) {
      request.seek = channel.seek_target;
    } else {
      request.bookmark = channel.bookmark;
    }
    if (channel.at) request.snapshot = channel.at->id;
    return request;
  }

  // Data received but not consumed when a stream dies is dropped: the host
  // sends it again from the bookmark. Keeping it (as the reference does)
  // yields those entries twice.
  static void forget_unconsumed(IteratorChannel& channel) {
    std::lock_guard<std::mutex> lock(channel.mutex);
    if (channel.error) return;
    channel.frames.clear();
    channel.offset = 0;
    channel.ended = false;
  }

  // An iterator at a snapshot cannot resume elsewhere: what it received is
  // still yielded, then (unless it had its end) it fails.
  static void lose_snapshot(IteratorChannel& channel) {
    std::lock_guard<std::mutex> lock(channel.mutex);
    if (!channel.ended && !channel.error) channel.error = Error(codes::snapshot_not_open, snapshot_lost);
    channel.changed.notify_all();
  }

  // Takes the requests `matching` out, for their completions to be called
  // outside the lock. A SnapshotRequest taken frees its snapshot's id.
  template <typename Matching>
  std::vector<Completion> take_requests_locked(Matching&& matching) {
    std::vector<Completion> done;
    for (auto it = requests_.begin(); it != requests_.end();) {
      if (!matching(it->second)) {
        ++it;
        continue;
      }
      if (it->second.opens) snapshots_.forget(*it->second.opens);
      done.push_back(std::move(it->second.done));
      it = requests_.erase(it);
    }
    return done;
  }

  void fail_iterators_locked(const Error& error) {
    for (auto& [id, channel] : iterators_) {
      std::lock_guard<std::mutex> lock(channel->mutex);
      if (!channel->error) channel->error = error;
      channel->changed.notify_all();
    }
  }

  std::function<void()> flushed_callback_locked() {
    if (requests_.empty() && iterators_.empty()) {
      request_ids_.reset();
      return flush_listener_;
    }
    return nullptr;
  }

  void notify_flushed() {
    std::function<void()> flushed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      flushed = flushed_callback_locked();
    }
    if (flushed) flushed();
  }

  // Ends watches with an error, on the stream's thread, no lock held.
  static void tell(const std::vector<std::shared_ptr<WatchChannel>>& watches, const Error& error) {
    for (const auto& watch : watches) watch->callback(error, Commit{watch->seq.load(std::memory_order_acquire), {}});
  }

  // Applies `decide` (a Negotiation transition, true if it settled the
  // stream) and, if the stream turned out to have no extension, fails what
  // waits for it: extension requests and watches.
  template <typename Decide>
  void settle(Decide&& decide) {
    std::vector<Completion> refused;
    std::vector<std::shared_ptr<WatchChannel>> refused_watches;
    std::string reason;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!decide() || negotiation_.state() != HostExtension::unavailable) return;
      reason = negotiation_.unavailable_reason();
      refused = take_requests_locked([](const Pending& pending) { return pending.extension; });
      refused_watches = watches_.fail([](const WatchChannel&) { return true; });
      watch_settled_.notify_all();
    }
    for (auto& done : refused) done(local_failure(codes::not_supported, reason));
    tell(refused_watches, Error(codes::not_supported, reason));
    if (!refused.empty()) notify_flushed();
  }

  void complete(uint32_t id, Reply reply) {
    Completion done;
    std::function<void()> flushed;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto found = requests_.find(id);
      if (found == requests_.end()) {
        negotiation_.take_probe_reply(id);  // the probe's, which no caller sees (or a stray)
        return;
      }
      if (auto& opens = found->second.opens) {
        if (reply.error) {
          snapshots_.forget(*opens);
        } else {
          SnapshotTable::opened(*opens, connects_);
          reply.snapshot = opens;
        }
      }
      if (reply.error && reply.message.empty()) reply.message = negotiation_.explain(*reply.error);
      done = std::move(found->second.done);
      requests_.erase(found);
      flushed = flushed_callback_locked();
    }
    done(std::move(reply));
    if (flushed) flushed();
  }

  // The reference guest treats an empty error string as success.
  static std::optional<std::string> error_of(std::optional<std::string>& error) {
    if (error && !error->empty()) return std::move(error);
    return std::nullopt;
  }

  void on_reply(protocol::Callback& callback) {
    Reply reply;
    reply.error = error_of(callback.error);
    reply.value = std::move(callback.value);
    complete(callback.id, std::move(reply));
  }

  void on_reply(protocol::GetManyCallback& callback) {
    Reply reply;
    reply.error = error_of(callback.error);
    reply.values = std::move(callback.values);
    complete(callback.id, std::move(reply));
  }

  std::shared_ptr<IteratorChannel> channel(uint32_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = iterators_.find(id);
    return found == iterators_.end() ? nullptr : found->second;
  }

  void on_reply(protocol::IteratorData& data) {
    auto target = channel(data.id);
    if (!target) return;
    std::lock_guard<std::mutex> lock(target->mutex);
    if (target->seq != data.seq || target->error || data.data.empty()) return;
    target->frames.push_back(std::move(data.data));
    target->changed.notify_all();
  }

  void on_reply(protocol::IteratorEnd& end) {
    auto target = channel(end.id);
    if (!target) return;
    std::lock_guard<std::mutex> lock(target->mutex);
    if (target->seq != end.seq) return;
    target->ended = true;
    target->changed.notify_all();
  }

  void on_reply(protocol::IteratorError& error) {
    auto target = channel(error.id);
    if (!target) return;
    std::string message;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      message = negotiation_.explain(error.error);
    }
    std::lock_guard<std::mutex> lock(target->mutex);
    if (target->seq != error.seq) return;
    target->error = Error(error.error, message.empty() ? "iterator failed on the host" : message);
    target->changed.notify_all();
  }

  // ---- the extension's replies ---------------------------------------------

  void on_reply(protocol::HelloReply& reply) {
    settle([&] { return negotiation_.on_hello_reply(reply); });
  }

  void on_reply(protocol::HasCallback& callback) {
    Reply reply;
    reply.error = error_of(callback.error);
    reply.found = std::move(callback.found);
    complete(callback.id, std::move(reply));
  }

  void on_reply(protocol::HostStatsReply& stats) {
    Reply reply;
    reply.error = error_of(stats.error);
    reply.host_stats = std::move(stats.stats);
    complete(stats.id, std::move(reply));
  }

  // The watch running on this stream with that id, if it still wants frames.
  std::shared_ptr<WatchChannel> live_watch_locked(uint32_t id) const {
    auto watch = watches_.find(id);
    return watch && watch->live_on(connects_) ? watch : nullptr;
  }

  void on_reply(protocol::WatchStarted& started) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto watch = watches_.find(started.id);
    if (!watch || watch->closed || watch->errored || watch->stream != connects_ || !connection_) return;
    watch->started = true;
    watch->seq.store(started.seq, std::memory_order_release);
    watch->seq_known = true;
    watch_settled_.notify_all();
  }

  // Each commit goes to the callback in order, here on the stream's thread
  // with no lock held; the frame is acknowledged once all went. A close()
  // (even from the callback) stops it between two commits.
  void on_reply(protocol::WatchData& data) {
    std::shared_ptr<WatchChannel> watch;
    uint64_t stream;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      watch = live_watch_locked(data.id);
      if (!watch) return;
      stream = connects_;
      ++watch->unacknowledged_frames;
    }
    bool whole = true;
    for (auto& wire : data.commits) {
      Commit commit = to_commit(std::move(wire));
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!watch->live_on(stream)) {
          whole = false;
          break;
        }
        // Before the call, as a local watch does: seq() seen from the
        // callback is the commit it is given.
        watch->seq.store(commit.seq, std::memory_order_release);
        ++watch->commits;
      }
      watch->callback(std::nullopt, commit);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    --watch->unacknowledged_frames;
    if (whole && watch->live_on(stream) && stream == connects_) {
      send_encoded_locked(protocol::WatchAck{watch->id, watch->seq.load(std::memory_order_relaxed)});
    }
  }

  void on_reply(protocol::WatchError& error) {
    std::shared_ptr<WatchChannel> watch;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      watch = watches_.find(error.id);
      if (!watch || watch->closed || watch->errored || watch->stream != connects_) return;
      watch->errored = true;
      watch_settled_.notify_all();
    }
    tell({watch}, Error(error.error, watch_error_message(error.error, watch->seq.load(std::memory_order_acquire))));
  }

  GuestOptions options_;
  Negotiation negotiation_;  // of the current (or last) stream
  mutable std::mutex mutex_;
  bool closed_ = false;
  std::shared_ptr<GuestConnection> connection_;
  IdAllocator request_ids_;
  IdAllocator iterator_ids_;
  std::map<uint32_t, Pending> requests_;
  std::map<uint32_t, std::shared_ptr<IteratorChannel>> iterators_;
  SnapshotTable snapshots_;
  WatchTable watches_;
  std::condition_variable watch_settled_;  // a watch started, failed or lost its stream
  std::function<void()> flush_listener_;
  std::shared_ptr<FrameObserver> observer_;
  uint64_t connects_ = 0;
  uint64_t disconnects_ = 0;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  uint64_t frames_in_ = 0;
  uint64_t frames_out_ = 0;
};

inline void GuestConnection::receive(const char* data, size_t size) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!failure_.empty()) return;
  }
  struct Delivering {
    const GuestCore* previous = detail::delivering_core();
    explicit Delivering(const GuestCore* core) { detail::delivering_core() = core; }
    ~Delivering() { detail::delivering_core() = previous; }
  } delivering(core_.get());
  try {
    decoder_.feed(data, size, [this](std::string_view payload) {
      core_->observe(FrameDirection::in, payload);
      protocol::HostMessage message;
      if (protocol::decode_payload(payload, message) == protocol::DecodeStatus::ok) core_->deliver(message);
    });
  } catch (const Error& e) {
    drop(e.what());
  }
}

inline void GuestConnection::end() {
  output_.close();
  core_->stream_ended(this);
}

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/guest/guest_core.hpp ----
// ---- begin src/many_level/guest/guest_iterator.hpp ----
// A guest's iterator: entries arrive in frames from the host; consuming a
// whole frame acknowledges it (the end-to-end backpressure of many-level),
// and a seek bumps seq so frames already in flight are recognised as stale.

MANY_LEVEL_NAMESPACE_BEGIN

class GuestIterator final : public Iterator {
 public:
  GuestIterator(std::shared_ptr<GuestCore> core, std::shared_ptr<IteratorChannel> channel,
                const IteratorOptions& options, std::shared_ptr<const Encoding> key_encoding,
                std::shared_ptr<const Encoding> value_encoding)
      : Iterator(options, std::move(key_encoding), std::move(value_encoding)),
        core_(std::move(core)),
        channel_(std::move(channel)) {}

  // Closed while do_close() can still run (see MemoryDatabase's iterator).
  ~GuestIterator() override { close(); }

  uint32_t id() const { return channel_->id; }

 protected:
  bool do_next(Entry& entry) override {
    std::vector<Entry> entries;
    take(1, entries);
    if (entries.empty()) return false;
    entry = std::move(entries.front());
    return true;
  }

  void do_nextv(size_t size, std::vector<Entry>& entries) override { take(size, entries); }

  void do_seek(std::string_view target) override {
    protocol::IteratorSeek seek;
    uint64_t stream;
    {
      std::lock_guard<std::mutex> lock(channel_->mutex);
      if (channel_->error) return;
      channel_->frames.clear();
      channel_->offset = 0;
      channel_->ended = false;
      seek.id = channel_->id;
      seek.seq = ++channel_->seq;
      seek.target = std::string(target);
      // Remembered until its result is consumed, to re-send on a new stream.
      channel_->seek_target = seek.target;
      channel_->bookmark.reset();
      stream = channel_->stream;
    }
    core_->send_control(seek, *channel_, stream);
  }

  void do_close() override { release(); }

 private:
  // Takes `size` entries, or fewer only at the end: like abstract-level's
  // nextv() (and many-level's guest, which loops next()), it waits for frames
  // still to come, acknowledging each frame it finishes so the host sends
  // more. An error with entries in hand returns them; the next call throws.
  void take(size_t size, std::vector<Entry>& entries) {
    const size_t before = entries.size();  // `entries` may hold earlier results
    const size_t wanted = before + size;
    for (;;) {
      std::vector<protocol::IteratorAck> acks;
      uint64_t stream;
      {
        std::unique_lock<std::mutex> lock(channel_->mutex);
        auto& ch = *channel_;
        ch.changed.wait(lock, [&] { return !ch.frames.empty() || ch.ended || ch.error; });
        stream = ch.stream;
        if (ch.frames.empty()) {
          if (ch.error && entries.size() == before) throw *ch.error;
          return;  // the end (or an error, reported by the next call)
        }
        const bool keys = ch.options.keys;
        const bool values = ch.options.values;
        const int64_t limit = ch.options.limit;
        while (entries.size() < wanted && !ch.frames.empty()) {
          auto& frame = ch.frames.front();
          Entry entry;
          if (keys) entry.key = std::move(frame[ch.offset++]);
          if (values && ch.offset < frame.size()) entry.value = std::move(frame[ch.offset++]);
          ++ch.consumed;
          ch.seek_target.reset();
          if (core_->retry()) ch.bookmark = entry.key;
          if (!wants_keys()) entry.key.clear();
          entries.push_back(std::move(entry));
          if (ch.offset >= frame.size()) {
            ch.frames.pop_front();
            ch.offset = 0;
            // Not needed once the guest wants no more, nor for an iterator
            // that failed (its host side is gone).
            if (!ch.error && (limit < 0 || ch.consumed < static_cast<uint64_t>(limit))) {
              acks.push_back({ch.id, ch.seq, ch.consumed});
            }
          }
        }
      }
      for (const auto& ack : acks) core_->send_control(ack, *channel_, stream);
      if (entries.size() >= wanted) return;
    }
  }

  void release() {
    if (released_) return;
    released_ = true;
    core_->close_iterator(channel_->id, channel_.get());
  }

  std::shared_ptr<GuestCore> core_;
  std::shared_ptr<IteratorChannel> channel_;
  bool released_ = false;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/guest/guest_iterator.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

// What a callback-style async call reports: the error (none on success) and,
// but for writes, the result. It runs on the transport's thread, so it must
// not block; it may make new calls (a pipelining caller starts the next
// request from the completion of the last, as Node code does, and never
// waits for a thread to wake).
template <typename T>
struct GuestCallbackOf {
  using type = std::function<void(std::optional<Error> error, T result)>;
};
template <>
struct GuestCallbackOf<void> {
  using type = std::function<void(std::optional<Error> error)>;
};
template <typename T>
using GuestCallback = typename GuestCallbackOf<T>::type;

class Guest final : public Database {
 public:
  explicit Guest(GuestOptions options = {})
      : Database(manifest(options), options.encodings), core_(std::make_shared<GuestCore>(options)) {}

  ~Guest() override {
    try {
      close();
    } catch (...) {
    }
  }

  // Attaches a stream: hand the session to a transport. Throws if one is
  // already attached (only one rpc stream can be active).
  std::shared_ptr<Session> connect() { return core_->connect(); }
  // many-level's name for connect().
  std::shared_ptr<Session> create_rpc_stream() { return connect(); }

  // Drops the attached stream on purpose (with retry, the guest resumes on
  // the next one). False if none is attached.
  bool drop_connection() { return core_->drop_connection("dropped on request"); }

  // No request or iterator is waiting on the host.
  bool is_flushed() const { return core_->is_flushed(); }
  // Called (on the thread that finished the last one) whenever that becomes true.
  void on_flush(std::function<void()> listener) { core_->on_flush(std::move(listener)); }

  // Sends every later call to `db` instead of the host (many-level's forward()):
  // a process that is itself the host can use one guest API for both.
  void forward(Database& db) { forward_ = &db; }

  GuestStats stats() const { return core_->stats(); }

  // Whether the host of the current stream (or the last one) has the
  // extension: unknown until it answers anything, always unavailable with
  // GuestOptions::extension off.
  HostExtension host_extension() const { return core_->host_extension(); }
  // What the host offered ("has", "snapshots", "watch", "stats"); empty
  // unless host_extension() is available.
  std::vector<std::string> host_features() const { return core_->host_features(); }

  // What a host that speaks the extension grants this guest on this stream:
  // "read-only" or "read-write"; "" before it answered, or from a Node host.
  std::string host_grant() const { return core_->host_grant(); }
  // Set when the host refused this guest on this stream (LEVEL_UNAUTHENTICATED:
  // a host that authenticates, and no token it accepts): every request fails
  // with it. A Node host never refuses; nullopt before the host answered.
  std::optional<Error> host_refusal() const { return core_->host_refusal(); }

  // The host's statistics (uptime, connections, its database). Fails with
  // LEVEL_NOT_SUPPORTED against a host without the extension (the Node one).
  HostStats host_stats() { return wait(host_stats_async()); }
  std::future<HostStats> host_stats_async() {
    return as_future<HostStats>([&](auto done) { host_stats_async(std::move(done)); });
  }
  void host_stats_async(GuestCallback<HostStats> done) {
    RequestScope scope;
    scope.feature = features::stats;
    call<HostStats>(
        protocol::HostStatsRequest{}, "",
        [](Reply& reply) {
          if (!reply.host_stats) throw Error(codes::decode_error, "the host's statistics reply holds none");
          return std::move(*reply.host_stats);
        },
        std::move(done), std::move(scope));
  }

  // Sees every frame's payload in and out, for frame logs. It runs on the
  // thread that sends or receives, possibly with the guest's lock held: it
  // must only record the frame, never call into the guest.
  void set_frame_observer(GuestCore::FrameObserver observer) { core_->set_frame_observer(std::move(observer)); }

  // ---- async twins -----------------------------------------------------
  // Each comes as a future and as a callback (last argument, after the
  // options): see GuestCallback.
  using Value = std::optional<std::string>;
  using Values = std::vector<std::optional<std::string>>;

  std::future<Value> get_async(std::string_view key, const ReadOptions& options = {}) {
    return as_future<Value>([&](auto done) { get_async(key, options, std::move(done)); });
  }
  void get_async(std::string_view key, const ReadOptions& options, GuestCallback<Value> done) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    RequestScope scope = read_scope(options.snapshot);
    protocol::GetRequest request{0, codecs.key_bytes(key), snapshot_id(scope)};
    call<Value>(std::move(request), key,
                [codecs](Reply& reply) -> Value {
                  if (!reply.value) return std::nullopt;
                  return codecs.value_text(std::move(*reply.value));
                },
                std::move(done), std::move(scope));
  }

  std::future<Values> get_many_async(const std::vector<std::string>& keys, const ReadOptions& options = {}) {
    return as_future<Values>([&](auto done) { get_many_async(keys, options, std::move(done)); });
  }
  void get_many_async(const std::vector<std::string>& keys, const ReadOptions& options, GuestCallback<Values> done) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    RequestScope scope = read_scope(options.snapshot);
    protocol::GetManyRequest request{0, codecs.keys_bytes(keys), snapshot_id(scope)};
    call<Values>(
        std::move(request), keys.empty() ? std::string() : keys.front(),
        [codecs](Reply& reply) {
          for (auto& value : reply.values) {
            if (value) *value = codecs.value_text(std::move(*value));
          }
          return std::move(reply.values);
        },
        std::move(done), std::move(scope));
  }

  std::future<void> put_async(std::string_view key, std::string_view value, const WriteOptions& options = {}) {
    return as_future<void>([&](auto done) { put_async(key, value, options, std::move(done)); });
  }
  void put_async(std::string_view key, std::string_view value, const WriteOptions& options,
                 GuestCallback<void> done) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    call(protocol::PutRequest{0, codecs.key_bytes(key), codecs.value_bytes(value)}, key, std::move(done));
  }

  std::future<void> del_async(std::string_view key, const WriteOptions& options = {}) {
    return as_future<void>([&](auto done) { del_async(key, options, std::move(done)); });
  }
  void del_async(std::string_view key, const WriteOptions& options, GuestCallback<void> done) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    call(protocol::DelRequest{0, codecs.key_bytes(key)}, key, std::move(done));
  }

  std::future<void> batch_async(const std::vector<BatchOperation>& operations, const WriteOptions& options = {}) {
    return as_future<void>([&](auto done) { batch_async(operations, options, std::move(done)); });
  }
  void batch_async(const std::vector<BatchOperation>& operations, const WriteOptions& options,
                   GuestCallback<void> done) {
    Codecs codecs = resolve(options.key_encoding, options.value_encoding);
    // The frame is encoded from views of the caller's bytes (or of their
    // encoded forms, kept here until then): each key and value is copied once.
    const bool keys_as_is = codecs.key->identity();
    const bool values_as_is = codecs.value->identity();
    std::vector<std::string> encoded;
    encoded.reserve((keys_as_is ? 0 : operations.size()) + (values_as_is ? 0 : operations.size()));
    protocol::BatchRequestView request;
    request.ops.reserve(operations.size());
    for (const auto& op : operations) {
      protocol::BatchOpView wire;
      wire.key = keys_as_is ? std::string_view(op.key) : encoded.emplace_back(codecs.key_bytes(op.key));
      if (op.type == BatchOperation::Type::put) {
        wire.type = protocol::BatchOp::Type::put;
        wire.value = values_as_is ? std::string_view(op.value) : encoded.emplace_back(codecs.value_bytes(op.value));
      } else {
        wire.type = protocol::BatchOp::Type::del;
      }
      request.ops.push_back(wire);
    }
    call(std::move(request), operations.empty() ? std::string() : operations.front().key, std::move(done));
  }

  std::future<void> clear_async(const ClearOptions& options = {}) {
    return as_future<void>([&](auto done) { clear_async(options, std::move(done)); });
  }
  void clear_async(const ClearOptions& options, GuestCallback<void> done) {
    Codecs codecs = resolve(options.key_encoding, {});
    call(protocol::ClearRequest{0, wire_clear_options(codecs.range_bytes(options))}, "", std::move(done));
  }

 protected:
  void do_open(const OpenOptions&) override {
    if (closed_once_) {
      throw Error(codes::not_supported, "Cannot reopen many-level database after close()");
    }
  }

  void on_closing() override {
    closed_once_ = true;
    core_->shutdown();
  }

  std::optional<std::string> do_get(std::string_view key) override {
    if (forward_) return forward_->try_get(key, raw_read);
    return wait(get_async(key, raw_read));
  }

  std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) override {
    if (forward_) return forward_->get_many(keys, raw_read);
    return wait(get_many_async(keys, raw_read));
  }

  bool do_has(std::string_view key) override { return do_has_many({std::string(key)}).front(); }

  std::vector<bool> do_has_many(const std::vector<std::string>& keys) override {
    if (forward_) return forward_->has_many(keys, raw_read);
    return wait(has_many_remote(keys, nullptr));
  }

  void do_put(std::string_view key, std::string_view value) override {
    if (forward_) return forward_->put(key, value, raw_write);
    wait(put_async(key, value, raw_write));
  }

  void do_del(std::string_view key) override {
    if (forward_) return forward_->del(key, raw_write);
    wait(del_async(key, raw_write));
  }

  void do_batch(const std::vector<BatchOperation>& operations) override {
    if (forward_) return forward_->batch(operations, raw_write);
    wait(batch_async(operations, raw_write));
  }

  void do_clear(const RangeOptions& range) override {
    ClearOptions options;
    static_cast<RangeOptions&>(options) = range;
    options.key_encoding = "buffer";
    if (forward_) return forward_->clear(options);
    wait(clear_async(options));
  }

  std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                        std::shared_ptr<const Encoding> key_encoding,
                                        std::shared_ptr<const Encoding> value_encoding) override {
    if (forward_) return forwarded_iterator(options, nullptr, std::move(key_encoding), std::move(value_encoding));
    return remote_iterator(options, nullptr, std::move(key_encoding), std::move(value_encoding));
  }

  // ---- the extension: snapshots and watches ---------------------------------

  // A snapshot on the host: blocks until the host made it. It is lost with
  // the stream (reads at it then fail with LEVEL_SNAPSHOT_NOT_OPEN).
  std::shared_ptr<Snapshot> do_snapshot() override {
    if (forward_) return forward_->snapshot();
    RequestScope scope;
    scope.feature = features::snapshots;
    auto slot = wait(as_future<std::shared_ptr<SnapshotSlot>>([&](auto done) {
      call<std::shared_ptr<SnapshotSlot>>(protocol::SnapshotRequest{}, "", [](Reply& reply) { return reply.snapshot; },
                                          std::move(done), std::move(scope));
    }));
    return std::make_shared<GuestSnapshot>(*this, slot, [core = core_, slot] { core->release_snapshot(*slot); });
  }

  std::optional<std::string> do_get_at(Snapshot& snapshot, std::string_view key) override {
    if (forward_) return forward_->try_get(key, read_at(snapshot));
    return wait(get_async(key, read_at(snapshot)));
  }

  std::vector<std::optional<std::string>> do_get_many_at(Snapshot& snapshot,
                                                         const std::vector<std::string>& keys) override {
    if (forward_) return forward_->get_many(keys, read_at(snapshot));
    return wait(get_many_async(keys, read_at(snapshot)));
  }

  std::vector<bool> do_has_many_at(Snapshot& snapshot, const std::vector<std::string>& keys) override {
    if (forward_) return forward_->has_many(keys, read_at(snapshot));
    return wait(has_many_remote(keys, slot_of(snapshot)));
  }

  std::unique_ptr<Iterator> do_iterator_at(Snapshot& snapshot, const IteratorOptions& options,
                                           std::shared_ptr<const Encoding> key_encoding,
                                           std::shared_ptr<const Encoding> value_encoding) override {
    if (forward_) {
      return forwarded_iterator(options, borrowed(snapshot), std::move(key_encoding), std::move(value_encoding));
    }
    return remote_iterator(options, slot_of(snapshot), std::move(key_encoding), std::move(value_encoding));
  }

  // The host's change feed over the range: the callback runs on the stream's
  // thread. Returns once the host started it (a round trip), so that seq()
  // is where to resume from; the host's refusals (LEVEL_WATCH_TOO_OLD, ...)
  // go to the callback. With retry, a new stream resumes after the last
  // commit delivered.
  std::unique_ptr<Watch> do_watch(const WatchOptions& options, WatchCallback callback) override {
    if (forward_) return forward_->watch(options, std::move(callback));
    protocol::WatchRange range{options.gt, options.gte, options.lt, options.lte};
    auto channel = core_->open_watch(std::move(range), options.since, std::move(callback));
    return std::make_unique<GuestWatch>(channel, [core = core_, channel] { core->close_watch(*channel); });
  }

 private:
  static Supports manifest(const GuestOptions& options) {
    Supports supports;
    supports.permanence = true;
    supports.snapshots = !options.retry;  // a resumed iterator reads the data as it is then
    supports.create_if_missing = false;
    supports.error_if_exists = false;
    // Whether the host has them is known only once it answers: a host
    // without the extension refuses them then (LEVEL_NOT_SUPPORTED).
    supports.explicit_snapshots = options.extension;
    supports.watch = options.extension;
    return supports;
  }

  std::unique_ptr<Iterator> forwarded_iterator(const IteratorOptions& options, std::shared_ptr<Snapshot> snapshot,
                                               std::shared_ptr<const Encoding> key_encoding,
                                               std::shared_ptr<const Encoding> value_encoding) {
    auto inner_options = PrefixedIterator::inner_options(options, options);
    inner_options.snapshot = std::move(snapshot);
    return std::make_unique<PrefixedIterator>(forward_->iterator(inner_options), "", options,
                                              std::move(key_encoding), std::move(value_encoding));
  }

  std::unique_ptr<Iterator> remote_iterator(const IteratorOptions& options, std::shared_ptr<SnapshotSlot> at,
                                            std::shared_ptr<const Encoding> key_encoding,
                                            std::shared_ptr<const Encoding> value_encoding) {
    protocol::IteratorOptions wire;
    wire.keys = options.keys;
    wire.values = options.values;
    wire.gt = options.gt;
    wire.gte = options.gte;
    wire.lt = options.lt;
    wire.lte = options.lte;
    wire.limit = options.limit < 0 ? -1 : options.limit;
    wire.reverse = options.reverse;
    return std::make_unique<GuestIterator>(core_, core_->open_iterator(wire, std::move(at)), options,
                                           std::move(key_encoding), std::move(value_encoding));
  }

  // ---- snapshots: what names them on the wire -------------------------------

  // The host's slot of a snapshot this guest made.
  std::shared_ptr<SnapshotSlot> slot_of(Snapshot& snapshot) const {
    auto* mine = dynamic_cast<GuestSnapshot*>(&snapshot);
    if (!mine || !mine->made_by(*this)) {
      throw Error(codes::invalid_argument, "The snapshot belongs to another database");
    }
    if (!snapshot.is_open()) throw Error(codes::snapshot_not_open, "Snapshot is not open");
    return mine->slot();
  }

  RequestScope read_scope(const std::shared_ptr<Snapshot>& snapshot) const {
    RequestScope scope;
    if (snapshot) scope.at = slot_of(*snapshot);
    return scope;
  }

  static std::optional<uint32_t> snapshot_id(const RequestScope& scope) {
    return scope.at ? std::optional<uint32_t>(scope.at->id) : std::nullopt;
  }

  // A shared_ptr that does not own: reads take the snapshot by shared_ptr,
  // and their caller holds it for as long as they run.
  static std::shared_ptr<Snapshot> borrowed(Snapshot& snapshot) {
    return std::shared_ptr<Snapshot>(std::shared_ptr<Snapshot>(), &snapshot);
  }

  static ReadOptions read_at(Snapshot& snapshot) {
    ReadOptions options = raw_read;
    options.snapshot = borrowed(snapshot);
    return options;
  }

  // has / hasMany over raw keys, at `at` if given: no values travel when the
  // host has the extension; from a reference host, values tell presence.
  std::future<std::vector<bool>> has_many_remote(const std::vector<std::string>& keys,
                                                 std::shared_ptr<SnapshotSlot> at) {
    return as_future<std::vector<bool>>([&](auto done) {
      Operation operation(*this);
      const size_t count = keys.size();
      core_->request_has(keys, keys.empty() ? std::string() : keys.front(),
                         completion<std::vector<bool>>(
                             protocol::tag_name(protocol::HasRequest::tag),
                             [count](Reply& reply) {
                               std::vector<bool> found;
                               found.reserve(count);
                               if (reply.found) {
                                 for (char byte : *reply.found) found.push_back(byte != 0);
                               } else {
                                 for (const auto& value : reply.values) found.push_back(value.has_value());
                               }
                               if (found.size() != count) {
                                 throw Error(codes::decode_error, "the host answered for " +
                                                                      std::to_string(found.size()) + " keys of " +
                                                                      std::to_string(count));
                               }
                               return found;
                             },
                             std::move(done)),
                         std::move(at));
    });
  }

  static protocol::ClearOptions wire_clear_options(const RangeOptions& range) {
    protocol::ClearOptions wire;
    wire.gt = range.gt;
    wire.gte = range.gte;
    wire.lt = range.lt;
    wire.lte = range.lte;
    wire.limit = range.limit < 0 ? -1 : range.limit;
    wire.reverse = range.reverse;
    return wire;
  }

  // Sends a request; `done` gets the host's error, or what `convert` makes
  // of the reply (its decoding error, if it throws). The call counts as
  // running only while it is being sent (deferred open happens here);
  // close() aborts what is still waiting.
  template <typename T, typename M, typename Convert>
  void call(M message, std::string_view key, Convert convert, GuestCallback<T> done, RequestScope scope = {}) {
    Operation operation(*this);
    core_->request(std::move(message), std::string(key),
                   completion<T>(protocol::tag_name(M::tag), std::move(convert), std::move(done)), std::move(scope));
  }

  // What a request's reply becomes for `done`: the host's error, or what
  // `convert` makes of the reply (its decoding error, if it throws).
  template <typename T, typename Convert>
  static GuestCore::Completion completion(const char* operation_name, Convert convert, GuestCallback<T> done) {
    return [convert = std::move(convert), done = std::move(done), operation_name](Reply reply) mutable {
      std::optional<Error> error;
      if (reply.error) {
        error = Error(*reply.error,
                      reply.message.empty() ? std::string(operation_name) + " failed on the host" : reply.message);
      }
      if constexpr (std::is_void_v<T>) {
        done(std::move(error));
      } else {
        T result{};
        if (!error) {
          try {
            result = convert(reply);
          } catch (const Error& e) {
            error = e;
          } catch (const std::exception& e) {
            error = Error(codes::decode_error, e.what());
          }
        }
        done(std::move(error), std::move(result));
      }
    };
  }

  // A write: its reply carries nothing but the error.
  template <typename M>
  void call(M message, std::string_view key, GuestCallback<void> done) {
    call<void>(std::move(message), key, [](Reply&) {}, std::move(done));
  }

  // The future of a callback-style call made by `start(done)`.
  template <typename T, typename Start>
  static std::future<T> as_future(Start&& start) {
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    if constexpr (std::is_void_v<T>) {
      start(GuestCallback<void>([promise](std::optional<Error> error) {
        if (error) {
          promise->set_exception(std::make_exception_ptr(std::move(*error)));
        } else {
          promise->set_value();
        }
      }));
    } else {
      start(GuestCallback<T>([promise](std::optional<Error> error, T result) {
        if (error) {
          promise->set_exception(std::make_exception_ptr(std::move(*error)));
        } else {
          promise->set_value(std::move(result));
        }
      }));
    }
    return future;
  }

  // A missing key is not an error at this level: get() turns nullopt into
  // LEVEL_NOT_FOUND, as for every store.
  static std::optional<std::string> wait(std::future<std::optional<std::string>> future) {
    try {
      return detail::await_reply(future);
    } catch (const Error& e) {
      if (e.is(codes::not_found)) return std::nullopt;
      throw;
    }
  }

  template <typename T>
  static T wait(std::future<T> future) {
    return detail::await_reply(future);
  }


  std::shared_ptr<GuestCore> core_;
  Database* forward_ = nullptr;
  bool closed_once_ = false;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/guest/guest.hpp ----
// ---- begin src/many_level/guest/connector.hpp ----
// Keeps a guest connected to a host at an address (tcp://HOST:PORT or
// unix:PATH): connects, and after every drop reconnects with exponential
// backoff. With a retrying guest, users see no interruption at all; this is
// the library's answer to the reconnect loop many-level's README leaves to
// its users.

MANY_LEVEL_NAMESPACE_BEGIN

struct ConnectorEvent {
  enum class Kind { connected, disconnected, failed } kind;
  std::string address;
  // connected: the stream is up and set up (TLS: handshake done);
  // failed: no connection, or one refused while being set up (TLS handshake);
  // disconnected: a connection that was up dropped.
  std::string detail;       // why it failed or dropped
  uint64_t connects = 0;    // successful connections so far
  std::chrono::milliseconds next_attempt{0};  // for failed and disconnected
};

struct ConnectorOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds initial_backoff{50};
  std::chrono::milliseconds max_backoff{5000};
  // Called on the connector's thread; must not block for long.
  std::function<void(const ConnectorEvent&)> on_event;
  // Wraps each new stream's session before it is pumped; a tls:// address
  // needs one (transport/tls.hpp: wrap_session = tls_wrapper(context)).
  std::function<std::shared_ptr<Session>(std::shared_ptr<Session>, const Address&)> wrap_session;
};

class Connector {
 public:
  // Starts connecting at once, on a thread of its own. `guest` must outlive
  // the connector.
  Connector(Guest& guest, Address address, ConnectorOptions options = {})
      : guest_(guest), address_(std::move(address)), options_(std::move(options)) {
    if (address_.tls && !options_.wrap_session) {
      throw Error(codes::invalid_argument, address_.to_string() + " wants TLS: set ConnectorOptions::wrap_session");
    }
    thread_ = std::thread([this] { run(); });
  }

  Connector(Guest& guest, std::string_view address, ConnectorOptions options = {})
      : Connector(guest, parse_address(address), std::move(options)) {}

  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  ~Connector() { stop(); }

  // Stops reconnecting and drops the current connection. Idempotent.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  // Waits until a connection is up; false on timeout or after stop().
  bool wait_connected(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return connected_ || stopping_; }) && connected_;
  }

  bool connected() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return connected_;
  }

  uint64_t connects() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return connects_;
  }

  const Address& address() const { return address_; }

 private:
  void run() {
    auto backoff = options_.initial_backoff;
    while (!stopping()) {
      // Declared before the connection: its close callback writes them.
      bool dropped = false;
      std::string reason;
      std::shared_ptr<Session> session;
      FdConnection connection;
      try {
        auto fd = connect_to(address_, options_.connect_timeout);
        session = guest_.connect();
        if (options_.wrap_session) session = options_.wrap_session(session, address_);
        connection = FdConnection(std::move(fd), *session, [&, this](const std::string& why) {
          std::lock_guard<std::mutex> lock(mutex_);
          dropped = true;
          reason = why;
          changed_.notify_all();
        });
        if (!wait_established(*session, dropped)) {
          // Refused while it was being set up (a TLS handshake that failed):
          // an attempt that failed, not a connection that dropped.
          connection.close();
          if (stopping()) return;
          emit({ConnectorEvent::Kind::failed, address_.to_string(), reason, connects(), backoff});
        } else {
          {
            std::unique_lock<std::mutex> lock(mutex_);
            connected_ = true;
            ++connects_;
          }
          changed_.notify_all();
          backoff = options_.initial_backoff;
          emit({ConnectorEvent::Kind::connected, address_.to_string(), "", connects(), {}});
          {
            std::unique_lock<std::mutex> lock(mutex_);
            changed_.wait(lock, [&] { return dropped || stopping_; });
            connected_ = false;
          }
          connection.close();  // joins the pump; the guest has seen end()
          if (stopping()) return;
          emit({ConnectorEvent::Kind::disconnected, address_.to_string(), reason, connects(), backoff});
        }
      } catch (const Error& e) {
        if (e.is(codes::database_not_open)) return;  // the guest was closed
        if (session && !connection.is_open()) session->end();
        emit({ConnectorEvent::Kind::failed, address_.to_string(), e.message(), connects(), backoff});
      } catch (const std::exception& e) {
        if (session && !connection.is_open()) session->end();
        emit({ConnectorEvent::Kind::failed, address_.to_string(), e.what(), connects(), backoff});
      }
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait_for(lock, backoff, [&] { return stopping_; });
      backoff = std::min(options_.max_backoff, backoff * 2);
    }
  }

  // Waits until `session` says its stream is set up (Session::established:
  // at once, but for TLS, whose handshake must finish); false if the stream
  // dropped first or the connector is stopping. The handshake runs on the
  // pump's thread, which does not signal it: a short poll.
  bool wait_established(const Session& session, const bool& dropped) {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!dropped && !stopping_ && !session.established()) {
      changed_.wait_for(lock, std::chrono::milliseconds(2));
    }
    return !dropped && !stopping_;
  }

  bool stopping() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  }

  void emit(const ConnectorEvent& event) {
    if (options_.on_event) options_.on_event(event);
  }

  Guest& guest_;
  Address address_;
  ConnectorOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;
  bool connected_ = false;
  uint64_t connects_ = 0;
  std::thread thread_;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/guest/connector.hpp ----
#ifndef MANY_LEVEL_NO_OPENSSL
// ---- begin src/many_level/transport/tls.hpp ----
// TLS for the transports: the one header to include. TlsContext says how an
// endpoint authenticates (tls_context.hpp); TlsSession wraps any session in
// TLS (tls_session.hpp); here are the two places sessions are made:
//
//   // Host: listen_tls() wraps every session of the listener.
//   auto tls = TlsContext::server({"host.pem", "host.key"});
//   Address bound = listen_tls(loop, "tls://0.0.0.0:9443", tls,
//                              [&](const ConnectionInfo& info) { return host.create_session(info); });
//
//   // Guest: a Connector to a tls:// address wraps each stream it makes.
//   ConnectorOptions options;
//   options.wrap_session = tls_wrapper(TlsContext::client({/*ca_file=*/"ca.pem"}));
//   Connector connector(guest, "tls://db.example.com:9443", options);
//
// Anything else (an fd pump, an iostream, a memory pair) pumps a TlsSession
// like any session.

// ---- begin src/many_level/transport/tls_context.hpp ----
// What a TLS endpoint is configured with, made once and shared by all its
// sessions: a host's certificate chain and key (and, to require client
// certificates, the CAs that sign them), or a guest's trusted CAs (the
// system's by default), its optional client certificate and the name it
// expects the host to prove. Verification is on unless `insecure` says
// otherwise, which is loud about it. TLS 1.2 at least; no renegotiation.
//
// OpenSSL (1.1.1 or newer) is optional: define MANY_LEVEL_NO_OPENSSL (CMake:
// MANY_LEVEL_WITH_OPENSSL=OFF) to build without it, and without TLS.

#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>

// ---- begin src/many_level/transport/tls_deadlines.hpp ----
// One thread that runs tasks at deadlines. Sessions own no thread and no
// timer, yet a TLS peer that connects and never finishes its handshake must
// not hold its connection (and a slot of the host) forever: each TLS context
// has one of these, which fails such sessions when their time is up. It is
// idle otherwise, and never on the path of a byte.

MANY_LEVEL_NAMESPACE_BEGIN
namespace detail {

// Threads: at() and cancel() from any thread. Tasks run on the deadline
// thread (started by the first at()), one at a time, with no lock held; they
// must not block for long. Destroying it drops the tasks not yet run, and may
// happen on its own thread (from inside a task's destructor).
class TlsDeadlines {
 public:
  using Clock = std::chrono::steady_clock;
  // Ordered by time, then by a serial number that makes it unique.
  using Key = std::pair<Clock::time_point, std::uint64_t>;

  TlsDeadlines() : state_(std::make_shared<State>()) {}
  TlsDeadlines(const TlsDeadlines&) = delete;
  TlsDeadlines& operator=(const TlsDeadlines&) = delete;

  ~TlsDeadlines() {
    std::thread thread;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->stop = true;
      thread = std::move(thread_);
    }
    state_->changed.notify_all();
    if (!thread.joinable()) return;
    // The thread holds the state it needs: it may outlive this object.
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();
    } else {
      thread.join();
    }
  }

  // Runs `task` at `when` (soon, if that is past), unless cancelled first.
  Key at(Clock::time_point when, std::function<void()> task) {
    Key key;
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      key = Key{when, state_->next_serial++};
      state_->tasks.emplace(key, std::move(task));
      if (!thread_.joinable() && !state_->stop) thread_ = std::thread([state = state_] { run(*state); });
    }
    state_->changed.notify_all();
    return key;
  }

  // Forgets a task that has not run yet; a key already run or cancelled is ignored.
  void cancel(const Key& key) {
    std::function<void()> dropped;  // destroyed without the lock: it may own anything
    std::lock_guard<std::mutex> lock(state_->mutex);
    auto found = state_->tasks.find(key);
    if (found == state_->tasks.end()) return;
    dropped = std::move(found->second);
    state_->tasks.erase(found);
  }

  size_t pending() const {
    std::lock_guard<std::mutex> lock(state_->mutex);
    return state_->tasks.size();
  }

 private:
  struct State {
    mutable std::mutex mutex;
    std::condition_variable changed;
    std::map<Key, std::function<void()>> tasks;
    std::uint64_t next_serial = 0;
    bool stop = false;
  };

  static void run(State& state) {
    std::unique_lock<std::mutex> lock(state.mutex);
    while (!state.stop) {
      if (state.tasks.empty()) {
        state.changed.wait(lock);
        continue;
      }
      auto first = state.tasks.begin();
      if (first->first.first > Clock::now()) {
        state.changed.wait_until(lock, first->first.first);
        continue;
      }
      std::function<void()> task = std::move(first->second);
      state.tasks.erase(first);
      lock.unlock();
      try {
        task();
      } catch (...) {
      }
      task = nullptr;  // its captures go here, still without the lock
      lock.lock();
    }
  }

  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace detail
MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/tls_deadlines.hpp ----

#if OPENSSL_VERSION_NUMBER < 0x10101000L
#error "many-level's TLS needs OpenSSL 1.1.1 or newer (or define MANY_LEVEL_NO_OPENSSL)"
#endif

MANY_LEVEL_NAMESPACE_BEGIN

struct TlsServerOptions {
  // PEM: the host's certificate first, then any intermediates.
  std::string certificate_chain_file;
  std::string private_key_file;  // PEM, unencrypted
  // Non-empty: every client must present a certificate signed by one of the
  // CAs in this PEM file, or its handshake fails.
  std::string client_ca_file;
  // A peer that has not finished its handshake by then is disconnected.
  std::chrono::milliseconds handshake_timeout{10000};
};

struct TlsClientOptions {
  // PEM bundle of the CAs to trust; empty: the system's (OpenSSL's default paths).
  std::string ca_file;
  // A client certificate, for hosts that require one (both or neither).
  std::string certificate_file;
  std::string private_key_file;
  // The name the host's certificate must carry (sent as SNI too, unless it
  // is an IP address). Empty: the host of the address connected to.
  std::string server_name;
  // No verification at all: the traffic is encrypted, but anyone on the path
  // can pose as the host. For tests; says so on stderr when made.
  bool insecure = false;
  std::chrono::milliseconds handshake_timeout{10000};
};

namespace detail {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

// Drains this thread's OpenSSL error queue into one line: the reasons,
// oldest first, without repeats ("certificate verify failed"); `fallback`
// when the queue was empty.
inline std::string take_openssl_errors(const char* fallback = "unknown error") {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    std::string reason;
    if (const char* known = ERR_reason_error_string(code)) {
      reason = known;
    } else {
      char buffer[256];
      ERR_error_string_n(code, buffer, sizeof buffer);
      reason = buffer;
    }
    if (text.find(reason) != std::string::npos) continue;
    if (!text.empty()) text += ": ";
    text += reason;
  }
  return text.empty() ? fallback : text;
}

// What every context and the sessions made from it share.
struct TlsContextState {
  SslCtxPtr ctx;
  bool server = false;
  bool insecure = false;
  std::string server_name;
  std::chrono::milliseconds handshake_timeout{10000};
  TlsDeadlines deadlines;
};

[[noreturn]] inline void tls_setup_failed(const std::string& what) {
  throw Error(codes::invalid_argument, what + ": " + take_openssl_errors());
}

inline std::shared_ptr<TlsContextState> new_tls_state(bool server, std::chrono::milliseconds handshake_timeout) {
  auto state = std::make_shared<TlsContextState>();
  ERR_clear_error();
  state->ctx.reset(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!state->ctx) tls_setup_failed("cannot make a TLS context");
  SSL_CTX* ctx = state->ctx.get();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // An idle connection keeps no 34 KiB of record buffers: a host may hold
  // thousands of them.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  state->server = server;
  state->handshake_timeout = handshake_timeout;
  return state;
}

inline void load_certificate_and_key(SSL_CTX* ctx, const std::string& chain, const std::string& key) {
  if (SSL_CTX_use_certificate_chain_file(ctx, chain.c_str()) != 1) {
    tls_setup_failed("cannot load the TLS certificate chain " + chain);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    tls_setup_failed("cannot load the TLS private key " + key);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    tls_setup_failed("the TLS private key " + key + " does not match the certificate " + chain);
  }
}

}  // namespace detail

// A copyable handle; copies share one configuration. Make one per listener
// or per host connected to, not one per connection.
class TlsContext {
 public:
  // Throws Error(LEVEL_INVALID_ARGUMENT) naming the file that cannot be used.
  static TlsContext server(const TlsServerOptions& options) {
    if (options.certificate_chain_file.empty() || options.private_key_file.empty()) {
      throw Error(codes::invalid_argument, "a TLS server needs a certificate chain file and a private key file");
    }
    auto state = detail::new_tls_state(true, options.handshake_timeout);
    SSL_CTX* ctx = state->ctx.get();
    detail::load_certificate_and_key(ctx, options.certificate_chain_file, options.private_key_file);
    if (!options.client_ca_file.empty()) {
      const char* file = options.client_ca_file.c_str();
      if (SSL_CTX_load_verify_locations(ctx, file, nullptr) != 1) {
        detail::tls_setup_failed("cannot load the client CA file " + options.client_ca_file);
      }
      // The CAs a client is told to pick its certificate from.
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(file);
      if (!names) detail::tls_setup_failed("no CA certificate in " + options.client_ca_file);
      SSL_CTX_set_client_CA_list(ctx, names);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    // Guests never resume sessions: tickets would be work and bytes for nothing.
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return TlsContext(std::move(state));
  }

  static TlsContext client(const TlsClientOptions& options) {
    if (options.certificate_file.empty() != options.private_key_file.empty()) {
      throw Error(codes::invalid_argument, "a TLS client certificate needs its private key, and the reverse");
    }
    auto state = detail::new_tls_state(false, options.handshake_timeout);
    SSL_CTX* ctx = state->ctx.get();
    if (!options.certificate_file.empty()) {
      detail::load_certificate_and_key(ctx, options.certificate_file, options.private_key_file);
    }
    state->insecure = options.insecure;
    state->server_name = options.server_name;
    if (options.insecure) {
      SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
      std::fprintf(stderr,
                   "many-level: WARNING: TLS certificate verification is OFF (insecure): the connection is "
                   "encrypted, but anyone on the path can pose as the host\n");
    } else {
      if (options.ca_file.empty()) {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1) detail::tls_setup_failed("cannot load the system's CAs");
      } else if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1) {
        detail::tls_setup_failed("cannot load the CA file " + options.ca_file);
      }
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    return TlsContext(std::move(state));
  }

  bool is_server() const { return state_->server; }
  bool is_insecure() const { return state_->insecure; }
  // The client's configured server name (empty: each address's host).
  const std::string& server_name() const { return state_->server_name; }
  std::chrono::milliseconds handshake_timeout() const { return state_->handshake_timeout; }

  // For settings this class does not cover (ciphers, ALPN, ...): change them
  // before the first session is made.
  SSL_CTX* native_handle() const { return state_->ctx.get(); }

 private:
  explicit TlsContext(std::shared_ptr<detail::TlsContextState> state) : state_(std::move(state)) {}

  friend class TlsSession;
  std::shared_ptr<detail::TlsContextState> state_;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/tls_context.hpp ----
// ---- begin src/many_level/transport/tls_session.hpp ----
// TLS as a Session decorator: a TlsSession wraps the session that speaks
// many-level (a host's session, or a guest's stream) and is itself a Session
// that takes and gives ciphertext. Every transport (event loop, fd pumps,
// iostreams, the memory pair) then carries TLS unchanged. OpenSSL works on
// memory BIOs: no socket, no thread of its own.
//
// Incoming: receive() feeds ciphertext to OpenSSL and hands the plaintext to
// the inner session in one receive(). Outgoing: the inner session's output
// is encrypted as it appears, on the thread that wrote it (the inner
// output's listener and direct sender are ours), into this session's own
// output, so a SendMode::now write still goes out on the writer's thread when
// the transport allows: encryption adds no thread hop. What the inner session
// writes from inside its receive() is encrypted once that returns, in one go
// (a pipelining guest's next requests, a host's inline replies).
//
// Before the handshake is done, the inner session's output waits where it is.
// A handshake that fails fails this session with OpenSSL's reason and the
// certificate check's ("TLS handshake failed: certificate verify failed:
// certificate has expired"); its alert still goes to the peer. One that is not
// done within the context's handshake_timeout fails it too.

#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

MANY_LEVEL_NAMESPACE_BEGIN

// Threads, as session.hpp asks: receive(), end(), failed() and wants_input()
// come from the transport's thread; the inner session may write its output
// from any thread. One lock guards the OpenSSL state; a writer never waits
// for it (it may hold the inner session's locks): when another thread has
// it, that thread encrypts the writer's bytes too before it lets go.
class TlsSession final : public Session {
 public:
  // `context` says which side this is. A client checks the host's certificate
  // against `server_name` (the context's own server name, if it has one, wins),
  // a DNS name or an IP address; empty with verification on is an error.
  // Throws Error(LEVEL_INVALID_ARGUMENT).
  TlsSession(const TlsContext& context, std::shared_ptr<Session> inner, std::string server_name = {})
      : core_(std::make_shared<Core>()) {
    if (!inner) throw Error(codes::invalid_argument, "TlsSession needs a session to wrap");
    Core& core = *core_;
    core.context = context.state_;
    core.inner = std::move(inner);
    core.output_high_water = core.inner->output().high_water();
    core.output = std::make_unique<OutputBuffer>(core.output_high_water);

    ERR_clear_error();
    core.ssl.reset(SSL_new(context.native_handle()));
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    if (!core.ssl || !in || !out) {
      BIO_free(in);
      BIO_free(out);
      throw Error(codes::io_error, "cannot make a TLS session: " + detail::take_openssl_errors());
    }
    SSL_set_bio(core.ssl.get(), in, out);  // the SSL owns them from here
    core.in = in;
    core.out = out;
    if (context.is_server()) {
      SSL_set_accept_state(core.ssl.get());
    } else {
      if (!context.server_name().empty()) server_name = context.server_name();
      expect_peer_name(context, server_name);
      SSL_set_connect_state(core.ssl.get());
    }

    // The inner session's output is ours to empty from now on.
    std::weak_ptr<Core> weak = core_;
    OutputBuffer& inner_output = core.inner->output();
    inner_output.on_readable([weak] {
      auto core = weak.lock();
      if (!core || core->deferring()) return;
      // No bytes encrypted here: a wake, which the transport must see (the
      // inner session may want to be closed, or to read again).
      if (!core->encrypt(SendMode::queued)) core->output->wake();
    });
    inner_output.on_direct_send([weak] {
      auto core = weak.lock();
      if (!core) return false;
      if (!core->deferring()) core->encrypt(SendMode::now);
      // Encrypted and handed to our output, whose own direct sender or
      // listener saw to it; or waiting for the handshake: either way nothing
      // is left for the inner output's listener to do.
      return true;
    });

    if (!context.is_server()) {
      std::lock_guard<std::mutex> lock(core.mutex);
      core.step_handshake();  // the ClientHello
    }
    const auto timeout = context.handshake_timeout();
    core.deadline = core.context->deadlines.at(detail::TlsDeadlines::Clock::now() + timeout, [weak, timeout] {
      if (auto core = weak.lock()) core->time_out(timeout);
    });
  }

  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  ~TlsSession() override {
    core_->detach();
    core_->context->deadlines.cancel(core_->deadline);
  }

  void receive(const char* data, size_t size) override { core_->receive(data, size); }

  void end() override {
    Core& core = *core_;
    core.detach();
    core.context->deadlines.cancel(core.deadline);
    {
      std::lock_guard<std::mutex> lock(core.mutex);
      if (core.ended) return;
      core.ended = true;
    }
    core.output->close();
    core.inner->end();
  }

  OutputBuffer& output() override { return *core_->output; }

  // Ours first (a TLS failure), then the inner session's. When the inner
  // session asks to be closed, a close_notify goes out before the stream
  // closes, so the peer can tell a deliberate close from a cut.
  std::string failed() const override {
    Core& core = *core_;
    if (core.has_failed.load()) {
      std::lock_guard<std::mutex> lock(core.mutex);
      return core.failure;
    }
    std::string inner_failure = core.inner->failed();
    if (!inner_failure.empty()) core.say_goodbye();
    return inner_failure;
  }

  // Handshake records are read whatever the inner session wants; after that,
  // input pauses while it wants none or while our ciphertext is at its
  // high-water mark (a peer that does not read).
  bool wants_input() override {
    Core& core = *core_;
    if (core.has_failed.load() || core.output->room() == 0) return false;
    return !core.handshake_done.load() || core.inner->wants_input();
  }

  bool handshake_done() const { return core_->handshake_done.load(); }
  bool established() const override { return handshake_done(); }

  // "TLSv1.3"; empty before the handshake is done.
  std::string protocol() const {
    std::lock_guard<std::mutex> lock(core_->mutex);
    return core_->handshake_done ? SSL_get_version(core_->ssl.get()) : "";
  }

  // "TLS_AES_256_GCM_SHA384"; empty before the handshake is done.
  std::string cipher() const {
    std::lock_guard<std::mutex> lock(core_->mutex);
    if (!core_->handshake_done) return {};
    const char* name = SSL_get_cipher_name(core_->ssl.get());
    return name ? name : "";
  }

  // The subject of the peer's verified certificate ("CN=alice,O=example"),
  // empty when it presented none (or verification is off).
  std::string peer_subject() const {
    std::lock_guard<std::mutex> lock(core_->mutex);
    if (!core_->handshake_done || SSL_get_verify_result(core_->ssl.get()) != X509_V_OK) return {};
#if OPENSSL_VERSION_MAJOR >= 3
    X509* peer = SSL_get1_peer_certificate(core_->ssl.get());
#else
    X509* peer = SSL_get_peer_certificate(core_->ssl.get());
#endif
    if (!peer) return {};
    std::string subject;
    if (BIO* text = BIO_new(BIO_s_mem())) {
      X509_NAME_print_ex(text, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
      char* data = nullptr;
      long size = BIO_get_mem_data(text, &data);
      if (size > 0) subject.assign(data, static_cast<size_t>(size));
      BIO_free(text);
    }
    X509_free(peer);
    return subject;
  }

  Session& inner() const { return *core_->inner; }

 private:
  // What the inner output's listeners reach: they hold it weakly, so one
  // that fires after this session is gone finds nothing to touch.
  struct Core {
    std::shared_ptr<detail::TlsContextState> context;
    std::shared_ptr<Session> inner;
    size_t output_high_water = 0;
    std::unique_ptr<OutputBuffer> output;  // ciphertext
    detail::TlsDeadlines::Key deadline;

    // Guards the SSL and everything up to the atomics.
    mutable std::mutex mutex;
    detail::SslPtr ssl;
    BIO* in = nullptr;   // ciphertext received, for OpenSSL to read
    BIO* out = nullptr;  // ciphertext OpenSSL wrote, for output
    bool ended = false;
    bool goodbye_said = false;
    std::string failure;
    std::string plaintext;  // scratch for what the inner output holds
    static constexpr size_t scratch_limit = size_t{1} << 20;

    std::atomic<bool> handshake_done{false};
    std::atomic<bool> has_failed{false};
    // Someone asked for the inner output to be encrypted (and whether with
    // SendMode::now) while another thread held the lock.
    std::atomic<bool> encrypt_requested{false};
    std::atomic<bool> now_requested{false};
    // The thread inside receive()'s call of the inner session: its writes
    // are encrypted when that call returns.
    std::atomic<std::thread::id> receiving{};

    bool deferring() const { return receiving.load() == std::this_thread::get_id(); }

    void detach() {
      OutputBuffer& inner_output = inner->output();
      inner_output.on_readable(nullptr);
      inner_output.on_direct_send(nullptr);
    }

    // Transport thread.
    void receive(const char* data, size_t size) {
      // The plaintext of one call goes in a buffer that stays with the
      // thread (an event loop serves every connection from one) and keeps its
      // size, so it is neither allocated nor cleared per call; taken out
      // while in use, so a nested call would simply find none.
      thread_local std::string scratch;
      std::string plain;
      plain.swap(scratch);
      size_t used = 0;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (ended || has_failed.load()) return;
        if (BIO_write(in, data, static_cast<int>(std::min<size_t>(size, INT_MAX))) <= 0 && size > 0) {
          fail_locked("TLS: cannot buffer input: " + detail::take_openssl_errors());
          return;
        }
        if (!handshake_done.load()) step_handshake();
        if (handshake_done.load() && !has_failed.load()) used = read_locked(plain);
        send_locked(SendMode::now);
        shrink_input_locked();
      }
      encrypt_if_requested();
      if (used > 0) {
        receiving.store(std::this_thread::get_id());
        struct Reset {
          std::atomic<std::thread::id>& receiving;
          ~Reset() { receiving.store(std::thread::id()); }
        } reset{receiving};
        inner->receive(plain.data(), used);
      }
      // What the inner session wrote meanwhile, in one record or few.
      encrypt(SendMode::now);
      if (plain.size() <= scratch_limit) scratch.swap(plain);  // a huge one is let go
    }

    // Any thread. Encrypts what the inner output holds, unless another thread
    // holds the lock: that one goes round again for us before it lets go.
    // True if this call put ciphertext in the output.
    bool encrypt(SendMode mode) {
      if (mode == SendMode::now) now_requested.store(true);
      encrypt_requested.store(true);
      bool wrote = false;
      while (encrypt_requested.load()) {
        std::unique_lock<std::mutex> lock(mutex, std::try_to_lock);
        if (!lock.owns_lock()) return wrote;
        while (encrypt_requested.exchange(false)) {
          wrote |= encrypt_locked(now_requested.exchange(false) ? SendMode::now : SendMode::queued);
        }
      }
      return wrote;
    }

    // After the lock was held for something else: a writer may have left its
    // bytes to us meanwhile.
    void encrypt_if_requested() {
      if (encrypt_requested.load()) encrypt(now_requested.load() ? SendMode::now : SendMode::queued);
    }

    bool encrypt_locked(SendMode mode) {
      if (ended || has_failed.load() || !handshake_done.load()) return false;
      inner->output().take(plaintext);
      // In pieces of a few records, each sent on as soon as it is made: the
      // first bytes of a large value leave while the rest is encrypted, and
      // OpenSSL's buffer never holds more than one piece.
      constexpr size_t piece = 4 * SSL3_RT_MAX_PLAIN_LENGTH;
      bool wrote = false;
      for (size_t done = 0; done < plaintext.size();) {
        const size_t size = std::min(piece, plaintext.size() - done);
        size_t written = 0;
        ERR_clear_error();
        if (SSL_write_ex(ssl.get(), plaintext.data() + done, size, &written) != 1) {
          fail_locked("TLS: cannot encrypt: " + detail::take_openssl_errors());
          break;
        }
        done += written;
        wrote |= send_locked(mode);
      }
      // The scratch buffer is kept, unless a large value made it huge.
      if (plaintext.capacity() > scratch_limit) {
        std::string().swap(plaintext);
      } else {
        plaintext.clear();
      }
      return wrote;
    }

    // Moves what OpenSSL wrote into the output; true if there was any.
    bool send_locked(SendMode mode) {
      const size_t size = BIO_ctrl_pending(out);
      if (size == 0) return false;
      output->write(
          [&](std::string& buffer) {
            const size_t at = buffer.size();
            buffer.resize(at + size);
            // A mem BIO read moves a pointer (BIO_reset would clear its
            // whole allocation every time).
            const int got = BIO_read(out, &buffer[at], static_cast<int>(size));
            buffer.resize(at + static_cast<size_t>(std::max(got, 0)));
          },
          mode);
      return true;
    }

    // Runs the handshake as far as the input allows; lock held.
    void step_handshake() {
      ERR_clear_error();
      const int result = SSL_do_handshake(ssl.get());
      if (result == 1) {
        handshake_done.store(true);
        context->deadlines.cancel(deadline);
        send_locked(SendMode::now);   // the last flight first
        encrypt_locked(SendMode::now);  // then what the inner session wrote meanwhile
        return;
      }
      const int error = SSL_get_error(ssl.get(), result);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        send_locked(SendMode::now);
        return;
      }
      fail_locked("TLS handshake failed: " + describe_failure(error));
    }

    // Decrypts all that the input makes whole into `plain`, which it may
    // grow; returns the plaintext's length. Lock held.
    size_t read_locked(std::string& plain) {
      // Plaintext is never longer than the ciphertext it came from, of which
      // OpenSSL may hold up to one record besides what is in the BIO.
      const size_t room = static_cast<size_t>(BIO_ctrl_pending(in)) + SSL3_RT_MAX_PLAIN_LENGTH + 1;
      if (plain.size() < room) plain.resize(room);
      size_t used = 0;
      for (;;) {
        if (used == plain.size()) plain.resize(plain.size() * 2);
        size_t got = 0;
        ERR_clear_error();
        const int result = SSL_read_ex(ssl.get(), &plain[used], plain.size() - used, &got);
        if (result == 1) {
          used += got;
          continue;
        }
        const int error = SSL_get_error(ssl.get(), result);
        // ZERO_RETURN: the peer's close_notify. Nothing more comes; the
        // transport sees the stream end, which is what ends us.
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_ZERO_RETURN) {
          fail_locked("TLS error: " + describe_failure(error));
        }
        return used;
      }
    }

    // A mem BIO keeps the largest allocation it ever needed: one left empty
    // after a large burst (a transport that delivers megabytes at once) is
    // replaced by a fresh one.
    void shrink_input_locked() {
      BUF_MEM* memory = nullptr;
      BIO_get_mem_ptr(in, &memory);
      if (!memory || memory->max <= scratch_limit || BIO_ctrl_pending(in) != 0) return;
      if (BIO* fresh = BIO_new(BIO_s_mem())) {
        SSL_set0_rbio(ssl.get(), fresh);  // frees the old one
        in = fresh;
      }
    }

    std::string describe_failure(int error) const {
      const unsigned long first = ERR_peek_error();
      std::string reason;
      if (error == SSL_ERROR_SYSCALL && first == 0) {
        reason = "unexpected end of the stream";
      } else {
        reason = detail::take_openssl_errors("protocol error");
      }
      const long verify = SSL_get_verify_result(ssl.get());
      if (verify != X509_V_OK) reason += std::string(": ") + X509_verify_cert_error_string(verify);
      if (ERR_GET_LIB(first) == ERR_LIB_SSL) {
        switch (ERR_GET_REASON(first)) {
          case SSL_R_WRONG_VERSION_NUMBER:
          case SSL_R_HTTP_REQUEST:
          case SSL_R_HTTPS_PROXY_REQUEST:
          case SSL_R_PACKET_LENGTH_TOO_LONG:
          case SSL_R_UNKNOWN_PROTOCOL:
            reason += " (the peer does not seem to speak TLS)";
            break;
          default:
            break;
        }
      }
      return reason;
    }

    // Lock held. The alert OpenSSL wrote (if any) still goes to the peer:
    // the transport sends a failed session's output before it closes.
    // The transport learns of it by a wake, whichever thread failed.
    void fail_locked(std::string why) {
      if (has_failed.load()) return;
      failure = std::move(why);
      has_failed.store(true);
      send_locked(SendMode::now);
      output->wake();
    }

    // Deadline thread.
    void time_out(std::chrono::milliseconds timeout) {
      std::lock_guard<std::mutex> lock(mutex);
      if (ended || has_failed.load() || handshake_done.load()) return;
      fail_locked("TLS handshake timed out after " + std::to_string(timeout.count()) + " ms");
    }

    // Transport thread, once the inner session has failed.
    void say_goodbye() {
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (goodbye_said || ended || has_failed.load() || !handshake_done.load()) return;
        goodbye_said = true;
        encrypt_locked(SendMode::now);  // its last words first
        ERR_clear_error();
        SSL_shutdown(ssl.get());
        send_locked(SendMode::now);
      }
      encrypt_if_requested();
    }
  };

  // A client's expectations of the host's certificate.
  void expect_peer_name(const TlsContext& context, const std::string& name) {
    SSL* ssl = core_->ssl.get();
    if (name.empty()) {
      if (context.is_insecure()) return;
      throw Error(codes::invalid_argument, "a TLS client needs the host's name to check its certificate");
    }
    unsigned char ip[sizeof(in6_addr)];
    const bool is_ip = inet_pton(AF_INET, name.c_str(), ip) == 1 || inet_pton(AF_INET6, name.c_str(), ip) == 1;
    // SNI carries names only (RFC 6066); an IP address is checked all the same.
    if (!is_ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) {
      throw Error(codes::invalid_argument, "bad TLS server name \"" + name + "\"");
    }
    if (context.is_insecure()) return;
    // subjectAltName only, as browsers do: a common name that looks like a
    // host name proves nothing.
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str())
                         : SSL_set1_host(ssl, name.c_str());
    if (ok != 1) throw Error(codes::invalid_argument, "bad TLS server name \"" + name + "\"");
  }

  std::shared_ptr<Core> core_;
};

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/tls_session.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

// A session factory whose sessions are `factory`'s, wrapped in TLS (a server
// context). A connection `factory` refuses stays refused.
inline EventLoop::SessionFactory tls_sessions(TlsContext context, EventLoop::SessionFactory factory) {
  if (!context.is_server()) throw Error(codes::invalid_argument, "tls_sessions needs a server TLS context");
  return [context = std::move(context), factory = std::move(factory)](
             const ConnectionInfo& info) -> std::shared_ptr<Session> {
    std::shared_ptr<Session> inner = factory(info);
    if (!inner) return nullptr;
    return std::make_shared<TlsSession>(context, std::move(inner));
  };
}

// EventLoop::listen, with TLS on every connection. Returns the bound address
// as tls:// (listen on port 0 and read the port from it); `address` may say
// tcp:// or tls://.
inline Address listen_tls(EventLoop& loop, const Address& address, TlsContext context,
                          EventLoop::SessionFactory factory, int backlog = SOMAXCONN) {
  if (!address.is_tcp()) throw Error(codes::invalid_argument, "TLS needs a TCP address, not " + address.to_string());
  return loop.listen_secured(address.with_tls(), tls_sessions(std::move(context), std::move(factory)), backlog);
}

inline Address listen_tls(EventLoop& loop, std::string_view address, TlsContext context,
                          EventLoop::SessionFactory factory, int backlog = SOMAXCONN) {
  return listen_tls(loop, parse_address(address), std::move(context), std::move(factory), backlog);
}

// Wraps a guest's stream in TLS (a client context), checking the host's
// certificate against the context's server name or else the host of the
// address: what ConnectorOptions::wrap_session takes.
using SessionWrapper = std::function<std::shared_ptr<Session>(std::shared_ptr<Session>, const Address&)>;

inline SessionWrapper tls_wrapper(TlsContext context) {
  if (context.is_server()) throw Error(codes::invalid_argument, "tls_wrapper needs a client TLS context");
  return [context = std::move(context)](std::shared_ptr<Session> inner,
                                        const Address& address) -> std::shared_ptr<Session> {
    return std::make_shared<TlsSession>(context, std::move(inner), address.host);
  };
}

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/transport/tls.hpp ----
#endif
#ifndef MANY_LEVEL_NO_SQLITE
// ---- begin src/many_level/sqlite_database.hpp ----
// The default store: one SQLite file in WAL mode holding a single table of
// BLOB keys, which SQLite orders as LevelDB does (memcmp, then length).
//
// Concurrency. Every method is thread-safe. Reads (get, get_many, has,
// has_many) run on pooled read connections, in parallel with each other and
// with writes. Each open iterator holds a read connection of its own inside a
// read transaction begun when the iterator is created: that transaction is its
// snapshot. Writes (put, del, batch, clear) go through one write connection
// with group commit: a caller that finds no commit running commits everything
// queued meanwhile in one transaction; the others wait. Every write call
// returns only once its transaction is committed. The writer whose commit
// filled the WAL then checkpoints it, beside the other writers rather than
// in their way (sqlite/checkpointer.hpp).
//
// Durability. With durable_fsync off (synchronous=NORMAL, the default, as
// LevelDB's default sync=false), an acknowledged write survives the process
// being killed (it is in the WAL file, which the OS keeps); a power loss or
// OS crash may lose the last commits, never the database's consistency. With
// durable_fsync on (synchronous=FULL) every commit is fsynced first and
// survives power loss too, at the cost of one fsync per group.
//
// Explicit snapshots (snapshot()): a pooled read connection inside a read
// transaction, pinned by a first read when the snapshot is made. Reads at a
// snapshot take turns on its connection (a mutex of the snapshot); iterators
// made at it step statements of their own on that connection, and keep it:
// closing the snapshot ends the transaction once its last iterator is done.
//
// The change feed (watch()): the group commit leader publishes each write
// request it applied, in group order, once the group's COMMIT has succeeded
// (a request that failed alone is left out; a group that failed publishes
// nothing). A clear chunk appears as exactly the keys it deleted (DELETE ...
// RETURNING). Only this object's writes are seen: writes another process (or
// another SqliteDatabase) makes to the same file are neither numbered nor
// delivered to watchers.
//
// Costs to know: an open iterator keeps a connection (three file handles) and
// holds its snapshot, so the WAL cannot be checkpointed past it; close
// iterators you no longer need (an explicit snapshot too). clear() deletes in
// chunks of clear_chunk keys, one write transaction each, so a large clear
// does not stall other writers; like abstract-level's clear() it is not
// atomic.

#include <sqlite3.h>

#include <cctype>
#include <filesystem>
#include <system_error>

// ---- begin src/many_level/sqlite/checkpointer.hpp ----
// WAL checkpoints off the write path. SQLite's automatic checkpoint runs
// inside the commit that fills the WAL, so every writer queued behind that
// commit waits for its fsyncs. Here the writer that finds a checkpoint due
// runs it once its own write has returned, on a connection of its own, while
// the others keep committing (a PASSIVE checkpoint never blocks writers).

// ---- begin src/many_level/sqlite/connection.hpp ----
// A thin RAII face over one SQLite connection and its prepared statements, so
// the store above never calls sqlite3_* by hand and every SQLite failure
// becomes a many_level::Error naming the file, SQLite's message and the cause.

#include <sqlite3.h>

MANY_LEVEL_NAMESPACE_BEGIN

namespace detail {
namespace sqlite {

// Busy means another connection (usually another process) holds the lock we
// waited for past the busy timeout; the other codes are the store's own files.
inline const char* level_code(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return codes::locked;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return codes::corruption;
    default:
      return codes::io_error;
  }
}

// "<what> '<file>': <SQLite's message> [(<OS error>)]". The OS error is what
// tells a missing directory from a directory from a permission problem.
[[noreturn]] inline void fail(int rc, std::string_view what, std::string_view file, sqlite3* db) {
  std::string message(what);
  message += " '";
  message += file;
  message += "': ";
  message += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  int os_error = db ? sqlite3_system_errno(db) : 0;
  if (os_error != 0 && (rc & 0xff) == SQLITE_CANTOPEN) {
    message += " (";
    message += std::strerror(os_error);
    message += ")";
  }
  throw Error(level_code(rc), message);
}

inline std::string_view file_of(sqlite3* db) {
  const char* name = sqlite3_db_filename(db, "main");
  return name ? name : "";
}

// A prepared statement owned by its Connection's cache. Blobs are bound
// SQLITE_STATIC: callers keep the bytes alive until the statement is reset.
class Statement {
 public:
  explicit Statement(sqlite3_stmt* statement) : statement_(statement) {}
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Always a BLOB, even when empty: a null pointer would bind NULL instead.
  void bind(int index, std::string_view bytes) {
    static const char empty = 0;
    const char* data = bytes.empty() ? &empty : bytes.data();
    check(sqlite3_bind_blob64(statement_, index, data, bytes.size(), SQLITE_STATIC), "cannot bind to");
  }

  void bind(int index, int64_t number) { check(sqlite3_bind_int64(statement_, index, number), "cannot bind to"); }

  // True with a row to read, false when done.
  bool step() {
    int rc = sqlite3_step(statement_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    check(rc, "cannot query");
    return false;
  }

  // Steps through a statement that returns no rows.
  void run() {
    while (step()) {
    }
  }

  // Ends the current execution, releasing what it holds in the database.
  void reset() { sqlite3_reset(statement_); }

  std::string_view blob(int column) const {
    // Size after the pointer: that order is the one SQLite documents as safe.
    const void* data = sqlite3_column_blob(statement_, column);
    size_t size = static_cast<size_t>(sqlite3_column_bytes(statement_, column));
    return size == 0 ? std::string_view() : std::string_view(static_cast<const char*>(data), size);
  }

 private:
  void check(int rc, const char* what) {
    if (rc == SQLITE_OK) return;
    sqlite3* db = sqlite3_db_handle(statement_);
    fail(rc, what, file_of(db), db);
  }

  sqlite3_stmt* statement_;
};

// Resets a statement when leaving a scope, so neither an exception nor an
// early return leaves it holding a read lock or dangling bound bytes.
class Resetting {
 public:
  explicit Resetting(Statement& statement) : statement_(statement) {}
  ~Resetting() { statement_.reset(); }
  Resetting(const Resetting&) = delete;
  Resetting& operator=(const Resetting&) = delete;

 private:
  Statement& statement_;
};

// One sqlite3 handle. Used by one thread at a time (the store guarantees it),
// so it is opened without SQLite's own per-connection mutex.
class Connection {
 public:
  Connection(const std::string& path, int flags, std::chrono::milliseconds busy_timeout) {
    if (sqlite3_threadsafe() == 0) {
      throw Error(codes::io_error, "SQLite was built single-threaded (SQLITE_THREADSAFE=0); many-level needs threads");
    }
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      // The handle carries the message; it must be closed even on failure.
      std::unique_ptr<sqlite3, int (*)(sqlite3*)> doomed(db_, sqlite3_close_v2);
      db_ = nullptr;
      fail(rc, "cannot open SQLite database", path, doomed.get());
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
  }

  ~Connection() {
    statements_.clear();  // finalized first, so the close below cannot fail
    sqlite3_close_v2(db_);
  }

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The statement for `sql`, prepared once per connection and reused.
  Statement& statement(const std::string& sql) {
    auto found = statements_.find(sql);
    if (found != statements_.end()) return *found->second;
    return *statements_.emplace(sql, prepare(sql)).first->second;
  }

  // A statement of the caller's own, outside the cache: for two executions
  // of one SQL text at once on this connection (two iterators at one
  // snapshot). The caller finalizes it (destroys it) before the connection.
  std::unique_ptr<Statement> prepare(const std::string& sql) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &raw,
                                nullptr);
    if (rc != SQLITE_OK) fail(rc, "cannot prepare '" + sql + "' on", file(), db_);
    return std::make_unique<Statement>(raw);
  }

  // Runs a statement without rows through the cache (BEGIN, COMMIT, PRAGMA ...).
  void execute(const std::string& sql) {
    Statement& s = statement(sql);
    Resetting done(s);
    s.run();
  }

  // A one-row answer as text (PRAGMA journal_mode and friends).
  std::string query_text(const std::string& sql) {
    Statement& s = statement(sql);
    Resetting done(s);
    if (!s.step()) return {};
    return std::string(s.blob(0));
  }

  // Ends every execution in progress, e.g. before the connection is lent again.
  void reset_statements() {
    for (auto& entry : statements_) entry.second->reset();
  }

  sqlite3* handle() const { return db_; }
  bool in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }
  int64_t changes() const { return sqlite3_changes64(db_); }
  std::string_view file() const { return file_of(db_); }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Statement>> statements_;
};

}  // namespace sqlite
}  // namespace detail

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/sqlite/connection.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

namespace detail {
namespace sqlite {

class Checkpointer {
 public:
  // Watches `writer`'s commits (which turns its automatic checkpoint off) and
  // checkpoints through `own` once the WAL has grown by `pages`.
  Checkpointer(std::unique_ptr<Connection> own, Connection& writer, int pages)
      : connection_(std::move(own)), writer_(writer), pages_(pages < 1 ? 1 : pages) {
    sqlite3_wal_hook(writer_.handle(), &Checkpointer::on_commit, this);
  }

  ~Checkpointer() { sqlite3_wal_hook(writer_.handle(), nullptr, nullptr); }

  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Any thread may call this after a write; one checkpoint runs at a time,
  // and a writer that finds one running goes on without waiting. True when
  // this call checkpointed.
  bool run_if_due() {
    int frames = frames_.load(std::memory_order_relaxed);
    if (frames < pages_) return false;
    std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    // Due when the WAL grew by `pages` since the last attempt, or restarted
    // and grew again: while an old iterator's snapshot holds the checkpoint
    // back, it is not retried at every commit.
    if (frames >= attempted_at_ && frames - attempted_at_ < pages_) return false;
    attempted_at_ = frames;
    try {
      connection_->query_text("PRAGMA wal_checkpoint(PASSIVE)");
      return true;
    } catch (const Error&) {
      // The write that got us here is committed and must not be reported as
      // failed; a failing disk shows in the next write, and this retries.
      return false;
    }
  }

 private:
  // Runs inside the writer's COMMIT, after the write lock is released.
  static int on_commit(void* self, sqlite3*, const char*, int frames) {
    static_cast<Checkpointer*>(self)->frames_.store(frames, std::memory_order_relaxed);
    return SQLITE_OK;
  }

  std::unique_ptr<Connection> connection_;
  Connection& writer_;
  const int pages_;
  std::atomic<int> frames_{0};
  std::mutex mutex_;
  int attempted_at_ = 0;
};

}  // namespace sqlite
}  // namespace detail

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/sqlite/checkpointer.hpp ----
// ---- begin src/many_level/sqlite/connection_pool.hpp ----
// Read connections of one SQLite store, lent out one caller at a time. Readers
// never wait for each other or for the writer: when every connection is lent,
// a new one opens, and at most `max_idle` stay open once they come back.

MANY_LEVEL_NAMESPACE_BEGIN

namespace detail {
namespace sqlite {

class ConnectionPool {
 public:
  using Factory = std::function<std::unique_ptr<Connection>()>;

  // A connection on loan; it goes back to the pool when the lease ends.
  class Lease {
   public:
    Lease() = default;
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        release();
        pool_ = other.pool_;
        connection_ = std::move(other.connection_);
      }
      return *this;
    }
    ~Lease() { release(); }

    Connection* operator->() const { return connection_.get(); }
    Connection& operator*() const { return *connection_; }
    explicit operator bool() const { return connection_ != nullptr; }

    void release() {
      if (connection_) pool_->give_back(std::move(connection_));
    }

   private:
    ConnectionPool* pool_ = nullptr;
    std::unique_ptr<Connection> connection_;
  };

  ConnectionPool(Factory factory, size_t max_idle) : factory_(std::move(factory)), max_idle_(max_idle) {}

  Lease acquire() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        auto connection = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(connection));
      }
    }
    // Opened outside the lock: opening touches the file and may wait.
    auto connection = factory_();
    std::lock_guard<std::mutex> lock(mutex_);
    ++open_;
    return Lease(this, std::move(connection));
  }

  // Closes the idle connections (the store closes only once none is lent).
  void close_idle() {
    std::vector<std::unique_ptr<Connection>> closing;
    std::lock_guard<std::mutex> lock(mutex_);
    closing.swap(idle_);
    open_ -= closing.size();
  }

  // Connections open right now, lent or idle.
  size_t open_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return open_;
  }

 private:
  // A connection comes back outside any transaction, or not at all: a lease
  // may end by an exception in the middle of a read transaction.
  void give_back(std::unique_ptr<Connection> connection) {
    connection->reset_statements();
    if (connection->in_transaction()) {
      try {
        connection->execute("ROLLBACK");
      } catch (const Error&) {
      }
    }
    std::unique_ptr<Connection> surplus;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!connection->in_transaction() && idle_.size() < max_idle_) {
        idle_.push_back(std::move(connection));
      } else {
        surplus = std::move(connection);
        --open_;
      }
    }
    // surplus closes here, outside the lock.
  }

  Factory factory_;
  size_t max_idle_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
  size_t open_ = 0;
};

}  // namespace sqlite
}  // namespace detail

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/sqlite/connection_pool.hpp ----
// ---- begin src/many_level/sqlite/group_commit.hpp ----
// Group commit: writers from many threads queue their requests; whichever of
// them finds no commit running becomes the leader and commits everything
// queued so far in one transaction, while the others wait for their answer.
// One fsync (or WAL append) then serves many writes.

MANY_LEVEL_NAMESPACE_BEGIN

namespace detail {
namespace sqlite {

template <typename Request>
class GroupCommit {
 public:
  // A queued request and its outcome. It lives on the submitting thread's
  // stack, which is safe because that thread waits until it is done.
  struct Ticket {
    Request* request = nullptr;
    std::exception_ptr error;  // this request's own failure, if any
    bool done = false;
  };

  // Applies a group in queue order as one transaction. A request that fails
  // alone gets its ticket's error; throwing fails every request of the group.
  using Commit = std::function<void(std::vector<Ticket*>& group)>;

  explicit GroupCommit(Commit commit) : commit_(std::move(commit)) {}

  // Returns once the request is committed; throws its error otherwise.
  void submit(Request& request) {
    Ticket ticket;
    ticket.request = &request;
    std::unique_lock<std::mutex> lock(mutex_);
    queue_.push_back(&ticket);
    changed_.wait(lock, [&] { return ticket.done || !leading_; });
    if (!ticket.done) lead(lock);
    if (ticket.error) std::rethrow_exception(ticket.error);
  }

  // Requests waiting for the next group (not the one being committed).
  size_t queued() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_.size();
  }

  // Requests in the group being committed now (0 when no commit runs).
  size_t committing() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return committing_;
  }

 private:
  // Called with the lock held and no leader; the caller's own ticket is queued.
  void lead(std::unique_lock<std::mutex>& lock) {
    leading_ = true;
    // Two vectors trade places group after group, so no group allocates.
    std::vector<Ticket*> group = std::move(spare_);
    group.clear();
    group.swap(queue_);
    committing_ = group.size();
    lock.unlock();
    std::exception_ptr failure;
    try {
      commit_(group);
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    for (Ticket* ticket : group) {
      if (failure) ticket->error = failure;
      ticket->done = true;
    }
    spare_ = std::move(group);
    // Whoever queued meanwhile: one of them leads the next group.
    leading_ = false;
    committing_ = 0;
    changed_.notify_all();
  }

  Commit commit_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Ticket*> queue_;
  std::vector<Ticket*> spare_;
  bool leading_ = false;
  size_t committing_ = 0;
};

}  // namespace sqlite
}  // namespace detail

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/sqlite/group_commit.hpp ----

MANY_LEVEL_NAMESPACE_BEGIN

struct SqliteOptions : DatabaseOptions {
  // synchronous=FULL instead of NORMAL: commits survive power loss, not only
  // a killed process (see the top of this file).
  bool durable_fsync = false;
  // How long a connection waits for a lock another process holds before the
  // call fails with LEVEL_LOCKED.
  std::chrono::milliseconds busy_timeout{5000};
  // Idle read connections kept open for reuse; more open when needed.
  size_t read_pool_size = 4;
  // Keys one clear() deletes per write transaction.
  size_t clear_chunk = 10000;
  // WAL pages written between checkpoints (SQLite's own default). The
  // checkpoint runs beside the writers, not inside a commit.
  int checkpoint_pages = 1000;
};

// Counters since construction, for monitoring and benchmarks.
struct SqliteStats {
  uint64_t writes = 0;           // write requests committed (a chunked clear counts per chunk)
  uint64_t commits = 0;          // write transactions committed: writes / commits is the group size
  uint64_t checkpoints = 0;      // WAL checkpoints run
  size_t read_connections = 0;   // read connections open now, lent (iterators, reads) or idle
  size_t committing_writes = 0;  // write calls in the group commit running now
  size_t queued_writes = 0;      // write calls waiting for the next group commit
};

namespace detail {
namespace sqlite {

// A range as SQLite scans it: lower bound inclusive, upper bound exclusive.
// Every KeyRange has this shape, because in byte order the key right after k
// is k + '\0'; so one SQL text serves gt, gte, lt and lte alike.
struct ScanRange {
  std::string lower;  // "" is at or below every key
  std::optional<std::string> upper;

  static ScanRange from(const KeyRange& range) {
    ScanRange scan;
    if (range.lower) scan.lower = range.lower->inclusive ? range.lower->key : after(range.lower->key);
    if (range.upper) scan.upper = range.upper->inclusive ? after(range.upper->key) : range.upper->key;
    return scan;
  }

  // This range from `target` on (a forward seek).
  ScanRange from_key(std::string_view target) const {
    ScanRange scan = *this;
    if (compare_keys(target, lower) > 0) scan.lower = std::string(target);
    return scan;
  }

  // This range up to and including `target` (a reverse seek).
  ScanRange up_to_key(std::string_view target) const {
    ScanRange scan = *this;
    std::string end = after(target);
    if (!upper || compare_keys(end, *upper) < 0) scan.upper = std::move(end);
    return scan;
  }

  // Binds ?1 and ?2 of a statement made with scan_clause(bounded()).
  void bind(Statement& statement) const {
    statement.bind(1, lower);
    if (upper) statement.bind(2, *upper);
  }

  bool bounded() const { return upper.has_value(); }

 private:
  static std::string after(std::string_view key) {
    std::string next(key);
    next.push_back('\0');
    return next;
  }
};

// The scan shared by iterators and clear(); bounds as ScanRange binds them.
inline std::string scan_clause(bool bounded, bool reverse) {
  std::string sql = " WHERE key >= ?1";
  if (bounded) sql += " AND key < ?2";
  sql += reverse ? " ORDER BY key DESC" : " ORDER BY key";
  return sql;
}

// Only the columns asked for: with values=false the value is never read.
inline std::string select_sql(bool keys, bool values, bool bounded, bool reverse) {
  const char* columns = keys && values ? "key, value" : keys ? "key" : values ? "value" : "NULL";
  return std::string("SELECT ") + columns + " FROM kv" + scan_clause(bounded, reverse);
}

// Returns the keys it deleted (SQLite 3.35+), for the change feed.
inline std::string clear_sql(bool bounded, bool reverse) {
  return "DELETE FROM kv WHERE key IN (SELECT key FROM kv" + scan_clause(bounded, reverse) + " LIMIT ?3) RETURNING key";
}

inline constexpr const char* create_table_sql =
    "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID";

// The statements of the hot paths, as std::string keys of the statement
// cache: made once, so no lookup allocates, and in a function static, so no
// static initialization order can catch them unmade.
enum class Query { get, has, put, del };

inline const std::string& sql(Query query) {
  static const std::string texts[] = {
      "SELECT value FROM kv WHERE key = ?1",
      "SELECT 1 FROM kv WHERE key = ?1",
      "INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)",
      "DELETE FROM kv WHERE key = ?1",
  };
  return texts[static_cast<int>(query)];
}

}  // namespace sqlite
}  // namespace detail

class SqliteDatabase final : public Database {
 public:
  // Nothing touches `path` until the database opens (on open() or first use).
  explicit SqliteDatabase(std::string path, SqliteOptions options = {})
      : Database(manifest(), options),
        path_(std::move(path)),
        options_(std::move(options)),
        readers_([this] { return open_reader(); }, options_.read_pool_size),
        writes_([this](std::vector<WriteQueue::Ticket*>& group) { commit(group); }) {
    enable_change_feed(options_.change_history);
  }

  ~SqliteDatabase() override {
    try {
      close();
    } catch (...) {
    }
  }

  const std::string& path() const { return path_; }

  SqliteStats stats() const {
    SqliteStats stats;
    stats.writes = writes_committed_.load(std::memory_order_relaxed);
    stats.commits = commits_.load(std::memory_order_relaxed);
    stats.checkpoints = checkpoints_.load(std::memory_order_relaxed);
    stats.read_connections = readers_.open_count();
    stats.committing_writes = writes_.committing();
    stats.queued_writes = writes_.queued();
    return stats;
  }

  // The file and its WAL, as they are on disk now.
  StorageInfo storage_info() const override {
    uint64_t bytes = 0;
    for (const auto& file : {path_, path_ + "-wal"}) {
      std::error_code missing;
      auto size = std::filesystem::file_size(file, missing);
      if (!missing) bytes += size;
    }
    return {"sqlite", path_, bytes};
  }

 protected:
  void do_open(const OpenOptions& open) override {
    if (path_.empty() || path_ == ":memory:") {
      // Each connection would get a database of its own.
      throw Error(codes::invalid_argument, "SqliteDatabase needs a file path, not '" + path_ + "'");
    }
    std::error_code ignored;  // when stat fails, SQLite reports the cause below
    bool exists = std::filesystem::exists(path_, ignored);
    // Worded as abstract-level's tests expect ("does not exist", "exists").
    if (!exists && !open.create_if_missing) {
      throw Error(codes::database_not_open,
                  "SQLite database '" + path_ + "' does not exist (create_if_missing is false)");
    }
    if (exists && open.error_if_exists) {
      throw Error(codes::database_not_open,
                  "SQLite database '" + path_ + "' already exists (error_if_exists is true)");
    }

    int flags = SQLITE_OPEN_READWRITE | (open.create_if_missing ? SQLITE_OPEN_CREATE : 0);
    auto writer = std::make_unique<Connection>(path_, flags, options_.busy_timeout);
    // The first statement reads the file: garbage fails here as LEVEL_CORRUPTION.
    std::string mode = writer->query_text("PRAGMA journal_mode = WAL");
    std::transform(mode.begin(), mode.end(), mode.begin(), [](unsigned char c) { return std::tolower(c); });
    if (mode != "wal") {
      throw Error(codes::io_error, "cannot use WAL journal mode for SQLite database '" + path_ + "' (got '" +
                                       mode + "')");
    }
    writer->execute(options_.durable_fsync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    // Taking the write lock at open reports a database another process is
    // writing as LEVEL_LOCKED now rather than at the first write.
    writer->execute("BEGIN IMMEDIATE");
    writer->execute(detail::sqlite::create_table_sql);
    writer->execute("COMMIT");
    // Prepared now so a foreign 'kv' table fails open(), not the first write.
    writer->statement(sql(Query::put));
    writer->statement(sql(Query::del));
    auto checkpointer = std::make_unique<detail::sqlite::Checkpointer>(
        std::make_unique<Connection>(path_, SQLITE_OPEN_READWRITE, options_.busy_timeout), *writer,
        options_.checkpoint_pages);
    readers_.acquire();  // a reader that cannot open fails open() too; it stays idle
    writer_ = std::move(writer);
    checkpointer_ = std::move(checkpointer);
  }

  void do_close() override {
    // Iterators and reads have returned their connections by now. Readers
    // close first, so the writer is last and checkpoints the WAL away.
    readers_.close_idle();
    checkpointer_.reset();
    writer_.reset();
  }

  std::optional<std::string> do_get(std::string_view key) override {
    auto reader = readers_.acquire();
    return read_value(*reader, key);
  }

  std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) override {
    return read_many<std::optional<std::string>>(keys, &SqliteDatabase::read_value);
  }

  bool do_has(std::string_view key) override {
    auto reader = readers_.acquire();
    return read_presence(*reader, key);
  }

  std::vector<bool> do_has_many(const std::vector<std::string>& keys) override {
    return read_many<bool>(keys, &SqliteDatabase::read_presence);
  }

  void do_put(std::string_view key, std::string_view value) override {
    WriteRequest request;
    request.kind = WriteRequest::Kind::put;
    request.key = key;
    request.value = value;
    write(request);
  }

  void do_del(std::string_view key) override {
    WriteRequest request;
    request.kind = WriteRequest::Kind::del;
    request.key = key;
    write(request);
  }

  void do_batch(const std::vector<BatchOperation>& operations) override {
    if (operations.empty()) return;
    WriteRequest request;
    request.kind = WriteRequest::Kind::batch;
    request.operations = &operations;
    write(request);
  }

  void do_clear(const RangeOptions& options) override {
    KeyRange range = KeyRange::from(options);
    if (range.empty()) return;
    auto scan = detail::sqlite::ScanRange::from(range);
    uint64_t left = options.limit < 0 ? UINT64_MAX : static_cast<uint64_t>(options.limit);
    const uint64_t chunk = std::max<uint64_t>(1, options_.clear_chunk);
    while (left > 0) {
      WriteRequest request;
      request.kind = WriteRequest::Kind::clear;
      request.range = &scan;
      request.reverse = options.reverse;
      request.limit = static_cast<int64_t>(std::min(left, chunk));
      write(request);
      left -= static_cast<uint64_t>(request.deleted);
      if (request.deleted < request.limit) break;  // the range is empty now
    }
  }

  inline std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options,
                                               std::shared_ptr<const Encoding> key_encoding,
                                               std::shared_ptr<const Encoding> value_encoding) override;

  inline std::shared_ptr<Snapshot> do_snapshot() override;

 private:
  using Connection = detail::sqlite::Connection;
  using ConnectionPool = detail::sqlite::ConnectionPool;
  using Statement = detail::sqlite::Statement;
  using Resetting = detail::sqlite::Resetting;
  using Query = detail::sqlite::Query;
  static const std::string& sql(Query query) { return detail::sqlite::sql(query); }

  // One write call, as the group commit leader applies it. It points into the
  // caller's arguments: the caller waits until it is applied.
  struct WriteRequest {
    enum class Kind { put, del, batch, clear };
    Kind kind = Kind::put;
    std::string_view key;
    std::string_view value;
    const std::vector<BatchOperation>* operations = nullptr;
    const detail::sqlite::ScanRange* range = nullptr;
    bool reverse = false;
    int64_t limit = 0;
    int64_t deleted = 0;                    // out: keys a clear chunk deleted
    std::vector<std::string> deleted_keys;  // out: which, in the order SQLite returned them
  };
  using WriteQueue = detail::sqlite::GroupCommit<WriteRequest>;

  // An explicit snapshot's read transaction, shared by the snapshot and the
  // iterators made at it: it ends (the lease goes back to the pool, which
  // rolls it back) when the last of them lets go.
  struct PinnedRead {
    std::mutex mutex;  // one thread at a time on the connection
    ConnectionPool::Lease reader;
  };

  class Cursor;
  class SnapshotReads;

  static Supports manifest() {
    Supports supports;
    supports.permanence = true;
    supports.snapshots = true;
    supports.create_if_missing = true;
    supports.error_if_exists = true;
    supports.explicit_snapshots = true;
    return supports;
  }

  std::unique_ptr<Connection> open_reader() {
    auto reader = std::make_unique<Connection>(path_, SQLITE_OPEN_READWRITE, options_.busy_timeout);
    reader->execute("PRAGMA query_only = 1");
    return reader;
  }

  static std::optional<std::string> read_value(Connection& reader, std::string_view key) {
    Statement& statement = reader.statement(sql(Query::get));
    Resetting done(statement);
    statement.bind(1, key);
    if (!statement.step()) return std::nullopt;
    return std::string(statement.blob(0));
  }

  static bool read_presence(Connection& reader, std::string_view key) {
    Statement& statement = reader.statement(sql(Query::has));
    Resetting done(statement);
    statement.bind(1, key);
    return statement.step();
  }

  // Reads every key in one read transaction, so they come from one snapshot.
  template <typename T, typename Read>
  std::vector<T> read_many(const std::vector<std::string>& keys, Read read) {
    std::vector<T> results;
    results.reserve(keys.size());
    if (keys.empty()) return results;
    auto reader = readers_.acquire();
    reader->execute("BEGIN");
    for (const auto& key : keys) results.push_back(read(*reader, key));
    reader->execute("COMMIT");  // on an exception, the pool rolls back instead
    return results;
  }

  // Returns once the request is committed (see GroupCommit); then, with its
  // own write done, the caller checkpoints if one is due.
  void write(WriteRequest& request) {
    writes_.submit(request);
    // The leader recorded the commit; watchers run here, on the writer's
    // thread with no lock held (with none, this is one atomic load).
    feed()->notify();
    if (checkpointer_->run_if_due()) checkpoints_.fetch_add(1, std::memory_order_relaxed);
  }

  // The group commit leader's work: one transaction for the whole group.
  void commit(std::vector<WriteQueue::Ticket*>& group) {
    Connection& writer = *writer_;
    writer.execute("BEGIN IMMEDIATE");
    try {
      uint64_t applied = 0;
      for (auto* ticket : group) {
        try {
          apply(writer, *ticket->request, group.size() == 1);
          ++applied;
        } catch (...) {
          // Most failures undo one statement; some (disk full, I/O) end the
          // whole transaction, and then the whole group has failed. Alone,
          // the request has no savepoint: rolling back all keeps it atomic.
          if (!writer.in_transaction() || group.size() == 1) throw;
          ticket->error = std::current_exception();
        }
      }
      writer.execute("COMMIT");
      commits_.fetch_add(1, std::memory_order_relaxed);
      writes_committed_.fetch_add(applied, std::memory_order_relaxed);
    } catch (...) {
      if (writer.in_transaction()) {
        try {
          writer.execute("ROLLBACK");
        } catch (const Error&) {
        }
      }
      throw;
    }
    record(group);
  }

  // The group's commits, in its order, still as its leader: the next group
  // waits, so the feed's order is the database's.
  void record(std::vector<WriteQueue::Ticket*>& group) {
    for (auto* ticket : group) {
      if (ticket->error) continue;
      WriteRequest& request = *ticket->request;
      if (request.kind == WriteRequest::Kind::clear && request.deleted_keys.empty()) continue;
      feed()->record_with([&] { return operations_of(request); });
    }
  }

  // A request as watchers see it. A clear chunk's deletes come in the order
  // its scan went (SQLite returns them in no promised order).
  static std::vector<BatchOperation> operations_of(WriteRequest& request) {
    using Kind = WriteRequest::Kind;
    std::vector<BatchOperation> operations;
    switch (request.kind) {
      case Kind::put:
        operations.push_back(BatchOperation::put(std::string(request.key), std::string(request.value)));
        break;
      case Kind::del:
        operations.push_back(BatchOperation::del(std::string(request.key)));
        break;
      case Kind::batch:
        operations = *request.operations;
        break;
      case Kind::clear: {
        auto& keys = request.deleted_keys;
        std::sort(keys.begin(), keys.end(), [reverse = request.reverse](const std::string& a, const std::string& b) {
          return reverse ? compare_keys(b, a) < 0 : compare_keys(a, b) < 0;
        });
        operations.reserve(keys.size());
        for (auto& key : keys) operations.push_back(BatchOperation::del(std::move(key)));
        break;
      }
    }
    return operations;
  }

  // `alone`: the request is the whole transaction, so a failure can roll all
  // of it back and a batch needs no savepoint of its own.
  static void apply(Connection& writer, WriteRequest& request, bool alone) {
    using Kind = WriteRequest::Kind;
    switch (request.kind) {
      case Kind::put:
        return write_one(writer, BatchOperation::Type::put, request.key, request.value);
      case Kind::del:
        return write_one(writer, BatchOperation::Type::del, request.key, {});
      case Kind::batch:
        return apply_batch(writer, *request.operations, alone);
      case Kind::clear: {
        const auto& range = *request.range;
        Statement& statement = writer.statement(detail::sqlite::clear_sql(range.bounded(), request.reverse));
        Resetting done(statement);
        range.bind(statement);
        statement.bind(3, request.limit);
        request.deleted_keys.clear();
        while (statement.step()) request.deleted_keys.emplace_back(statement.blob(0));
        request.deleted = static_cast<int64_t>(request.deleted_keys.size());
        return;
      }
    }
  }

  static void write_one(Connection& writer, BatchOperation::Type type, std::string_view key,
                        std::string_view value) {
    bool put = type == BatchOperation::Type::put;
    Statement& statement = writer.statement(put ? sql(Query::put) : sql(Query::del));
    Resetting done(statement);
    statement.bind(1, key);
    if (put) statement.bind(2, value);
    statement.run();
  }

  static void apply_batch(Connection& writer, const std::vector<BatchOperation>& operations, bool alone) {
    bool savepoint = !alone && operations.size() > 1;
    if (savepoint) writer.execute("SAVEPOINT batch");
    try {
      for (const auto& op : operations) write_one(writer, op.type, op.key, op.value);
    } catch (...) {
      if (savepoint && writer.in_transaction()) {
        try {
          writer.execute("ROLLBACK TO batch");
          writer.execute("RELEASE batch");
        } catch (const Error&) {
        }
      }
      throw;
    }
    if (savepoint) writer.execute("RELEASE batch");
  }

  std::string path_;
  SqliteOptions options_;
  ConnectionPool readers_;
  std::unique_ptr<Connection> writer_;  // used only by the group commit leader
  std::unique_ptr<detail::sqlite::Checkpointer> checkpointer_;
  WriteQueue writes_;
  std::atomic<uint64_t> writes_committed_{0};
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> checkpoints_{0};
};

// An iterator: a statement stepping through a read transaction's snapshot.
// Made by do_iterator(), it has a read connection and transaction of its own,
// given back to the pool when it closes. Made at an explicit snapshot, it
// shares the snapshot's connection: it steps statements of its own (the
// connection's cache holds one statement per SQL text, which two iterators
// would fight over), under the snapshot's mutex, and keeps the transaction
// alive until it closes.
class SqliteDatabase::Cursor final : public Iterator {
 public:
  Cursor(ConnectionPool::Lease reader, const IteratorOptions& options, std::shared_ptr<const Encoding> key_encoding,
         std::shared_ptr<const Encoding> value_encoding)
      : Cursor(options, std::move(key_encoding), std::move(value_encoding)) {
    reader_ = std::move(reader);
    connection_ = &*reader_;
    reader_->execute("BEGIN");
    start();
  }

  Cursor(std::shared_ptr<PinnedRead> pinned, const IteratorOptions& options,
         std::shared_ptr<const Encoding> key_encoding, std::shared_ptr<const Encoding> value_encoding)
      : Cursor(options, std::move(key_encoding), std::move(value_encoding)) {
    pinned_ = std::move(pinned);
    connection_ = &*pinned_->reader;
    auto lock = turn();
    try {
      start();
    } catch (...) {
      owned_[0].reset();  // finalized while the connection is still ours
      owned_[1].reset();
      throw;
    }
  }

  ~Cursor() override { close(); }

 protected:
  bool do_next(Entry& entry) override {
    auto lock = turn();
    if (!advance()) return false;
    read(entry);
    return true;
  }

  void do_nextv(size_t size, std::vector<Entry>& entries) override {
    auto lock = turn();
    // Only a fresh vector: all() calls this again and again on one vector,
    // where an exact reserve each time would defeat geometric growth.
    if (entries.empty()) entries.reserve(std::min<size_t>(size, 1024));
    for (size_t i = 0; i < size && advance(); ++i) {
      entries.emplace_back();
      read(entries.back());
    }
  }

  void do_seek(std::string_view target) override {
    auto lock = turn();
    position(reverse_ ? range_.up_to_key(target) : range_.from_key(target));
    pending_ = false;
    finished_ = false;
  }

  void do_close() override {
    {
      auto lock = turn();
      statement_ = nullptr;
      statements_[0] = statements_[1] = nullptr;
      owned_[0].reset();  // finalized while the connection is surely ours
      owned_[1].reset();
    }
    reader_.release();  // resets the statement and ends the read transaction
    pinned_.reset();    // the snapshot's transaction ends with its last user
  }

 private:
  Cursor(const IteratorOptions& options, std::shared_ptr<const Encoding> key_encoding,
         std::shared_ptr<const Encoding> value_encoding)
      : Iterator(options, std::move(key_encoding), std::move(value_encoding)),
        range_(detail::sqlite::ScanRange::from(KeyRange::from(options))),
        reverse_(options.reverse),
        key_column_(wants_keys() ? 0 : -1),
        value_column_(wants_values() ? (wants_keys() ? 1 : 0) : -1) {}

  // A deferred transaction starts reading at its first step: stepping now
  // pins the snapshot at creation rather than at the first next().
  void start() {
    position(range_);
    pending_ = statement_->step();
    finished_ = !pending_;
  }

  // The connection to ourselves: the snapshot's mutex when it is shared.
  std::unique_lock<std::mutex> turn() {
    return pinned_ ? std::unique_lock<std::mutex>(pinned_->mutex) : std::unique_lock<std::mutex>();
  }

  // Aims the statement at `scan` within the iterator's transaction. A reverse
  // seek can add an upper bound, hence a statement for each shape, both
  // prepared once (per connection, or per iterator at a snapshot).
  void position(detail::sqlite::ScanRange scan) {
    if (statement_) statement_->reset();
    const int shape = scan.bounded() ? 1 : 0;
    Statement*& slot = statements_[shape];
    if (!slot) {
      std::string sql = detail::sqlite::select_sql(wants_keys(), wants_values(), scan.bounded(), reverse_);
      if (pinned_) {
        owned_[shape] = connection_->prepare(sql);
        slot = owned_[shape].get();
      } else {
        slot = &connection_->statement(sql);
      }
    }
    statement_ = slot;
    bound_ = std::move(scan);  // the statement reads these bytes until reset
    bound_.bind(*statement_);
  }

  bool advance() {
    if (finished_) return false;
    if (pending_) {
      pending_ = false;
      return true;
    }
    if (statement_->step()) return true;
    finished_ = true;  // stepping again would restart the query
    return false;
  }

  void read(Entry& entry) const {
    if (key_column_ >= 0) entry.key.assign(statement_->blob(key_column_));
    if (value_column_ >= 0) entry.value.assign(statement_->blob(value_column_));
  }

  ConnectionPool::Lease reader_;        // its own connection, or
  std::shared_ptr<PinnedRead> pinned_;  // an explicit snapshot's
  Connection* connection_ = nullptr;
  std::unique_ptr<Statement> owned_[2];  // at a snapshot: its own statements
  const detail::sqlite::ScanRange range_;
  detail::sqlite::ScanRange bound_;
  Statement* statements_[2] = {nullptr, nullptr};
  Statement* statement_ = nullptr;
  bool reverse_;
  int key_column_;
  int value_column_;
  bool pending_ = false;   // the statement holds a row next() has not taken yet
  bool finished_ = false;  // the statement has no more rows
};

inline std::unique_ptr<Iterator> SqliteDatabase::do_iterator(const IteratorOptions& options,
                                                              std::shared_ptr<const Encoding> key_encoding,
                                                              std::shared_ptr<const Encoding> value_encoding) {
  return std::make_unique<Cursor>(readers_.acquire(), options, std::move(key_encoding), std::move(value_encoding));
}

// An explicit snapshot: reads take turns on its pinned read transaction.
class SqliteDatabase::SnapshotReads final : public Snapshot {
 public:
  explicit SnapshotReads(std::shared_ptr<PinnedRead> pinned) : pinned_(std::move(pinned)) {}

 protected:
  std::optional<std::string> do_get(std::string_view key) override {
    auto pinned = held();
    std::lock_guard<std::mutex> lock(pinned->mutex);
    return read_value(*pinned->reader, key);
  }

  std::vector<std::optional<std::string>> do_get_many(const std::vector<std::string>& keys) override {
    return read_all<std::optional<std::string>>(keys, &SqliteDatabase::read_value);
  }

  std::vector<bool> do_has_many(const std::vector<std::string>& keys) override {
    return read_all<bool>(keys, &SqliteDatabase::read_presence);
  }

  std::unique_ptr<Iterator> do_iterator(const IteratorOptions& options, std::shared_ptr<const Encoding> key_encoding,
                                        std::shared_ptr<const Encoding> value_encoding) override {
    return std::make_unique<Cursor>(held(), options, std::move(key_encoding), std::move(value_encoding));
  }

  void do_close() override {
    std::lock_guard<std::mutex> lock(mutex_);
    pinned_.reset();
  }

 private:
  template <typename T, typename Read>
  std::vector<T> read_all(const std::vector<std::string>& keys, Read read) {
    auto pinned = held();
    std::vector<T> results;
    results.reserve(keys.size());
    std::lock_guard<std::mutex> lock(pinned->mutex);
    for (const auto& key : keys) results.push_back(read(*pinned->reader, key));
    return results;
  }

  // The transaction, kept by the caller for its read: a close() on another
  // thread meanwhile only drops the snapshot's own reference.
  std::shared_ptr<PinnedRead> held() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!pinned_) throw Error(codes::snapshot_not_open, "Snapshot is not open");
    return pinned_;
  }

  std::mutex mutex_;
  std::shared_ptr<PinnedRead> pinned_;
};

inline std::shared_ptr<Snapshot> SqliteDatabase::do_snapshot() {
  auto pinned = std::make_shared<PinnedRead>();
  pinned->reader = readers_.acquire();
  pinned->reader->execute("BEGIN");
  // A deferred transaction takes its snapshot at its first read: read now.
  read_presence(*pinned->reader, "");
  return std::make_shared<SnapshotReads>(std::move(pinned));
}

MANY_LEVEL_NAMESPACE_END
// ---- end src/many_level/sqlite_database.hpp ----
#endif
// ---- end src/many_level.hpp ----

#endif  // MANY_LEVEL_SINGLE_INCLUDE_HPP

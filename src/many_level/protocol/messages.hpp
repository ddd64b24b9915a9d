// The messages of the many-level 2.0.0 wire protocol as plain C++ structs, one
// per message of src/many_level.proto, with the frame tags that select them.
// Bytes are std::string; std::optional marks fields whose presence travels.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "../version.hpp"

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
};

// The first byte of a payload sent by a host.
enum class HostTag : std::uint8_t {
  callback = 0,
  iterator_data = 1,
  get_many_callback = 2,
  iterator_error = 3,
  iterator_end = 4,
};

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
  }
  return "unknown";
}

// ---- guest to host ----

struct GetRequest {
  static constexpr GuestTag tag = GuestTag::get;
  std::uint32_t id = 0;
  std::string key;
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

// Any message of one direction; the variant index is the wire tag.
using GuestMessage =
    std::variant<GetRequest, PutRequest, DelRequest, BatchRequest, IteratorRequest,
                 ClearRequest, GetManyRequest, IteratorClose, IteratorAck, IteratorSeek>;
using HostMessage =
    std::variant<Callback, IteratorData, GetManyCallback, IteratorError, IteratorEnd>;

}  // namespace protocol
MANY_LEVEL_NAMESPACE_END

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
#pragma once

#include <google/protobuf/io/coded_stream.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "../error.hpp"
#include "../version.hpp"
#include "messages.hpp"

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

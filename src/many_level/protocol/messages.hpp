// The messages of the many-level 2.0.0 wire protocol as plain C++ structs, one
// per message of src/many_level.proto, with the frame tags that select them.
// Bytes are std::string; std::optional marks fields whose presence travels.
//
// Tags 64 and up are this project's extension (docs/PROTOCOL.md, "The
// extension"): a guest sends Hello first, and only a C++ host answers it; the
// Node reference ignores unknown tags, so with it everything stays base.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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

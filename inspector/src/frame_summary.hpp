// A frame decoded for a protocol analyser's eye: direction, tag name, id,
// seq, sizes, a one-line summary and a bounded multi-line detail. Payloads
// are decoded with the library's own codec (GuestMessage going out,
// HostMessage coming in), so the log shows what the wire really carried.
// Qt-free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "bytes_text.hpp"
#include "many_level/guest/guest_core.hpp"
#include "many_level/protocol/codec.hpp"
#include "many_level/protocol/messages.hpp"

namespace inspector {

using many_level::FrameDirection;

struct FrameSummary {
  uint64_t number = 0;       // in capture order, from 1
  int64_t time_us = 0;       // since the capture began
  FrameDirection direction = FrameDirection::out;
  int tag = -1;              // the wire tag, -1 for an empty payload
  std::string tag_name;      // "put", "iteratorData", ... or "unknown"
  bool malformed = false;    // a known tag whose message failed to decode
  bool truncated = false;    // too large to keep whole: only its size is known
  std::optional<uint32_t> id;   // a request, iterator, watch or snapshot id
  std::optional<uint64_t> seq;  // an iterator's seq, or a commit sequence (watches)
  size_t payload_size = 0;   // bytes after the length prefix
  size_t items = 0;          // keys/values carried (data, getMany, batch)
  std::string summary;       // one line
  std::string detail;        // several lines, bounded
};

namespace detail {

constexpr size_t kShownBytes = 48;  // of a key or value in a summary
constexpr size_t kDetailItems = 32; // items listed in a detail

inline std::string quote_bytes(std::string_view bytes, size_t max = kShownBytes) {
  return "\"" + escape_bytes(bytes, max) + "\"";
}

inline std::string size_text(size_t bytes) { return std::to_string(bytes) + " B"; }

inline void add_bound(std::string& out, const char* name, const std::optional<std::string>& bound) {
  if (bound) out += std::string(" ") + name + "=" + quote_bytes(*bound);
}

template <typename Range>
std::string bounds_text(const Range& range) {
  std::string out;
  add_bound(out, "gt", range.gt);
  add_bound(out, "gte", range.gte);
  add_bound(out, "lt", range.lt);
  add_bound(out, "lte", range.lte);
  return out;
}

template <typename Options>
std::string range_text(const Options& options) {
  std::string out = bounds_text(options);
  if (options.limit >= 0) out += " limit=" + std::to_string(options.limit);
  if (options.reverse) out += " reverse";
  return out;
}

inline void describe(FrameSummary& f, const many_level::protocol::GetRequest& m) {
  f.summary = "key=" + quote_bytes(m.key);
}
inline void describe(FrameSummary& f, const many_level::protocol::PutRequest& m) {
  f.summary = "key=" + quote_bytes(m.key) + " value=" + size_text(m.value ? m.value->size() : 0);
  if (m.value) f.detail = "value: " + quote_bytes(*m.value, 256);
}
inline void describe(FrameSummary& f, const many_level::protocol::DelRequest& m) {
  f.summary = "key=" + quote_bytes(m.key);
}
inline void describe(FrameSummary& f, const many_level::protocol::BatchRequest& m) {
  f.items = m.ops.size();
  f.summary = std::to_string(m.ops.size()) + " ops";
  for (size_t i = 0; i < m.ops.size() && i < kDetailItems; ++i) {
    const auto& op = m.ops[i];
    bool put = op.type == many_level::protocol::BatchOp::Type::put;
    f.detail += std::string(put ? "put " : "del ") + quote_bytes(op.key);
    if (put) f.detail += " = " + quote_bytes(op.value.value_or(""));
    f.detail += "\n";
  }
}
inline void describe(FrameSummary& f, const many_level::protocol::IteratorRequest& m) {
  f.seq = m.seq;
  std::string what = m.options.keys && m.options.values ? "keys+values" : m.options.keys ? "keys" : "values";
  f.summary = what + range_text(m.options);
  if (m.consumed > 0) f.summary += " consumed=" + std::to_string(m.consumed);
  if (m.bookmark) f.summary += " bookmark=" + quote_bytes(*m.bookmark);
  if (m.seek) f.summary += " seek=" + quote_bytes(*m.seek);
}
inline void describe(FrameSummary& f, const many_level::protocol::ClearRequest& m) {
  f.summary = m.options ? "range:" + range_text(*m.options) : "everything";
}
inline void describe(FrameSummary& f, const many_level::protocol::GetManyRequest& m) {
  f.items = m.keys.size();
  f.summary = std::to_string(m.keys.size()) + " keys";
  for (size_t i = 0; i < m.keys.size() && i < kDetailItems; ++i) f.detail += quote_bytes(m.keys[i]) + "\n";
}
inline void describe(FrameSummary&, const many_level::protocol::IteratorClose&) {}
inline void describe(FrameSummary& f, const many_level::protocol::IteratorAck& m) {
  f.seq = m.seq;
  f.summary = "consumed=" + std::to_string(m.consumed);
}
inline void describe(FrameSummary& f, const many_level::protocol::IteratorSeek& m) {
  f.seq = m.seq;
  f.summary = "target=" + quote_bytes(m.target);
}
inline void describe(FrameSummary& f, const many_level::protocol::Callback& m) {
  if (m.error && !m.error->empty()) {
    f.summary = "error " + *m.error;
  } else if (m.value) {
    f.summary = "ok, value=" + size_text(m.value->size());
    f.detail = "value: " + quote_bytes(*m.value, 256);
  } else {
    f.summary = "ok";
  }
}
inline void describe(FrameSummary& f, const many_level::protocol::IteratorDataView& m) {
  f.seq = m.seq;
  f.items = m.data.size();
  f.summary = std::to_string(m.data.size()) + " items";
  if (!m.data.empty()) f.summary += ", first " + quote_bytes(m.data.front());
  for (size_t i = 0; i < m.data.size() && i < kDetailItems; ++i) f.detail += quote_bytes(m.data[i]) + "\n";
  if (m.data.size() > kDetailItems) f.detail += "… " + std::to_string(m.data.size() - kDetailItems) + " more\n";
}
inline void describe(FrameSummary& f, const many_level::protocol::IteratorData& m) {
  many_level::protocol::IteratorDataView view{m.id, m.seq, {}};
  for (const auto& item : m.data) view.data.push_back(item);
  describe(f, view);
}
inline void describe(FrameSummary& f, const many_level::protocol::GetManyCallback& m) {
  f.items = m.values.size();
  if (m.error && !m.error->empty()) {
    f.summary = "error " + *m.error;
    return;
  }
  size_t found = 0;
  for (const auto& value : m.values) found += value ? 1 : 0;
  f.summary = std::to_string(m.values.size()) + " values, " + std::to_string(found) + " found";
}
inline void describe(FrameSummary& f, const many_level::protocol::IteratorError& m) {
  f.seq = m.seq;
  f.summary = "error " + m.error;
}
inline void describe(FrameSummary& f, const many_level::protocol::IteratorEnd& m) { f.seq = m.seq; }

// ---- the extension ----------------------------------------------------------

inline std::string list_text(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& word : words) out += (out.empty() ? "" : ",") + word;
  return out.empty() ? "-" : out;
}

inline std::string snapshot_text(const std::optional<uint32_t>& snapshot) {
  return snapshot ? " snapshot=" + std::to_string(*snapshot) : std::string();
}

inline void describe(FrameSummary& f, const many_level::protocol::Hello& m) {
  f.summary = "version=" + std::to_string(m.version) + " features=" + list_text(m.features);
  if (m.token) f.summary += " token=(" + size_text(m.token->size()) + ")";
}
inline void describe(FrameSummary& f, const many_level::protocol::HasRequest& m) {
  f.items = m.keys.size();
  f.summary = std::to_string(m.keys.size()) + " keys" + snapshot_text(m.snapshot);
  for (size_t i = 0; i < m.keys.size() && i < kDetailItems; ++i) f.detail += quote_bytes(m.keys[i]) + "\n";
}
inline void describe(FrameSummary& f, const many_level::protocol::SnapshotRequest& m) {
  f.summary = "snapshot=" + std::to_string(m.snapshot);
}
inline void describe(FrameSummary& f, const many_level::protocol::SnapshotRelease& m) {
  f.summary = "snapshot=" + std::to_string(m.snapshot);
}
inline void describe(FrameSummary& f, const many_level::protocol::WatchRequest& m) {
  const std::string bounds = bounds_text(m.range);
  f.summary = bounds.empty() ? "everything" : "range:" + bounds;
  if (m.since) {
    f.seq = *m.since;
    f.summary += " since=" + std::to_string(*m.since);
  }
}
inline void describe(FrameSummary& f, const many_level::protocol::WatchAck& m) {
  f.seq = m.seq;
  f.summary = "up to seq " + std::to_string(m.seq);
}
inline void describe(FrameSummary&, const many_level::protocol::WatchClose&) {}
inline void describe(FrameSummary&, const many_level::protocol::HostStatsRequest&) {}
inline void describe(FrameSummary& f, const many_level::protocol::HelloReply& m) {
  if (m.error) {
    f.summary = "error " + *m.error;
    return;
  }
  f.seq = m.seq;
  f.summary = "version=" + std::to_string(m.version) + " features=" + list_text(m.features) +
              " seq=" + std::to_string(m.seq);
}
inline void describe(FrameSummary& f, const many_level::protocol::HasCallback& m) {
  if (m.error && !m.error->empty()) {
    f.summary = "error " + *m.error;
    return;
  }
  f.items = m.found.size();
  size_t found = 0;
  for (char byte : m.found) found += byte != 0 ? 1 : 0;
  f.summary = std::to_string(m.found.size()) + " keys, " + std::to_string(found) + " found";
}
inline void describe(FrameSummary& f, const many_level::protocol::WatchStarted& m) {
  f.seq = m.seq;
  f.summary = "after seq " + std::to_string(m.seq);
}
inline void describe(FrameSummary& f, const many_level::protocol::WatchData& m) {
  size_t ops = 0;
  for (const auto& commit : m.commits) ops += commit.ops.size();
  f.items = ops;
  if (!m.commits.empty()) f.seq = m.commits.back().seq;
  f.summary = std::to_string(m.commits.size()) + " commits, " + std::to_string(ops) + " ops";
  if (!m.commits.empty()) {
    f.summary += ", seq " + std::to_string(m.commits.front().seq) + ".." + std::to_string(m.commits.back().seq);
  }
  size_t listed = 0;
  for (const auto& commit : m.commits) {
    for (const auto& op : commit.ops) {
      if (listed++ == kDetailItems) {
        f.detail += "…\n";
        return;
      }
      const bool put = op.type == many_level::protocol::BatchOp::Type::put;
      f.detail += "#" + std::to_string(commit.seq) + (put ? " put " : " del ") + quote_bytes(op.key);
      if (put) f.detail += " = " + quote_bytes(op.value.value_or(""));
      f.detail += "\n";
    }
  }
}
inline void describe(FrameSummary& f, const many_level::protocol::WatchError& m) { f.summary = "error " + m.error; }
inline void describe(FrameSummary& f, const many_level::protocol::HostStatsReply& m) {
  if (m.error && !m.error->empty()) {
    f.summary = "error " + *m.error;
  } else if (m.stats) {
    f.items = m.stats->connections.size();
    f.summary = std::to_string(m.stats->connections.size()) + " connections, seq " + std::to_string(m.stats->seq);
  }
}

// The id a message carries, for the log's id column and its id=N filter: a
// snapshot release names its snapshot; a hello has none.
template <typename M>
std::optional<uint32_t> id_of(const M& m) {
  if constexpr (std::is_same_v<M, many_level::protocol::SnapshotRelease>) {
    return m.snapshot;
  } else if constexpr (std::is_same_v<M, many_level::protocol::Hello> ||
                       std::is_same_v<M, many_level::protocol::HelloReply>) {
    return std::nullopt;
  } else {
    return m.id;
  }
}

template <typename Variant>
void describe_variant(FrameSummary& f, std::string_view payload) {
  Variant message;
  auto status = many_level::protocol::decode_payload(payload, message);
  if (status == many_level::protocol::DecodeStatus::ignored) return;
  if (status == many_level::protocol::DecodeStatus::malformed) {
    f.malformed = true;
    f.summary = "malformed";
    return;
  }
  std::visit(
      [&](const auto& m) {
        f.id = id_of(m);
        describe(f, m);
      },
      message);
}

}  // namespace detail

// Decodes one payload (tag byte and message, no length prefix). Frames the
// guest sends are GuestMessages, frames it receives HostMessages.
inline FrameSummary summarize(FrameDirection direction, std::string_view payload) {
  namespace protocol = many_level::protocol;
  FrameSummary f;
  f.direction = direction;
  f.payload_size = payload.size();
  if (payload.empty()) {
    f.tag_name = "empty";
    return f;
  }
  f.tag = static_cast<unsigned char>(payload[0]);
  if (direction == FrameDirection::out) {
    f.tag_name = protocol::tag_name(static_cast<protocol::GuestTag>(f.tag));
    detail::describe_variant<protocol::GuestMessage>(f, payload);
  } else {
    f.tag_name = protocol::tag_name(static_cast<protocol::HostTag>(f.tag));
    if (f.tag == static_cast<int>(protocol::HostTag::iterator_data)) {
      // The bulk of the traffic: decoded into views, without copying entries.
      protocol::IteratorDataView data;
      if (protocol::decode(payload.substr(1), data)) {
        f.id = data.id;
        detail::describe(f, data);
      } else {
        f.malformed = true;
        f.summary = "malformed";
      }
    } else {
      detail::describe_variant<protocol::HostMessage>(f, payload);
    }
  }
  return f;
}

}  // namespace inspector

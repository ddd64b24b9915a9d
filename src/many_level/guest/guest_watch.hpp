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
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../change_feed.hpp"
#include "../error.hpp"
#include "../version.hpp"
#include "../watch.hpp"
#include "../protocol/messages.hpp"
#include "id_allocator.hpp"

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

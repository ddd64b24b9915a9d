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
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "../change_feed.hpp"
#include "../database.hpp"
#include "../error.hpp"
#include "../version.hpp"
#include "../protocol/messages.hpp"
#include "coalesced_job.hpp"
#include "host_options.hpp"
#include "host_watch.hpp"
#include "worker_pool.hpp"

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

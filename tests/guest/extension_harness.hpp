// Test harness for the guest's side of the extension (docs/PROTOCOL.md, "The
// extension"), on top of guest_harness.hpp:
//   FrameLog        every frame a guest sends and receives, decoded, in order
//   ReferencePeer   a raw byte peer that answers like the Node reference host:
//                   base requests from a MemoryDatabase, extension frames
//                   (Hello included) ignored; optionally it refuses Hello
//   ReferenceLink   a guest's stream to a ReferencePeer
//   WatchLog        what a watch callback was given, with bounded waits
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <many_level.hpp>

#include "guest_harness.hpp"

namespace guest_tests {

namespace proto = many_level::protocol;

// ---- frames ------------------------------------------------------------------

// Records every frame of a guest (set as its frame observer), decoded.
class FrameLog {
 public:
  explicit FrameLog(Guest& guest) {
    guest.set_frame_observer([this](FrameDirection direction, std::string_view payload) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (direction == FrameDirection::out) {
        proto::GuestMessage message;
        if (proto::decode_payload(payload, message) == proto::DecodeStatus::ok) out_.push_back(std::move(message));
      } else {
        proto::HostMessage message;
        if (proto::decode_payload(payload, message) == proto::DecodeStatus::ok) in_.push_back(std::move(message));
      }
    });
  }

  std::vector<proto::GuestMessage> out() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return out_;
  }
  std::vector<proto::HostMessage> in() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return in_;
  }

  // The frames of one kind the guest sent (or received), in order.
  template <typename M>
  std::vector<M> sent() const {
    return only<M>(out());
  }
  template <typename M>
  std::vector<M> received() const {
    return only<M>(in());
  }

  // The names of the frames sent, in order ("hello", "get", ...).
  std::vector<std::string> sent_names() const {
    std::vector<std::string> names;
    for (const auto& message : out()) {
      names.push_back(std::visit([](const auto& m) { return std::string(proto::tag_name(m.tag)); }, message));
    }
    return names;
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    out_.clear();
    in_.clear();
  }

 private:
  template <typename M, typename Variant>
  static std::vector<M> only(const std::vector<Variant>& messages) {
    std::vector<M> out;
    for (const auto& message : messages) {
      if (auto* m = std::get_if<M>(&message)) out.push_back(*m);
    }
    return out;
  }

  mutable std::mutex mutex_;
  std::vector<proto::GuestMessage> out_;
  std::vector<proto::HostMessage> in_;
};

// ---- a reference-like host ------------------------------------------------------

// Answers like the Node reference host, synchronously as frames are decoded:
// get (LEVEL_NOT_FOUND for a missing key), put, del, batch and getMany over a
// MemoryDatabase; every frame of the extension is ignored, as a tag the
// reference does not know is. With `refuse_hello`, it answers Hello with a
// HelloReply carrying that error (a C++ host that refuses the guest).
class ReferencePeer final : public Session {
 public:
  explicit ReferencePeer(std::optional<std::string> refuse_hello = std::nullopt)
      : refuse_hello_(std::move(refuse_hello)) {}

  void receive(const char* data, size_t size) override {
    decoder_.feed(data, size, [this](std::string_view payload) {
      proto::GuestMessage message;
      if (proto::decode_payload(payload, message) != proto::DecodeStatus::ok) return;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        received_.push_back(message);
      }
      std::visit([this](auto& m) { answer(m); }, message);
    });
  }
  void end() override { output_.close(); }
  OutputBuffer& output() override { return output_; }
  std::string failed() const override { return {}; }

  std::vector<proto::GuestMessage> received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }
  MemoryDatabase& db() { return db_; }

 private:
  template <typename M>
  void reply(const M& message) {
    output_.write([&](std::string& out) { proto::encode(out, message); });
  }

  void answer(const proto::GetRequest& get) {
    auto value = db_.try_get(get.key, kRawRead);
    if (!value) return reply(proto::Callback{get.id, std::string(codes::not_found), std::nullopt});
    reply(proto::Callback{get.id, std::nullopt, std::move(value)});
  }
  void answer(const proto::PutRequest& put) {
    db_.put(put.key, put.value.value_or(""), kRawWrite);
    reply(proto::Callback{put.id, std::nullopt, std::nullopt});
  }
  void answer(const proto::DelRequest& del) {
    db_.del(del.key, kRawWrite);
    reply(proto::Callback{del.id, std::nullopt, std::nullopt});
  }
  void answer(const proto::BatchRequest& batch) {
    std::vector<BatchOperation> operations;
    for (const auto& op : batch.ops) {
      operations.push_back(op.type == proto::BatchOp::Type::put ? BatchOperation::put(op.key, op.value.value_or(""))
                                                                : BatchOperation::del(op.key));
    }
    db_.batch(operations, kRawWrite);
    reply(proto::Callback{batch.id, std::nullopt, std::nullopt});
  }
  void answer(const proto::GetManyRequest& get_many) {
    reply(proto::GetManyCallback{get_many.id, std::nullopt, db_.get_many(get_many.keys, kRawRead)});
  }
  void answer(const proto::Hello&) {
    if (!refuse_hello_) return;
    proto::HelloReply refusal;
    refusal.version = 1;
    refusal.error = refuse_hello_;
    reply(refusal);
  }
  template <typename M>
  void answer(const M&) {}  // not needed here, or unknown to the reference

  std::optional<std::string> refuse_hello_;
  MemoryDatabase db_;
  proto::FrameDecoder decoder_;
  OutputBuffer output_{SIZE_MAX};
  mutable std::mutex mutex_;
  std::vector<proto::GuestMessage> received_;
};

// One stream between a guest and a ReferencePeer.
class ReferenceLink {
 public:
  explicit ReferenceLink(Guest& guest, std::optional<std::string> refuse_hello = std::nullopt,
                         PumpOptions options = {})
      : peer_(std::make_shared<ReferencePeer>(std::move(refuse_hello))), pump_(guest.connect(), peer_, options) {}

  ReferencePeer& peer() { return *peer_; }
  Pump& pump() { return pump_; }
  void cut() { pump_.cut(); }

 private:
  std::shared_ptr<ReferencePeer> peer_;
  Pump pump_;
};

// ---- watches ---------------------------------------------------------------------

// Collects what a watch's callback is given. callback() is the callback;
// waits are bounded by kTimeout.
class WatchLog {
 public:
  WatchCallback callback() {
    return [this](std::optional<Error> error, const Commit& commit) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++calls_;
      if (error) {
        errors_.push_back(*error);
      } else {
        commits_.push_back(commit);
      }
      changed_.notify_all();
    };
  }

  std::vector<Commit> commits() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return commits_;
  }
  std::vector<Error> errors() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return errors_;
  }
  size_t calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }
  // The code of the first error, "none" before any.
  std::string error_code() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return errors_.empty() ? "none" : errors_.front().code();
  }

  bool wait_for_commits(size_t count, std::chrono::milliseconds timeout = kTimeout) const {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return commits_.size() >= count; });
  }
  bool wait_for_seq(uint64_t seq, std::chrono::milliseconds timeout = kTimeout) const {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return !commits_.empty() && commits_.back().seq >= seq; });
  }
  bool wait_for_error(std::chrono::milliseconds timeout = kTimeout) const {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return !errors_.empty(); });
  }

  // Every operation delivered, in order, across commits.
  std::vector<BatchOperation> operations() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<BatchOperation> out;
    for (const auto& commit : commits_) out.insert(out.end(), commit.operations.begin(), commit.operations.end());
    return out;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<Commit> commits_;
  std::vector<Error> errors_;
  size_t calls_ = 0;
};

inline std::string describe(const BatchOperation& op) {
  return std::string(op.type == BatchOperation::Type::put ? "put " : "del ") + ::testing::PrintToString(op.key) +
         (op.type == BatchOperation::Type::put ? " " + ::testing::PrintToString(op.value) : "");
}

}  // namespace guest_tests

MANY_LEVEL_NAMESPACE_BEGIN
inline void PrintTo(const BatchOperation& op, std::ostream* os) { *os << guest_tests::describe(op); }
MANY_LEVEL_NAMESPACE_END

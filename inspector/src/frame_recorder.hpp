// Captures frames for the frame log. The guest's frame observer calls
// record() on whatever thread sends or receives, possibly with the guest's
// lock held, so it only copies the payload into a bounded inbox; the UI
// drains and decodes it on its own time. Thread-safe, Qt-free.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "many_level/guest/guest_core.hpp"

namespace inspector {

struct CapturedFrame {
  uint64_t number = 0;
  std::chrono::steady_clock::time_point time;
  many_level::FrameDirection direction = many_level::FrameDirection::out;
  size_t size = 0;         // of the payload on the wire
  std::string payload;     // empty when it was too large to keep
  bool truncated = false;
};

class FrameRecorder {
 public:
  // The inbox holds at most `max_frames` frames and `max_bytes` of payloads
  // between two drains; a payload over `max_payload` is noted by size only.
  explicit FrameRecorder(size_t max_frames = 20000, size_t max_bytes = size_t{32} << 20,
                         size_t max_payload = size_t{4} << 20)
      : max_frames_(max_frames), max_bytes_(max_bytes), max_payload_(max_payload) {}

  void record(many_level::FrameDirection direction, std::string_view payload) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mutex_);
    ++seen_;
    if (!capturing_) {
      ++skipped_;
      return;
    }
    const bool keep = payload.size() <= max_payload_;
    if (inbox_.size() >= max_frames_ || (keep && inbox_bytes_ + payload.size() > max_bytes_)) {
      ++dropped_;
      return;
    }
    CapturedFrame frame;
    frame.number = ++number_;
    frame.time = now;
    frame.direction = direction;
    frame.size = payload.size();
    frame.truncated = !keep;
    if (keep) frame.payload.assign(payload);
    inbox_bytes_ += frame.payload.size();
    inbox_.push_back(std::move(frame));
  }

  // Takes what was captured since the last drain.
  std::vector<CapturedFrame> drain() {
    std::vector<CapturedFrame> out;
    std::lock_guard<std::mutex> lock(mutex_);
    out.swap(inbox_);
    inbox_bytes_ = 0;
    return out;
  }

  void set_capturing(bool capturing) {
    std::lock_guard<std::mutex> lock(mutex_);
    capturing_ = capturing;
  }
  bool capturing() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return capturing_;
  }

  uint64_t seen() const { return locked(seen_); }
  // Frames lost because the UI did not drain in time.
  uint64_t dropped() const { return locked(dropped_); }
  // Frames passed by while capture was paused.
  uint64_t skipped() const { return locked(skipped_); }

  std::chrono::steady_clock::time_point epoch() const { return epoch_; }

 private:
  uint64_t locked(const uint64_t& value) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return value;
  }

  const size_t max_frames_;
  const size_t max_bytes_;
  const size_t max_payload_;
  const std::chrono::steady_clock::time_point epoch_ = std::chrono::steady_clock::now();
  mutable std::mutex mutex_;
  std::vector<CapturedFrame> inbox_;
  size_t inbox_bytes_ = 0;
  bool capturing_ = true;
  uint64_t number_ = 0;
  uint64_t seen_ = 0;
  uint64_t dropped_ = 0;
  uint64_t skipped_ = 0;
};

}  // namespace inspector

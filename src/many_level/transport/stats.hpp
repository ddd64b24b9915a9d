// Live counters of one connection, written by its transport and read from any
// thread (the Inspector, host statistics) without locks.
#pragma once

#include <atomic>
#include <cstdint>

#include "../version.hpp"

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

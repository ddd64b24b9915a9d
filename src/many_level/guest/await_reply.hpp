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
#pragma once

#include <chrono>
#include <future>
#include <thread>

#include "../version.hpp"

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

// Turns a cumulative counter (bytes in, frames out, ops done) into a rate
// per second between two samples. Qt-free.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace inspector {

class RateMeter {
 public:
  using Clock = std::chrono::steady_clock;

  // The rate since the previous sample (0 for the first). A counter that
  // went backwards (a new guest) restarts the meter.
  double sample(uint64_t total, Clock::time_point now = Clock::now()) {
    double rate = 0;
    if (last_ && total >= last_total_) {
      double seconds = std::chrono::duration<double>(now - *last_).count();
      if (seconds > 0) rate = static_cast<double>(total - last_total_) / seconds;
    }
    last_ = now;
    last_total_ = total;
    return rate;
  }

 private:
  std::optional<Clock::time_point> last_;
  uint64_t last_total_ = 0;
};

}  // namespace inspector

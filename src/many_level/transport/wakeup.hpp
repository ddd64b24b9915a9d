// Wakes a thread blocked in poll() from any other thread: how output that a
// worker thread produces reaches a transport that sleeps in poll().
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "../version.hpp"
#include "fd.hpp"

MANY_LEVEL_NAMESPACE_BEGIN
namespace detail {

// An eventfd: signal() makes fd() readable until drain(). Held by shared_ptr
// wherever a listener may still fire after the transport has returned, so the
// descriptor is never written after it was closed (and perhaps reused).
class Wakeup {
 public:
  Wakeup() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (!fd_) throw errno_error("eventfd");
  }

  int fd() const { return fd_.get(); }

  void signal() const {
    const std::uint64_t one = 1;
    // EAGAIN means the counter is saturated, which is still readable: fine.
    while (::write(fd_.get(), &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

  void drain() const {
    std::uint64_t count;
    while (::read(fd_.get(), &count, sizeof count) < 0 && errno == EINTR) {
    }
  }

 private:
  UniqueFd fd_;
};

}  // namespace detail
MANY_LEVEL_NAMESPACE_END

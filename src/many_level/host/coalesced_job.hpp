// A job that runs on a worker pool at most once at a time, however often it
// is asked for: asking while it runs makes it run once more afterwards, and
// asking while it is queued costs nothing. A session's watch pump is one: a
// commit asks for it from the committing thread, an ack from the I/O thread,
// and the pump then catches up on everything at once on a worker.
//
// Asking never blocks and takes no lock of the caller's (an atomic counter,
// then, on the first ask only, the pool's queue), so it is safe from a change
// feed's listener.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "../version.hpp"
#include "worker_pool.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

class CoalescedJob : public std::enable_shared_from_this<CoalescedJob> {
 public:
  // `pool` must outlive every request(); `job` is called on the pool's threads.
  CoalescedJob(WorkerPool& pool, std::function<void()> job) : pool_(pool), job_(std::move(job)) {}

  CoalescedJob(const CoalescedJob&) = delete;
  CoalescedJob& operator=(const CoalescedJob&) = delete;

  // Makes the job run (again) soon. Only the request that finds nothing
  // pending submits; the runner sees the others when it is done.
  void request() {
    if (requests_.fetch_add(1) == 0) pool_.submit([self = shared_from_this()] { self->run(); });
  }

 private:
  void run() {
    unsigned seen = requests_.load();
    for (;;) {
      try {
        job_();
      } catch (...) {
        // The job reports its own failures; one that escapes must not leave
        // the counter up, or no request would ever submit it again.
      }
      // Requests that came while it ran: run again for them (they may have
      // come after the job looked), else stop, leaving the counter at zero
      // so that the next request submits.
      unsigned now = requests_.fetch_sub(seen) - seen;
      if (now == 0) return;
      seen = now;
    }
  }

  WorkerPool& pool_;
  std::function<void()> job_;
  std::atomic<unsigned> requests_{0};
};

MANY_LEVEL_NAMESPACE_END

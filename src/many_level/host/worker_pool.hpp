// A fixed pool of threads that runs the host's database calls, so a slow
// store call (a large clear, a cold read) never blocks the I/O thread or the
// other guests' requests.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "../version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

class WorkerPool {
 public:
  // Database calls block on I/O more than on CPU, so a few more threads than
  // cores keeps the cores busy.
  static size_t default_size() { return std::max(4u, std::thread::hardware_concurrency() * 2); }

  explicit WorkerPool(size_t threads = default_size()) {
    workers_.reserve(threads);
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs every job already submitted, then joins the threads.
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  void submit(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
  }

  size_t size() const { return workers_.size(); }

  size_t queued() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return jobs_.size();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      // A job reports its own failures; one that escapes must not kill the host.
      try {
        job();
      } catch (...) {
      }
    }
  }

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

MANY_LEVEL_NAMESPACE_END

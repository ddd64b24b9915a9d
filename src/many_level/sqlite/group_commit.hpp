// Group commit: writers from many threads queue their requests; whichever of
// them finds no commit running becomes the leader and commits everything
// queued so far in one transaction, while the others wait for their answer.
// One fsync (or WAL append) then serves many writes.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <vector>

#include "../version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

namespace detail {
namespace sqlite {

template <typename Request>
class GroupCommit {
 public:
  // A queued request and its outcome. It lives on the submitting thread's
  // stack, which is safe because that thread waits until it is done.
  struct Ticket {
    Request* request = nullptr;
    std::exception_ptr error;  // this request's own failure, if any
    bool done = false;
  };

  // Applies a group in queue order as one transaction. A request that fails
  // alone gets its ticket's error; throwing fails every request of the group.
  using Commit = std::function<void(std::vector<Ticket*>& group)>;

  explicit GroupCommit(Commit commit) : commit_(std::move(commit)) {}

  // Returns once the request is committed; throws its error otherwise.
  void submit(Request& request) {
    Ticket ticket;
    ticket.request = &request;
    std::unique_lock<std::mutex> lock(mutex_);
    queue_.push_back(&ticket);
    changed_.wait(lock, [&] { return ticket.done || !leading_; });
    if (!ticket.done) lead(lock);
    if (ticket.error) std::rethrow_exception(ticket.error);
  }

  // Requests waiting for the next group (not the one being committed).
  size_t queued() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_.size();
  }

  // Requests in the group being committed now (0 when no commit runs).
  size_t committing() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return committing_;
  }

 private:
  // Called with the lock held and no leader; the caller's own ticket is queued.
  void lead(std::unique_lock<std::mutex>& lock) {
    leading_ = true;
    // Two vectors trade places group after group, so no group allocates.
    std::vector<Ticket*> group = std::move(spare_);
    group.clear();
    group.swap(queue_);
    committing_ = group.size();
    lock.unlock();
    std::exception_ptr failure;
    try {
      commit_(group);
    } catch (...) {
      failure = std::current_exception();
    }
    lock.lock();
    for (Ticket* ticket : group) {
      if (failure) ticket->error = failure;
      ticket->done = true;
    }
    spare_ = std::move(group);
    // Whoever queued meanwhile: one of them leads the next group.
    leading_ = false;
    committing_ = 0;
    changed_.notify_all();
  }

  Commit commit_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Ticket*> queue_;
  std::vector<Ticket*> spare_;
  bool leading_ = false;
  size_t committing_ = 0;
};

}  // namespace sqlite
}  // namespace detail

MANY_LEVEL_NAMESPACE_END

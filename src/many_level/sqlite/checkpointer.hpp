// WAL checkpoints off the write path. SQLite's automatic checkpoint runs
// inside the commit that fills the WAL, so every writer queued behind that
// commit waits for its fsyncs. Here the writer that finds a checkpoint due
// runs it once its own write has returned, on a connection of its own, while
// the others keep committing (a PASSIVE checkpoint never blocks writers).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

#include "../error.hpp"
#include "../version.hpp"
#include "connection.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

namespace detail {
namespace sqlite {

class Checkpointer {
 public:
  // Watches `writer`'s commits (which turns its automatic checkpoint off) and
  // checkpoints through `own` once the WAL has grown by `pages`.
  Checkpointer(std::unique_ptr<Connection> own, Connection& writer, int pages)
      : connection_(std::move(own)), writer_(writer), pages_(pages < 1 ? 1 : pages) {
    sqlite3_wal_hook(writer_.handle(), &Checkpointer::on_commit, this);
  }

  ~Checkpointer() { sqlite3_wal_hook(writer_.handle(), nullptr, nullptr); }

  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Any thread may call this after a write; one checkpoint runs at a time,
  // and a writer that finds one running goes on without waiting. True when
  // this call checkpointed.
  bool run_if_due() {
    int frames = frames_.load(std::memory_order_relaxed);
    if (frames < pages_) return false;
    std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    // Due when the WAL grew by `pages` since the last attempt, or restarted
    // and grew again: while an old iterator's snapshot holds the checkpoint
    // back, it is not retried at every commit.
    if (frames >= attempted_at_ && frames - attempted_at_ < pages_) return false;
    attempted_at_ = frames;
    try {
      connection_->query_text("PRAGMA wal_checkpoint(PASSIVE)");
      return true;
    } catch (const Error&) {
      // The write that got us here is committed and must not be reported as
      // failed; a failing disk shows in the next write, and this retries.
      return false;
    }
  }

 private:
  // Runs inside the writer's COMMIT, after the write lock is released.
  static int on_commit(void* self, sqlite3*, const char*, int frames) {
    static_cast<Checkpointer*>(self)->frames_.store(frames, std::memory_order_relaxed);
    return SQLITE_OK;
  }

  std::unique_ptr<Connection> connection_;
  Connection& writer_;
  const int pages_;
  std::atomic<int> frames_{0};
  std::mutex mutex_;
  int attempted_at_ = 0;
};

}  // namespace sqlite
}  // namespace detail

MANY_LEVEL_NAMESPACE_END

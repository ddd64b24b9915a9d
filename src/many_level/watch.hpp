// Watching a database: a callback gets every commit that touches a key
// range, in commit order, from the moment the watch starts (or, resuming,
// from a sequence it was given). See change_feed.hpp for where commits come
// from and Database::watch() for how to start one.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "change_feed.hpp"
#include "error.hpp"
#include "version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// Gets each commit (its operations in the watched range, keys and values
// decoded with the watch's encodings), or once an error, after which the
// watch is over: LEVEL_WATCH_TOO_OLD (the history no longer reaches back to
// where it was asked to resume, or the watcher fell that far behind: reload
// and watch again), LEVEL_CONNECTION_LOST, LEVEL_DATABASE_NOT_OPEN, or
// LEVEL_NOT_SUPPORTED (a guest whose host has no change feed). Calls of one
// watch never overlap and come in commit order.
using WatchCallback = std::function<void(std::optional<Error> error, const Commit& commit)>;

class Watch {
 public:
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;
  // Closes the watch.
  virtual ~Watch() = default;

  // Stops deliveries: once it returns, the callback is not running (unless
  // close() was called from it) and will not run again. Idempotent.
  virtual void close() = 0;

  // The sequence of the last commit delivered, or where the watch started
  // before any: give it as WatchOptions::since to resume with nothing lost
  // and nothing twice.
  virtual uint64_t seq() const = 0;

 protected:
  Watch() = default;
};

MANY_LEVEL_NAMESPACE_END

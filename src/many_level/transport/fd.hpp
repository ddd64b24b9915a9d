// POSIX file-descriptor plumbing shared by the transports: an owning fd, errors
// from errno, and reads and writes that never block past what poll() promised
// and never raise SIGPIPE (a peer that goes away must not kill the process).
#pragma once

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include "../error.hpp"
#include "../version.hpp"

MANY_LEVEL_NAMESPACE_BEGIN

// Owns one file descriptor and closes it once.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  int release() noexcept { return std::exchange(fd_, -1); }

  void reset(int fd = -1) noexcept {
    // Not retried on EINTR: on Linux the descriptor is gone either way, and a
    // retry could close a descriptor another thread has just been given.
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

namespace detail {

inline Error errno_error(const std::string& what, int error = errno) {
  return Error(codes::io_error, what + ": " + std::strerror(error));
}

inline void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) throw errno_error("fcntl(O_NONBLOCK)");
}

// How to write to an fd without blocking longer than poll() promised, without
// changing its flags: stdin and stdout share their file description with
// other processes, so setting O_NONBLOCK on them would leak out of ours.
struct FdKind {
  bool socket = false;
  bool pipe = false;
  bool nonblocking = false;

  static FdKind of(int fd) {
    FdKind kind;
    struct stat st {};
    if (::fstat(fd, &st) == 0) {
      kind.socket = S_ISSOCK(st.st_mode);
      kind.pipe = S_ISFIFO(st.st_mode);
    }
    int flags = ::fcntl(fd, F_GETFL);
    kind.nonblocking = flags >= 0 && (flags & O_NONBLOCK) != 0;
    return kind;
  }
};

// write() with SIGPIPE held back for this thread, so a closed pipe shows up as
// EPIPE instead of killing the process. A SIGPIPE that was already pending for
// another reason is left alone.
inline ssize_t write_without_sigpipe(int fd, const char* data, size_t size) {
  sigset_t pipe_set, old_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;

  ssize_t written = ::write(fd, data, size);
  const int error = errno;
  if (written < 0 && error == EPIPE && !was_pending) {
    struct timespec zero {};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  errno = error;
  return written;
}

// Writes at most what an fd that poll() called writable takes without
// blocking: any amount for sockets (MSG_DONTWAIT) and non-blocking fds,
// PIPE_BUF for a blocking pipe (POSIX guarantees that much room), a bounded
// chunk for anything else (files and terminals do not stall for long).
// Returns the count written, or -1 with errno (EAGAIN when full).
inline ssize_t write_some(int fd, const FdKind& kind, const char* data, size_t size) {
  ssize_t written;
  if (kind.socket) {
    do {
      written = ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (written < 0 && errno == EINTR);
    return written;
  }
  if (!kind.nonblocking) size = std::min(size, kind.pipe ? size_t{PIPE_BUF} : size_t{1} << 16);
  do {
    written = write_without_sigpipe(fd, data, size);
  } while (written < 0 && errno == EINTR);
  return written;
}

// read() retried on EINTR.
inline ssize_t read_some(int fd, char* data, size_t size) {
  ssize_t got;
  do {
    got = ::read(fd, data, size);
  } while (got < 0 && errno == EINTR);
  return got;
}

inline bool would_block(int error) { return error == EAGAIN || error == EWOULDBLOCK; }

}  // namespace detail

MANY_LEVEL_NAMESPACE_END

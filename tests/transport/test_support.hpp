// Shared by the transport tests: a Session that records and echoes, blocking
// socket helpers with bounded waits, and a temporary directory for unix sockets.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "many_level/transport/fd.hpp"
#include "many_level/transport/session.hpp"

namespace transport_test {

using namespace std::chrono_literals;
using many_level::OutputBuffer;
using many_level::Session;
using many_level::UniqueFd;

// Every wait in these tests is bounded by this; nothing is timed.
inline constexpr auto wait_limit = 20s;

// Records what arrives; echoes it back unless told not to; fails (as a
// protocol violation would) once `fail_on` shows up in the input. Holds its
// own lock while it writes output, as real sessions do, so a transport that
// delivered re-entrantly would deadlock.
class RecordingSession : public Session {
 public:
  explicit RecordingSession(bool echo = true, size_t high_water = 1 << 20)
      : echo_(echo), output_(high_water) {}

  void receive(const char* data, size_t size) override {
    std::lock_guard<std::mutex> lock(mutex_);
    received_.append(data, size);
    ++receive_calls_;
    receive_thread_ = std::this_thread::get_id();
    if (fail_on_ && received_.find(*fail_on_) != std::string::npos) failure_ = "asked to fail";
    if (echo_) output_.write([&](std::string& out) { out.append(data, size); });
    max_output_ = std::max(max_output_, output_.size());
    changed_.notify_all();
  }

  void end() override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++ends_;
    end_thread_ = std::this_thread::get_id();
    changed_.notify_all();
  }

  OutputBuffer& output() override { return output_; }

  std::string failed() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return failure_;
  }

  bool wants_input() override { return wants_input_.load() && output_.room() > 0; }

  // Stops or resumes input; resuming wakes the transport, which asks again.
  void set_wants_input(bool wants) {
    wants_input_.store(wants);
    if (wants) output_.wake();
  }

  // Fails from outside receive(), as a guest's drop_connection() does: the
  // transport learns of it only through a wake.
  void fail_now(std::string why) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      failure_ = std::move(why);
    }
    output_.wake();
  }

  void fail_on(std::string marker) {
    std::lock_guard<std::mutex> lock(mutex_);
    fail_on_ = std::move(marker);
  }

  void send(const std::string& bytes) {
    output_.write([&](std::string& out) { out += bytes; });
  }

  template <typename Predicate>
  bool wait(Predicate predicate) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, wait_limit, [&] { return predicate(*this); });
  }
  bool wait_received(size_t size) {
    return wait([size](const RecordingSession& s) { return s.received_.size() >= size; });
  }
  bool wait_ended() {
    return wait([](const RecordingSession& s) { return s.ends_ > 0; });
  }

  std::string received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }
  size_t received_size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_.size();
  }
  int ends() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return ends_;
  }
  size_t receive_calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return receive_calls_;
  }
  size_t max_output() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return max_output_;
  }
  std::thread::id receive_thread() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return receive_thread_;
  }
  std::thread::id end_thread() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return end_thread_;
  }

 private:
  const bool echo_;
  std::atomic<bool> wants_input_{true};
  OutputBuffer output_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string received_;
  size_t receive_calls_ = 0;
  size_t max_output_ = 0;
  int ends_ = 0;
  std::optional<std::string> fail_on_;
  std::string failure_;
  std::thread::id receive_thread_;
  std::thread::id end_thread_;
};

// A counter others can wait on (connects, disconnects).
class Counter {
 public:
  void add(int count = 1) {
    // Notified under the lock: a waiter may destroy the counter as soon as
    // it sees the new value.
    std::lock_guard<std::mutex> lock(mutex_);
    value_ += count;
    changed_.notify_all();
  }
  int value() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return value_;
  }
  bool wait_for(int at_least) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, wait_limit, [&] { return value_ >= at_least; });
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int value_ = 0;
};

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/many-level-transport-XXXXXX";
    if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Blocking socket I/O for test clients, each wait bounded by wait_limit.
inline void set_timeouts(int fd) {
  timeval tv{std::chrono::duration_cast<std::chrono::seconds>(wait_limit).count(), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

inline bool send_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t sent = ::send(fd, data, size, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    data += sent;
    size -= static_cast<size_t>(sent);
  }
  return true;
}
inline bool send_all(int fd, const std::string& bytes) { return send_all(fd, bytes.data(), bytes.size()); }

// Reads exactly `size` bytes, or fewer on EOF, error or timeout.
inline std::string recv_exactly(int fd, size_t size) {
  std::string result(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::recv(fd, &result[got], size - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  result.resize(got);
  return result;
}

// True once the peer closed (EOF or reset), reading and dropping anything
// before that; false on timeout.
inline bool recv_until_closed(int fd) {
  char buffer[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return true;
    return errno == ECONNRESET;
  }
}

// Same for a pipe or any fd, with poll() bounding the wait.
inline std::string read_exactly(int fd, size_t size) {
  std::string result(size, '\0');
  size_t got = 0;
  while (got < size) {
    pollfd pfd{fd, POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(std::chrono::milliseconds(wait_limit).count()));
    if (ready <= 0) break;
    ssize_t n = ::read(fd, &result[got], size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  result.resize(got);
  return result;
}

inline bool write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Bytes whose value depends on their position, so a reordering shows.
inline std::string pattern(size_t size, size_t offset = 0) {
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    size_t at = offset + i;
    bytes[i] = static_cast<char>((at * 131 + at / 251) & 0xff);
  }
  return bytes;
}

}  // namespace transport_test

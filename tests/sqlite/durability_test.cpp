// A write SqliteDatabase acknowledged survives kill -9. A child process
// writes from several threads and reports each key once its put (or batch)
// returned; the parent kills it mid-stream, reopens the file and looks for
// every reported key.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "many_level.hpp"
#include "temp_dir.hpp"

using namespace many_level;

namespace {

struct Ack {
  uint32_t thread;
  uint32_t index;
};

std::string key_of(const Ack& ack) { return "t" + std::to_string(ack.thread) + "/" + std::to_string(ack.index); }
std::string value_of(const Ack& ack) { return std::string(100 + ack.index % 50, static_cast<char>('a' + ack.thread)); }

// The child: writes until killed, acknowledging on `out`. Never returns.
[[noreturn]] void write_until_killed(const std::string& path, bool durable, int out) {
  try {
    SqliteOptions options;
    options.durable_fsync = durable;
    SqliteDatabase db(path, options);
    std::vector<std::thread> threads;
    for (uint32_t t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (uint32_t i = 0; i < 1000000; i += 3) {
          Ack acks[3] = {{t, i}, {t, i + 1}, {t, i + 2}};
          if (t % 2 == 0) {
            for (const auto& ack : acks) db.put(key_of(ack), value_of(ack));
          } else {
            db.batch({BatchOperation::put(key_of(acks[0]), value_of(acks[0])),
                      BatchOperation::put(key_of(acks[1]), value_of(acks[1])),
                      BatchOperation::put(key_of(acks[2]), value_of(acks[2]))});
          }
          // Only now, with the write returned, is it acknowledged. Each Ack
          // is one write() below PIPE_BUF, so acks never interleave.
          for (const auto& ack : acks) {
            if (write(out, &ack, sizeof ack) != sizeof ack) _exit(3);
          }
        }
      });
    }
    for (auto& thread : threads) thread.join();
  } catch (...) {
    _exit(2);
  }
  _exit(0);
}

// Reads acks until `wanted` arrived (or end of stream with wanted == 0);
// false when the child stays silent too long.
bool read_acks(int in, std::vector<Ack>& acks, size_t wanted, std::string& partial) {
  while (wanted == 0 || acks.size() < wanted) {
    pollfd fd{in, POLLIN, 0};
    if (poll(&fd, 1, 20000) <= 0) return false;
    char buffer[4096];
    ssize_t got = read(in, buffer, sizeof buffer);
    if (got < 0) return false;
    if (got == 0) return wanted == 0;
    partial.append(buffer, static_cast<size_t>(got));
    size_t whole = partial.size() / sizeof(Ack);
    for (size_t i = 0; i < whole; ++i) {
      Ack ack;
      std::memcpy(&ack, partial.data() + i * sizeof(Ack), sizeof ack);
      acks.push_back(ack);
    }
    partial.erase(0, whole * sizeof(Ack));
  }
  return true;
}

void acknowledged_writes_survive_kill(bool durable) {
  TempDir dir;
  const std::string path = dir.file("db");
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipe_fds[0]);
    write_until_killed(path, durable, pipe_fds[1]);
  }
  close(pipe_fds[1]);

  std::vector<Ack> acks;
  std::string partial;
  bool heard = read_acks(pipe_fds[0], acks, 600, partial);
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(heard) << "the child acknowledged only " << acks.size() << " writes";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child ended before the kill";
  // Acks the child sent before dying count too.
  ASSERT_TRUE(read_acks(pipe_fds[0], acks, 0, partial));
  close(pipe_fds[0]);

  SqliteDatabase db(path);
  std::vector<std::string> keys;
  for (const auto& ack : acks) keys.push_back(key_of(ack));
  auto values = db.get_many(keys);
  size_t lost = 0;
  for (size_t i = 0; i < acks.size(); ++i) {
    if (!values[i] || *values[i] != value_of(acks[i])) ++lost;
  }
  EXPECT_EQ(lost, 0u) << "of " << acks.size() << " acknowledged writes";
  // Nothing beyond what was written, and the file reads through cleanly.
  size_t stored = 0;
  auto it = db.iterator();
  while (it->next()) ++stored;
  EXPECT_GE(stored, acks.size());
}

}  // namespace

TEST(SqliteDurability, AcknowledgedWritesSurviveKill9) { acknowledged_writes_survive_kill(false); }

TEST(SqliteDurability, AcknowledgedWritesSurviveKill9WithDurableFsync) { acknowledged_writes_survive_kill(true); }

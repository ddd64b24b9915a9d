// SendGate: the shared right to write one socket, taken by the transport's
// thread (send) and by writers that send their own output (try_send). Over a
// real socketpair, so "full" and "closed" are the kernel's.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "many_level/transport/send_gate.hpp"
#include "test_support.hpp"

namespace {

using many_level::OutputBuffer;
using many_level::TransportStats;
using many_level::UniqueFd;
using many_level::detail::FdKind;
using many_level::detail::SendGate;

struct SocketPair {
  UniqueFd near, far;
  SocketPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
    near = UniqueFd(fds[0]);
    far = UniqueFd(fds[1]);
  }
};

std::string read_available(int fd, size_t want) {
  std::string got;
  char chunk[65536];
  while (got.size() < want) {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    got.append(chunk, static_cast<size_t>(n));
  }
  return got;
}

void append(OutputBuffer& buffer, const std::string& bytes) {
  buffer.write([&](std::string& out) { out += bytes; }, many_level::SendMode::queued);
}

TEST(SendGate, TrySendWritesEverythingAndCounts) {
  SocketPair pair;
  TransportStats stats;
  SendGate gate(pair.near.get(), FdKind::of(pair.near.get()), stats);
  ASSERT_TRUE(gate.allows_direct_sends());
  OutputBuffer output;
  append(output, "hello");
  EXPECT_TRUE(gate.try_send(output));
  EXPECT_EQ(output.size(), 0u);
  EXPECT_EQ(stats.bytes_out(), 5u);
  EXPECT_EQ(read_available(pair.far.get(), 5), "hello");
}

TEST(SendGate, TrySendAsksForTheTransportWhenInputIsPaused) {
  SocketPair pair;
  TransportStats stats;
  SendGate gate(pair.near.get(), FdKind::of(pair.near.get()), stats);
  OutputBuffer output;
  append(output, "x");
  stats.set_input_paused(true);  // the transport must re-ask wants_input() once output drained
  EXPECT_FALSE(gate.try_send(output));
  EXPECT_EQ(output.size(), 0u);  // it did send
  EXPECT_EQ(read_available(pair.far.get(), 1), "x");
}

TEST(SendGate, AFullSocketLeavesTheRestForThePoller) {
  SocketPair pair;
  TransportStats stats;
  SendGate gate(pair.near.get(), FdKind::of(pair.near.get()), stats);
  OutputBuffer output(size_t{1} << 30);
  const std::string big = transport_test::pattern(size_t{16} << 20);  // far more than a socket buffer
  append(output, big);
  EXPECT_FALSE(gate.try_send(output));
  EXPECT_GT(output.size(), 0u);
  EXPECT_EQ(gate.send(output), SendGate::Result::would_block);
  std::string received;
  std::thread reader([&] { received = read_available(pair.far.get(), big.size()); });
  while (gate.send(output) != SendGate::Result::all_sent) std::this_thread::yield();
  reader.join();
  EXPECT_TRUE(received == big);
  EXPECT_EQ(stats.bytes_out(), big.size());
}

TEST(SendGate, NothingIsWrittenAfterClose) {
  SocketPair pair;
  TransportStats stats;
  SendGate gate(pair.near.get(), FdKind::of(pair.near.get()), stats);
  OutputBuffer output;
  gate.close();
  append(output, "late");
  EXPECT_FALSE(gate.try_send(output));  // the transport is told, and will find it closed
  EXPECT_EQ(gate.send(output), SendGate::Result::all_sent);
  EXPECT_EQ(output.size(), 4u);
  EXPECT_EQ(stats.bytes_out(), 0u);
}

TEST(SendGate, AWriteErrorIsReportedWithItsErrno) {
  SocketPair pair;
  TransportStats stats;
  SendGate gate(pair.near.get(), FdKind::of(pair.near.get()), stats);
  pair.far.reset();
  OutputBuffer output;
  append(output, "nobody listens");
  EXPECT_FALSE(gate.try_send(output));
  EXPECT_EQ(gate.send(output), SendGate::Result::failed);
  EXPECT_EQ(gate.error(), EPIPE);
}

TEST(SendGate, ABlockingPipeIsNeverWrittenFromOtherThreads) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  TransportStats stats;
  SendGate gate(write_end.get(), FdKind::of(write_end.get()), stats);
  EXPECT_FALSE(gate.allows_direct_sends());
}

// Writers racing each other and the transport: every frame arrives whole and
// in the order each writer wrote it.
TEST(SendGate, ConcurrentSendersNeverInterleaveFrames) {
  SocketPair pair;
  TransportStats stats;
  auto gate = std::make_shared<SendGate>(pair.near.get(), FdKind::of(pair.near.get()), stats);
  OutputBuffer output(size_t{1} << 30);
  std::atomic<int> wakes{0};
  output.on_readable([&] { wakes.fetch_add(1); });
  many_level::detail::attach_direct_sends(gate, output);
  constexpr int writers = 4;
  constexpr int frames = 2000;
  const std::string frame_body(37, '.');
  size_t total = static_cast<size_t>(writers) * frames * (frame_body.size() + 8);
  std::string received;
  std::thread reader([&] { received = read_available(pair.far.get(), total); });
  std::atomic<bool> done{false};
  std::thread transport([&] {
    while (!done.load()) gate->send(output);
  });
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < frames; ++i) {
        char header[9];
        std::snprintf(header, sizeof header, "%d%07d", w, i);
        output.write([&](std::string& out) { out.append(header, 8).append(frame_body); });
      }
    });
  }
  for (auto& thread : threads) thread.join();
  done.store(true);
  transport.join();
  while (gate->send(output) != SendGate::Result::all_sent) std::this_thread::yield();
  reader.join();
  ASSERT_EQ(received.size(), total);
  std::vector<int> next(writers, 0);
  for (size_t at = 0; at < received.size(); at += 8 + frame_body.size()) {
    int w = received[at] - '0';
    ASSERT_GE(w, 0);
    ASSERT_LT(w, writers);
    EXPECT_EQ(std::stoi(received.substr(at + 1, 7)), next[w]++);
    EXPECT_EQ(received.compare(at + 8, frame_body.size(), frame_body), 0);
  }

  // Detached, a write is left to the transport: nothing reaches the socket.
  many_level::detail::detach_direct_sends(*gate, output);
  const auto sent_before = stats.bytes_out();
  const int wakes_before = wakes.load();
  output.write([](std::string& out) { out += "late"; });
  EXPECT_EQ(output.size(), 4u);
  EXPECT_EQ(stats.bytes_out(), sent_before);
  EXPECT_EQ(wakes.load(), wakes_before + 1);  // the transport is told instead
}

}  // namespace

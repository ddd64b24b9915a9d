// OutputBuffer as the transports use it: peek/consume while other threads
// keep appending (a view must survive their appends).
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

#include "many_level/transport/session.hpp"
#include "test_support.hpp"

namespace {

using many_level::OutputBuffer;

void append(OutputBuffer& buffer, const std::string& bytes) {
  buffer.write([&](std::string& out) { out += bytes; });
}

TEST(OutputBuffer, PeekSeesEverythingPendingAndConsumeDropsAPrefix) {
  OutputBuffer buffer;
  append(buffer, "abc");
  append(buffer, "def");
  EXPECT_EQ(buffer.peek(), "abcdef");
  buffer.consume(2);
  EXPECT_EQ(buffer.size(), 4u);
  append(buffer, "gh");
  EXPECT_EQ(buffer.peek(), "cdefgh");
  buffer.consume(5);  // across what was peeked and what came after
  EXPECT_EQ(buffer.peek(), "h");
  // consume() without peek() counts pending bytes too.
  append(buffer, "ijk");
  buffer.consume(2);
  EXPECT_EQ(buffer.peek(), "jk");
  std::string taken;
  EXPECT_EQ(buffer.take(taken), 2u);
  EXPECT_EQ(taken, "jk");
  EXPECT_EQ(buffer.size(), 0u);
}

TEST(OutputBuffer, ReadableFiresWhenItStopsBeingEmpty) {
  OutputBuffer buffer(4);
  int readable = 0;
  buffer.on_readable([&] { ++readable; });
  append(buffer, "ab");
  append(buffer, "cd");
  EXPECT_EQ(readable, 1);
  EXPECT_EQ(buffer.room(), 0u);
  buffer.peek();
  buffer.consume(4);
  EXPECT_EQ(buffer.room(), 4u);
  append(buffer, "e");
  EXPECT_EQ(readable, 2);
}

TEST(OutputBuffer, ASendNowWriteTriesTheDirectSenderBeforeWakingTheTransport) {
  OutputBuffer buffer;
  int readable = 0;
  int direct = 0;
  bool sender_sends_all = true;
  buffer.on_readable([&] { ++readable; });
  buffer.on_direct_send([&] {
    ++direct;
    if (!sender_sends_all) return false;
    buffer.consume(buffer.peek().size());
    return true;
  });

  append(buffer, "ab");  // SendMode::now by default: sent on this thread, nobody woken
  EXPECT_EQ(direct, 1);
  EXPECT_EQ(readable, 0);
  EXPECT_EQ(buffer.size(), 0u);

  sender_sends_all = false;  // e.g. the socket was full: the transport must look
  append(buffer, "cd");
  EXPECT_EQ(direct, 2);
  EXPECT_EQ(readable, 1);
  EXPECT_EQ(buffer.peek(), "cd");

  append(buffer, "ef");  // not empty before: the transport already knows
  EXPECT_EQ(direct, 2);
  EXPECT_EQ(readable, 1);
}

TEST(OutputBuffer, AQueuedWriteLeavesSendingToTheTransport) {
  OutputBuffer buffer;
  int readable = 0;
  int direct = 0;
  buffer.on_readable([&] { ++readable; });
  buffer.on_direct_send([&] { return ++direct, true; });
  buffer.write([](std::string& out) { out += "ab"; }, many_level::SendMode::queued);
  EXPECT_EQ(direct, 0);
  EXPECT_EQ(readable, 1);
  EXPECT_EQ(buffer.peek(), "ab");
}

TEST(OutputBuffer, WakeNeverSendsDirectly) {
  OutputBuffer buffer;
  int readable = 0;
  int direct = 0;
  buffer.on_readable([&] { ++readable; });
  buffer.on_direct_send([&] { return ++direct, true; });
  buffer.wake();  // a session asking its transport to look (e.g. to close)
  EXPECT_EQ(readable, 1);
  EXPECT_EQ(direct, 0);
}

TEST(OutputBuffer, CloseDropsPendingAndLaterWrites) {
  OutputBuffer buffer;
  append(buffer, "abc");
  std::string_view view = buffer.peek();
  buffer.close();
  EXPECT_EQ(view, "abc");  // a send in flight keeps its bytes
  EXPECT_EQ(buffer.size(), 0u);
  buffer.consume(view.size());
  append(buffer, "x");
  EXPECT_EQ(buffer.size(), 0u);
  EXPECT_TRUE(buffer.peek().empty());
}

TEST(OutputBuffer, PeekedBytesSurviveConcurrentAppends) {
  OutputBuffer buffer(size_t{1} << 30);
  constexpr size_t total = 8 << 20;
  const std::string expected = transport_test::pattern(total);
  std::thread writer([&] {
    // Small appends of growing sizes make the buffer reallocate often.
    for (size_t at = 0, step = 1; at < total; at += step, step = step % 4093 + 7) {
      const size_t size = std::min(step, total - at);
      buffer.write([&](std::string& out) { out.append(expected, at, size); });
    }
  });
  std::string received;
  received.reserve(total);
  while (received.size() < total) {
    std::string_view pending = buffer.peek();
    if (pending.empty()) {
      std::this_thread::yield();
      continue;
    }
    // Send part of it, as a socket would take, while the writer appends.
    const size_t sent = std::max<size_t>(1, pending.size() / 3);
    received.append(pending.data(), sent);
    buffer.consume(sent);
  }
  writer.join();
  EXPECT_TRUE(received == expected);
  EXPECT_EQ(buffer.size(), 0u);
}

}  // namespace

#include "many_level/transport/memory_pair.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "test_support.hpp"

namespace {

using many_level::MemoryPair;
using many_level::MemoryPairOptions;
using namespace transport_test;

TEST(MemoryPair, DeliversBothWaysOnItsOwnThread) {
  RecordingSession guest(/*echo=*/false);
  RecordingSession host;  // echoes
  MemoryPair pair(guest, host);
  guest.send("hello host");
  ASSERT_TRUE(guest.wait_received(10));
  EXPECT_EQ(host.received(), "hello host");
  EXPECT_EQ(guest.received(), "hello host");
  // Never on the caller's thread, so never inside the other session's call.
  EXPECT_NE(host.receive_thread(), std::this_thread::get_id());
  EXPECT_EQ(host.receive_thread(), guest.receive_thread());
  EXPECT_EQ(pair.guest_stats().bytes_out(), 10u);
  EXPECT_EQ(pair.host_stats().bytes_in(), 10u);
  EXPECT_TRUE(pair.is_open());
}

TEST(MemoryPair, EchoingSessionsThatHoldTheirLocksDoNotDeadlock) {
  // Both sides echo while holding their own lock: delivering inside write()
  // would re-enter the first session's lock and hang.
  RecordingSession a;
  RecordingSession b;
  MemoryPair pair(a, b);
  a.send("x");
  ASSERT_TRUE(a.wait_received(100));  // ping-pong: each side keeps answering
  pair.cut();
  EXPECT_EQ(a.ends(), 1);
  EXPECT_EQ(b.ends(), 1);
}

TEST(MemoryPair, ChunkingSplitsButKeepsEveryByte) {
  RecordingSession guest(/*echo=*/false);
  RecordingSession host;
  MemoryPairOptions options;
  options.max_chunk = 3;
  options.seed = 42;
  MemoryPair pair(guest, host, options);
  const std::string payload = pattern(10000);
  for (size_t at = 0; at < payload.size(); at += 1000) guest.send(payload.substr(at, 1000));
  ASSERT_TRUE(guest.wait_received(payload.size()));
  EXPECT_TRUE(host.received() == payload);
  EXPECT_TRUE(guest.received() == payload);
  EXPECT_GE(host.receive_calls(), payload.size() / 3);
  EXPECT_GE(guest.receive_calls(), payload.size() / 3);
}

TEST(MemoryPair, CutEndsBothSidesAndDeliversNothingMore) {
  RecordingSession guest(/*echo=*/false);
  RecordingSession host;
  MemoryPair pair(guest, host);
  guest.send("before");
  ASSERT_TRUE(guest.wait_received(6));
  pair.cut();
  EXPECT_FALSE(pair.is_open());
  EXPECT_EQ(pair.end_reason(), "cut");
  EXPECT_EQ(guest.ends(), 1);
  EXPECT_EQ(host.ends(), 1);
  EXPECT_NE(host.end_thread(), std::this_thread::get_id());
  guest.send("after");
  pair.cut();  // again: nothing happens
  EXPECT_EQ(host.received(), "before");
  EXPECT_EQ(guest.ends(), 1);
}

TEST(MemoryPair, CloseDeliversWhatIsPendingFirst) {
  RecordingSession guest(/*echo=*/false);
  RecordingSession host(/*echo=*/false);
  {
    MemoryPair pair(guest, host);
    guest.send("last words");
    host.send("goodbye");
    pair.close();
    EXPECT_EQ(pair.end_reason(), "closed");
  }
  EXPECT_EQ(host.received(), "last words");
  EXPECT_EQ(guest.received(), "goodbye");
  EXPECT_EQ(guest.ends(), 1);
  EXPECT_EQ(host.ends(), 1);
}

TEST(MemoryPair, AFailedSessionEndsThePair) {
  RecordingSession guest(/*echo=*/false);
  RecordingSession host;
  host.fail_on("FAIL");
  MemoryPair pair(guest, host);
  guest.send("FAIL");
  ASSERT_TRUE(guest.wait_ended());
  ASSERT_TRUE(host.wait_ended());
  pair.cut();  // waits for the pump to finish ending them
  EXPECT_EQ(pair.end_reason(), "host failed: asked to fail");
  EXPECT_FALSE(pair.is_open());
}

TEST(MemoryPair, FailingOnAWakeDeliversThatSidesOutputThenEnds) {
  RecordingSession guest(/*echo=*/false);
  RecordingSession host(/*echo=*/false);
  MemoryPair pair(guest, host);
  std::thread worker([&] {
    guest.send("last request");
    guest.fail_now("dropped");
  });
  worker.join();
  ASSERT_TRUE(host.wait_ended());
  pair.cut();
  EXPECT_EQ(host.received(), "last request");
  EXPECT_EQ(pair.end_reason(), "guest failed: dropped");
  EXPECT_EQ(guest.ends(), 1);
  EXPECT_EQ(host.ends(), 1);
}

TEST(MemoryPair, DeliversOnlyWhatASideWantsAndResumesOnAWake) {
  RecordingSession guest(/*echo=*/false);
  RecordingSession host;
  host.set_wants_input(false);
  MemoryPair pair(guest, host);
  guest.send("when ready");
  host.set_wants_input(true);
  ASSERT_TRUE(guest.wait_received(10));
  EXPECT_EQ(host.received(), "when ready");
}

TEST(MemoryPair, HostStopsReceivingAtHighWater) {
  constexpr size_t high_water = 4096;
  RecordingSession guest(/*echo=*/false);
  RecordingSession host(true, high_water);
  MemoryPairOptions options;
  options.max_chunk = 512;
  MemoryPair pair(guest, host, options);
  const std::string payload = pattern(1 << 20);
  guest.send(payload);
  ASSERT_TRUE(guest.wait_received(payload.size()));
  EXPECT_TRUE(guest.received() == payload);
  EXPECT_LE(host.max_output(), high_water + 512);
}

}  // namespace

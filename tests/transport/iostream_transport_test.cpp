#include "many_level/transport/iostream_transport.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <istream>
#include <mutex>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <string>
#include <thread>

#include "test_support.hpp"

namespace {

using namespace transport_test;

TEST(PumpIostream, EchoesAStringstream) {
  RecordingSession session;
  std::istringstream in("hello over iostreams");
  std::ostringstream out;
  EXPECT_EQ(many_level::pump_iostream(in, out, session), "input ended");
  EXPECT_EQ(out.str(), "hello over iostreams");
  EXPECT_EQ(session.received(), "hello over iostreams");
  EXPECT_EQ(session.ends(), 1);
  EXPECT_EQ(session.receive_thread(), std::this_thread::get_id());
}

TEST(PumpIostream, PausesInputAtHighWaterAndKeepsEveryByte) {
  constexpr size_t high_water = 64 << 10;
  RecordingSession session(true, high_water);
  const std::string payload = pattern(4 << 20);
  std::istringstream in(payload);
  std::ostringstream out;
  many_level::TransportStats stats;
  EXPECT_EQ(many_level::pump_iostream(in, out, session, &stats), "input ended");
  EXPECT_TRUE(out.str() == payload);
  // Reading waits for room, so output never exceeds one read over the mark.
  EXPECT_LE(session.max_output(), high_water + (64u << 10));
  EXPECT_EQ(stats.bytes_in(), payload.size());
  EXPECT_EQ(stats.bytes_out(), payload.size());
}

TEST(PumpIostream, StopsWhenTheSessionFails) {
  RecordingSession session(/*echo=*/false);
  session.fail_on("FAIL");
  // One byte at a time (a stream with nothing buffered), so the pump stops
  // right at the failure instead of after a large chunk.
  std::string text = "fine then FAIL and more that is never read";
  std::istringstream source(text);
  struct OneByte : std::streambuf {
    std::istream& from;
    char byte = 0;
    explicit OneByte(std::istream& f) : from(f) {}
    int_type underflow() override {
      if (!from.get(byte)) return traits_type::eof();
      setg(&byte, &byte, &byte + 1);
      return traits_type::to_int_type(byte);
    }
  } buffer(source);
  std::istream in(&buffer);
  std::ostringstream out;
  EXPECT_EQ(many_level::pump_iostream(in, out, session), "session failed: asked to fail");
  EXPECT_EQ(session.received(), "fine then FAIL");
  EXPECT_EQ(session.ends(), 1);
}

// An input stream fed by the test, whose reads block until bytes or the end
// come: what a pipe or a socket looks like through a streambuf.
class FedInput : public std::streambuf {
 public:
  void feed(const std::string& bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_ += bytes;
    changed_.notify_all();
  }
  void finish() {
    std::lock_guard<std::mutex> lock(mutex_);
    ended_ = true;
    changed_.notify_all();
  }

 protected:
  int_type underflow() override {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!changed_.wait_for(lock, wait_limit, [&] { return !queue_.empty() || ended_; })) return traits_type::eof();
    if (queue_.empty()) return traits_type::eof();
    current_.swap(queue_);
    queue_.clear();
    setg(&current_[0], &current_[0], &current_[0] + current_.size());
    return traits_type::to_int_type(current_[0]);
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string queue_;
  std::string current_;
  bool ended_ = false;
};

// An output stream others can wait on.
class WatchedOutput : public std::streambuf {
 public:
  bool wait_for(const std::string& expected) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, wait_limit, [&] { return text_ == expected; });
  }

 protected:
  std::streamsize xsputn(const char* data, std::streamsize size) override {
    std::lock_guard<std::mutex> lock(mutex_);
    text_.append(data, static_cast<size_t>(size));
    changed_.notify_all();
    return size;
  }
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    char byte = traits_type::to_char_type(c);
    xsputn(&byte, 1);
    return c;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string text_;
};

TEST(PumpIostream, WritesOutputWhileTheReaderIsBlocked) {
  FedInput input_buffer;
  WatchedOutput output_buffer;
  std::istream in(&input_buffer);
  std::ostream out(&output_buffer);
  RecordingSession session;
  auto result = std::async(std::launch::async, [&] { return many_level::pump_iostream(in, out, session); });

  input_buffer.feed("first");
  EXPECT_TRUE(output_buffer.wait_for("first"));
  // The reader is blocked in the istream now; output from elsewhere still goes.
  std::thread worker([&] { session.send(" pushed"); });
  worker.join();
  EXPECT_TRUE(output_buffer.wait_for("first pushed"));
  input_buffer.feed(" second");
  EXPECT_TRUE(output_buffer.wait_for("first pushed second"));

  input_buffer.finish();
  ASSERT_EQ(result.wait_for(wait_limit), std::future_status::ready);
  EXPECT_EQ(result.get(), "input ended");
  EXPECT_EQ(session.ends(), 1);
}

TEST(PumpIostream, SessionFailingOnAWakeStopsAtTheNextInput) {
  FedInput input_buffer;
  WatchedOutput output_buffer;
  std::istream in(&input_buffer);
  std::ostream out(&output_buffer);
  RecordingSession session(/*echo=*/false);
  auto result = std::async(std::launch::async, [&] { return many_level::pump_iostream(in, out, session); });
  std::thread worker([&] {
    session.send("goodbye");
    session.fail_now("dropped");
  });
  worker.join();
  // Written at once, though the reader is still blocked in the istream.
  EXPECT_TRUE(output_buffer.wait_for("goodbye"));
  input_buffer.feed("x");  // the read returns; the pump sees the failure
  ASSERT_EQ(result.wait_for(wait_limit), std::future_status::ready);
  EXPECT_EQ(result.get(), "session failed: dropped");
  EXPECT_EQ(session.ends(), 1);
}

TEST(PumpIostream, ReadsOnlyWhileTheSessionWantsInput) {
  FedInput input_buffer;
  WatchedOutput output_buffer;
  std::istream in(&input_buffer);
  std::ostream out(&output_buffer);
  RecordingSession session;
  session.set_wants_input(false);
  auto result = std::async(std::launch::async, [&] { return many_level::pump_iostream(in, out, session); });
  input_buffer.feed("queued");
  session.set_wants_input(true);
  EXPECT_TRUE(output_buffer.wait_for("queued"));
  input_buffer.finish();
  ASSERT_EQ(result.wait_for(wait_limit), std::future_status::ready);
  EXPECT_EQ(result.get(), "input ended");
}

}  // namespace

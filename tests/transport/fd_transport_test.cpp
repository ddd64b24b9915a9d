#include "many_level/transport/fd_transport.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "many_level/transport/event_loop.hpp"
#include "test_support.hpp"

namespace {

using many_level::ConnectionInfo;
using many_level::EventLoop;
using many_level::FdConnection;
using many_level::Session;
using many_level::UniqueFd;
using namespace transport_test;

struct Pipe {
  UniqueFd read;
  UniqueFd write;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    read.reset(fds[0]);
    write.reset(fds[1]);
  }
};

// serve_fd on a thread of its own, over two pipes: we write its input and
// read its output.
struct PipeServer {
  Pipe input;
  Pipe output;
  RecordingSession& session;
  std::future<std::string> result;

  explicit PipeServer(RecordingSession& s) : session(s) {
    result = std::async(std::launch::async, [this] {
      return many_level::serve_fd(input.read.get(), output.write.get(), session);
    });
  }

  ~PipeServer() {
    input.write.reset();  // so serve_fd returns even when a test failed early
    if (result.valid()) result.wait_for(wait_limit);
  }

  std::string finish() {
    input.write.reset();
    if (result.wait_for(wait_limit) != std::future_status::ready) return "serve_fd did not return";
    return result.get();
  }
};

TEST(ServeFd, EchoesOverAPipePairUntilInputEnds) {
  RecordingSession session;
  PipeServer server(session);
  ASSERT_TRUE(write_all(server.input.write.get(), "hello"));
  EXPECT_EQ(read_exactly(server.output.read.get(), 5), "hello");
  ASSERT_TRUE(write_all(server.input.write.get(), " again"));
  EXPECT_EQ(read_exactly(server.output.read.get(), 6), " again");
  EXPECT_EQ(server.finish(), "input ended");
  EXPECT_EQ(session.ends(), 1);
  EXPECT_EQ(session.received(), "hello again");
}

TEST(ServeFd, MovesMegabytesThroughBlockingPipes) {
  // Blocking pipes take PIPE_BUF at a time after poll(); both directions
  // are full most of the time, so reading and writing must interleave.
  RecordingSession session(true, 256 << 10);
  PipeServer server(session);
  constexpr size_t total = 8 << 20;
  const std::string payload = pattern(total);
  std::thread writer([&] { EXPECT_TRUE(write_all(server.input.write.get(), payload)); });
  std::string echoed = read_exactly(server.output.read.get(), total);
  writer.join();
  EXPECT_TRUE(echoed == payload);
  EXPECT_EQ(server.finish(), "input ended");
  EXPECT_LE(session.max_output(), (256u << 10) + (64u << 10));
}

TEST(ServeFd, SendsOutputFromAnotherThreadWhileWaitingForInput) {
  RecordingSession session(/*echo=*/false);
  PipeServer server(session);
  // serve_fd sits in poll() with no input coming; the listener wakes it.
  std::thread worker([&] { session.send("unprompted"); });
  worker.join();
  EXPECT_EQ(read_exactly(server.output.read.get(), 10), "unprompted");
  EXPECT_EQ(server.finish(), "input ended");
}

TEST(ServeFd, WritesPendingOutputWhenInputEnds) {
  RecordingSession session;
  PipeServer server(session);
  ASSERT_TRUE(write_all(server.input.write.get(), "last words"));
  server.input.write.reset();  // before reading anything back
  EXPECT_EQ(read_exactly(server.output.read.get(), 10), "last words");
  EXPECT_EQ(server.finish(), "input ended");
}

TEST(ServeFd, StopsWhenTheSessionFailsAfterSendingItsOutput) {
  RecordingSession session;
  session.fail_on("FAIL");
  PipeServer server(session);
  ASSERT_TRUE(write_all(server.input.write.get(), "FAIL"));
  ASSERT_EQ(server.result.wait_for(wait_limit), std::future_status::ready);
  EXPECT_EQ(server.result.get(), "session failed: asked to fail");
  EXPECT_EQ(read_exactly(server.output.read.get(), 4), "FAIL");
  EXPECT_EQ(session.ends(), 1);
}

TEST(ServeFd, StopsWhenTheSessionFailsOnAWake) {
  RecordingSession session;
  PipeServer server(session);
  // serve_fd waits for input; only the wake tells it to look at failed().
  std::thread worker([&] { session.fail_now("dropped"); });
  worker.join();
  ASSERT_EQ(server.result.wait_for(wait_limit), std::future_status::ready);
  EXPECT_EQ(server.result.get(), "session failed: dropped");
  EXPECT_EQ(session.ends(), 1);
}

TEST(ServeFd, ReadsOnlyWhileTheSessionWantsInput) {
  RecordingSession session;
  session.set_wants_input(false);
  many_level::TransportStats stats;
  Pipe input;
  Pipe output;
  auto result = std::async(std::launch::async, [&] {
    many_level::ServeFdOptions options;
    options.stats = &stats;
    return many_level::serve_fd(input.read.get(), output.write.get(), session, options);
  });
  ASSERT_TRUE(write_all(input.write.get(), "later"));
  session.set_wants_input(true);  // the wake makes serve_fd ask again
  EXPECT_EQ(read_exactly(output.read.get(), 5), "later");
  input.write.reset();
  ASSERT_EQ(result.wait_for(wait_limit), std::future_status::ready);
  EXPECT_EQ(result.get(), "input ended");
  EXPECT_EQ(stats.bytes_in(), 5u);
  EXPECT_FALSE(stats.input_paused());
}

TEST(ServeFd, SurvivesAReaderThatWentAway) {
  RecordingSession session;
  PipeServer server(session);
  server.output.read.reset();  // nobody reads our output: writing raises SIGPIPE unless held back
  ASSERT_TRUE(write_all(server.input.write.get(), "into the void"));
  ASSERT_EQ(server.result.wait_for(wait_limit), std::future_status::ready);
  EXPECT_EQ(server.result.get(), "write error: Broken pipe");
  EXPECT_EQ(session.ends(), 1);
}

TEST(ServeFd, OneSocketBothWays) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd ours(pair[0]);
  UniqueFd theirs(pair[1]);
  set_timeouts(theirs.get());
  RecordingSession session;
  auto result = std::async(std::launch::async, [&] { return many_level::serve_fd(ours.get(), ours.get(), session); });
  ASSERT_TRUE(send_all(theirs.get(), "socket"));
  EXPECT_EQ(recv_exactly(theirs.get(), 6), "socket");
  ::shutdown(theirs.get(), SHUT_WR);
  ASSERT_EQ(result.wait_for(wait_limit), std::future_status::ready);
  EXPECT_EQ(result.get(), "input ended");
  EXPECT_EQ(session.ends(), 1);
}

// A host to connect guests to: an EventLoop of echoing sessions.
struct EchoHost {
  Counter connects;
  Counter disconnects;
  std::mutex mutex;
  std::vector<std::uint64_t> ids;
  EventLoop loop;
  many_level::Address address;

  explicit EchoHost(const std::string& where) {
    loop.on_connect([this](const ConnectionInfo& info) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        ids.push_back(info.id);
      }
      connects.add();
    });
    loop.on_disconnect([this](const ConnectionInfo&, const std::string&) { disconnects.add(); });
    address = loop.listen(where, [](const ConnectionInfo&) { return std::make_shared<RecordingSession>(); });
    loop.start();
  }
  std::uint64_t id(size_t index) {
    std::lock_guard<std::mutex> lock(mutex);
    return ids.at(index);
  }
};

// Remembers why a connection closed.
struct CloseRecord {
  std::mutex mutex;
  std::vector<std::string> reasons;
  Counter count;
  FdConnection::CloseCallback callback() {
    return [this](const std::string& reason) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        reasons.push_back(reason);
      }
      count.add();
    };
  }
  std::vector<std::string> all() {
    std::lock_guard<std::mutex> lock(mutex);
    return reasons;
  }
};

TEST(FdConnection, TalksToAHostAndClosesOnPurpose) {
  EchoHost host("tcp://127.0.0.1:0");
  RecordingSession guest(/*echo=*/false);
  CloseRecord closes;
  FdConnection connection = many_level::connect_fd(host.address, guest, closes.callback());
  EXPECT_TRUE(connection.is_open());
  EXPECT_EQ(connection.peer(), host.address.to_string());
  guest.send("request");
  ASSERT_TRUE(guest.wait_received(7));
  EXPECT_EQ(guest.received(), "request");
  EXPECT_NE(guest.receive_thread(), std::this_thread::get_id());

  connection.close();
  // close() returns after end() and the callback.
  EXPECT_FALSE(connection.is_open());
  EXPECT_EQ(guest.ends(), 1);
  EXPECT_EQ(closes.all(), std::vector<std::string>{"closed locally"});
  EXPECT_EQ(connection.stats().bytes_out(), 7u);
  EXPECT_EQ(connection.stats().bytes_in(), 7u);
  ASSERT_TRUE(host.disconnects.wait_for(1));
  connection.close();  // again: nothing more happens
  EXPECT_EQ(guest.ends(), 1);
}

TEST(FdConnection, ReportsTheHostDroppingIt) {
  TempDir dir;
  EchoHost host("unix:" + dir.file("host.sock"));
  RecordingSession guest(/*echo=*/false);
  CloseRecord closes;
  FdConnection connection = many_level::connect_fd(host.address.to_string(), guest, closes.callback());
  ASSERT_TRUE(host.connects.wait_for(1));
  host.loop.close_connection(host.id(0));
  ASSERT_TRUE(closes.count.wait_for(1));
  EXPECT_EQ(closes.all(), std::vector<std::string>{"input ended"});
  EXPECT_FALSE(connection.is_open());
  EXPECT_EQ(guest.ends(), 1);
}

TEST(FdConnection, ClosesWhenItsSessionAsks) {
  EchoHost host("tcp://127.0.0.1:0");
  RecordingSession guest(/*echo=*/false);
  CloseRecord closes;
  FdConnection connection = many_level::connect_fd(host.address, guest, closes.callback());
  ASSERT_TRUE(host.connects.wait_for(1));
  guest.fail_now("drop connection button");
  ASSERT_TRUE(closes.count.wait_for(1));
  EXPECT_EQ(closes.all(), std::vector<std::string>{"session failed: drop connection button"});
  EXPECT_EQ(guest.ends(), 1);
  ASSERT_TRUE(host.disconnects.wait_for(1));
}

TEST(FdConnection, CanBeDestroyedFromItsOwnCloseCallback) {
  EchoHost host("tcp://127.0.0.1:0");
  RecordingSession guest(/*echo=*/false);
  std::mutex mutex;
  std::unique_ptr<FdConnection> holder;
  Counter destroyed;
  {
    std::lock_guard<std::mutex> lock(mutex);
    holder = std::make_unique<FdConnection>(many_level::connect_to(host.address), guest,
                                            [&](const std::string&) {
                                              {
                                                std::lock_guard<std::mutex> lock(mutex);
                                                holder.reset();  // as a guest that reconnects would
                                              }
                                              destroyed.add();  // last: the test may end right after
                                            });
  }
  ASSERT_TRUE(host.connects.wait_for(1));
  host.loop.close_connection(host.id(0));
  ASSERT_TRUE(destroyed.wait_for(1));
  EXPECT_EQ(guest.ends(), 1);
}

TEST(FdConnection, RefusedConnectThrows) {
  std::uint16_t port;
  {
    auto listener = many_level::listen_on(many_level::parse_address("tcp://127.0.0.1:0"));
    port = listener.address().port;
  }
  RecordingSession guest;
  EXPECT_THROW(many_level::connect_fd("tcp://127.0.0.1:" + std::to_string(port), guest), many_level::Error);
  EXPECT_EQ(guest.ends(), 0);
}

}  // namespace

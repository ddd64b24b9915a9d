#include "many_level/transport/event_loop.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using many_level::Address;
using many_level::ConnectionInfo;
using many_level::EventLoop;
using many_level::EventLoopOptions;
using many_level::Session;
using many_level::UniqueFd;
using namespace transport_test;

// An EventLoop on its own thread whose sessions are RecordingSessions, kept
// for inspection, with connects and disconnects counted.
class Server {
 public:
  explicit Server(EventLoopOptions options = {}, size_t high_water = 1 << 20, bool echo = true)
      : high_water_(high_water), echo_(echo), loop(options) {
    loop.on_connect([this](const ConnectionInfo&) { connects.add(); });
    loop.on_disconnect([this](const ConnectionInfo& info, const std::string& reason) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        reasons_.push_back(reason);
        disconnected_ids_.push_back(info.id);
      }
      disconnects.add();
    });
    loop.start();
  }

  Address listen(const std::string& address) {
    return loop.listen(address, [this](const ConnectionInfo& info) -> std::shared_ptr<Session> {
      if (refuse_) return nullptr;
      auto session = std::make_shared<RecordingSession>(echo_, high_water_);
      if (!fail_on_.empty()) session->fail_on(fail_on_);
      std::lock_guard<std::mutex> lock(mutex_);
      sessions_.push_back(session);
      ids_.push_back(info.id);
      return session;
    });
  }

  std::shared_ptr<RecordingSession> session(size_t index) {
    std::lock_guard<std::mutex> lock(mutex_);
    return sessions_.at(index);
  }
  std::uint64_t id(size_t index) {
    std::lock_guard<std::mutex> lock(mutex_);
    return ids_.at(index);
  }
  std::vector<std::string> reasons() {
    std::lock_guard<std::mutex> lock(mutex_);
    return reasons_;
  }
  size_t session_count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return sessions_.size();
  }

  void barrier();

  void refuse() { refuse_ = true; }
  void fail_on(std::string marker) { fail_on_ = std::move(marker); }

  Counter connects;
  Counter disconnects;

 private:
  std::mutex mutex_;
  std::vector<std::shared_ptr<RecordingSession>> sessions_;
  std::vector<std::uint64_t> ids_;
  std::vector<std::string> reasons_;
  std::vector<std::uint64_t> disconnected_ids_;
  size_t high_water_;
  bool echo_;
  std::atomic<bool> refuse_{false};
  std::string fail_on_;

 public:
  // Last, so it goes first: its destructor still calls the callbacks above.
  EventLoop loop;
};

// Returns once the loop has run a task posted now: whatever the loop was in
// the middle of (a send whose bytes a client already has, say) is finished.
void barrier(EventLoop& loop) {
  auto done = std::make_shared<std::promise<void>>();
  auto future = done->get_future();
  loop.post([done] { done->set_value(); });
  ASSERT_EQ(future.wait_for(wait_limit), std::future_status::ready);
}

void Server::barrier() { ::barrier(loop); }

UniqueFd client_for(const Address& address) {
  UniqueFd fd = many_level::connect_to(address);
  set_timeouts(fd.get());
  return fd;
}

// Many clients at once, each with its own message, all echoed back intact.
void echo_many_clients(Server& server, const Address& address, int clients) {
  std::vector<UniqueFd> fds;
  for (int i = 0; i < clients; ++i) fds.push_back(client_for(address));
  std::vector<std::string> messages;
  for (int i = 0; i < clients; ++i) {
    messages.push_back("client " + std::to_string(i) + ": " + pattern(1000 + static_cast<size_t>(i), i));
    ASSERT_TRUE(send_all(fds[i].get(), messages[i]));
  }
  for (int i = 0; i < clients; ++i) {
    EXPECT_EQ(recv_exactly(fds[i].get(), messages[i].size()), messages[i]) << "client " << i;
  }
  ASSERT_TRUE(server.connects.wait_for(clients));
  EXPECT_EQ(server.loop.connection_count(), static_cast<size_t>(clients));
  fds.clear();
  ASSERT_TRUE(server.disconnects.wait_for(clients));
  EXPECT_EQ(server.loop.connection_count(), 0u);
  for (int i = 0; i < clients; ++i) EXPECT_EQ(server.session(i)->ends(), 1);
}

TEST(EventLoop, EchoesManyTcpClients) {
  Server server;
  Address address = server.listen("tcp://127.0.0.1:0");
  echo_many_clients(server, address, 200);
}

TEST(EventLoop, EchoesManyUnixClients) {
  TempDir dir;
  Server server;
  Address address = server.listen("unix:" + dir.file("echo.sock"));
  EXPECT_EQ(address, Address::unix_socket(dir.file("echo.sock")));
  echo_many_clients(server, address, 200);
}

TEST(EventLoop, HoldsAThousandIdleConnections) {
  constexpr int clients = 1000;
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < 2 * clients + 64) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 2 * clients + 64);
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < 2 * clients + 64) GTEST_SKIP() << "too few file descriptors allowed";
  }
  Server server;
  Address address = server.listen("tcp://127.0.0.1:0");
  std::vector<UniqueFd> fds;
  for (int i = 0; i < clients; ++i) fds.push_back(client_for(address));
  ASSERT_TRUE(server.connects.wait_for(clients));
  EXPECT_EQ(server.loop.connection_count(), static_cast<size_t>(clients));
  EXPECT_EQ(server.loop.connections().size(), static_cast<size_t>(clients));
  // Idle ones cost nothing; the busy ones still get answers.
  for (int i : {0, clients / 2, clients - 1}) {
    ASSERT_TRUE(send_all(fds[i].get(), "ping"));
    EXPECT_EQ(recv_exactly(fds[i].get(), 4), "ping");
  }
  fds.clear();
  ASSERT_TRUE(server.disconnects.wait_for(clients));
  EXPECT_EQ(server.loop.connection_count(), 0u);
}

TEST(EventLoop, EchoesA32MiBPayloadThroughPartialWrites) {
  Server server;
  Address address = server.listen("tcp://127.0.0.1:0");
  UniqueFd fd = client_for(address);
  constexpr size_t total = 32 << 20;
  const std::string payload = pattern(total);
  std::thread writer([&] { EXPECT_TRUE(send_all(fd.get(), payload)); });
  std::string echoed = recv_exactly(fd.get(), total);
  writer.join();
  EXPECT_EQ(echoed.size(), total);
  EXPECT_TRUE(echoed == payload);
  ASSERT_TRUE(server.connects.wait_for(1));
  server.barrier();
  auto stats = server.loop.stats(server.id(0));
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->bytes_in(), total);
  EXPECT_EQ(stats->bytes_out(), total);
}

TEST(EventLoop, StopsReadingAClientThatNeverReads) {
  constexpr size_t high_water = 256 << 10;
  constexpr size_t chunk = 16 << 10;
  EventLoopOptions options;
  options.read_chunk = chunk;
  Server server(options, high_water);
  Address address = server.listen("tcp://127.0.0.1:0");

  UniqueFd fd = client_for(address);

  // Far more than the kernel's socket buffers and the high-water mark hold
  // together, so the writer can only finish once the client reads.
  constexpr size_t total = 24 << 20;
  const std::string payload = pattern(total);
  std::thread writer([&] { EXPECT_TRUE(send_all(fd.get(), payload)); });

  ASSERT_TRUE(server.connects.wait_for(1));
  auto session = server.session(0);
  auto stats = server.loop.stats(server.id(0));
  ASSERT_TRUE(stats);
  bool paused = false;
  for (int i = 0; i < 1000000 && !paused; ++i) {
    server.barrier();
    paused = stats->input_paused();
  }
  ASSERT_TRUE(paused) << "the loop never stopped reading";

  // Paused: the loop reads nothing more however long the client pushes.
  const std::uint64_t read_when_paused = stats->bytes_in();
  for (int i = 0; i < 3; ++i) server.barrier();
  EXPECT_EQ(stats->bytes_in(), read_when_paused);
  EXPECT_LT(read_when_paused, total);
  EXPECT_GE(session->output().size(), high_water);
  EXPECT_LE(session->output().size(), high_water + chunk);

  // Once the client reads, everything flows; memory never went past one
  // chunk over the high-water mark.
  std::string echoed = recv_exactly(fd.get(), total);
  writer.join();
  server.barrier();
  EXPECT_TRUE(echoed == payload);
  EXPECT_LE(session->max_output(), high_water + chunk);
  EXPECT_EQ(stats->bytes_in(), total);
  EXPECT_FALSE(stats->input_paused());
}

TEST(EventLoop, EndOfInputEndsTheSessionOnce) {
  std::shared_ptr<RecordingSession> session;
  {
    Server server;
    Address address = server.listen("tcp://127.0.0.1:0");
    {
      UniqueFd fd = client_for(address);
      ASSERT_TRUE(send_all(fd.get(), "bye"));
      ASSERT_TRUE(server.connects.wait_for(1));
      session = server.session(0);
      // Read the echo: closing with unread bytes would send a reset, not EOF.
      EXPECT_EQ(recv_exactly(fd.get(), 3), "bye");
    }
    ASSERT_TRUE(server.disconnects.wait_for(1));
    EXPECT_EQ(session->ends(), 1);
    EXPECT_EQ(server.reasons(), std::vector<std::string>{"closed by peer"});
    EXPECT_NE(session->end_thread(), std::this_thread::get_id());
  }
  EXPECT_EQ(session->ends(), 1);  // not again when the loop goes
}

TEST(EventLoop, FailedSessionClosesItsConnection) {
  Server server;
  server.fail_on("FAIL");
  Address address = server.listen("tcp://127.0.0.1:0");
  UniqueFd fd = client_for(address);
  ASSERT_TRUE(send_all(fd.get(), "fine"));
  EXPECT_EQ(recv_exactly(fd.get(), 4), "fine");
  ASSERT_TRUE(send_all(fd.get(), "FAIL"));
  // What the session had to send still goes out, then the stream closes.
  EXPECT_EQ(recv_exactly(fd.get(), 4), "FAIL");
  EXPECT_TRUE(recv_until_closed(fd.get()));
  ASSERT_TRUE(server.disconnects.wait_for(1));
  EXPECT_EQ(server.reasons(), std::vector<std::string>{"session failed: asked to fail"});
  EXPECT_EQ(server.session(0)->ends(), 1);
}

TEST(EventLoop, SessionFailingOnAWakeIsClosed) {
  Server server;
  Address address = server.listen("tcp://127.0.0.1:0");
  UniqueFd fd = client_for(address);
  ASSERT_TRUE(server.connects.wait_for(1));
  auto session = server.session(0);
  std::thread worker([&] {
    session->send("goodbye");
    session->fail_now("dropped on purpose");  // no bytes, only a wake
  });
  worker.join();
  EXPECT_EQ(recv_exactly(fd.get(), 7), "goodbye");
  EXPECT_TRUE(recv_until_closed(fd.get()));
  ASSERT_TRUE(server.disconnects.wait_for(1));
  EXPECT_EQ(server.reasons(), std::vector<std::string>{"session failed: dropped on purpose"});
  EXPECT_EQ(session->ends(), 1);
}

TEST(EventLoop, FailedSessionWhosePeerDoesNotReadIsClosedAfterLinger) {
  EventLoopOptions options;
  options.linger = std::chrono::milliseconds(50);
  Server server(options, 64 << 20, /*echo=*/false);
  Address address = server.listen("tcp://127.0.0.1:0");
  UniqueFd fd = client_for(address);
  ASSERT_TRUE(server.connects.wait_for(1));
  auto session = server.session(0);
  session->send(pattern(32 << 20));  // more than the socket buffers hold
  session->fail_now("asked to fail");
  ASSERT_TRUE(server.disconnects.wait_for(1));
  EXPECT_EQ(server.reasons(), std::vector<std::string>{"session failed: asked to fail (output not all sent)"});
  EXPECT_EQ(session->ends(), 1);
}

TEST(EventLoop, ReadsOnlyWhileTheSessionWantsInput) {
  Server server;
  Address address = server.listen("tcp://127.0.0.1:0");
  UniqueFd fd = client_for(address);
  ASSERT_TRUE(server.connects.wait_for(1));
  auto session = server.session(0);
  auto stats = server.loop.stats(server.id(0));
  session->set_wants_input(false);
  ASSERT_TRUE(send_all(fd.get(), "held back"));
  server.barrier();
  server.barrier();
  EXPECT_EQ(session->received_size(), 0u);
  EXPECT_TRUE(stats->input_paused());
  session->set_wants_input(true);  // wakes the loop, which asks again
  EXPECT_EQ(recv_exactly(fd.get(), 9), "held back");
}

TEST(EventLoop, ClosesAConnectionOnRequest) {
  Server server;
  Address address = server.listen("tcp://127.0.0.1:0");
  UniqueFd first = client_for(address);
  UniqueFd second = client_for(address);
  ASSERT_TRUE(server.connects.wait_for(2));
  server.loop.close_connection(server.id(0));
  EXPECT_TRUE(recv_until_closed(first.get()));
  ASSERT_TRUE(server.disconnects.wait_for(1));
  EXPECT_EQ(server.reasons(), std::vector<std::string>{"closed locally"});
  EXPECT_EQ(server.session(0)->ends(), 1);
  // The other one is untouched.
  ASSERT_TRUE(send_all(second.get(), "still here"));
  EXPECT_EQ(recv_exactly(second.get(), 10), "still here");
  EXPECT_EQ(server.loop.connection_count(), 1u);
}

TEST(EventLoop, SendsOutputWrittenOnAnotherThread) {
  Server server({}, 1 << 20, /*echo=*/false);
  Address address = server.listen("tcp://127.0.0.1:0");
  UniqueFd fd = client_for(address);
  ASSERT_TRUE(server.connects.wait_for(1));
  auto session = server.session(0);
  // The loop sleeps in poll(): only the output listener can wake it.
  std::thread worker([&] { session->send("pushed from a worker"); });
  worker.join();
  EXPECT_EQ(recv_exactly(fd.get(), 20), "pushed from a worker");
}

TEST(EventLoop, RefusedConnectionIsClosed) {
  Server server;
  server.refuse();
  Address address = server.listen("tcp://127.0.0.1:0");
  UniqueFd fd = client_for(address);
  EXPECT_TRUE(recv_until_closed(fd.get()));
  server.barrier();
  EXPECT_EQ(server.connects.value(), 0);
  EXPECT_EQ(server.loop.connection_count(), 0u);
}

TEST(EventLoop, RunsOnTheCallersThreadUntilStopped) {
  EventLoop loop;
  std::thread::id task_thread;
  bool in_loop = false;
  std::thread other([&] {
    loop.post([&] {
      task_thread = std::this_thread::get_id();
      in_loop = loop.in_loop_thread();
      loop.stop();
    });
  });
  loop.run();
  other.join();
  EXPECT_EQ(task_thread, std::this_thread::get_id());
  EXPECT_TRUE(in_loop);
  EXPECT_FALSE(loop.in_loop_thread());
}

TEST(EventLoop, AdoptsAConnectedSocket) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd ours(pair[0]);
  UniqueFd theirs(pair[1]);
  set_timeouts(theirs.get());
  Counter disconnects;
  EventLoop loop;
  loop.on_disconnect([&](const ConnectionInfo&, const std::string&) { disconnects.add(); });
  loop.start();
  auto session = std::make_shared<RecordingSession>();
  std::uint64_t id = loop.add_connection(std::move(ours), session, "test pair");
  ASSERT_TRUE(send_all(theirs.get(), "adopted"));
  EXPECT_EQ(recv_exactly(theirs.get(), 7), "adopted");
  barrier(loop);
  auto snapshot = loop.connections();
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].info.id, id);
  EXPECT_EQ(snapshot[0].info.peer, "test pair");
  EXPECT_EQ(snapshot[0].bytes_in, 7u);
  EXPECT_EQ(snapshot[0].bytes_out, 7u);
  theirs.reset();
  ASSERT_TRUE(disconnects.wait_for(1));
  EXPECT_EQ(session->ends(), 1);
}

TEST(EventLoop, EndsOpenConnectionsWhenDestroyed) {
  std::shared_ptr<RecordingSession> session;
  UniqueFd fd;
  {
    Server server;
    Address address = server.listen("tcp://127.0.0.1:0");
    fd = client_for(address);
    ASSERT_TRUE(server.connects.wait_for(1));
    session = server.session(0);
  }
  EXPECT_EQ(session->ends(), 1);
  EXPECT_TRUE(recv_until_closed(fd.get()));
}

TEST(EventLoop, StopListeningKeepsConnections) {
  Server server;
  Address address = server.listen("tcp://127.0.0.1:0");
  UniqueFd fd = client_for(address);
  ASSERT_TRUE(server.connects.wait_for(1));
  server.loop.stop_listening();
  server.barrier();
  EXPECT_THROW(many_level::connect_to(address), many_level::Error);
  ASSERT_TRUE(send_all(fd.get(), "on"));
  EXPECT_EQ(recv_exactly(fd.get(), 2), "on");
}

}  // namespace

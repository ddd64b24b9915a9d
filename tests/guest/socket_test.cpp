// Guests and a host over real loopback sockets (EventLoop on the host side,
// FdConnection on the guests'), where callers and host workers write their
// frames to the socket themselves (SendMode::now) while the transports'
// threads send what they queue: many threads at once, mixed sequential and
// pipelined requests, iterators, and connections that come and go. Every
// answer is checked; a frame interleaved or lost shows up as a wrong value,
// a protocol error or a hang (the watchdog).
#include <atomic>
#include <future>
#include <thread>

#include "guest_harness.hpp"

namespace guest_tests {
namespace {

// A host serving `remote` on a loopback port of its own.
struct Served {
  explicit Served(Host& host) {
    address = loop.listen("tcp://127.0.0.1:0", [&host](const ConnectionInfo&) { return host.create_session(); });
    loop.start();
  }
  ~Served() { loop.stop(); }
  EventLoop loop;
  Address address;
};

// A guest with its own connection to `served`.
struct SocketGuest {
  explicit SocketGuest(const Served& served, GuestOptions options = {}) : guest(std::move(options)) {
    session = guest.connect();
    connection = connect_fd(served.address, *session);
  }
  ~SocketGuest() {
    guest.close();
    connection.close();
  }
  Guest guest;
  std::shared_ptr<Session> session;
  FdConnection connection;
};

std::string key_of(int thread, int i) {
  char key[32];
  std::snprintf(key, sizeof key, "t%02d-%06d", thread, i);
  return key;
}

class Sockets : public GuestTest {};

TEST_F(Sockets, ManyThreadsManyGuestsEveryAnswerRight) {
  Remote remote;
  Served served(remote.host);
  constexpr int guests = 4;
  constexpr int threads_per_guest = 3;
  constexpr int per_thread = 300;
  std::vector<std::unique_ptr<SocketGuest>> connected;
  for (int g = 0; g < guests; ++g) connected.push_back(std::make_unique<SocketGuest>(served));

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int g = 0; g < guests; ++g) {
    for (int t = 0; t < threads_per_guest; ++t) {
      const int id = g * threads_per_guest + t;
      Guest& guest = connected[g]->guest;
      threads.emplace_back([&, id] {
        // Sequential: each put awaited, then read back.
        for (int i = 0; i < per_thread / 3; ++i) {
          guest.put(key_of(id, i), std::to_string(i));
          if (guest.get(key_of(id, i)) != std::to_string(i)) ++failures;
        }
        // Pipelined: many in flight from one thread.
        std::vector<std::future<void>> puts;
        for (int i = per_thread / 3; i < per_thread; ++i) puts.push_back(guest.put_async(key_of(id, i), std::to_string(i)));
        for (auto& put : puts) put.get();
        std::vector<std::future<std::optional<std::string>>> gets;
        for (int i = 0; i < per_thread; ++i) gets.push_back(guest.get_async(key_of(id, i)));
        for (int i = 0; i < per_thread; ++i) {
          if (gets[i].get() != std::to_string(i)) ++failures;
        }
        // This thread's keys, in order, through an iterator.
        IteratorOptions options;
        options.gte = key_of(id, 0);
        options.lt = key_of(id, per_thread);
        auto entries = guest.iterator(options)->all();
        if (entries.size() != static_cast<size_t>(per_thread)) ++failures;
        for (size_t i = 0; i < entries.size(); ++i) {
          if (entries[i].key != key_of(id, static_cast<int>(i))) ++failures;
        }
      });
    }
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(contents(remote.db).size(), static_cast<size_t>(guests * threads_per_guest * per_thread));
  for (auto& guest : connected) EXPECT_TRUE(eventually([&] { return guest->guest.is_flushed(); }));
}

// Large batches and values: frames far bigger than a socket buffer, so sends
// started on a caller's or a worker's thread end on the transport's.
TEST_F(Sockets, FramesLargerThanTheSocketBuffer) {
  Remote remote;
  Served served(remote.host);
  SocketGuest a(served);
  SocketGuest b(served);
  const std::string big(3 << 20, 'v');
  std::vector<BatchOperation> batch;
  for (int i = 0; i < 2000; ++i) batch.push_back(BatchOperation::put(key_of(0, i), std::string(1000, 'a' + i % 26)));
  auto first = a.guest.batch_async(batch);
  auto second = b.guest.put_async("big", big);
  first.get();
  second.get();
  EXPECT_EQ(b.guest.get("big"), big);
  auto values = a.guest.get_many({key_of(0, 0), key_of(0, 1999), "big"});
  ASSERT_EQ(values.size(), 3u);
  EXPECT_EQ(values[0], std::string(1000, 'a'));
  EXPECT_EQ(values[1], std::string(1000, 'a' + 1999 % 26));
  EXPECT_EQ(values[2], big);
  EXPECT_EQ(a.guest.iterator()->all().size(), 2001u);
}

// Guests that drop their connection while requests are in flight: the host
// and the other guests carry on, and the host's sessions all end.
TEST_F(Sockets, ConnectionsThatComeAndGo) {
  Remote remote;
  Served served(remote.host);
  SocketGuest steady(served);
  for (int round = 0; round < 20; ++round) {
    auto passing = std::make_unique<SocketGuest>(served);
    std::vector<std::future<void>> in_flight;
    for (int i = 0; i < 50; ++i) in_flight.push_back(passing->guest.put_async(key_of(round, i), "x"));
    passing->connection.close();  // cut: what was in flight fails or was done
    for (auto& put : in_flight) {
      try {
        put.get();
      } catch (const Error& e) {
        EXPECT_TRUE(e.is(codes::connection_lost)) << e.what();
      }
    }
    steady.guest.put("round", std::to_string(round));
    EXPECT_EQ(steady.guest.get("round"), std::to_string(round));
  }
  EXPECT_TRUE(eventually([&] { return remote.host.sessions().size() == 1; }));
}

}  // namespace
}  // namespace guest_tests

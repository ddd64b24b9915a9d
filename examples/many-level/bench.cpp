// `many-level bench`: the workloads of docs/BENCHMARKS.md against a host (a
// C++ guest over TCP or a Unix socket) or in process, one JSON line each.
// The numbers come from here and from tests/bench; never from timed tests.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "commands.hpp"
#include "many_level.hpp"
#include "tls_options.hpp"

namespace cli {
namespace {

using namespace many_level;
using Clock = std::chrono::steady_clock;

// What a workload talks to: a guest (truly asynchronous) or a local store
// (whose calls complete before they return).
struct Client {
  Database& db;
  Guest* guest = nullptr;
};

std::string key_of(uint64_t i) {
  char key[24];
  std::snprintf(key, sizeof key, "k%015llu", static_cast<unsigned long long>(i));
  return key;
}

const std::string value_100(100, 'v');

// W2 and W4: `count` requests with up to `window` in flight. Against a guest,
// as tests/bench/node-bench.js does it: the completion of each request starts
// the next one (on the guest's I/O thread, through the callback form of the
// async calls), and the caller waits once, for the last. `start(i, done)`
// makes request i and calls `done(error)` when it completes. A local store
// completes each call before it returns, so there they simply run in order.
template <typename Start>
void pipelined(const Client& client, uint64_t count, size_t window, Start start) {
  if (!client.guest) {
    for (uint64_t i = 0; i < count; ++i) {
      start(i, [](std::optional<Error> error) {
        if (error) throw *error;
      });
    }
    return;
  }
  struct Shared {
    std::atomic<uint64_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex mutex;
    std::condition_variable finished;
    uint64_t completed = 0;
    std::optional<Error> error;
  };
  auto shared = std::make_shared<Shared>();
  std::function<void()> launch;
  auto finish = [shared, count](std::optional<Error> error) {
    std::lock_guard<std::mutex> lock(shared->mutex);
    if (error && !shared->error) shared->error = std::move(error);
    if (++shared->completed == count) shared->finished.notify_all();
  };
  // The next request is started before this one counts as done, so the
  // caller cannot return (taking `launch` and `start` with it) while a
  // completion still uses them.
  auto done = [shared, finish, &launch](std::optional<Error> error) {
    if (error) shared->failed.store(true);
    launch();
    finish(std::move(error));
  };
  // After a failure the rest is counted without being started (a loop, not
  // a recursion: a closed guest completes each call before it returns).
  launch = [shared, count, &start, done, finish] {
    for (;;) {
      uint64_t i = shared->next.fetch_add(1);
      if (i >= count) return;
      if (shared->failed.load()) {
        finish(std::nullopt);
        continue;
      }
      try {
        start(i, done);
        return;
      } catch (const Error& e) {
        shared->failed.store(true);
        finish(e);
      }
    }
  };
  for (size_t k = 0; k < std::min<uint64_t>(window, count); ++k) launch();
  std::unique_lock<std::mutex> lock(shared->mutex);
  shared->finished.wait(lock, [&] { return shared->completed == count; });
  if (shared->error) throw *shared->error;
}

struct Workload {
  const char* name;
  uint64_t ops;
  std::function<void()> run;
};

std::vector<Workload> workloads(Client& client, uint64_t n, uint64_t m) {
  Database& db = client.db;
  return {
      {"W1 sequential put", m, [&db, m] { for (uint64_t i = 0; i < m; ++i) db.put(key_of(i), value_100); }},
      {"W2 pipelined put", n,
       [&client, n] {
         pipelined(client, n, 1000, [&client](uint64_t i, auto done) {
           if (client.guest) return client.guest->put_async(key_of(i), value_100, {}, done);
           client.db.put(key_of(i), value_100);
           done(std::nullopt);
         });
       }},
      {"W3 sequential get", m,
       [&db, m] {
         for (uint64_t i = 0; i < m; ++i) {
           if (!db.try_get(key_of(i))) throw Error(codes::not_found, "W3: missing " + key_of(i));
         }
       }},
      {"W4 pipelined get", n,
       [&client, n] {
         pipelined(client, n, 1000, [&client](uint64_t i, auto done) {
           if (client.guest) {
             return client.guest->get_async(key_of(i), {}, [done, i](std::optional<Error> error, Guest::Value value) {
               if (!error && !value) error = Error(codes::not_found, "W4: missing " + key_of(i));
               done(std::move(error));
             });
           }
           if (!client.db.try_get(key_of(i))) throw Error(codes::not_found, "W4: missing " + key_of(i));
           done(std::nullopt);
         });
       }},
      {"W5 batch", n,
       [&db, n] {
         std::vector<BatchOperation> batch;
         for (uint64_t start = 0; start < n; start += 1000) {
           batch.clear();
           for (uint64_t i = start; i < std::min(n, start + 1000); ++i) batch.push_back(BatchOperation::put(key_of(i), value_100));
           db.batch(batch);
         }
       }},
      {"W6 iterate all", n,
       [&db, n] {
         auto iterator = db.iterator();
         uint64_t seen = 0;
         for (auto entries = iterator->nextv(1000); !entries.empty(); entries = iterator->nextv(1000)) seen += entries.size();
         if (seen != n) throw Error(codes::io_error, "W6: iterated " + std::to_string(seen) + " of " + std::to_string(n));
       }},
      {"W7 getMany", n,
       [&db, n] {
         std::vector<std::string> keys;
         for (uint64_t start = 0; start < n; start += 1000) {
           keys.clear();
           for (uint64_t i = start; i < std::min(n, start + 1000); ++i) keys.push_back(key_of(i));
           auto values = db.get_many(keys);
           if (!values.back()) throw Error(codes::not_found, "W7: missing " + keys.back());
         }
       }},
  };
}

void report(const std::string& impl, const std::string& workload, uint64_t ops, double secs) {
  nlohmann::json line = {{"impl", impl}, {"workload", workload}, {"ops", ops}, {"secs", secs},
                         {"ops_per_s", secs > 0 ? ops / secs : 0.0}};
  std::cout << line.dump() << std::endl;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The floor for W3: round trips of 30 bytes over loopback TCP, nothing else.
void ping_pong(uint64_t rounds, const std::string& impl) {
  int server = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (server < 0 || ::bind(server, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(server, 1) != 0 || ::getsockname(server, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    throw Error(codes::io_error, "ping-pong: cannot listen on loopback");
  }
  auto exchange = [](int fd, bool first_send, uint64_t count) {
    char buffer[30] = {};
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (uint64_t i = 0; i < count; ++i) {
      for (int step = 0; step < 2; ++step) {
        bool sending = (step == 0) == first_send;
        size_t done = 0;
        while (done < sizeof buffer) {
          ssize_t n = sending ? ::send(fd, buffer + done, sizeof buffer - done, MSG_NOSIGNAL)
                              : ::recv(fd, buffer + done, sizeof buffer - done, 0);
          if (n <= 0) return;
          done += static_cast<size_t>(n);
        }
      }
    }
  };
  std::thread echo([&] {
    int connection = ::accept(server, nullptr, nullptr);
    exchange(connection, false, rounds);
    ::close(connection);
  });
  int client = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    throw Error(codes::io_error, "ping-pong: cannot connect");
  }
  auto start = Clock::now();
  exchange(client, true, rounds);
  double secs = seconds_since(start);
  ::close(client);
  echo.join();
  ::close(server);
  report(impl, "ping-pong 30 bytes", rounds, secs);
}

}  // namespace

int bench(const std::vector<std::string>& words) {
  try {
    std::set<std::string> with_value = tls_guest_value_options, flags = tls_guest_flags;
    with_value.insert({"connect", "scale", "impl", "only", "sqlite"});
    flags.insert({"memory", "ping-pong"});
    Args args(words, with_value, flags);
    const std::string address = args.value_or("connect", "tcp://127.0.0.1:9000");
    const TlsFlags tls = TlsFlags::from(args);
    try {
      tls.check_guest(parse_address(address), "connect");
    } catch (const Error& e) {
      throw UsageError(e.message());
    }
    double scale = 1.0;
    if (auto text = args.value("scale")) {
      scale = std::stod(*text);
      if (!(scale > 0)) throw UsageError("--scale must be positive");
    }
    const uint64_t n = std::max<uint64_t>(1000, static_cast<uint64_t>(200000 * scale));
    const uint64_t m = std::max<uint64_t>(100, static_cast<uint64_t>(20000 * scale));
    std::set<std::string> only;
    if (auto list = args.value("only")) {
      std::stringstream items(*list);
      for (std::string item; std::getline(items, item, ',');) only.insert(item);
    }

    if (args.has("ping-pong")) {
      ping_pong(m, args.value_or("impl", "loopback"));
      return exit_ok;
    }

    // The database the workloads use: a guest of a host, or a store in process.
    std::unique_ptr<Database> db;
    std::unique_ptr<Connector> connector;
    Guest* guest = nullptr;
    std::string impl;
    if (auto path = args.value("sqlite")) {
      db = std::make_unique<SqliteDatabase>(*path);
      impl = "sqlite-in-process";
    } else if (args.has("memory")) {
      db = std::make_unique<MemoryDatabase>();
      impl = "memory-in-process";
    } else {
      auto remote = std::make_unique<Guest>();
      guest = remote.get();
      ConnectorOptions options;
      if (parse_address(address).tls) options.wrap_session = guest_stream_wrapper(tls);
      connector = std::make_unique<Connector>(*remote, address, options);
      if (!connector->wait_connected(std::chrono::seconds(10))) {
        std::cerr << "many-level bench: cannot connect to " << connector->address().to_string() << "\n";
        return exit_failure;
      }
      db = std::move(remote);
      impl = "cpp-guest";
    }
    impl = args.value_or("impl", impl);

    db->clear();
    Client client{*db, guest};
    for (auto& workload : workloads(client, n, m)) {
      if (!only.empty() && !only.count(std::string(workload.name).substr(0, 2))) continue;
      auto start = Clock::now();
      workload.run();
      report(impl, workload.name, workload.ops, seconds_since(start));
    }
    db->close();
    return exit_ok;
  } catch (const UsageError& e) {
    std::cerr << "many-level bench: " << e.what() << " (see many-level --help)\n";
    return exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "many-level bench: " << e.what() << "\n";
    return exit_failure;
  }
}

}  // namespace cli

// watch-bench: the change feed measured and proved end to end, over loopback
// TCP, with C++ guests on a C++ host serving a SQLite database. One JSON line
// per measurement on stdout; docs/BENCHMARKS.md has the figures.
//
//   watch-bench throughput [--writes N] [--watchers W]
//       a writer guest pipelines N puts; W watcher guests watch everything.
//       Reports commits and operations a second each watcher received, from
//       the first put to the last operation delivered.
//   watch-bench latency [--writes N]
//       sequential puts; for each commit, the time from the host's publish
//       (a listener on the feed, in this process) to the watcher's callback.
//   watch-bench memory --many-level PATH [--watchers W] [--writes N]
//       a `many-level serve` host in its own process; W guests, one watch
//       each, on one event loop; the host's peak RSS before the watchers,
//       with them idle, and after N writes reached all of them.
//   watch-bench cuts [--writes N] [--cut-min-ms A] [--cut-max-ms B]
//       four writer guests make N writes (puts, dels, batches); a retrying
//       watcher's connection is dropped every A..B ms throughout. Exits 1
//       unless it saw every commit exactly once, in order: sequences
//       contiguous, each written value once, each writer's values in its
//       order, and the replayed stream equal to the database's final content.
//
// Exit status: 0 done (for cuts: proved), 1 failed, 2 usage.
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "many_level.hpp"

namespace {

using namespace many_level;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Args {
  std::string mode;
  uint64_t writes = 0;
  size_t watchers = 1;
  std::string many_level;
  int cut_min_ms = 2;
  int cut_max_ms = 5;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "watch-bench: " << why << "\n"
            << "usage: watch-bench throughput|latency|memory|cuts [--writes N] [--watchers W]\n"
            << "                   [--many-level PATH] [--cut-min-ms A] [--cut-max-ms B]\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  if (argc < 2) usage("a mode is required");
  Args args;
  args.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) usage(flag + " needs a value");
    std::string value = argv[++i];
    try {
      if (flag == "--writes") {
        args.writes = std::stoull(value);
      } else if (flag == "--watchers") {
        args.watchers = std::stoull(value);
      } else if (flag == "--many-level") {
        args.many_level = value;
      } else if (flag == "--cut-min-ms") {
        args.cut_min_ms = std::stoi(value);
      } else if (flag == "--cut-max-ms") {
        args.cut_max_ms = std::stoi(value);
      } else {
        usage("unknown option " + flag);
      }
    } catch (const std::logic_error&) {
      usage("bad value for " + flag + ": " + value);
    }
  }
  if (args.cut_min_ms < 1 || args.cut_max_ms < args.cut_min_ms) usage("bad cut interval");
  return args;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A temporary directory removed at exit.
struct TempDir {
  std::string path;
  TempDir() {
    char pattern[] = "/tmp/watch-bench-XXXXXX";
    if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

// A C++ host on a SQLite database in this process, on a loopback port.
struct LocalHost {
  TempDir dir;
  SqliteDatabase db;
  Host host;
  EventLoop loop;
  std::string address;

  explicit LocalHost(ChangeHistoryOptions history = {})
      : db(dir.path + "/db.sqlite", sqlite_options(history)), host(db) {
    address = loop.listen("tcp://127.0.0.1:0", [this](const ConnectionInfo& info) {
                     return host.create_session(info);
                   }).to_string();
    loop.start();
  }
  ~LocalHost() { loop.stop(); }

  static SqliteOptions sqlite_options(ChangeHistoryOptions history) {
    SqliteOptions options;
    options.change_history = history;
    return options;
  }
};

// A guest kept connected to `address` (reconnecting at once after a drop).
struct RemoteGuest {
  Guest guest;
  Connector connector;
  RemoteGuest(const std::string& address, bool retry)
      : guest(guest_options(retry)), connector(guest, address, connector_options()) {}
  static GuestOptions guest_options(bool retry) {
    GuestOptions options;
    options.retry = retry;
    return options;
  }
  static ConnectorOptions connector_options() {
    ConnectorOptions options;
    options.initial_backoff = std::chrono::milliseconds(1);
    options.max_backoff = std::chrono::milliseconds(20);
    return options;
  }
};

std::string key_of(uint64_t i) {
  char key[24];
  std::snprintf(key, sizeof key, "k%09llu", static_cast<unsigned long long>(i));
  return key;
}

// Pipelines `count` puts from `guest`, at most `window` in flight, and waits.
void pipelined_puts(Guest& guest, uint64_t count, size_t window, const std::string& value) {
  std::mutex mutex;
  std::condition_variable done;
  uint64_t issued = 0, completed = 0;
  std::optional<Error> failure;
  std::function<void()> issue_next;
  issue_next = [&] {
    uint64_t i;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (issued >= count) return;
      i = issued++;
    }
    guest.put_async(key_of(i), value, raw_write, [&](std::optional<Error> error) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (error && !failure) failure = error;
        ++completed;
      }
      done.notify_all();
      issue_next();
    });
  };
  for (size_t w = 0; w < window; ++w) issue_next();
  std::unique_lock<std::mutex> lock(mutex);
  done.wait(lock, [&] { return completed == count; });
  if (failure) throw *failure;
}

// Counts what one watch receives and wakes a waiter when it has `target` operations.
struct Counter {
  std::mutex mutex;
  std::condition_variable changed;
  uint64_t operations = 0;
  uint64_t commits = 0;
  std::optional<Error> error;
  Clock::time_point last;

  WatchCallback callback() {
    return [this](std::optional<Error> e, const Commit& commit) {
      std::lock_guard<std::mutex> lock(mutex);
      if (e) {
        error = e;
      } else {
        operations += commit.operations.size();
        ++commits;
        last = Clock::now();
      }
      changed.notify_all();
    };
  }

  bool wait_for(uint64_t target, std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return operations >= target || error; }) && !error;
  }
};

int throughput(const Args& args) {
  const uint64_t writes = args.writes ? args.writes : 200000;
  LocalHost host;
  std::vector<std::unique_ptr<RemoteGuest>> watchers;
  std::vector<std::unique_ptr<Counter>> counters;
  std::vector<std::unique_ptr<Watch>> watches;
  for (size_t i = 0; i < args.watchers; ++i) {
    watchers.push_back(std::make_unique<RemoteGuest>(host.address, false));
    counters.push_back(std::make_unique<Counter>());
    watches.push_back(watchers.back()->guest.watch(WatchOptions{}, counters.back()->callback()));
  }
  RemoteGuest writer(host.address, false);
  writer.guest.put("warm-up", "x");
  for (auto& counter : counters) counter->wait_for(1, std::chrono::seconds(30));
  const auto start = Clock::now();
  pipelined_puts(writer.guest, writes, 256, std::string(100, 'v'));
  const double write_seconds = seconds_since(start);
  double slowest = 0;
  uint64_t commits = 0;
  for (auto& counter : counters) {
    if (!counter->wait_for(writes + 1, std::chrono::seconds(300))) {
      std::cerr << "watch-bench: a watcher did not receive every write\n";
      return 1;
    }
    slowest = std::max(slowest, std::chrono::duration<double>(counter->last - start).count());
    commits = std::max(commits, counter->commits - 1);
  }
  std::cout << json{{"bench", "watch-throughput"},
                    {"writes", writes},
                    {"watchers", args.watchers},
                    {"write_ops_per_s", writes / write_seconds},
                    {"delivered_ops_per_s_per_watcher", writes / slowest},
                    {"commits_per_watcher", commits},
                    {"seconds_to_last_delivery", slowest}}
                   .dump()
            << std::endl;
  return 0;
}

double percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())));
  return values[index];
}

int latency(const Args& args) {
  const uint64_t writes = args.writes ? args.writes : 20000;
  LocalHost host;
  // The host's own record of when each commit was published.
  std::mutex mutex;
  std::map<uint64_t, Clock::time_point> published;
  auto feed = host.db.change_source()->feed;
  auto subscription = ChangeFeed::subscribe(feed, [&, feed] {
    auto now = Clock::now();
    uint64_t seq = feed->last_seq();
    std::lock_guard<std::mutex> lock(mutex);
    published.emplace(seq, now);
  });
  std::vector<double> micros;
  micros.reserve(writes);
  RemoteGuest watcher(host.address, false);
  auto watch = watcher.guest.watch(WatchOptions{}, [&](std::optional<Error> error, const Commit& commit) {
    auto now = Clock::now();
    if (error) return;
    std::lock_guard<std::mutex> lock(mutex);
    auto found = published.find(commit.seq);
    if (found != published.end()) {
      micros.push_back(std::chrono::duration<double, std::micro>(now - found->second).count());
      published.erase(found);
    }
  });
  RemoteGuest writer(host.address, false);
  writer.guest.put("warm-up", "x");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  {
    std::lock_guard<std::mutex> lock(mutex);
    micros.clear();
  }
  for (uint64_t i = 0; i < writes; ++i) writer.guest.put(key_of(i), "value");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::lock_guard<std::mutex> lock(mutex);
  size_t samples = micros.size();
  std::cout << json{{"bench", "watch-latency"},
                    {"writes", writes},
                    {"samples", samples},
                    {"p50_us", percentile(micros, 0.50)},
                    {"p99_us", percentile(micros, 0.99)},
                    {"p999_us", percentile(micros, 0.999)},
                    {"max_us", micros.empty() ? 0.0 : micros.back()}}
                   .dump()
            << std::endl;
  return samples * 100 >= writes * 99 ? 0 : 1;
}

// Whether something accepts connections at `address` yet.
bool connect_probe(const std::string& address) {
  try {
    connect_to(address);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// The peak resident set of a process, from /proc (kB).
uint64_t peak_rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6));
  }
  return 0;
}

int memory(const Args& args) {
  if (args.many_level.empty()) usage("memory needs --many-level PATH");
  const size_t count = args.watchers > 1 ? args.watchers : 1000;
  const uint64_t writes = args.writes ? args.writes : 1000;
  TempDir dir;
  const std::string socket = "unix:" + dir.path + "/host.sock";
  pid_t host = fork();
  if (host == 0) {
    execl(args.many_level.c_str(), args.many_level.c_str(), "serve", "--db", (dir.path + "/db.sqlite").c_str(),
          "--listen", socket.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  struct Stop {
    pid_t pid;
    ~Stop() {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
  } stop{host};
  for (int i = 0; i < 500 && !connect_probe(socket); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const uint64_t before = peak_rss_kib(host);

  EventLoop loop;
  loop.start();
  std::vector<std::unique_ptr<Guest>> guests;
  std::vector<std::unique_ptr<Counter>> counters;
  std::vector<std::unique_ptr<Watch>> watches;
  for (size_t i = 0; i < count; ++i) {
    guests.push_back(std::make_unique<Guest>());
    loop.add_connection(connect_to(socket), guests.back()->connect());
    counters.push_back(std::make_unique<Counter>());
    watches.push_back(guests.back()->watch(WatchOptions{}, counters.back()->callback()));
  }
  // Every watch has started once a request behind it has been answered.
  for (auto& guest : guests) guest->get_many({});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const uint64_t idle = peak_rss_kib(host);
  Guest writer;
  loop.add_connection(connect_to(socket), writer.connect());
  const auto start = Clock::now();
  for (uint64_t i = 0; i < writes; ++i) writer.put_async(key_of(i), std::string(100, 'v'), raw_write, [](std::optional<Error>) {});
  for (auto& counter : counters) {
    if (!counter->wait_for(writes, std::chrono::seconds(300))) {
      std::cerr << "watch-bench: a watcher did not receive every write\n";
      return 1;
    }
  }
  const double seconds = seconds_since(start);
  const uint64_t after = peak_rss_kib(host);
  watches.clear();
  loop.stop();
  std::cout << json{{"bench", "watch-memory"},
                    {"watchers", count},
                    {"writes", writes},
                    {"host_peak_rss_kib_before", before},
                    {"host_peak_rss_kib_idle_watchers", idle},
                    {"host_peak_rss_kib_after_writes", after},
                    {"seconds_to_deliver_all", seconds},
                    {"deliveries_per_s", static_cast<double>(writes * count) / seconds}}
                   .dump()
            << std::endl;
  return 0;
}

// ---- cuts: exactly once, in order, through repeated connection drops ------

struct Written {
  std::mutex mutex;
  std::set<std::string> values;  // every value a put wrote, acknowledged
};

// A writer's mixed workload: puts (70%), dels (15%) and 5-operation batches (15%).
void write_mixed(Guest& guest, int writer, uint64_t count, Written& written) {
  std::mt19937_64 random(static_cast<uint64_t>(writer) * 7919 + 17);
  std::vector<std::string> values;
  uint64_t counter = 0;
  auto next_value = [&] {
    char value[40];
    std::snprintf(value, sizeof value, "w%d:%09llu", writer, static_cast<unsigned long long>(counter++));
    values.emplace_back(value);
    return values.back();
  };
  std::vector<std::future<void>> window;
  for (uint64_t i = 0; i < count; ++i) {
    const int roll = static_cast<int>(random() % 100);
    const std::string key = key_of(random() % 20000);
    if (roll < 70) {
      window.push_back(guest.put_async(key, next_value(), raw_write));
    } else if (roll < 85) {
      window.push_back(guest.del_async(key, raw_write));
    } else {
      std::vector<BatchOperation> ops;
      for (int j = 0; j < 5; ++j) {
        if (j == 2) {
          ops.push_back(BatchOperation::del(key_of(random() % 20000)));
        } else {
          ops.push_back(BatchOperation::put(key_of(random() % 20000), next_value()));
        }
      }
      window.push_back(guest.batch_async(ops, raw_write));
    }
    if (window.size() >= 64) {
      for (auto& f : window) f.get();
      window.clear();
    }
  }
  for (auto& f : window) f.get();
  std::lock_guard<std::mutex> lock(written.mutex);
  written.values.insert(values.begin(), values.end());
}

int cuts(const Args& args) {
  const uint64_t writes = args.writes ? args.writes : 200000;
  // A history far larger than the run: this proves exactly-once across cuts,
  // not the (separately tested) too-old path.
  ChangeHistoryOptions history;
  history.max_commits = 4 * writes;
  history.max_bytes = size_t{1} << 30;
  LocalHost host(history);

  struct Seen {
    std::mutex mutex;
    std::vector<uint64_t> seqs;
    std::vector<BatchOperation> operations;
    std::optional<Error> error;
  } seen;
  RemoteGuest watcher(host.address, /*retry=*/true);
  auto watch = watcher.guest.watch(WatchOptions{}, [&](std::optional<Error> error, const Commit& commit) {
    std::lock_guard<std::mutex> lock(seen.mutex);
    if (error) {
      seen.error = error;
      return;
    }
    seen.seqs.push_back(commit.seq);
    seen.operations.insert(seen.operations.end(), commit.operations.begin(), commit.operations.end());
  });
  watcher.guest.get_many({});  // the watch has started once this is answered
  const uint64_t first_seq = host.db.change_source()->feed->last_seq();

  std::atomic<bool> writing{true};
  std::atomic<uint64_t> cuts_made{0};
  std::thread cutter([&] {
    std::mt19937 random(42);
    std::uniform_int_distribution<int> pause(args.cut_min_ms, args.cut_max_ms);
    while (writing.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pause(random)));
      if (watcher.guest.drop_connection()) cuts_made.fetch_add(1);
    }
  });

  Written written;
  const auto start = Clock::now();
  std::vector<std::unique_ptr<RemoteGuest>> writers;
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    writers.push_back(std::make_unique<RemoteGuest>(host.address, false));
    threads.emplace_back([&, w] { write_mixed(writers[w]->guest, w, writes / 4, written); });
  }
  for (auto& thread : threads) thread.join();
  const double write_seconds = seconds_since(start);
  const uint64_t last_seq = host.db.change_source()->feed->last_seq();
  // Keep cutting while the watcher catches up, then let it finish.
  const auto deadline = Clock::now() + std::chrono::seconds(300);
  auto caught_up = [&] {
    std::lock_guard<std::mutex> lock(seen.mutex);
    return seen.error || (!seen.seqs.empty() && seen.seqs.back() >= last_seq);
  };
  while (!caught_up() && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  writing = false;
  cutter.join();
  const double total_seconds = seconds_since(start);

  std::lock_guard<std::mutex> lock(seen.mutex);
  std::vector<std::string> failures;
  if (seen.error) failures.push_back("the watch failed: " + std::string(seen.error->what()));
  // 1. every commit after the start exactly once, in order (all are in range)
  for (size_t i = 0; i < seen.seqs.size(); ++i) {
    if (seen.seqs[i] != first_seq + 1 + i) {
      failures.push_back("commit " + std::to_string(i) + " has seq " + std::to_string(seen.seqs[i]) +
                         ", expected " + std::to_string(first_seq + 1 + i));
      break;
    }
  }
  if (seen.seqs.empty() || seen.seqs.back() != last_seq) failures.push_back("the last commits never arrived");
  // 2. every value written exactly once; 3. each writer's values in its order
  std::map<std::string, int> counts;
  std::map<char, std::string> last_of_writer;
  for (const auto& op : seen.operations) {
    if (op.type != BatchOperation::Type::put) continue;
    if (++counts[op.value] == 2) failures.push_back("value " + op.value + " delivered twice");
    auto& last = last_of_writer[op.value[1]];
    if (op.value <= last) failures.push_back("writer values out of order: " + last + " then " + op.value);
    last = op.value;
  }
  for (const auto& value : written.values) {
    if (!counts.count(value)) {
      failures.push_back("value " + value + " never delivered");
      break;
    }
  }
  if (counts.size() != written.values.size()) failures.push_back("delivered values that were never written");
  // 4. the replayed stream is the database's final content
  std::map<std::string, std::string> replay;
  for (const auto& op : seen.operations) {
    if (op.type == BatchOperation::Type::put) {
      replay[op.key] = op.value;
    } else {
      replay.erase(op.key);
    }
  }
  std::map<std::string, std::string> actual;
  auto iterator = host.db.iterator(IteratorOptions{});
  for (auto& entry : iterator->all()) actual[entry.key] = entry.value;
  if (replay != actual) failures.push_back("the replayed stream differs from the database's content");

  std::cout << json{{"bench", "watch-cuts"},
                    {"writes", writes},
                    {"commits", last_seq - first_seq},
                    {"operations_delivered", seen.operations.size()},
                    {"cuts", cuts_made.load()},
                    {"reconnects", watcher.guest.stats().connects},
                    {"write_seconds", write_seconds},
                    {"total_seconds", total_seconds},
                    {"failures", failures.size()}}
                   .dump()
            << std::endl;
  for (size_t i = 0; i < failures.size() && i < 20; ++i) std::cerr << "watch-bench: " << failures[i] << "\n";
  if (cuts_made.load() < 10) {
    std::cerr << "watch-bench: only " << cuts_made.load() << " cuts were made: the run proves too little\n";
    return 1;
  }
  std::cout << (failures.empty() ? "1 passed, 0 failed" : "0 passed, 1 failed") << std::endl;
  return failures.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Args args = parse(argc, argv);
  try {
    if (args.mode == "throughput") return throughput(args);
    if (args.mode == "latency") return latency(args);
    if (args.mode == "memory") return memory(args);
    if (args.mode == "cuts") return cuts(args);
  } catch (const std::exception& e) {
    std::cerr << "watch-bench: " << e.what() << "\n";
    return 1;
  }
  usage("unknown mode " + args.mode);
}

// The C++ Guest's extension (docs/PROTOCOL.md, "The extension") against a
// real host over a socket. Against the Node reference host (many-level 2.0.0,
// node-host.js) the guest must see, from the host's first reply, that there is
// no extension, without delaying anything or waiting for a timeout: has and
// has_many fall back to GetMany and are right, snapshot(), watch() and
// host_stats() fail with LEVEL_NOT_SUPPORTED and never hang (the probe), and
// every ordinary operation works as before. With --cpp-host, against
// `many-level serve`, the same guest finds the extension and uses it over TCP.
//
//   cpp_guest_extension_interop --connect tcp://127.0.0.1:PORT|unix:PATH
//                               [--cpp-host] [--deadline SECONDS] [--gtest_filter=...]
//
// Suites (each test uses a key prefix of its own):
//   NodeHost    (skipped with --cpp-host) negotiation ends "unavailable" at
//               the first reply; the first request is answered at once;
//               has/has_many through GetMany; extension calls fail, as the
//               first call of a stream (settled by the probe) and after; a
//               retrying guest negotiates each new stream again.
//   CppHost     (only with --cpp-host) negotiation ends "available"; has moves
//               no values; a snapshot isolates reads; a watch sees commits;
//               host_stats() reports this connection.
//   Operations  both hosts: every ordinary operation gives the same results
//               with the extension on and off, as a local MemoryDatabase does.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <many_level.hpp>

namespace {

using namespace many_level;
using namespace std::chrono_literals;
namespace proto = many_level::protocol;

struct Config {
  std::string address;
  bool cpp_host = false;
  int deadline_seconds = 170;
};
Config config;

const ReadOptions kRawRead{"buffer", "buffer"};
const WriteOptions kRawWrite{"buffer", "buffer"};
// Anything slower than this is a wait, not a round trip on loopback.
constexpr auto kPromptly = 3s;

template <typename F>
std::string error_code(F&& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.code();
  } catch (const std::exception& e) {
    return std::string("not a many_level::Error: ") + e.what();
  }
  return "no error";
}

template <typename T>
std::string future_error(std::future<T>& future) {
  if (future.wait_for(10s) != std::future_status::ready) return "still pending after 10 s";
  return error_code([&] { future.get(); });
}

// A guest on its own connection to the host, recording the names of the
// frames it sends. Closed, with its connection, on destruction.
class Link {
 public:
  explicit Link(GuestOptions options = {}) : guest(std::move(options)) {
    guest.set_frame_observer([this](FrameDirection direction, std::string_view payload) {
      if (direction != FrameDirection::out || payload.empty()) return;
      std::lock_guard<std::mutex> lock(mutex_);
      sent_tags_.push_back(static_cast<uint8_t>(payload[0]));
    });
    attach();
  }
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;
  ~Link() {
    connection.close();
    guest.close();
  }

  void attach() {
    auto session = guest.connect();
    try {
      connection = connect_fd(config.address, *session);
    } catch (...) {
      session->end();
      throw;
    }
  }
  void cut() { connection.close(); }

  size_t sent(proto::GuestTag tag) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<size_t>(std::count(sent_tags_.begin(), sent_tags_.end(), static_cast<uint8_t>(tag)));
  }
  size_t sent_total() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return sent_tags_.size();
  }

  Guest guest;
  FdConnection connection;

 private:
  mutable std::mutex mutex_;
  std::vector<uint8_t> sent_tags_;
};

GuestOptions with(bool extension, bool retry = false) {
  GuestOptions options;
  options.extension = extension;
  options.retry = retry;
  return options;
}

// Collects a watch's calls.
class WatchLog {
 public:
  WatchCallback callback() {
    return [this](std::optional<Error> error, const Commit& commit) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error) {
        errors_.push_back(*error);
      } else {
        commits_.push_back(commit);
      }
      changed_.notify_all();
    };
  }
  std::string wait_for_error() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!changed_.wait_for(lock, 10s, [&] { return !errors_.empty(); })) return "no error after 10 s";
    return errors_.front().code();
  }
  bool wait_for_commits(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return commits_.size() >= count; });
  }
  std::vector<Commit> commits() {
    std::lock_guard<std::mutex> lock(mutex_);
    return commits_;
  }
  size_t errors() {
    std::lock_guard<std::mutex> lock(mutex_);
    return errors_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Commit> commits_;
  std::vector<Error> errors_;
};

// A key prefix of the test's own, cleared first.
class InteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix = std::string("ext.") + info->test_suite_name() + "." + info->name() + ":";
    Link cleaner(with(false));
    ClearOptions clear;
    clear.gte = prefix;
    clear.lt = prefix + "\xff";
    cleaner.guest.clear(clear);
  }
  std::string k(std::string_view suffix) const { return prefix + std::string(suffix); }

  std::string prefix;
};

class NodeHost : public InteropTest {
 protected:
  void SetUp() override {
    if (config.cpp_host) GTEST_SKIP() << "against `many-level serve` (--cpp-host)";
    InteropTest::SetUp();
  }
};

class CppHost : public InteropTest {
 protected:
  void SetUp() override {
    if (!config.cpp_host) GTEST_SKIP() << "needs --cpp-host";
    InteropTest::SetUp();
  }
};

using Operations = InteropTest;

// =============================================================================
// The Node reference host
// =============================================================================

// Hello is ignored; the first reply (to a request sent at once, behind the
// Hello) settles the stream as base. No timeout is involved: the request is
// answered in a round trip.
TEST_F(NodeHost, TheFirstReplySettlesTheStreamAsBase) {
  Link link;
  EXPECT_EQ(link.guest.host_extension(), HostExtension::unknown);
  const auto start = std::chrono::steady_clock::now();
  link.guest.put(k("a"), "1");
  EXPECT_LT(std::chrono::steady_clock::now() - start, kPromptly);
  EXPECT_EQ(link.guest.host_extension(), HostExtension::unavailable);
  EXPECT_TRUE(link.guest.host_features().empty());
  EXPECT_EQ(link.guest.stats().extension, HostExtension::unavailable);
  EXPECT_EQ(link.guest.get(k("a")), "1");
  EXPECT_EQ(link.sent(proto::GuestTag::hello), 1u);
  EXPECT_EQ(link.sent_total(), 3u);  // hello, put, get: nothing else
}

// The Hello costs the first request nothing measurable: a fresh guest's first
// round trips take as long with the extension as without.
TEST_F(NodeHost, TheFirstRequestIsNotDelayed) {
  std::chrono::microseconds with_extension{0};
  std::chrono::microseconds without{0};
  for (int round = 0; round < 20; ++round) {
    for (bool extension : {true, false}) {
      Link link(with(extension));
      const auto start = std::chrono::steady_clock::now();
      EXPECT_EQ(link.guest.try_get(k("missing")), std::nullopt);
      const auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start);
      (extension ? with_extension : without) += elapsed;
    }
  }
  std::cout << "first get of a fresh guest, mean of 20: " << with_extension.count() / 20 << " us with the extension, "
            << without.count() / 20 << " us without" << std::endl;
  // Generous: loopback noise, not a waited-for answer, is what may differ.
  EXPECT_LT(with_extension, without * 3 + 20ms);
}

TEST_F(NodeHost, HasAndHasManyFallBackToGetMany) {
  Link link;
  const std::string binary("\0\xff\x80", 3);
  link.guest.batch({BatchOperation::put(k("a"), "1"), BatchOperation::put(k("empty"), ""),
                    BatchOperation::put(k(binary), std::string("\0", 1))},
                   kRawWrite);
  EXPECT_TRUE(link.guest.has(k("a")));
  EXPECT_FALSE(link.guest.has(k("b")));
  EXPECT_TRUE(link.guest.has(k("empty")));
  EXPECT_EQ(link.guest.has_many({k("b"), k(binary), k("a"), k("empty"), k("")}, kRawRead),
            (std::vector<bool>{false, true, true, true, false}));
  EXPECT_EQ(link.guest.has_many({}), std::vector<bool>{});
  // Through encodings and a sublevel.
  GuestOptions hex;
  hex.encodings = DatabaseOptions{"hex", "json"};
  Link encoded(hex);
  const std::string key = "6578742e6b6579";  // "ext.key"
  encoded.guest.put(key, "[1]");
  EXPECT_TRUE(encoded.guest.has(key));
  EXPECT_FALSE(encoded.guest.has("6578742e6e6f6e65"));
  auto sub = link.guest.sublevel("ext_has_sub");
  sub->put("x", "y");
  EXPECT_TRUE(sub->has("x"));
  EXPECT_EQ(sub->has_many({"y", "x"}), (std::vector<bool>{false, true}));
  EXPECT_EQ(link.sent(proto::GuestTag::has), 0u);
  EXPECT_EQ(link.sent(proto::GuestTag::get_many), 7u);  // one a call, no probe
}

// An extension call as the very first request of a stream is sent, with the
// probe behind it; the probe's answer settles the stream and the call fails
// with LEVEL_NOT_SUPPORTED. It never hangs, and the host is none the worse.
TEST_F(NodeHost, ExtensionCallsAsTheFirstRequestFailAndNeverHang) {
  {
    Link link;
    std::string message;
    try {
      link.guest.snapshot();
      ADD_FAILURE() << "snapshot() succeeded";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), codes::not_supported);
      message = e.message();
    }
    EXPECT_EQ(message, "the host has no extension (a Node many-level host?)");
    EXPECT_EQ(link.sent(proto::GuestTag::get_many), 1u);  // the probe
    link.guest.put(k("a"), "1");
    EXPECT_EQ(link.guest.get(k("a")), "1");
  }
  {
    Link link;
    WatchLog watched;
    auto watch = link.guest.watch({}, watched.callback());
    EXPECT_EQ(watched.wait_for_error(), codes::not_supported);
    EXPECT_TRUE(watched.commits().empty());
    link.guest.put(k("b"), "2");
    EXPECT_EQ(watched.errors(), 1u);
    watch->close();
  }
  {
    Link link;
    auto stats = link.guest.host_stats_async();
    EXPECT_EQ(future_error(stats), codes::not_supported);
    EXPECT_TRUE(link.guest.is_flushed());  // the probe's reply completed nothing
    EXPECT_TRUE(link.guest.stats().pending.empty());
  }
}

// Once settled, they fail at once and send nothing.
TEST_F(NodeHost, ExtensionCallsOnASettledStreamFailAtOnce) {
  Link link;
  link.guest.put(k("a"), "1");
  const size_t sent = link.sent_total();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(error_code([&] { link.guest.snapshot(); }), codes::not_supported);
  WatchLog watched;
  EXPECT_EQ(error_code([&] { link.guest.watch({}, watched.callback()); }), codes::not_supported);
  EXPECT_EQ(error_code([&] { link.guest.host_stats(); }), codes::not_supported);
  auto stats = link.guest.host_stats_async();
  EXPECT_EQ(future_error(stats), codes::not_supported);
  EXPECT_LT(std::chrono::steady_clock::now() - start, kPromptly);
  EXPECT_EQ(link.sent_total(), sent);
  EXPECT_EQ(link.guest.get(k("a")), "1");
}

// A retrying guest negotiates every stream again: after a cut, the new
// stream starts unknown, says Hello, and ends base at its first reply.
TEST_F(NodeHost, EachStreamOfARetryingGuestIsNegotiated) {
  Link link(with(true, true));
  link.guest.put(k("a"), "1");
  EXPECT_EQ(link.guest.host_extension(), HostExtension::unavailable);
  for (int cut = 0; cut < 5; ++cut) {
    link.cut();
    auto pending = link.guest.get_async(k("a"));
    link.attach();
    EXPECT_EQ(pending.get(), "1");
    EXPECT_EQ(link.guest.host_extension(), HostExtension::unavailable);
    WatchLog watched;
    EXPECT_EQ(error_code([&] { link.guest.watch({}, watched.callback()); }), codes::not_supported);
    EXPECT_TRUE(link.guest.has(k("a")));
  }
  EXPECT_EQ(link.sent(proto::GuestTag::hello), 6u);
}

// =============================================================================
// `many-level serve` (--cpp-host)
// =============================================================================

TEST_F(CppHost, TheExtensionOverASocket) {
  Link link;
  link.guest.put(k("a"), "1");
  ASSERT_EQ(link.guest.host_extension(), HostExtension::available);
  auto features = link.guest.host_features();
  for (const char* feature : {"has", "snapshots", "watch", "stats"}) {
    EXPECT_NE(std::find(features.begin(), features.end(), feature), features.end()) << feature;
  }

  EXPECT_EQ(link.guest.has_many({k("a"), k("b")}), (std::vector<bool>{true, false}));
  EXPECT_EQ(link.sent(proto::GuestTag::has), 1u);

  WatchLog watched;
  WatchOptions range;
  range.gte = prefix;
  range.lt = prefix + "\xff";
  auto watch = link.guest.watch(range, watched.callback());
  auto snapshot = link.guest.snapshot();
  Link other;
  other.guest.put(k("a"), "2");
  other.guest.del(k("a"));
  ReadOptions at;
  at.snapshot = snapshot;
  EXPECT_EQ(link.guest.get(k("a"), at), "1");
  EXPECT_EQ(link.guest.try_get(k("a")), std::nullopt);
  ASSERT_TRUE(watched.wait_for_commits(2));
  auto commits = watched.commits();
  EXPECT_EQ(commits[0].operations, (std::vector<BatchOperation>{BatchOperation::put(k("a"), "2")}));
  EXPECT_EQ(commits[1].operations, (std::vector<BatchOperation>{BatchOperation::del(k("a"))}));
  EXPECT_EQ(watch->seq(), commits[1].seq);

  auto stats = link.guest.host_stats();
  EXPECT_GE(stats.connections.size(), 2u);
  EXPECT_EQ(stats.seq, commits[1].seq);
  EXPECT_FALSE(stats.version.empty());
  snapshot->close();
  watch->close();
}

// =============================================================================
// Ordinary operations, extension on and off
// =============================================================================

// Every ordinary operation, on a guest with the extension and on one
// without: both give what a local MemoryDatabase gives.
TEST_F(Operations, TheSameWithAndWithoutTheExtension) {
  for (bool extension : {true, false}) {
    SCOPED_TRACE(extension ? "extension on" : "extension off");
    Link link(with(extension));
    Guest& db = link.guest;
    MemoryDatabase model;
    const std::string p = k(extension ? "on:" : "off:");
    for (Database* target : {static_cast<Database*>(&db), static_cast<Database*>(&model)}) {
      target->put(p + "a", "1");
      target->put(p + "b", "2");
      target->batch({BatchOperation::put(p + "c", "3"), BatchOperation::del(p + "b"), BatchOperation::put(p + "d", "")});
      target->batch().put(p + "e", "5").del(p + "a").write();
      target->del(p + "missing");
      ClearOptions clear;
      clear.gte = p + "e";
      clear.lt = p + "f";
      target->clear(clear);
      target->put(p + "f", "6");
    }
    IteratorOptions range;
    range.gte = p;
    range.lt = p + "\xff";
    EXPECT_EQ(db.iterator(range)->all(), model.iterator(range)->all());
    range.reverse = true;
    range.limit = 2;
    EXPECT_EQ(db.iterator(range)->all(), model.iterator(range)->all());
    const std::vector<std::string> keys{p + "a", p + "c", p + "d", p + "f", p + "zz"};
    EXPECT_EQ(db.get_many(keys), model.get_many(keys));
    EXPECT_EQ(db.has_many(keys), model.has_many(keys));
    EXPECT_EQ(db.get(p + "c"), "3");
    EXPECT_EQ(error_code([&] { db.get(p + "a"); }), codes::not_found);
    auto iterator = db.iterator();
    iterator->seek(p + "d");
    EXPECT_EQ(iterator->next(), (Entry{p + "d", ""}));
    EXPECT_EQ(db.get_async(p + "f").get(), "6");
    EXPECT_EQ(db.host_extension(), config.cpp_host && extension ? HostExtension::available
                                                                 : HostExtension::unavailable);
    EXPECT_EQ(link.sent(proto::GuestTag::hello), extension ? 1u : 0u);
  }
}

// ---- main -----------------------------------------------------------------------

class CurrentTest : public ::testing::EmptyTestEventListener {
 public:
  static std::string name() {
    std::lock_guard<std::mutex> lock(mutex());
    return current();
  }

 private:
  void OnTestStart(const ::testing::TestInfo& info) override {
    std::lock_guard<std::mutex> lock(mutex());
    current() = std::string(info.test_suite_name()) + "." + info.name();
  }
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::string& current() {
    static std::string s = "(before the first test)";
    return s;
  }
};

int usage(const std::string& why) {
  std::cerr << "cpp_guest_extension_interop: " << why
            << "\nusage: cpp_guest_extension_interop --connect tcp://127.0.0.1:PORT|unix:PATH [--cpp-host]"
               " [--deadline SECONDS] [gtest options]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  try {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--connect") {
        config.address = value();
      } else if (arg == "--cpp-host") {
        config.cpp_host = true;
      } else if (arg == "--deadline") {
        config.deadline_seconds = std::stoi(value());
      } else {
        return usage("unknown argument " + arg);
      }
    }
    if (config.address.empty()) return usage("--connect is required");
    (void)parse_address(config.address);
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  ::testing::UnitTest::GetInstance()->listeners().Append(new CurrentTest);
  // A hang must fail here, naming the test, before CTest's timeout kills us.
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::seconds(config.deadline_seconds));
    std::cerr << "cpp_guest_extension_interop: FAIL: deadline of " << config.deadline_seconds << " s passed during "
              << CurrentTest::name() << std::endl;
    std::_Exit(124);
  }).detach();
  std::cout << "cpp_guest_extension_interop: host at " << config.address
            << (config.cpp_host ? " (many-level serve)" : " (Node reference)") << std::endl;
  return RUN_ALL_TESTS();
}

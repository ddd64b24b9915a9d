// The callback form of the guest's async calls: each reports its error or
// its result exactly once, on the stream's thread; a callback may start the
// next call (how a pipelining caller keeps requests in flight without a
// thread woken per reply); close() reports LEVEL_DATABASE_NOT_OPEN.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "guest_harness.hpp"

namespace guest_tests {
namespace {

class Callbacks : public GuestTest {};

// Collects what callbacks report; wait() until `count` have.
class Reports {
 public:
  void add(std::string what) {
    std::lock_guard<std::mutex> lock(mutex_);
    reports_.push_back(std::move(what));
    threads_.push_back(std::this_thread::get_id());
    changed_.notify_all();
  }
  std::vector<std::string> wait(size_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, kTimeout, [&] { return reports_.size() >= count; });
    return reports_;
  }
  std::vector<std::thread::id> threads() {
    std::lock_guard<std::mutex> lock(mutex_);
    return threads_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> reports_;
  std::vector<std::thread::id> threads_;
};

std::string describe(const std::optional<Error>& error) { return error ? error->code() : "ok"; }

TEST_F(Callbacks, EveryCallReportsItsErrorOrResultOnce) {
  Remote remote;
  remote.db.put("there", "already");
  Guest guest;
  Link link(guest, remote.host);
  Reports reports;
  guest.put_async("k", "v", {}, [&](std::optional<Error> error) { reports.add("put " + describe(error)); });
  guest.get_async("there", {}, [&](std::optional<Error> error, Guest::Value value) {
    reports.add("get " + describe(error) + " " + value.value_or("-"));
  });
  guest.get_async("missing", {}, [&](std::optional<Error> error, Guest::Value value) {
    reports.add("missing " + describe(error) + " " + value.value_or("-"));
  });
  guest.get_many_async({"there", "k", "none"}, {}, [&](std::optional<Error> error, Guest::Values values) {
    std::string seen;
    for (const auto& value : values) seen += " " + value.value_or("-");
    reports.add("many " + describe(error) + seen);
  });
  guest.batch_async({BatchOperation::put("b", "1"), BatchOperation::del("k")}, {},
                    [&](std::optional<Error> error) { reports.add("batch " + describe(error)); });
  guest.del_async("b", {}, [&](std::optional<Error> error) { reports.add("del " + describe(error)); });
  ClearOptions range;
  range.gte = "t";
  guest.clear_async(range, [&](std::optional<Error> error) { reports.add("clear " + describe(error)); });
  // Encodings apply as for the future form.
  guest.put_async("6869", "6f6b", WriteOptions{"hex", "hex"},
                  [&](std::optional<Error> error) { reports.add("hex " + describe(error)); });

  // Requests of one stream are answered in order.
  EXPECT_EQ(reports.wait(8), (std::vector<std::string>{"put ok", "get ok already",
                                                        "missing " + std::string(codes::not_found) + " -",
                                                        "many ok already v -", "batch ok", "del ok", "clear ok",
                                                        "hex ok"}));
  EXPECT_EQ(remote.db.get("hi"), "ok");
  // All of them ran on the stream's thread, none on the caller's.
  for (auto id : reports.threads()) EXPECT_NE(id, std::this_thread::get_id());
}

TEST_F(Callbacks, AnEncodingErrorThrowsAtTheCallAndNoCallbackRuns) {
  Remote remote;
  Guest guest;
  Link link(guest, remote.host);
  std::atomic<int> called{0};
  EXPECT_EQ(error_code([&] {
              guest.put_async("k", "zz", WriteOptions{"utf8", "hex"}, [&](std::optional<Error>) { ++called; });
            }),
            codes::invalid_value);
  guest.put("after", "1");  // a round trip: any stray callback would have run by now
  EXPECT_EQ(called.load(), 0);
}

// The pipelining pattern of `many-level bench` (W2): each completion starts
// the next request, up to a window in flight, and the caller waits once.
TEST_F(Callbacks, ACallbackMayStartTheNextCall) {
  Remote remote;
  Guest guest;
  Link link(guest, remote.host, PumpOptions{5, 3});
  constexpr int count = 2000;
  constexpr int window = 64;
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::mutex mutex;
  std::condition_variable finished;
  int completed = 0;
  std::function<void()> launch = [&] {
    int i = next.fetch_add(1);
    if (i >= count) return;
    guest.put_async("k" + std::to_string(100000 + i), std::to_string(i), {}, [&](std::optional<Error> error) {
      if (error) ++failures;
      launch();
      std::lock_guard<std::mutex> lock(mutex);
      if (++completed == count) finished.notify_all();
    });
  };
  for (int k = 0; k < window; ++k) launch();
  {
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(finished.wait_for(lock, kTimeout, [&] { return completed == count; }));
  }
  EXPECT_EQ(failures.load(), 0);
  auto stored = contents(remote.db);
  ASSERT_EQ(stored.size(), static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) EXPECT_EQ(stored[i], (Entry{"k" + std::to_string(100000 + i), std::to_string(i)}));
}

// close() reports LEVEL_DATABASE_NOT_OPEN to what still waits; a call made
// after it throws that at once, as the future form does, and never calls back.
TEST_F(Callbacks, CloseAbortsWaitingCallsAndLaterCallsThrow) {
  Guest guest;
  Reports reports;
  guest.put_async("pending", "v", {}, [&](std::optional<Error> error) { reports.add("pending " + describe(error)); });
  guest.close();  // no stream was ever attached: the put still waits
  EXPECT_EQ(reports.wait(1), (std::vector<std::string>{"pending " + std::string(codes::database_not_open)}));
  EXPECT_EQ(error_code([&] {
              guest.get_async("k", {}, [&](std::optional<Error>, Guest::Value) { reports.add("after"); });
            }),
            codes::database_not_open);
  EXPECT_EQ(reports.wait(1).size(), 1u);  // the throwing call registered nothing
}

}  // namespace
}  // namespace guest_tests

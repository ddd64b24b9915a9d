// Exactly-once iteration across reconnects (retry = true): the stream is cut
// and replaced while an iterator is read, every few hundred entries, at random
// moments from another thread, and right after a seek. Every entry must
// arrive exactly once and in order: what a local iterator yields.
#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include "guest_harness.hpp"

namespace guest_tests {
namespace {

namespace proto = many_level::protocol;

// A retrying guest linked to a host over 20k binary keys; the host's output
// is kept small, so an iterator's data comes in many frames.
class Resume : public GuestTest {
 protected:
  static HostOptions host_options() {
    HostOptions options;
    options.output_high_water = 4096;
    return options;
  }
  static GuestOptions retry() {
    GuestOptions options;
    options.retry = true;
    return options;
  }

  void SetUp() override {
    data = binary_entries(20000);
    fill(remote.db, data);
    fill(local, data);
    reconnect();
  }

  void TearDown() override {
    std::lock_guard<std::mutex> lock(link_mutex);
    link.reset();
  }

  // Cuts the current stream (if any) and attaches a new one.
  void reconnect() {
    std::lock_guard<std::mutex> lock(link_mutex);
    link.reset();
    link = std::make_unique<Link>(guest, remote.host, PumpOptions{chunk, ++seed});
    ++reconnects;
  }

  // Reads `options` on the guest with reconnects every `every` entries (by
  // next() or by nextv of random sizes) and compares with the local store.
  void read_with_cuts(const IteratorOptions& options, size_t every, bool by_nextv) {
    SCOPED_TRACE(describe(options) + (by_nextv ? " nextv" : " next") + " every " + std::to_string(every));
    auto expected = local.iterator(options)->all();
    auto iterator = guest.iterator(options);
    std::mt19937 random(static_cast<uint32_t>(every));
    std::vector<Entry> got;
    size_t since_cut = 0;
    int cuts = 0;
    for (;;) {
      std::vector<Entry> chunk;
      if (by_nextv) {
        chunk = iterator->nextv(1 + random() % 64);
      } else if (auto entry = iterator->next()) {
        chunk.push_back(std::move(*entry));
      }
      if (chunk.empty()) break;
      since_cut += chunk.size();
      for (auto& entry : chunk) got.push_back(std::move(entry));
      if (since_cut >= every) {
        reconnect();
        ++cuts;
        since_cut = 0;
      }
    }
    expect_same(got, expected);
    EXPECT_GE(cuts, static_cast<int>(expected.size() / (every + 64)));
    EXPECT_EQ(iterator->next(), std::nullopt);
  }

  static void expect_same(const std::vector<Entry>& got, const std::vector<Entry>& expected) {
    ASSERT_EQ(got.size(), expected.size());
    auto mismatch = std::mismatch(got.begin(), got.end(), expected.begin());
    ASSERT_TRUE(mismatch.first == got.end())
        << "entry " << (mismatch.first - got.begin()) << " differs: got " << ::testing::PrintToString(*mismatch.first)
        << ", expected " << ::testing::PrintToString(*mismatch.second);
  }

  Remote remote{host_options()};
  MemoryDatabase local;
  Guest guest{retry()};
  std::mutex link_mutex;
  std::unique_ptr<Link> link;
  std::vector<Entry> data;
  size_t chunk = 0;
  uint32_t seed = 0;
  std::atomic<int> reconnects{0};
};

TEST_F(Resume, ForwardAndReverse) {
  read_with_cuts(range({}, {}, {}, {}), 300, false);
  read_with_cuts(range({}, {}, {}, {}, -1, true), 250, true);
}

TEST_F(Resume, WithALimit) {
  read_with_cuts(range({}, {}, {}, {}, 7777), 333, true);
  read_with_cuts(range({}, {}, {}, {}, 5001, true), 400, false);
  read_with_cuts(range({}, {}, {}, {}, 300), 300, false);  // cut exactly at the limit
}

TEST_F(Resume, KeysOnlyAndValuesOnly) {
  auto keys_only = range({}, {}, {}, {});
  keys_only.values = false;
  read_with_cuts(keys_only, 500, true);
  auto values_only = range({}, {}, {}, {}, -1, true);
  values_only.keys = false;
  read_with_cuts(values_only, 350, true);
  EXPECT_EQ(guest.values(values_only).all(), local.values(values_only).all());
}

TEST_F(Resume, WithARange) {
  read_with_cuts(range({}, std::string("\x30", 1), std::string("\xd0\x00", 2), {}), 200, true);
  read_with_cuts(range(std::string("\x10\xff", 2), {}, {}, std::string("\xa0", 1), 4000, true), 300, false);
}

TEST_F(Resume, ChunkedStreams) {
  chunk = 5;  // frames split anywhere, and cuts land in the middle of frames
  reconnect();
  read_with_cuts(range({}, {}, {}, {}, 3000), 150, true);
  read_with_cuts(range({}, {}, {}, {}, 3000, true), 150, true);
}

// A thread that cuts and replaces the stream when asked, but at a moment of
// its own: after a random number of yields, or once the consumer has drained
// what arrived (so it is blocked waiting for more). The consumer asks and
// reads on; it only waits for the previous cut before asking again.
class Cutter {
 public:
  Cutter(Guest& guest, std::function<void()> reconnect, uint32_t seed)
      : guest_(guest), reconnect_(std::move(reconnect)), random_(seed), thread_([this] { run(); }) {}

  ~Cutter() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }

  // Asks for a cut; first waits (bounded) until the previous one happened.
  void request() {
    std::unique_lock<std::mutex> lock(mutex_);
    consumer_waiting_ = true;
    bool served = changed_.wait_for(lock, kTimeout, [&] { return !requested_; });
    consumer_waiting_ = false;
    ASSERT_TRUE(served);
    requested_ = true;
    changed_.notify_all();
  }

  int cuts() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cuts_;
  }

 private:
  void run() {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return requested_ || done_; });
        if (done_) return;
      }
      if (random_() % 3 == 0) {
        eventually([&] {
          auto stats = guest_.stats();
          return stats.iterators.empty() || stats.iterators.front().buffered_entries == 0 || stopping() ||
                 consumer_waiting();
        });
      }
      // A few microseconds of busy work at most (not yields: under load each
      // yield can give the core away for a whole time slice).
      for (volatile uint32_t spin = random_() % 20000; spin > 0; spin = spin - 1) {
      }
      reconnect_();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        requested_ = false;
        ++cuts_;
      }
      changed_.notify_all();
    }
  }

  bool stopping() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return done_;
  }

  bool consumer_waiting() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return consumer_waiting_;
  }

  Guest& guest_;
  std::function<void()> reconnect_;
  std::mt19937 random_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool requested_ = false;
  bool consumer_waiting_ = false;
  bool done_ = false;
  int cuts_ = 0;
  std::thread thread_;
};

TEST_F(Resume, CutsAtRandomMomentsFromAnotherThread) {
  for (bool reverse : {false, true}) {
    SCOPED_TRACE(reverse ? "reverse" : "forward");
    IteratorOptions options;
    options.reverse = reverse;
    auto expected = local.iterator(options)->all();
    auto iterator = guest.iterator(options);
    Cutter cutter(guest, [this] { reconnect(); }, reverse ? 11 : 12);
    std::mt19937 random(5);
    std::vector<Entry> got;
    size_t next_cut = 100;
    for (;;) {
      auto chunk = iterator->nextv(1 + random() % 64);
      if (chunk.empty()) break;
      for (auto& entry : chunk) got.push_back(std::move(entry));
      if (got.size() >= next_cut) {
        ASSERT_NO_FATAL_FAILURE(cutter.request());
        next_cut = got.size() + 50 + random() % 300;
      }
    }
    expect_same(got, expected);
    EXPECT_GT(cutter.cuts(), 10);
  }
}

TEST_F(Resume, CutsAtRandomMomentsWhileSeeking) {
  // The consumer mirrors a local iterator, seeking now and then, while
  // another thread cuts: every result must match, whatever the timing.
  std::mt19937 random(77);
  IteratorOptions options;
  options.limit = 15000;
  auto theirs = guest.iterator(options);
  auto ours = local.iterator(options);
  Cutter cutter(guest, [this] { reconnect(); }, 13);
  for (int step = 0; step < 4000; ++step) {
    switch (random() % 12) {
      case 0: {
        const std::string& target = data[random() % data.size()].key;
        theirs->seek(target);
        ours->seek(target);
        break;
      }
      case 1:
      case 2:
        ASSERT_NO_FATAL_FAILURE(cutter.request());
        break;
      default: {
        size_t size = 1 + random() % 40;
        ASSERT_EQ(theirs->nextv(size), ours->nextv(size)) << "step " << step;
      }
    }
  }
  EXPECT_GT(cutter.cuts(), 100);
}

// Records every Iterator request the guest sends.
class RequestLog {
 public:
  explicit RequestLog(Guest& guest) {
    guest.set_frame_observer([this](FrameDirection direction, std::string_view payload) {
      if (direction != FrameDirection::out) return;
      proto::GuestMessage message;
      if (proto::decode_payload(payload, message) != proto::DecodeStatus::ok) return;
      if (auto* request = std::get_if<proto::IteratorRequest>(&message)) {
        std::lock_guard<std::mutex> lock(mutex_);
        requests_.push_back(*request);
      }
    });
  }
  std::vector<proto::IteratorRequest> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<proto::IteratorRequest> requests_;
};

TEST_F(Resume, CutRightAfterASeek) {
  RequestLog log(guest);
  for (bool reverse : {false, true}) {
    for (size_t consumed_after_seek : {0, 1, 40}) {
      SCOPED_TRACE(std::string(reverse ? "reverse" : "forward") + ", consumed after seek " +
                   std::to_string(consumed_after_seek));
      IteratorOptions options;
      options.reverse = reverse;
      auto theirs = guest.iterator(options);
      auto ours = local.iterator(options);
      for (int i = 0; i < 120; ++i) ASSERT_EQ(theirs->next(), ours->next());
      const std::string target = data[reverse ? 3000 : 17000].key;
      theirs->seek(target);
      ours->seek(target);
      for (size_t i = 0; i < consumed_after_seek; ++i) ASSERT_EQ(theirs->next(), ours->next());
      size_t sent_before = log.requests().size();
      reconnect();
      ASSERT_TRUE(eventually([&] { return log.requests().size() > sent_before; }));
      auto resent = log.requests().back();
      EXPECT_EQ(resent.consumed, 120 + consumed_after_seek);
      if (consumed_after_seek == 0) {
        // Not consumed yet: the seek itself travels again, not a bookmark.
        EXPECT_EQ(resent.seek, target);
        EXPECT_EQ(resent.bookmark, std::nullopt);
      } else {
        EXPECT_EQ(resent.seek, std::nullopt);
        ASSERT_TRUE(resent.bookmark.has_value());
      }
      expect_same(theirs->all(), ours->all());
    }
  }
}

TEST_F(Resume, SeekBackAfterAResume) {
  // After a reconnect the host reads from the bookmark on; a seek to a key
  // before the bookmark must still find it.
  for (bool reverse : {false, true}) {
    SCOPED_TRACE(reverse ? "reverse" : "forward");
    IteratorOptions options;
    options.reverse = reverse;
    auto theirs = guest.iterator(options);
    auto ours = local.iterator(options);
    for (int i = 0; i < 5000; ++i) ASSERT_EQ(theirs->next(), ours->next());
    reconnect();
    for (int i = 0; i < 10; ++i) ASSERT_EQ(theirs->next(), ours->next());
    const std::string target = local.iterator(options)->nextv(100).back().key;  // well behind the bookmark
    theirs->seek(target);
    ours->seek(target);
    ASSERT_EQ(theirs->nextv(1), ours->nextv(1));
    reconnect();
    expect_same(theirs->all(), ours->all());
  }
}

TEST_F(Resume, ReverseResumeDoesNotSkipKeys) {
  // PROTOCOL.md's weak spot: keys aa, aa5, ab, b; a reverse scan cut after
  // ab must go on with aa5 (the reference resumes at aa and skips it).
  Remote small;
  Guest retrying(retry());
  RequestLog log(retrying);
  auto small_link = std::make_unique<Link>(retrying, small.host);
  for (const char* key : {"aa", "aa5", "ab", "b"}) small.db.put(key, std::string("v") + key);
  for (int64_t limit : {-1, 3}) {
    IteratorOptions options;
    options.reverse = true;
    options.limit = limit;
    auto iterator = retrying.iterator(options);
    EXPECT_EQ(iterator->next(), (Entry{"b", "vb"}));
    EXPECT_EQ(iterator->next(), (Entry{"ab", "vab"}));
    small_link.reset();
    small_link = std::make_unique<Link>(retrying, small.host);
    EXPECT_EQ(iterator->next(), (Entry{"aa5", "vaa5"}));
    if (limit < 0) {
      EXPECT_EQ(iterator->next(), (Entry{"aa", "vaa"}));
    }
    EXPECT_EQ(iterator->next(), std::nullopt);
    auto requests = log.requests();
    ASSERT_GE(requests.size(), 2u);
    EXPECT_EQ(requests.back().bookmark, "ab");
    EXPECT_EQ(requests.back().consumed, 2u);
  }
}

TEST_F(Resume, UnconsumedDataIsNotYieldedTwice) {
  // Everything arrived but was not consumed when the stream dies: the host
  // sends it again from the bookmark, and the guest must not keep both copies.
  Remote small;
  Guest retrying(retry());
  auto small_link = std::make_unique<Link>(retrying, small.host);
  for (int i = 0; i < 50; ++i) small.db.put("k" + std::to_string(100 + i), "v");
  auto iterator = retrying.iterator();
  ASSERT_TRUE(iterator->next().has_value());  // the first frame; the ack brings the rest
  ASSERT_TRUE(eventually([&] {
    auto stats = retrying.stats();
    return !stats.iterators.empty() && stats.iterators.front().ended;
  }));
  small_link.reset();
  small_link = std::make_unique<Link>(retrying, small.host);
  auto rest = iterator->all();
  ASSERT_EQ(rest.size(), 49u);
  EXPECT_EQ(rest.front().key, "k101");
  EXPECT_EQ(rest.back().key, "k149");
}

}  // namespace
}  // namespace guest_tests

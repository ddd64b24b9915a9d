// A guest shared by many threads, several guests sharing one host, a host
// whose database is itself a guest (a relay), the guest's frame limit and its
// frame observer.
#include <atomic>
#include <thread>

#include "guest_harness.hpp"

namespace guest_tests {
namespace {

namespace proto = many_level::protocol;

class Sharing : public GuestTest {};

TEST_F(Sharing, ManyThreadsOneGuest) {
  Remote remote;
  Guest guest;
  Link link(guest, remote.host, PumpOptions{13, 9});
  const int threads = 8;
  const int per_thread = 200;
  std::vector<std::thread> workers;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const std::string prefix = "t" + std::to_string(t) + "-";
      for (int i = 0; i < per_thread; ++i) {
        std::string key = prefix + std::to_string(1000 + i);
        guest.put(key, std::to_string(i));
        if (guest.get(key) != std::to_string(i)) ++failures;
        if (i % 50 == 49) {
          // This thread's keys so far, exactly, whatever the others write.
          IteratorOptions options;
          options.gte = prefix;
          options.lt = prefix + "\xff";
          if (guest.iterator(options)->all().size() != static_cast<size_t>(i + 1)) ++failures;
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(contents(remote.db).size(), static_cast<size_t>(threads * per_thread));
  EXPECT_TRUE(eventually([&] { return guest.is_flushed(); }));
}

TEST_F(Sharing, GuestsOfOneHostSeeEachOthersWrites) {
  Remote remote;
  Guest a;
  Guest b;
  Link link_a(a, remote.host);
  Link link_b(b, remote.host, PumpOptions{3, 4});
  a.put("from-a", "1");
  EXPECT_EQ(b.get("from-a"), "1");
  b.batch({BatchOperation::put("from-b", "2"), BatchOperation::del("from-a")});
  EXPECT_EQ(a.try_get("from-a"), std::nullopt);
  EXPECT_EQ(a.iterator()->all(), (std::vector<Entry>{{"from-b", "2"}}));
  EXPECT_EQ(remote.host.sessions().size(), 2u);
}

TEST_F(Sharing, ARelayIsAHostOverAGuest) {
  // guest -> relay host -> relay guest -> host -> MemoryDatabase, compared
  // with a local MemoryDatabase. The relay's guest retries, so the relayed
  // iterators also survive its upstream stream being cut.
  Remote origin;
  GuestOptions retry;
  retry.retry = true;
  Guest upstream(retry);
  auto upstream_link = std::make_unique<Link>(upstream, origin.host);
  Host relay(upstream, HostOptions{}, 4);
  Guest guest;
  Link link(guest, relay, PumpOptions{5, 6});
  MemoryDatabase local;

  auto data = binary_entries(3000);
  fill(guest, data);
  fill(local, data);
  EXPECT_EQ(contents(origin.db), contents(local));
  EXPECT_EQ(guest.get(data[17].key), data[17].value);
  EXPECT_EQ(guest.get_many({data[1].key, "nope"}), local.get_many({data[1].key, "nope"}));

  for (bool reverse : {false, true}) {
    IteratorOptions options;
    options.reverse = reverse;
    options.limit = 2500;
    auto theirs = guest.iterator(options);
    auto ours = local.iterator(options);
    for (int round = 0; round < 12; ++round) {
      auto got = theirs->nextv(100);
      ASSERT_FALSE(got.empty());
      ASSERT_EQ(got, ours->nextv(got.size()));
      if (round % 4 == 3) {
        upstream_link.reset();
        upstream_link = std::make_unique<Link>(upstream, origin.host);
      }
      if (round == 6) {
        theirs->seek(data[round].key);
        ours->seek(data[round].key);
      }
    }
    ASSERT_EQ(theirs->all(), ours->all());
  }
  ClearOptions clear;
  clear.limit = 100;
  clear.reverse = true;
  guest.clear(clear);
  local.clear(clear);
  EXPECT_EQ(contents(origin.db), contents(local));
}

TEST_F(Sharing, AReplyOverTheFrameLimitDropsTheStream) {
  Remote remote;
  remote.db.put("big", std::string(5000, 'x'));
  remote.db.put("small", "s");
  GuestOptions options;
  options.max_frame_length = 1024;
  Guest guest(options);
  auto link = std::make_unique<Link>(guest, remote.host);
  EXPECT_EQ(guest.get("small"), "s");
  EXPECT_EQ(error_code([&] { guest.get("big"); }), codes::connection_lost);
  ASSERT_TRUE(link->pump().wait_ended(kTimeout));
  EXPECT_NE(link->pump().reason().find("guest failed"), std::string::npos) << link->pump().reason();
  link.reset();
  link = std::make_unique<Link>(guest, remote.host);
  EXPECT_EQ(guest.get("small"), "s");
}

// Without the extension, the frames are the reference guest's, one for one.
TEST_F(Sharing, FrameObserverSeesEveryPayload) {
  Remote remote;
  GuestOptions options;
  options.extension = false;
  Guest guest(options);
  std::mutex mutex;
  std::vector<std::pair<FrameDirection, std::string>> frames;
  guest.set_frame_observer([&](FrameDirection direction, std::string_view payload) {
    std::lock_guard<std::mutex> lock(mutex);
    frames.emplace_back(direction, std::string(payload));
  });
  Link link(guest, remote.host, PumpOptions{2, 8});
  guest.put("k", "v");
  EXPECT_EQ(guest.get("k"), "v");
  // The observer runs with the guest's lock held: never hold its lock while
  // calling into the guest.
  auto stats = guest.stats();
  EXPECT_EQ(stats.frames_in, 2u);
  EXPECT_EQ(stats.frames_out, 2u);
  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0].first, FrameDirection::out);
  EXPECT_EQ(frames[0].second[0], 1);  // tag: put
  EXPECT_EQ(frames[1].first, FrameDirection::in);
  EXPECT_EQ(frames[1].second[0], 0);  // tag: callback
  proto::GuestMessage get;
  ASSERT_EQ(proto::decode_payload(frames[2].second, get), proto::DecodeStatus::ok);
  ASSERT_TRUE(std::holds_alternative<proto::GetRequest>(get));
  EXPECT_EQ(std::get<proto::GetRequest>(get).key, "k");
  proto::HostMessage reply;
  ASSERT_EQ(proto::decode_payload(frames[3].second, reply), proto::DecodeStatus::ok);
  ASSERT_TRUE(std::holds_alternative<proto::Callback>(reply));
  EXPECT_EQ(std::get<proto::Callback>(reply).value, "v");
}

}  // namespace
}  // namespace guest_tests

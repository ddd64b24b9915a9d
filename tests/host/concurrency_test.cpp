// One guest's slow store call must not stall the others (each connection has
// its own queue; iterators read on their own jobs), and many guests working at
// once, on threads of their own, leave exactly the data they wrote.
#include <thread>

#include "host_harness.hpp"

using namespace host_test;

TEST(HostConcurrency, ABlockedIteratorDoesNotStallAnotherSessionsGets) {
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  auto slow = rig.guest();
  auto fast = rig.guest();
  rig.db.nextv_gate.close();
  slow->send(iterator_request(1));
  ASSERT_TRUE(rig.db.nextv_gate.wait_for_waiting(1));
  for (uint32_t id = 1; id <= 20; ++id) fast->send(proto::GetRequest{id, "c"});
  fast->send(proto::PutRequest{21, "f", std::string("6")});
  fast->send(proto::GetManyRequest{22, {"a", "f"}});
  for (uint32_t id = 1; id <= 20; ++id) EXPECT_EQ(fast->callback(id).value, std::optional<std::string>("3"));
  EXPECT_FALSE(fast->callback(21).error);
  EXPECT_EQ(fast->get_many_callback(22).values, (std::vector<std::optional<std::string>>{"1", "6"}));
  EXPECT_EQ(rig.db.nextv_gate.waiting(), 1u) << "the slow iterator is still held";
  rig.db.nextv_gate.open();
  fast->send(iterator_request(22, iter_options(true, false)));  // iterators pass the same gate
  EXPECT_EQ(drain_iterator(*fast, 22, 0, 0, 1).items, (std::vector<std::string>{"a", "b", "c", "d", "e", "f"}));
  auto drained = drain_iterator(*slow, 1);
  EXPECT_EQ(evens(drained.items), (std::vector<std::string>{"a", "b", "c", "d", "e"})) << "a snapshot from before the put";
}

TEST(HostConcurrency, ABlockedIteratorDoesNotStallRequestsBehindItOnItsOwnSession) {
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  rig.db.nextv_gate.close();
  guest->send(iterator_request(1));
  ASSERT_TRUE(rig.db.nextv_gate.wait_for_waiting(1));
  guest->send(proto::GetRequest{2, "a"});
  guest->send(proto::PutRequest{3, "z", std::string("26")});
  guest->send(proto::GetManyRequest{4, {"z"}});
  EXPECT_EQ(guest->callback(2).value, std::optional<std::string>("1"));
  EXPECT_FALSE(guest->callback(3).error);
  EXPECT_EQ(guest->get_many_callback(4).values, (std::vector<std::optional<std::string>>{"26"}));
  EXPECT_EQ(rig.db.nextv_gate.waiting(), 1u);
  rig.db.nextv_gate.open();
  EXPECT_TRUE(drain_iterator(*guest, 1).ended);
}

TEST(HostConcurrency, ABlockedClearDoesNotStallAnotherSession) {
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  auto clearing = rig.guest();
  auto other = rig.guest();
  rig.db.clear_gate.close();
  clearing->send(proto::ClearRequest{1, proto::ClearOptions{}});
  ASSERT_TRUE(rig.db.clear_gate.wait_for_waiting(1));
  clearing->send(proto::GetRequest{2, "a"});  // queued behind the clear, on its connection

  other->send(proto::GetRequest{1, "a"});
  other->send(proto::PutRequest{2, "x", std::string("y")});
  other->send(proto::GetManyRequest{3, {"b", "x"}});
  other->send(iterator_request(4, iter_options(true, false)));
  EXPECT_EQ(other->callback(1).value, std::optional<std::string>("1"));
  EXPECT_FALSE(other->callback(2).error);
  EXPECT_EQ(other->get_many_callback(3).values, (std::vector<std::optional<std::string>>{"2", "y"}));
  EXPECT_EQ(drain_iterator(*other, 4, 0, 0, 1).items.size(), 6u);

  clearing->poll();
  EXPECT_EQ(clearing->count(), 0u) << "requests behind the clear wait for it: arrival order";
  EXPECT_EQ(rig.db.clear_gate.waiting(), 1u);
  rig.db.clear_gate.open();
  EXPECT_FALSE(clearing->callback(1).error);
  EXPECT_EQ(clearing->callback(2).error, std::optional<std::string>("LEVEL_NOT_FOUND"));
}

TEST(HostConcurrency, ManySessionsOnManyThreads) {
  Rig<> rig(HostOptions{}, 4);
  constexpr int kThreads = 8;
  constexpr uint32_t kKeys = 150;
  std::vector<std::unique_ptr<FakeGuest>> guests;
  for (int t = 0; t < kThreads; ++t) guests.push_back(rig.guest());
  auto key = [](int t, uint32_t i) { return "t" + std::to_string(t) + "/" + big_key(i); };

  std::vector<std::thread> threads;
  std::vector<std::string> failures(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      FakeGuest& guest = *guests[t];
      uint32_t id = 0;
      std::string burst;
      // Pipelined: put each key twice, delete every third, read each back.
      for (uint32_t i = 0; i < kKeys; ++i) {
        burst += FakeGuest::frame(proto::PutRequest{++id, key(t, i), std::string("first")});
        burst += FakeGuest::frame(proto::PutRequest{++id, key(t, i), std::to_string(i)});
        if (i % 3 == 0) burst += FakeGuest::frame(proto::DelRequest{++id, key(t, i)});
        burst += FakeGuest::frame(proto::GetRequest{++id, key(t, i)});
        if (burst.size() > 4096) {
          guest.feed(burst);
          burst.clear();
        }
      }
      burst += FakeGuest::frame(proto::BatchRequest{++id, {proto::BatchOp{proto::BatchOp::Type::put, key(t, kKeys), "end"}}});
      guest.feed(burst);
      const uint32_t last = id;
      if (!guest.wait_until([&] { return guest.count() >= last; }, std::chrono::milliseconds(20000))) {
        failures[t] = "only " + std::to_string(guest.count()) + " of " + std::to_string(last) + " answers";
        return;
      }
      // Every get saw this guest's own latest write to its key.
      id = 0;
      for (uint32_t i = 0; i < kKeys; ++i) {
        id += 2;
        if (i % 3 == 0) ++id;
        const auto* get = guest.find<proto::Callback>(++id);
        if (!get) {
          failures[t] = "no answer to get " + std::to_string(id);
          return;
        }
        bool deleted = i % 3 == 0;
        if (deleted ? get->error != std::optional<std::string>("LEVEL_NOT_FOUND")
                    : get->value != std::optional<std::string>(std::to_string(i))) {
          failures[t] = "get of " + key(t, i) + " saw " + describe(proto::HostMessage(*get));
          return;
        }
      }
      for (const auto& callback : guest.all_of<proto::Callback>()) {
        if (callback.error && callback.error != std::optional<std::string>("LEVEL_NOT_FOUND")) {
          failures[t] = "request " + std::to_string(callback.id) + " failed: " + *callback.error;
          return;
        }
      }
      // Then an iterator over this thread's keys.
      auto options = iter_options(true, false);
      options.gte = "t" + std::to_string(t) + "/";
      options.lt = "t" + std::to_string(t) + "0";
      guest.send(iterator_request(++id, options));
      const size_t start = guest.count();
      auto drained = drain_iterator(guest, id, 0, 0, 1, start);
      size_t expected = kKeys - (kKeys + 2) / 3 + 1;
      if (drained.items.size() != expected) {
        failures[t] = "iterator saw " + std::to_string(drained.items.size()) + " keys, not " + std::to_string(expected);
      }
      guest.send(proto::IteratorClose{id});
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], "") << "thread " << t;

  auto data = dump(rig.db);
  std::map<std::string, std::string> expected;
  for (int t = 0; t < kThreads; ++t) {
    for (uint32_t i = 0; i < kKeys; ++i) {
      if (i % 3 != 0) expected[key(t, i)] = std::to_string(i);
    }
    expected[key(t, kKeys)] = "end";
  }
  EXPECT_EQ(data, expected);
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  for (auto& guest : guests) EXPECT_TRUE(guest->session().failed().empty());
}

TEST(HostConcurrency, SessionsEndingWhileBusyLeaveTheHostUsable) {
  Rig<> rig;
  seed_big(rig.db, 3000, 20);
  for (int round = 0; round < 10; ++round) {
    std::vector<std::unique_ptr<FakeGuest>> guests;
    for (int g = 0; g < 4; ++g) {
      auto guest = rig.guest();
      std::string burst;
      for (uint32_t id = 1; id <= 3; ++id) burst += FakeGuest::frame(iterator_request(id));
      for (uint32_t id = 1; id <= 3; ++id) burst += FakeGuest::frame(proto::IteratorAck{id, 0, 1});
      for (uint32_t id = 4; id <= 50; ++id) burst += FakeGuest::frame(proto::PutRequest{id, big_key(id), "v"});
      guest->feed(burst);
      guests.push_back(std::move(guest));
    }
    for (auto& guest : guests) guest->session().end();  // mid-flight
  }
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  auto guest = rig.guest();
  guest->send(proto::GetRequest{1, big_key(1)});
  EXPECT_FALSE(guest->callback(1).error);
}

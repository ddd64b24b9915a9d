// Closing releases: IteratorClose closes the store iterator, a session that
// ends releases all of its iterators, also while a store call is in flight,
// and a host that goes away ends its sessions.
#include "host_harness.hpp"

using namespace host_test;

TEST(HostRelease, IteratorCloseClosesTheStoreIterator) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(iterator_request(1));
  ASSERT_TRUE(guest->wait_for_count(1));
  EXPECT_EQ(rig.db.open_iterator_count(), 1u);
  guest->send(proto::IteratorClose{1});
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  EXPECT_TRUE(guest->session().stats().iterators.empty());
  // Acks, seeks and closes for it are now ignored.
  guest->send(proto::IteratorAck{1, 0, 1});
  guest->send(proto::IteratorSeek{1, 1, "a"});
  guest->send(proto::IteratorClose{1});
  guest->send(proto::GetRequest{2, "b"});
  EXPECT_EQ(guest->callback(2).value, std::optional<std::string>("2"));
  EXPECT_EQ(guest->count(), 2u) << guest->transcript();
  EXPECT_EQ(rig.db.open_iterator_count(), 0u);
}

TEST(HostRelease, ClosingAnUnknownIteratorIsHarmless) {
  Rig<> rig;
  auto guest = rig.guest();
  guest->send(proto::IteratorClose{42});
  guest->send(proto::PutRequest{1, "k", std::string("v")});
  EXPECT_FALSE(guest->callback(1).error);
  EXPECT_TRUE(guest->session().failed().empty());
}

TEST(HostRelease, SessionEndReleasesEveryIterator) {
  Rig<> rig;
  seed_big(rig.db, 2000, 10);
  auto guest = rig.guest();
  for (uint32_t id = 1; id <= 3; ++id) guest->send(iterator_request(id));
  ASSERT_TRUE(guest->wait_for_count(3));
  guest->send(proto::IteratorAck{2, 0, 1});  // one of them reading ahead
  ASSERT_TRUE(guest->wait_for_count(4));
  EXPECT_EQ(rig.db.open_iterator_count(), 3u);
  guest->session().end();
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  EXPECT_TRUE(guest->session().stats().iterators.empty());
  EXPECT_TRUE(guest->session().output().is_closed());
  // A session that ended takes no more input.
  const auto frames_in = guest->session().stats().frames_in;
  guest->send(proto::GetRequest{9, "k0000001"});
  EXPECT_EQ(guest->session().stats().frames_in, frames_in);
}

TEST(HostRelease, CloseWhileAReadIsInFlight) {
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(iterator_request(1));
  ASSERT_TRUE(guest->wait_for_count(1));
  rig.db.nextv_gate.close();
  guest->send(proto::IteratorAck{1, 0, 1});
  ASSERT_TRUE(rig.db.nextv_gate.wait_for_waiting(1));
  guest->send(proto::IteratorClose{1});
  EXPECT_TRUE(guest->session().stats().iterators.empty());
  EXPECT_EQ(rig.db.open_iterator_count(), 1u) << "held by the read in flight";
  rig.db.nextv_gate.open();
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  EXPECT_EQ(rig.db.iterators_created.load(), 1);
  EXPECT_EQ(rig.db.iterators_closed.load(), 1);
  guest->poll();
  EXPECT_EQ(guest->count(), 1u) << "the dropped read must not be sent" << guest->transcript();
}

TEST(HostRelease, CloseWhileASeekIsInFlight) {
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(iterator_request(1));
  ASSERT_TRUE(guest->wait_for_count(1));
  rig.db.nextv_gate.close();
  guest->send(proto::IteratorSeek{1, 1, "c"});  // seek, then its first read is held
  ASSERT_TRUE(rig.db.nextv_gate.wait_for_waiting(1));
  guest->send(proto::IteratorClose{1});
  rig.db.nextv_gate.open();
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  guest->poll();
  EXPECT_EQ(guest->count(), 1u) << guest->transcript();
}

TEST(HostRelease, CloseBeforeTheIteratorIsCreatedLeaksNothing) {
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  rig.db.clear_gate.close();  // hold the session's queue behind a clear
  proto::ClearRequest clear{1, proto::ClearOptions{}};
  clear.options->gte = "zz";  // clears nothing
  guest->send(clear);
  ASSERT_TRUE(rig.db.clear_gate.wait_for_waiting(1));
  guest->send(iterator_request(2));  // queued behind the clear
  guest->send(proto::IteratorClose{2});
  rig.db.clear_gate.open();
  EXPECT_FALSE(guest->callback(1).error);
  ASSERT_TRUE(eventually([&] { return guest->session().stats().pending_requests == 0; }));
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  EXPECT_EQ(rig.db.iterators_created.load(), rig.db.iterators_closed.load());
  guest->poll();
  EXPECT_EQ(guest->count(), 1u) << guest->transcript();
}

TEST(HostRelease, IteratorAndCloseInOneChunk) {
  for (int round = 0; round < 50; ++round) {
    Rig<> rig;
    seed(rig.db, abcde());
    auto guest = rig.guest();
    guest->feed(FakeGuest::frame(iterator_request(1)) + FakeGuest::frame(proto::IteratorClose{1}));
    ASSERT_TRUE(eventually([&] { return guest->session().stats().pending_requests == 0; }));
    ASSERT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; })) << "round " << round;
  }
}

TEST(HostRelease, EndWhileAReadIsInFlight) {
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(iterator_request(1));
  ASSERT_TRUE(guest->wait_for_count(1));
  rig.db.nextv_gate.close();
  guest->send(proto::IteratorAck{1, 0, 1});
  ASSERT_TRUE(rig.db.nextv_gate.wait_for_waiting(1));
  guest->session().end();
  rig.db.nextv_gate.open();
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  EXPECT_EQ(rig.db.iterators_created.load(), rig.db.iterators_closed.load());
}

TEST(HostRelease, EndDropsQueuedRequestsWithoutCreatingTheirIterators) {
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  rig.db.clear_gate.close();
  proto::ClearRequest clear{1, proto::ClearOptions{}};
  clear.options->gte = "zz";
  guest->send(clear);
  ASSERT_TRUE(rig.db.clear_gate.wait_for_waiting(1));
  for (uint32_t id = 2; id < 10; ++id) guest->send(iterator_request(id));
  guest->send(proto::PutRequest{10, "queued", std::string("x")});
  guest->session().end();
  rig.db.clear_gate.open();
  // The clear that was running completes; what was queued behind it does not run.
  EXPECT_TRUE(eventually([&] { return rig.db.clear_gate.waiting() == 0; }));
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  EXPECT_FALSE(rig.db.try_get("queued"));
}

TEST(HostRelease, AClosedIdCanBeReusedAndTheNewIteratorHasItsOwnOptions) {
  // Iterator 1, close 1, iterator 1 again, all queued behind a held clear so
  // the close is processed before either iterator request runs. The first
  // must never be created; the second must run with its own options.
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  rig.db.clear_gate.close();
  proto::ClearRequest clear{1, proto::ClearOptions{}};
  clear.options->gte = "zz";
  guest->send(clear);
  ASSERT_TRUE(rig.db.clear_gate.wait_for_waiting(1));
  auto reverse = iter_options(true, false);
  reverse.reverse = true;
  guest->feed(FakeGuest::frame(iterator_request(2, iter_options(true, false))) +
              FakeGuest::frame(proto::IteratorClose{2}) + FakeGuest::frame(iterator_request(2, reverse)));
  rig.db.clear_gate.open();
  auto drained = drain_iterator(*guest, 2, 0, 0, 1);
  EXPECT_TRUE(drained.ended);
  EXPECT_EQ(drained.items, (std::vector<std::string>{"e", "d", "c", "b", "a"})) << guest->transcript();
  ASSERT_TRUE(eventually([&] { return guest->session().stats().pending_requests == 0; }));
  EXPECT_EQ(rig.db.iterators_created.load(), 1) << "the closed iterator's request must not create one";
  guest->send(proto::IteratorClose{2});
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  EXPECT_EQ(rig.db.iterators_created.load(), rig.db.iterators_closed.load());
}

TEST(HostRelease, IdReusedAfterCloseInOneChunk) {
  // The same without holding the queue: the first iterator may or may not
  // have sent "a" before its close; after it, the second one's e..a.
  for (int round = 0; round < 20; ++round) {
    Rig<ControlledDatabase> rig;
    seed(rig.db, abcde());
    auto guest = rig.guest();
    auto reverse = iter_options(true, false);
    reverse.reverse = true;
    guest->feed(FakeGuest::frame(iterator_request(1, iter_options(true, false))) +
                FakeGuest::frame(proto::IteratorClose{1}) + FakeGuest::frame(iterator_request(1, reverse)));
    auto drained = drain_iterator(*guest, 1, 0, 0, 1);
    EXPECT_TRUE(drained.ended);
    std::vector<std::string> items = drained.items;
    if (items.size() == 6 && items.front() == "a") items.erase(items.begin());
    EXPECT_EQ(items, (std::vector<std::string>{"e", "d", "c", "b", "a"})) << "round " << round;
    guest->send(proto::IteratorClose{1});
    EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; })) << "round " << round;
    EXPECT_TRUE(eventually([&] { return rig.db.iterators_created.load() == rig.db.iterators_closed.load(); }));
  }
}

TEST(HostRelease, DestroyingTheHostEndsItsSessionsAndReleasesIterators) {
  MemoryDatabase db(DatabaseOptions{"buffer", "buffer"});
  seed(db, abcde());
  std::shared_ptr<HostSession> kept;
  {
    Host host(db, HostOptions{}, 2);
    auto guest = std::make_unique<FakeGuest>(host.create_session());
    guest->send(iterator_request(1));
    ASSERT_TRUE(guest->wait_for_count(1));
    EXPECT_EQ(host.sessions().size(), 1u);
    kept = guest->session_ptr();
    guest.reset();
  }
  EXPECT_TRUE(eventually([&] { return db.open_iterator_count() == 0; }));
  EXPECT_TRUE(kept->output().is_closed());
}

TEST(HostRelease, HostListsOnlyLiveSessions) {
  Rig<> rig;
  auto a = rig.host->create_session();
  {
    auto b = rig.host->create_session();
    EXPECT_EQ(rig.host->sessions().size(), 2u);
  }
  EXPECT_EQ(rig.host->sessions().size(), 1u);
  EXPECT_EQ(rig.host->sessions()[0], a);
}

// Host statistics: Host::stats() in process, and the same over the wire as
// the answer to HostStatsRequest: uptime, connections (each with its address
// and counters), the database and its commit sequence, the version.
#include "host_harness.hpp"

using namespace host_test;

namespace {

const HostConnectionStats* connection(const HostStats& stats, const std::string& address) {
  for (const auto& c : stats.connections) {
    if (c.address == address) return &c;
  }
  return nullptr;
}

proto::HostStatsReply ask_stats(FakeGuest& guest, uint32_t id) {
  guest.send(proto::HostStatsRequest{id});
  auto* reply = guest.wait_for_message<proto::HostStatsReply>(id);
  if (!reply) {
    ADD_FAILURE() << "no HostStatsReply; received:" << guest.transcript();
    return {};
  }
  return *reply;
}

}  // namespace

TEST(HostStats, ConnectionsWithTheirCountersAndTheDatabase) {
  Rig<> rig;
  seed_big(rig.db, 100, 10);
  auto watcher = rig.guest("tcp://10.0.0.1:4000");
  auto plain = rig.guest("unix:/tmp/db.sock");
  say_hello(*watcher);
  watcher->send(watch_request(1));
  ASSERT_NE(watcher->wait_for_message<proto::WatchStarted>(1), nullptr);
  watcher->send(proto::SnapshotRequest{2, 1});
  watcher->send(proto::SnapshotRequest{3, 2});
  EXPECT_FALSE(watcher->callback(3).error);
  watcher->send(iterator_request(4));  // stays open: the first frame is never acked
  ASSERT_TRUE(idle_with(watcher->session(), 4, 1));
  plain->send(proto::PutRequest{1, "x", std::string("y")});
  plain->send(proto::GetRequest{2, "x"});
  EXPECT_EQ(plain->callback(2).value, std::optional<std::string>("y"));

  auto reply = ask_stats(*watcher, 5);
  EXPECT_FALSE(reply.error);
  ASSERT_TRUE(reply.stats);
  const HostStats& stats = *reply.stats;
  EXPECT_EQ(stats.connections_total, 2u);
  ASSERT_EQ(stats.connections.size(), 2u);
  EXPECT_EQ(stats.database_kind, "memory");
  EXPECT_EQ(stats.database_path, "");
  EXPECT_GE(stats.database_bytes, 100u * (8 + 10));
  EXPECT_EQ(stats.seq, last_seq(rig.db));
  EXPECT_EQ(stats.seq, 2u) << "the seed, then the put";
  EXPECT_EQ(stats.version, MANY_LEVEL_VERSION_STRING);

  auto* w = connection(stats, "tcp://10.0.0.1:4000");
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->extended);
  EXPECT_EQ(w->watches, 1u);
  EXPECT_EQ(w->snapshots, 2u);
  EXPECT_EQ(w->iterators, 1u);
  EXPECT_EQ(w->requests, 5u) << "watch, two snapshots, the iterator, this request";
  EXPECT_EQ(w->frames_in, 6u) << "and the Hello";
  EXPECT_EQ(w->bytes_in, watcher->session().stats().bytes_in);
  EXPECT_GT(w->bytes_out, 0u);
  EXPECT_GE(w->frames_out, 5u);

  auto* p = connection(stats, "unix:/tmp/db.sock");
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->extended);
  EXPECT_EQ(p->requests, 2u);
  EXPECT_EQ(p->frames_in, 2u);
  EXPECT_EQ(p->frames_out, 2u);
  EXPECT_EQ(p->bytes_out, plain->bytes_received()) << "every byte it was sent";
  EXPECT_EQ(p->iterators + p->watches + p->snapshots + p->pending, 0u);
  EXPECT_LT(w->id, p->id);
  EXPECT_LE(w->since_ms, p->since_ms);
  auto now_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  EXPECT_LE(p->since_ms, now_ms);
  EXPECT_GT(p->since_ms, now_ms - 60000);

  // In process, the same (but for what changed since).
  auto local = rig.host->stats();
  EXPECT_EQ(local.connections_total, 2u);
  ASSERT_EQ(local.connections.size(), 2u);
  EXPECT_EQ(local.connections[1].address, "unix:/tmp/db.sock");
  EXPECT_EQ(local.connections[1].bytes_out, plain->bytes_received());
  EXPECT_GE(local.uptime_ms, stats.uptime_ms);

  // A connection that ended is no longer listed; the total keeps it.
  plain->session().end();
  auto later = ask_stats(*watcher, 6);
  ASSERT_TRUE(later.stats);
  EXPECT_EQ(later.stats->connections_total, 2u);
  ASSERT_EQ(later.stats->connections.size(), 1u);
  EXPECT_EQ(later.stats->connections[0].address, "tcp://10.0.0.1:4000");
}

TEST(HostStats, BytesOutCountEveryFrameSent) {
  Rig<> rig;
  seed_big(rig.db, 500, 100);
  auto guest = rig.guest();
  say_hello(*guest);
  guest->send(proto::GetManyRequest{1, {big_key(1), big_key(2)}});
  guest->send(proto::HasRequest{2, {big_key(1)}, std::nullopt});
  guest->send(iterator_request(3));
  auto drained = drain_iterator(*guest, 3);
  EXPECT_TRUE(drained.ended);
  guest->get_many_callback(1);
  guest->wait_for_message<proto::HasCallback>(2);
  auto stats = guest->session().stats();
  EXPECT_EQ(stats.bytes_out, guest->bytes_received());
  EXPECT_EQ(stats.frames_out, guest->count());
}

TEST(HostStats, AStoreWithoutAFeedReportsSeqZero) {
  Rig<ControlledDatabase> rig;
  auto guest = rig.guest();
  say_hello(*guest);
  auto reply = ask_stats(*guest, 1);
  ASSERT_TRUE(reply.stats);
  EXPECT_EQ(reply.stats->seq, 0u);
  EXPECT_EQ(reply.stats->connections.size(), 1u);
  EXPECT_EQ(reply.stats->connections[0].address, "");
}

// The extension over a SqliteDatabase, whose snapshots are read transactions
// and whose feed is published by its group commit: the same bytes as over
// the MemoryDatabase.
#ifndef MANY_LEVEL_NO_SQLITE

#include "../sqlite/temp_dir.hpp"
#include "host_harness.hpp"
#include "many_level/sqlite_database.hpp"

using namespace host_test;

namespace {

struct SqliteRig {
  TempDir dir;
  SqliteDatabase db;
  Host host;

  SqliteRig() : db(dir.file("db.sqlite"), raw_options()), host(db) {}

  static SqliteOptions raw_options() {
    SqliteOptions options;
    options.key_encoding = "buffer";
    options.value_encoding = "buffer";
    return options;
  }

  std::unique_ptr<FakeGuest> guest(std::string address = {}) {
    return std::make_unique<FakeGuest>(host.create_session(std::move(address)));
  }
};

}  // namespace

TEST(HostSqlite, HasAndSnapshotsReadAtAReadTransaction) {
  SqliteRig rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  auto writer = rig.guest();
  auto reply = say_hello(*guest);
  EXPECT_NE(std::find(reply.features.begin(), reply.features.end(), "snapshots"), reply.features.end());
  std::string chunk = FakeGuest::frame(proto::PutRequest{1, "a", std::string("A")});
  chunk += FakeGuest::frame(proto::SnapshotRequest{2, 1});
  chunk += FakeGuest::frame(proto::DelRequest{3, "b"});
  guest->feed(chunk);
  EXPECT_FALSE(guest->callback(2).error);
  EXPECT_FALSE(guest->callback(3).error);
  writer->send(proto::PutRequest{1, "c", std::string("C")});
  EXPECT_FALSE(writer->callback(1).error);
  rig.db.put("f", "F", kRawWrite);

  guest->send(proto::GetRequest{4, "a", 1});
  guest->send(proto::GetManyRequest{5, {"a", "b", "c", "f"}, 1});
  guest->send(proto::HasRequest{6, {"b", "f"}, 1});
  guest->send(proto::HasRequest{7, {"b", "f"}, std::nullopt});
  auto iterator = iterator_request(8);
  iterator.snapshot = 1;
  guest->send(iterator);
  EXPECT_EQ(guest->callback(4).value, std::optional<std::string>("A"));
  EXPECT_EQ(guest->get_many_callback(5).values,
            (std::vector<std::optional<std::string>>{"A", "2", "3", std::nullopt}));
  // Copies: a later wait may move what arrived.
  ASSERT_NE(guest->wait_for_message<proto::HasCallback>(6), nullptr);
  auto at_snapshot = *guest->wait_for_message<proto::HasCallback>(6);
  ASSERT_NE(guest->wait_for_message<proto::HasCallback>(7), nullptr);
  auto now = *guest->wait_for_message<proto::HasCallback>(7);
  EXPECT_EQ(at_snapshot.found, std::string("\1\0", 2));
  EXPECT_EQ(now.found, std::string("\0\1", 2));
  EXPECT_EQ(evens(drain_iterator(*guest, 8).items), (std::vector<std::string>{"a", "b", "c", "d", "e"}));

  guest->send(proto::SnapshotRelease{1});
  guest->send(proto::GetRequest{9, "a", 1});
  EXPECT_EQ(guest->callback(9).error, std::optional<std::string>("LEVEL_SNAPSHOT_NOT_OPEN"));

  guest->send(proto::HostStatsRequest{10});
  auto* stats = guest->wait_for_message<proto::HostStatsReply>(10);
  ASSERT_TRUE(stats && stats->stats);
  EXPECT_EQ(stats->stats->database_kind, "sqlite");
  EXPECT_EQ(stats->stats->database_path, rig.dir.file("db.sqlite"));
  EXPECT_GT(stats->stats->database_bytes, 0u);
  EXPECT_EQ(stats->stats->seq, last_seq(rig.db));
}

TEST(HostSqlite, AWatchSeesEveryCommitAndResumesExactly) {
  SqliteRig rig;
  auto guest = rig.guest();
  auto writer = rig.guest();
  say_hello(*guest);
  guest->send(watch_request(1, watch_range("a", "m")));
  auto* started = guest->wait_for_message<proto::WatchStarted>(1);
  ASSERT_NE(started, nullptr);
  uint64_t start = started->seq;
  writer->send(proto::PutRequest{1, "b", std::string("1")});
  EXPECT_FALSE(writer->callback(1).error);
  rig.db.put("z", "out of range", kRawWrite);
  rig.db.batch({BatchOperation::put("c", "2"), BatchOperation::put("x", "3")}, kRawWrite);
  writer->send(proto::DelRequest{2, "b"});
  EXPECT_FALSE(writer->callback(2).error);
  ClearOptions clear;
  clear.key_encoding = "buffer";
  rig.db.clear(clear);
  auto watched = follow_watch_to(*guest, 1, last_seq(rig.db));
  EXPECT_EQ(watched.texts(), (std::vector<std::string>{"put b=1", "put c=2", "del b", "del c"}));
  ASSERT_EQ(watched.commits.size(), 4u);
  EXPECT_EQ(watched.commits[0].seq, start + 1);

  // Resumed on a new stream after the second commit it delivered.
  guest->session().end();
  auto again = rig.guest();
  say_hello(*again);
  again->send(watch_request(1, watch_range("a", "m"), watched.commits[1].seq));
  ASSERT_NE(again->wait_for_message<proto::WatchStarted>(1), nullptr);
  auto resumed = follow_watch_to(*again, 1, watched.commits[3].seq);
  EXPECT_EQ(resumed.texts(), (std::vector<std::string>{"del b", "del c"}));
}

#endif  // MANY_LEVEL_NO_SQLITE

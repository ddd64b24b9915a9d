// has / hasMany and explicit snapshots, through bytes: both run in request
// order with the connection's other requests; reads that name a snapshot see
// the database as it was when the snapshot was made.
#include "host_harness.hpp"

using namespace host_test;

namespace {

using Values = std::vector<std::optional<std::string>>;

const proto::HasCallback* has_reply(FakeGuest& guest, uint32_t id) {
  auto* reply = guest.wait_for_message<proto::HasCallback>(id);
  if (!reply) ADD_FAILURE() << "no HasCallback for " << id << "; received:" << guest.transcript();
  return reply;
}

// The one frame (tag byte and message) answering request `id` of type M.
template <class M>
std::string payload_of(const FakeGuest& guest, uint32_t id) {
  for (const auto& received : guest.messages()) {
    if (auto* m = std::get_if<M>(&received.message); m && m->id == id) return received.payload;
  }
  return {};
}

std::string big(char c) { return std::string(10000, c); }

}  // namespace

// ---- has ----------------------------------------------------------------------

TEST(HostHas, OneBytePerKeyInRequestOrderAndNoValueOnTheWire) {
  Rig<> rig;
  seed(rig.db, {{"a", big('a')}, {"c", big('c')}});
  auto guest = rig.guest();
  say_hello(*guest);
  std::string chunk = FakeGuest::frame(proto::PutRequest{1, "b", big('b')});
  chunk += FakeGuest::frame(proto::DelRequest{2, "c"});
  chunk += FakeGuest::frame(proto::HasRequest{3, {"a", "b", "c", "d", "a"}, std::nullopt});
  chunk += FakeGuest::frame(proto::HasRequest{4, {}, std::nullopt});
  guest->feed(chunk);
  auto* reply = has_reply(*guest, 3);
  ASSERT_NE(reply, nullptr);
  EXPECT_FALSE(reply->error);
  EXPECT_EQ(reply->found, std::string("\1\1\0\0\1", 5)) << "sees the put and the del sent before it";
  EXPECT_LT(payload_of<proto::HasCallback>(*guest, 3).size(), 16u) << "no value crosses the wire";
  reply = has_reply(*guest, 4);
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(reply->found, "");
}

// ---- snapshots ----------------------------------------------------------------

TEST(HostSnapshots, ReadsAtASnapshotAreIsolatedFromLaterWrites) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  auto other = rig.guest();
  say_hello(*guest);
  // Pipelined in one chunk: request order decides what the snapshot sees.
  std::string chunk = FakeGuest::frame(proto::PutRequest{1, "a", std::string("A")});
  chunk += FakeGuest::frame(proto::SnapshotRequest{2, 7});
  chunk += FakeGuest::frame(proto::PutRequest{3, "b", std::string("B")});
  chunk += FakeGuest::frame(proto::DelRequest{4, "c"});
  chunk += FakeGuest::frame(proto::PutRequest{5, "f", std::string("F")});
  guest->feed(chunk);
  EXPECT_FALSE(guest->callback(2).error);
  EXPECT_FALSE(guest->callback(5).error);
  other->send(proto::PutRequest{1, "d", std::string("D")});  // another connection's write
  EXPECT_FALSE(other->callback(1).error);
  rig.db.put("e", "E", kRawWrite);  // and the host process's own

  chunk = FakeGuest::frame(proto::GetRequest{10, "a", 7});
  chunk += FakeGuest::frame(proto::GetRequest{11, "b", 7});
  chunk += FakeGuest::frame(proto::GetRequest{12, "f", 7});
  chunk += FakeGuest::frame(proto::GetManyRequest{13, {"a", "b", "c", "d", "e", "f"}, 7});
  chunk += FakeGuest::frame(proto::HasRequest{14, {"c", "f"}, 7});
  auto iterator = iterator_request(15);
  iterator.snapshot = 7;
  chunk += FakeGuest::frame(iterator);
  chunk += FakeGuest::frame(proto::GetManyRequest{16, {"a", "b", "c", "d", "e", "f"}});
  guest->feed(chunk);
  EXPECT_EQ(guest->callback(10).value, std::optional<std::string>("A"));
  EXPECT_EQ(guest->callback(11).value, std::optional<std::string>("2"));
  EXPECT_EQ(guest->callback(12).error, std::optional<std::string>("LEVEL_NOT_FOUND"));
  EXPECT_EQ(guest->get_many_callback(13).values, (Values{"A", "2", "3", "4", "5", std::nullopt}));
  auto* has = has_reply(*guest, 14);
  ASSERT_NE(has, nullptr);
  EXPECT_EQ(has->found, std::string("\1\0", 2));
  auto drained = drain_iterator(*guest, 15);
  EXPECT_TRUE(drained.ended);
  EXPECT_EQ(drained.items, (std::vector<std::string>{"a", "A", "b", "2", "c", "3", "d", "4", "e", "5"}));
  EXPECT_EQ(guest->get_many_callback(16).values, (Values{"A", "B", std::nullopt, "D", "E", "F"}))
      << "without the field, reads see the database as it is";
}

TEST(HostSnapshots, ConsecutiveGetsAreReadTogetherOnlyAtTheSameSnapshot) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  say_hello(*guest);
  guest->send(proto::SnapshotRequest{1, 1});
  EXPECT_FALSE(guest->callback(1).error);
  rig.db.put("a", "new", kRawWrite);
  std::string chunk;
  // Alternating snapshot, none, an unknown one: each read where it says.
  std::vector<std::optional<uint32_t>> at = {1, std::nullopt, 1, 1, 99, std::nullopt, std::nullopt, 99, 1};
  for (uint32_t i = 0; i < at.size(); ++i) chunk += FakeGuest::frame(proto::GetRequest{10 + i, "a", at[i]});
  guest->feed(chunk);
  for (uint32_t i = 0; i < at.size(); ++i) {
    auto reply = guest->callback(10 + i);
    if (!at[i]) {
      EXPECT_EQ(reply.value, std::optional<std::string>("new")) << i;
    } else if (*at[i] == 1) {
      EXPECT_EQ(reply.value, std::optional<std::string>("1")) << i;
    } else {
      EXPECT_EQ(reply.error, std::optional<std::string>("LEVEL_SNAPSHOT_NOT_OPEN")) << i;
    }
  }
}

TEST(HostSnapshots, AnUnknownSnapshotFailsEveryKindOfRead) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  say_hello(*guest);
  guest->send(proto::GetRequest{1, "a", 3});
  guest->send(proto::GetManyRequest{2, {"a"}, 3});
  guest->send(proto::HasRequest{3, {"a"}, 3});
  auto iterator = iterator_request(4);
  iterator.snapshot = 3;
  guest->send(iterator);
  EXPECT_EQ(guest->callback(1).error, std::optional<std::string>("LEVEL_SNAPSHOT_NOT_OPEN"));
  EXPECT_EQ(guest->get_many_callback(2).error, std::optional<std::string>("LEVEL_SNAPSHOT_NOT_OPEN"));
  auto* has = has_reply(*guest, 3);
  ASSERT_NE(has, nullptr);
  EXPECT_EQ(has->error, std::optional<std::string>("LEVEL_SNAPSHOT_NOT_OPEN"));
  EXPECT_EQ(drain_iterator(*guest, 4).error, std::optional<std::string>("LEVEL_SNAPSHOT_NOT_OPEN"));
  EXPECT_TRUE(guest->session().stats().iterators.empty());
}

TEST(HostSnapshots, ReleaseRunsInRequestOrderWithoutAReply) {
  Rig<ControlledDatabase> rig(HostOptions{}, 4, true);
  seed(rig.db, abcde());
  auto guest = rig.guest();
  say_hello(*guest);
  guest->send(proto::SnapshotRequest{1, 5});
  EXPECT_FALSE(guest->callback(1).error);
  EXPECT_EQ(guest->session().stats().snapshots, (std::vector<uint32_t>{5}));
  rig.db.get_gate.close();  // hold the first read, so the release surely waits behind it
  std::string chunk = FakeGuest::frame(proto::GetRequest{2, "a", 5});
  chunk += FakeGuest::frame(proto::SnapshotRelease{5});
  chunk += FakeGuest::frame(proto::SnapshotRelease{6});  // unknown: ignored
  chunk += FakeGuest::frame(proto::GetRequest{3, "a", 5});
  chunk += FakeGuest::frame(proto::GetRequest{4, "a"});
  guest->feed(chunk);
  ASSERT_TRUE(rig.db.get_gate.wait_for_waiting(1));
  EXPECT_EQ(rig.db.snapshots_closed.load(), 0);
  rig.db.get_gate.open();
  EXPECT_EQ(guest->callback(2).value, std::optional<std::string>("1"));
  EXPECT_EQ(guest->callback(3).error, std::optional<std::string>("LEVEL_SNAPSHOT_NOT_OPEN"));
  EXPECT_EQ(guest->callback(4).value, std::optional<std::string>("1"));
  EXPECT_EQ(guest->count(), 5u) << "HelloReply and four callbacks; a release is not answered" << guest->transcript();
  EXPECT_EQ(rig.db.snapshots_closed.load(), 1);
  EXPECT_TRUE(guest->session().stats().snapshots.empty());

  // The id is free again.
  guest->send(proto::SnapshotRequest{7, 5});
  EXPECT_FALSE(guest->callback(7).error);
}

TEST(HostSnapshots, LimitPerConnectionAndIdsInUse) {
  HostOptions options;
  options.max_snapshots = 3;
  std::vector<std::string> lines;
  std::mutex lines_mutex;
  options.log = [&](std::string_view line) {
    std::lock_guard<std::mutex> lock(lines_mutex);
    lines.emplace_back(line);
  };
  Rig<> rig(options);
  auto guest = rig.guest();
  auto other = rig.guest();
  say_hello(*guest);
  say_hello(*other);
  for (uint32_t id = 1; id <= 3; ++id) guest->send(proto::SnapshotRequest{id, id});
  guest->send(proto::SnapshotRequest{4, 2});  // in use
  guest->send(proto::SnapshotRequest{5, 4});  // one too many
  for (uint32_t id = 1; id <= 3; ++id) EXPECT_FALSE(guest->callback(id).error) << id;
  EXPECT_EQ(guest->callback(4).error, std::optional<std::string>("LEVEL_INVALID_ARGUMENT"));
  EXPECT_EQ(guest->callback(5).error, std::optional<std::string>("LEVEL_LIMIT_REACHED"));
  other->send(proto::SnapshotRequest{1, 4});
  EXPECT_FALSE(other->callback(1).error) << "the limit is per connection";
  guest->send(proto::SnapshotRelease{1});
  guest->send(proto::SnapshotRequest{6, 4});
  EXPECT_FALSE(guest->callback(6).error) << "a release makes room";
  std::lock_guard<std::mutex> lock(lines_mutex);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("LEVEL_INVALID_ARGUMENT"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("LEVEL_LIMIT_REACHED"), std::string::npos) << lines[1];
}

TEST(HostSnapshots, RefusedWhenTheDatabaseHasNone) {
  Rig<ControlledDatabase> rig;
  auto guest = rig.guest();
  say_hello(*guest);
  guest->send(proto::SnapshotRequest{1, 1});
  EXPECT_EQ(guest->callback(1).error, std::optional<std::string>("LEVEL_NOT_SUPPORTED"));
  guest->send(proto::GetRequest{2, "a", 1});
  EXPECT_EQ(guest->callback(2).error, std::optional<std::string>("LEVEL_SNAPSHOT_NOT_OPEN"));
}

TEST(HostSnapshots, TheStreamsEndReleasesThemAll) {
  Rig<ControlledDatabase> rig(HostOptions{}, 4, true);
  seed(rig.db, abcde());
  auto guest = rig.guest();
  say_hello(*guest);
  for (uint32_t id = 1; id <= 5; ++id) guest->send(proto::SnapshotRequest{id, id});
  for (uint32_t id = 1; id <= 5; ++id) EXPECT_FALSE(guest->callback(id).error);
  EXPECT_EQ(rig.db.snapshots_made.load(), 5);
  guest->session().end();
  EXPECT_TRUE(eventually([&] { return rig.db.snapshots_closed.load() == 5; })) << rig.db.snapshots_closed.load();
  EXPECT_TRUE(guest->session().stats().snapshots.empty());
}

TEST(HostSnapshots, TheStreamsEndWaitsForAReadInProgressBeforeReleasing) {
  Rig<ControlledDatabase> rig(HostOptions{}, 4, true);
  seed(rig.db, abcde());
  auto guest = rig.guest();
  say_hello(*guest);
  guest->send(proto::SnapshotRequest{1, 1});
  EXPECT_FALSE(guest->callback(1).error);
  rig.db.get_gate.close();
  guest->send(proto::GetRequest{2, "a", 1});
  ASSERT_TRUE(rig.db.get_gate.wait_for_waiting(1));
  guest->session().end();
  EXPECT_EQ(rig.db.snapshots_closed.load(), 0) << "not closed under the read";
  rig.db.get_gate.open();
  EXPECT_TRUE(eventually([&] { return rig.db.snapshots_closed.load() == 1; }));
}

TEST(HostSnapshots, AnIteratorAtASnapshotSeeksWithinIt) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  say_hello(*guest);
  guest->send(proto::SnapshotRequest{1, 1});
  EXPECT_FALSE(guest->callback(1).error);
  rig.db.put("bb", "new", kRawWrite);
  rig.db.del("d", kRawWrite);
  // A retried iterator (bookmark) that then seeks: the host recreates the
  // store iterator over the whole range, still at the snapshot.
  auto iterator = iterator_request(2);
  iterator.snapshot = 1;
  iterator.consumed = 1;
  iterator.bookmark = "a";
  guest->send(iterator);
  auto first = drain_iterator(*guest, 2, 0, 1);
  EXPECT_EQ(evens(first.items), (std::vector<std::string>{"b", "c", "d", "e"}));
  guest->send(proto::IteratorSeek{2, 1, "a"});
  auto sought = drain_iterator(*guest, 2, 1, 1);
  EXPECT_EQ(evens(sought.items), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
}

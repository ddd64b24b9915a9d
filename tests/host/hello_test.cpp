// Negotiating the extension: a guest that says Hello gets HelloReply before
// any reply to a later frame, with the features its database allows; a guest
// that does not (a Node guest) never sees anything of the extension.
#include "host_harness.hpp"

using namespace host_test;

namespace {

template <class M>
bool is(const Received& received) {
  return std::holds_alternative<M>(received.message);
}

std::vector<std::string> features(const proto::HelloReply& reply) {
  auto sorted = reply.features;
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

}  // namespace

TEST(HostHello, TheReplyComesBeforeRepliesToRequestsPipelinedInTheSameChunk) {
  Rig<> rig;
  seed(rig.db, abcde());
  for (int round = 0; round < 20; ++round) {
    auto guest = rig.guest();
    // One chunk, as a guest writes it: Hello, then its requests at once.
    std::string chunk = FakeGuest::frame(hello());
    chunk += FakeGuest::frame(proto::GetRequest{1, "a"});
    chunk += FakeGuest::frame(proto::PutRequest{2, "f", std::string("6")});
    chunk += FakeGuest::frame(proto::GetManyRequest{3, {"a", "f"}});
    chunk += FakeGuest::frame(iterator_request(4));
    chunk += FakeGuest::frame(proto::HasRequest{5, {"a", "zz"}, std::nullopt});
    guest->feed(chunk);
    ASSERT_TRUE(guest->wait_for_count(6)) << guest->transcript();
    EXPECT_TRUE(is<proto::HelloReply>(guest->messages()[0])) << guest->transcript();
    EXPECT_EQ(count_hello_replies(*guest), 1u);
    EXPECT_EQ(guest->callback(1).value, std::optional<std::string>("1"));
    auto* has = guest->wait_for_message<proto::HasCallback>(5);
    ASSERT_NE(has, nullptr) << guest->transcript();
    EXPECT_EQ(has->found, std::string("\1\0", 2));
    guest->session().end();
  }
}

TEST(HostHello, FeaturesAndSeqFollowTheDatabase) {
  Rig<> memory;  // explicit snapshots and a change feed
  seed(memory.db, abcde());
  memory.db.put("f", "6", kRawWrite);
  auto guest = memory.guest();
  auto reply = say_hello(*guest);
  EXPECT_EQ(reply.version, 1u);
  EXPECT_FALSE(reply.error);
  EXPECT_EQ(features(reply), (std::vector<std::string>{"has", "snapshots", "stats", "watch"}));
  EXPECT_EQ(reply.seq, last_seq(memory.db));
  EXPECT_EQ(reply.seq, 2u) << "a batch, then a put";

  Rig<ControlledDatabase> plain;  // neither
  auto other = plain.guest();
  reply = say_hello(*other);
  EXPECT_EQ(features(reply), (std::vector<std::string>{"has", "stats"}));
  EXPECT_EQ(reply.seq, 0u);

  Rig<ControlledDatabase> snapshots_only(HostOptions{}, 4, true);
  auto third = snapshots_only.guest();
  EXPECT_EQ(features(say_hello(*third)), (std::vector<std::string>{"has", "snapshots", "stats"}));
}

TEST(HostHello, ExtensionRequestsBeforeHelloAreIgnoredAsTheReferenceWould) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(proto::HasRequest{1, {"a"}, std::nullopt});
  guest->send(proto::SnapshotRequest{2, 1});
  guest->send(watch_request(3));
  guest->send(proto::HostStatsRequest{4});
  guest->send(proto::WatchAck{3, 1});
  guest->send(proto::WatchClose{3});
  guest->send(proto::SnapshotRelease{1});
  guest->send(proto::GetRequest{5, "a"});
  EXPECT_EQ(guest->callback(5).value, std::optional<std::string>("1"));
  rig.db.put("g", "7", kRawWrite);  // would reach a watch, had one started
  guest->send(proto::GetRequest{6, "g"});
  EXPECT_EQ(guest->callback(6).value, std::optional<std::string>("7"));
  EXPECT_EQ(guest->count(), 2u) << guest->transcript();
  EXPECT_TRUE(guest->session().stats().snapshots.empty());
  EXPECT_TRUE(guest->session().stats().watches.empty());
  EXPECT_FALSE(guest->session().stats().extended);
  EXPECT_EQ(rig.db.change_source()->feed->listeners(), 0u);

  // The same requests after Hello are served.
  say_hello(*guest);
  guest->send(proto::HasRequest{7, {"a"}, std::nullopt});
  auto* has = guest->wait_for_message<proto::HasCallback>(7);
  ASSERT_NE(has, nullptr) << guest->transcript();
  EXPECT_EQ(has->found, "\1");
  EXPECT_TRUE(guest->session().stats().extended);
}

TEST(HostHello, TheSnapshotFieldIsIgnoredWithoutHello) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  proto::GetRequest get{1, "a", 9};
  proto::GetManyRequest get_many{2, {"b"}, 9};
  auto iterator = iterator_request(3);
  iterator.snapshot = 9;
  guest->send(get);
  guest->send(get_many);
  guest->send(iterator);
  EXPECT_EQ(guest->callback(1).value, std::optional<std::string>("1")) << "read as it is, as the reference would";
  EXPECT_EQ(guest->get_many_callback(2).values, (std::vector<std::optional<std::string>>{"2"}));
  EXPECT_TRUE(drain_iterator(*guest, 3).ended);
}

TEST(HostHello, ASecondHelloIsAnsweredAgainInStreamOrder) {
  Rig<> rig;
  auto guest = rig.guest();
  EXPECT_EQ(say_hello(*guest).seq, 0u);
  std::string chunk = FakeGuest::frame(proto::PutRequest{1, "a", std::string("1")});
  chunk += FakeGuest::frame(hello());
  guest->feed(chunk);
  ASSERT_TRUE(guest->wait_until([&] { return count_hello_replies(*guest) == 2; })) << guest->transcript();
  EXPECT_FALSE(guest->callback(1).error);
  auto second = guest->all_of<proto::HelloReply>().back();
  EXPECT_EQ(second.version, 1u);
  EXPECT_LE(second.seq, 1u) << "the put runs on a worker: it may or may not be committed yet";
}

TEST(HostHello, AHelloOfAnotherVersionIsAnsweredWithOurs) {
  Rig<> rig;
  auto guest = rig.guest();
  guest->send(proto::Hello{7, {"teleport"}, std::string("token")});
  ASSERT_TRUE(guest->wait_for_count(1));
  auto reply = guest->all_of<proto::HelloReply>().at(0);
  EXPECT_EQ(reply.version, 1u);
  EXPECT_FALSE(reply.error);
}

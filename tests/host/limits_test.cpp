// What keeps one guest from hurting the host: the frame length limit (checked
// before anything is buffered), malformed frames, unknown tags, iterator and
// pending-request limits, and output that stays bounded when a guest does not
// read or ack.
#include "host_harness.hpp"

using namespace host_test;

namespace {

std::string varint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

// A known tag whose message does not decode: Get with a truncated field.
const std::string kMalformed = std::string("\x00\x0a\x05", 3);

}  // namespace

TEST(HostLimits, AFrameOverTheLimitFailsTheSessionRightAfterItsLengthPrefix) {
  HostOptions options;
  options.max_frame_length = 1024;
  Rig<> rig(options);
  auto guest = rig.guest();
  const std::string prefix = varint(1025);
  guest->feed(prefix);  // the payload never comes
  EXPECT_FALSE(guest->session().failed().empty());
  EXPECT_NE(guest->session().failed().find("1025"), std::string::npos) << guest->session().failed();
  auto stats = guest->session().stats();
  EXPECT_EQ(stats.bytes_in, prefix.size());
  EXPECT_EQ(stats.frames_in, 0u);
  // What follows is not looked at.
  guest->send(proto::GetRequest{1, "a"});
  EXPECT_EQ(guest->session().stats().frames_in, 0u);
  EXPECT_EQ(guest->session().stats().pending_requests, 0u);
  EXPECT_EQ(guest->session().stats().bytes_in, prefix.size());
}

TEST(HostLimits, AHugeLengthFailsWithTheDefaultLimitToo) {
  Rig<> rig;
  auto guest = rig.guest();
  guest->feed(varint(0xffffffffu));
  EXPECT_FALSE(guest->session().failed().empty());
}

TEST(HostLimits, AFrameExactlyAtTheLimitIsAccepted) {
  HostOptions options;
  options.max_frame_length = 1024;
  Rig<> rig(options);
  auto guest = rig.guest();
  proto::PutRequest put{1, "k", std::string()};
  // tag (1) + id field (2) + key field (3) + value field (tag 1, length 2) = 9 bytes + value
  put.value = std::string(1024 - 9, 'v');
  std::string frame = FakeGuest::frame(put);
  ASSERT_EQ(frame.size(), varint(1024).size() + 1024);
  guest->feed(frame);
  EXPECT_FALSE(guest->callback(1).error);
  EXPECT_TRUE(guest->session().failed().empty());
  EXPECT_EQ(rig.db.get("k", kRawRead).size(), 1024u - 9);
}

TEST(HostLimits, TooManyMalformedFramesFailTheSession) {
  HostOptions options;
  options.max_malformed_frames = 3;
  Rig<> rig(options);
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send_payload(kMalformed);
  guest->send_payload(std::string("\x04\xff", 2));  // an iterator request that does not decode
  EXPECT_TRUE(guest->session().failed().empty());
  EXPECT_EQ(guest->session().stats().malformed_frames, 2u);
  guest->send(proto::GetRequest{1, "a"});  // still served, as the reference ignores them
  EXPECT_EQ(guest->callback(1).value, std::optional<std::string>("1"));
  guest->send_payload(kMalformed);
  EXPECT_FALSE(guest->session().failed().empty());
  const auto frames_in = guest->session().stats().frames_in;
  guest->send(proto::GetRequest{2, "a"});
  EXPECT_EQ(guest->session().stats().frames_in, frames_in) << "input after the failure is not looked at";
}

TEST(HostLimits, RequestsAfterTheFailingFrameInTheSameChunkAreNotRun) {
  HostOptions options;
  options.max_malformed_frames = 2;
  Rig<> rig(options);
  auto guest = rig.guest();
  std::string chunk = FakeGuest::frame_payload(kMalformed) + FakeGuest::frame_payload(kMalformed) +
                      FakeGuest::frame(proto::PutRequest{1, "after", std::string("x")});
  guest->feed(chunk);
  EXPECT_FALSE(guest->session().failed().empty());
  EXPECT_EQ(guest->session().stats().pending_requests, 0u);
  EXPECT_EQ(guest->session().stats().frames_in, 0u);
  EXPECT_FALSE(rig.db.try_get("after", kRawRead));
}

TEST(HostLimits, UnknownTagsAndEmptyPayloadsAreIgnored) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  std::string chunk;
  chunk += std::string(1, '\0');                          // a zero-length payload
  chunk += FakeGuest::frame_payload("\x0a\x08\x01");       // tag 10: unknown
  chunk += FakeGuest::frame_payload("\xff garbage");       // tag 255
  chunk += FakeGuest::frame_payload(std::string(1, '\x63'));  // tag 99, no body
  chunk += FakeGuest::frame(proto::GetRequest{1, "b"});
  guest->feed(chunk);
  EXPECT_EQ(guest->callback(1).value, std::optional<std::string>("2"));
  EXPECT_TRUE(guest->session().failed().empty());
  EXPECT_EQ(guest->session().stats().malformed_frames, 0u);
  EXPECT_EQ(guest->session().stats().frames_in, 1u);
  EXPECT_EQ(guest->count(), 1u);
}

TEST(HostLimits, UnknownFieldsAreSkipped) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  // Get{id 1, key "c", field 15 varint 7, field 16 bytes "zz"}
  guest->send_hex("000801120163" "7807" "820102" "7a7a");
  EXPECT_EQ(guest->callback(1).value, std::optional<std::string>("3"));
}

TEST(HostLimits, ADuplicateIteratorIdIsIgnored) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  auto reverse = iter_options(true, false);
  reverse.reverse = true;
  guest->send(iterator_request(1, iter_options(true, false)));
  guest->send(iterator_request(1, reverse));
  auto drained = drain_iterator(*guest, 1, 0, 0, 1);
  EXPECT_EQ(drained.items, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(guest->session().stats().iterators.size(), 1u);
  EXPECT_EQ(rig.db.open_iterator_count(), 1u);
  EXPECT_TRUE(guest->all_of<proto::IteratorError>().empty());
}

TEST(HostLimits, IteratorsBeyondTheLimitAreRefusedWithAnIteratorError) {
  HostOptions options;
  options.max_iterators = 2;
  Rig<> rig(options);
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(iterator_request(1));
  guest->send(iterator_request(2));
  auto third = iterator_request(3);
  third.seq = 4;
  guest->send(third);
  auto* error = guest->wait_for_message<proto::IteratorError>(3);
  ASSERT_TRUE(error) << guest->transcript();
  EXPECT_EQ(error->seq, 4u);
  EXPECT_EQ(error->error, "LEVEL_REMOTE_ERROR");
  ASSERT_TRUE(guest->wait_for_message<proto::IteratorData>(1));
  ASSERT_TRUE(guest->wait_for_message<proto::IteratorData>(2));
  EXPECT_EQ(guest->session().stats().iterators.size(), 2u);
  // Closing one makes room.
  guest->send(proto::IteratorClose{1});
  guest->send(iterator_request(4));
  EXPECT_TRUE(guest->wait_for_message<proto::IteratorData>(4));
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 2; }));
}

TEST(HostLimits, InputPausesAtMaxPendingRequestsAndResumes) {
  HostOptions options;
  options.max_pending_requests = 3;
  Rig<ControlledDatabase> rig(options);
  seed(rig.db, abcde());
  auto guest = rig.guest();
  EXPECT_TRUE(guest->session().wants_input());
  rig.db.get_gate.close();
  guest->send(proto::GetRequest{1, "a"});
  ASSERT_TRUE(rig.db.get_gate.wait_for_waiting(1));
  guest->send(proto::GetRequest{2, "b"});
  EXPECT_TRUE(guest->session().wants_input());
  guest->send(proto::GetRequest{3, "c"});
  EXPECT_FALSE(guest->session().wants_input());
  EXPECT_EQ(guest->session().stats().pending_requests, 3u);
  rig.db.get_gate.open();
  EXPECT_EQ(guest->callback(1).value, std::optional<std::string>("1"));
  EXPECT_EQ(guest->callback(2).value, std::optional<std::string>("2"));
  EXPECT_EQ(guest->callback(3).value, std::optional<std::string>("3"));
  EXPECT_TRUE(eventually([&] { return guest->session().wants_input(); }));
}

TEST(HostLimits, InputPausesWhileOutputIsOverItsHighWaterMark) {
  HostOptions options;
  options.output_high_water = 4096;
  Rig<> rig(options);
  seed(rig.db, {{"big", std::string(8192, 'x')}});
  auto session = rig.host->create_session();  // no guest reading it yet
  std::string frame = FakeGuest::frame(proto::GetRequest{1, "big"});
  session->receive(frame.data(), frame.size());
  ASSERT_TRUE(eventually([&] { return session->output().size() > 4096; }));
  EXPECT_FALSE(session->wants_input());
  FakeGuest guest(session);
  EXPECT_EQ(guest.callback(1).value->size(), 8192u);
  EXPECT_TRUE(session->wants_input());
}

TEST(HostLimits, OneIteratorOverABigDataSetStopsAfterTwoFramesWithoutAcks) {
  Rig<> rig;  // default limits
  seed_big(rig.db, 40000, 100);  // about 4.5 MB
  auto guest = rig.guest();
  guest->send(iterator_request(1));
  ASSERT_TRUE(guest->wait_for_count(1));
  guest->send(proto::IteratorAck{1, 0, 1});
  ASSERT_TRUE(idle_with(guest->session(), 1, 2));
  guest->poll();
  EXPECT_EQ(guest->count(), 3u) << guest->transcript();
  EXPECT_LT(guest->bytes_received(), uint64_t{2} << 20);
  EXPECT_EQ(guest->session().stats().buffered_output, 0u);
}

TEST(HostLimits, OutputStaysBoundedWhenTheGuestNeitherAcksNorReads) {
  Rig<> rig;  // 1 MiB high-water mark
  seed_big(rig.db, 40000, 100);  // about 4.5 MB
  auto session = rig.host->create_session();
  auto send = [&](const auto& message) {
    std::string frame = FakeGuest::frame(message);
    session->receive(frame.data(), frame.size());
  };
  // Ten iterators, each acked once (so each may read ahead), output never read.
  for (uint32_t id = 1; id <= 10; ++id) send(iterator_request(id));
  for (uint32_t id = 1; id <= 10; ++id) ASSERT_TRUE(idle_with(*session, id, 1));
  for (uint32_t id = 1; id <= 10; ++id) send(proto::IteratorAck{id, 0, 1});
  for (uint32_t id = 1; id <= 10; ++id) ASSERT_TRUE(idle_with(*session, id, 2)) << id;
  // Read-ahead shares the connection's output room: about one high-water
  // mark in all, plus the 16-entry minimum frames -- not one mark per iterator.
  const size_t buffered = session->output().size();
  EXPECT_LT(buffered, size_t{2} << 20) << "the host buffered " << buffered << " bytes";
  EXPECT_GT(buffered, size_t{512} << 10) << "the host did not read ahead";
  // All of it is well-formed and in order, and nothing was lost.
  FakeGuest guest(session);
  guest.poll();
  for (uint32_t id = 1; id <= 10; ++id) {
    auto frames = data_frames(guest, id, 0);
    ASSERT_EQ(frames.size(), 3u) << id;
    std::vector<std::string> keys;
    for (const auto& f : frames) {
      for (size_t i = 0; i < f.data.size(); i += 2) keys.push_back(f.data[i]);
    }
    for (size_t i = 0; i < keys.size(); ++i) ASSERT_EQ(keys[i], big_key(i)) << id;
  }
}

TEST(HostLimits, FramesSplitAnywhereAreReassembled) {
  Rig<> rig;
  seed(rig.db, abcde());
  std::string burst = FakeGuest::frame(proto::GetRequest{1, "a"}) +
                      FakeGuest::frame(proto::PutRequest{2, "k", std::string(300, 'v')}) +
                      FakeGuest::frame(proto::GetManyRequest{3, {"b", "k"}}) +
                      FakeGuest::frame(proto::DelRequest{4, "k"});
  for (size_t split = 1; split < burst.size(); split += 7) {
    auto guest = rig.guest();
    guest->feed(std::string_view(burst).substr(0, split));
    guest->feed(std::string_view(burst).substr(split));
    EXPECT_EQ(guest->callback(1).value, std::optional<std::string>("1")) << split;
    EXPECT_FALSE(guest->callback(2).error) << split;
    auto many = guest->get_many_callback(3);
    ASSERT_EQ(many.values.size(), 2u) << split;
    EXPECT_EQ(many.values[1], std::optional<std::string>(std::string(300, 'v'))) << split;
    EXPECT_FALSE(guest->callback(4).error) << split;
  }
}

// Iterator flow control as the reference host does it (PROTOCOL.md,
// "Iterators and flow control"): 1 entry first, then read-ahead in larger
// frames, never more than two data frames unacknowledged; the limit counted
// by the host; keys-only, values-only, reverse and ranges; and seek with seq.
#include "host_harness.hpp"

using namespace host_test;

namespace {

constexpr size_t kBigCount = 6000;
constexpr size_t kBigValue = 100;

std::vector<std::string> keys_of(const std::vector<std::string>& items) { return evens(items); }

std::vector<std::string> expected_items(size_t from, size_t to, size_t value_size) {
  std::vector<std::string> out;
  for (size_t i = from; i < to; ++i) {
    out.push_back(big_key(i));
    out.push_back(big_value(i, value_size));
  }
  return out;
}

proto::IteratorOptions range(std::optional<std::string> gt, std::optional<std::string> gte,
                             std::optional<std::string> lt, std::optional<std::string> lte, bool reverse = false,
                             int64_t limit = -1) {
  auto options = iter_options();
  options.gt = std::move(gt);
  options.gte = std::move(gte);
  options.lt = std::move(lt);
  options.lte = std::move(lte);
  options.reverse = reverse;
  options.limit = limit;
  return options;
}

// Runs one iterator over a..e to its end, acking as a guest does.
Drained run_abcde(const proto::IteratorOptions& options) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(iterator_request(1, options));
  size_t per_entry = options.keys && options.values ? 2 : 1;
  auto drained = drain_iterator(*guest, 1, 0, 0, per_entry);
  guest->send(proto::IteratorClose{1});
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  return drained;
}

}  // namespace

// ---- frame sizes and acknowledgement ---------------------------------------------------

TEST(HostFlowControl, FirstFrameHoldsOneEntryAndNothingMoreComesWithoutAnAck) {
  Rig<> rig;
  seed_big(rig.db, kBigCount, kBigValue);
  auto guest = rig.guest();
  guest->send(iterator_request(1));
  ASSERT_TRUE(guest->wait_for_count(1));
  ASSERT_TRUE(idle_with(guest->session(), 1, 1));
  guest->poll();
  ASSERT_EQ(guest->count(), 1u) << guest->transcript();
  auto first = data_frames(*guest, 1, 0);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].data, expected_items(0, 1, kBigValue));
}

TEST(HostFlowControl, AfterAnAckTheHostReadsAheadInLargerFramesAndStopsAtTwoUnacknowledged) {
  HostOptions options;
  options.output_high_water = 64 << 10;
  Rig<> rig(options);
  seed_big(rig.db, kBigCount, kBigValue);
  auto guest = rig.guest();
  guest->send(iterator_request(1));
  ASSERT_TRUE(guest->wait_for_count(1));
  guest->send(proto::IteratorAck{1, 0, 1});
  ASSERT_TRUE(guest->wait_for_count(3));
  ASSERT_TRUE(idle_with(guest->session(), 1, 2));
  guest->poll();
  auto frames = data_frames(*guest, 1, 0);
  ASSERT_EQ(frames.size(), 3u) << "two frames unacknowledged: the host must stop" << guest->transcript();
  EXPECT_FALSE(has_end(*guest, 1, 0));
  EXPECT_EQ(frames[0].data.size(), 2u);
  EXPECT_GE(frames[1].data.size(), 2u * 16) << "read-ahead frames hold at least 16 entries";
  EXPECT_GT(frames[1].data.size(), frames[0].data.size());
  // The entries continue in order, without gaps or repeats.
  std::vector<std::string> items;
  for (const auto& f : frames) items.insert(items.end(), f.data.begin(), f.data.end());
  EXPECT_EQ(items, expected_items(0, items.size() / 2, kBigValue));
}

TEST(HostFlowControl, AckingOneFrameAtATimeNeverLetsThreeFramesBeOutstanding) {
  HostOptions options;
  options.output_high_water = 32 << 10;  // many frames from a moderate data set
  Rig<> rig(options);
  seed_big(rig.db, kBigCount, kBigValue);
  auto guest = rig.guest();
  guest->send(iterator_request(1));

  std::vector<std::string> items;
  std::vector<size_t> frame_entries, frame_sizes;  // per data frame: entries, payload bytes
  size_t frames_seen = 0, acked = 0, max_outstanding = 0;
  uint64_t consumed = 0;
  bool ended = false;
  while (!ended) {
    // Let the host do all it will without another ack, then look.
    ASSERT_TRUE(guest->wait_until([&] { return guest->count() > frames_seen; })) << guest->transcript();
    ASSERT_TRUE(eventually([&] {
      auto info = iterator_info(guest->session(), 1);
      return info && !info->busy && (info->ended || info->unacknowledged_frames >= 1);
    }));
    guest->poll();
    for (; frames_seen < guest->count(); ++frames_seen) {
      const auto& received = guest->messages()[frames_seen];
      if (auto* data = std::get_if<proto::IteratorData>(&received.message)) {
        items.insert(items.end(), data->data.begin(), data->data.end());
        frame_entries.push_back(data->data.size() / 2);
        frame_sizes.push_back(received.payload.size());
      } else {
        ASSERT_TRUE(std::holds_alternative<proto::IteratorEnd>(received.message)) << describe(received.message);
        ended = true;
      }
    }
    size_t outstanding = frame_entries.size() - acked;
    max_outstanding = std::max(max_outstanding, outstanding);
    ASSERT_LE(outstanding, 2u) << "after " << frame_entries.size() << " frames";
    if (!ended) {
      // Consume the oldest unacknowledged frame, and ack it.
      ASSERT_GT(outstanding, 0u);
      consumed += frame_entries[acked++];
      guest->send(proto::IteratorAck{1, 0, consumed});
    }
  }
  EXPECT_EQ(max_outstanding, 2u);
  EXPECT_EQ(items, expected_items(0, kBigCount, kBigValue));
  EXPECT_GT(frame_sizes.size(), 4u);
  for (size_t size : frame_sizes) EXPECT_LE(size, options.output_high_water) << "a frame larger than the output buffer";
  guest->send(proto::IteratorClose{1});
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
}

TEST(HostFlowControl, WithAcksTheIteratorRunsToTheEndAndSendsIteratorEnd) {
  Rig<> rig;
  seed_big(rig.db, kBigCount, kBigValue);
  auto guest = rig.guest();
  guest->send(iterator_request(1));
  auto drained = drain_iterator(*guest, 1);
  EXPECT_TRUE(drained.ended);
  EXPECT_FALSE(drained.error);
  EXPECT_LE(drained.max_unacknowledged, 2u);
  EXPECT_EQ(drained.items, expected_items(0, kBigCount, kBigValue));
  auto info = iterator_info(guest->session(), 1);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->ended);
  // An ended iterator stays open until the guest closes it, as in the reference.
  EXPECT_EQ(rig.db.open_iterator_count(), 1u);
  guest->send(proto::IteratorClose{1});
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
}

// ---- limit -----------------------------------------------------------------------

TEST(HostFlowControl, LimitIsNeverExceededInTotal) {
  for (int64_t limit : {1, 2, 3, 17, 100, 1000}) {
    Rig<> rig;
    seed_big(rig.db, kBigCount, 10);
    auto guest = rig.guest();
    auto options = iter_options();
    options.limit = limit;
    guest->send(iterator_request(1, options));
    auto drained = drain_iterator(*guest, 1);
    EXPECT_TRUE(drained.ended) << limit;
    EXPECT_EQ(drained.items, expected_items(0, static_cast<size_t>(limit), 10)) << limit;
  }
}

TEST(HostFlowControl, LimitFramesAreOneThenTheRestThenEnd) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  auto options = iter_options();
  options.limit = 3;
  guest->send(iterator_request(1, options));
  ASSERT_TRUE(guest->wait_for_count(1));
  guest->send(proto::IteratorAck{1, 0, 1});
  ASSERT_TRUE(guest->wait_for_count(3));
  ASSERT_TRUE(idle_with(guest->session(), 1, 1));
  guest->poll();
  std::vector<std::string> expected = {
      "01080110001a01611a0131",            // a
      "01080110001a01621a01321a01631a0133",  // b, c: the budget left (3 - 1 sent)
      "0408011000",                        // end: the budget is spent
  };
  EXPECT_EQ(guest->payloads_hex(), expected);
}

TEST(HostFlowControl, LimitCountsWhatTheGuestConsumedAcrossASeek) {
  Rig<> rig;
  seed_big(rig.db, 100, 10);
  auto guest = rig.guest();
  auto options = iter_options();
  options.limit = 5;
  guest->send(iterator_request(1, options));
  ASSERT_TRUE(guest->wait_for_count(1));
  guest->send(proto::IteratorAck{1, 0, 1});  // consumed 1 of 5
  ASSERT_TRUE(guest->wait_until([&] { return has_end(*guest, 1, 0); }));
  // The guest consumed only the first entry, then seeks: 4 may still come.
  guest->send(proto::IteratorSeek{1, 1, big_key(50)});
  auto drained = drain_iterator(*guest, 1, 1, 1);
  EXPECT_TRUE(drained.ended);
  EXPECT_EQ(drained.items, expected_items(50, 54, 10));

  // Having consumed all 5, a seek yields nothing more.
  guest->send(proto::IteratorAck{1, 1, 5});
  guest->send(proto::IteratorSeek{1, 2, big_key(10)});
  ASSERT_TRUE(guest->wait_until([&] { return has_end(*guest, 1, 2); })) << guest->transcript();
  EXPECT_TRUE(data_frames(*guest, 1, 2).empty());
}

TEST(HostFlowControl, LimitZeroEndsAtOnce) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  auto options = iter_options();
  options.limit = 0;
  guest->send(iterator_request(1, options));
  ASSERT_TRUE(guest->wait_for_count(1));
  ASSERT_TRUE(idle_with(guest->session(), 1, 0));
  guest->poll();
  EXPECT_EQ(guest->payloads_hex(), std::vector<std::string>{"0408011000"});
}

TEST(HostFlowControl, AbsentLimitDecodesAsZeroAndEndsAtOnceAsTheReferenceDoes) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  // Iterator{id 1, seq 0, options {keys, values} (no limit, no reverse), consumed 0}
  guest->send_hex("04080110001a0408011001" "2000");
  ASSERT_TRUE(guest->wait_for_count(1));
  ASSERT_TRUE(idle_with(guest->session(), 1, 0));
  guest->poll();
  EXPECT_EQ(guest->payloads_hex(), std::vector<std::string>{"0408011000"});
  // Options with no keys and no values fields read as false for both (the
  // frames then carry values: the reference's mode is "values" then).
}

TEST(HostFlowControl, AnyNegativeLimitMeansNoLimit) {
  auto options = iter_options();
  options.limit = -7;
  auto drained = run_abcde(options);
  EXPECT_EQ(drained.items, (std::vector<std::string>{"a", "1", "b", "2", "c", "3", "d", "4", "e", "5"}));
}

// ---- what frames carry ---------------------------------------------------------------

TEST(HostFlowControl, KeysOnlyFramesCarryOnlyKeys) {
  auto drained = run_abcde(iter_options(true, false));
  EXPECT_TRUE(drained.ended);
  EXPECT_EQ(drained.items, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
}

TEST(HostFlowControl, ValuesOnlyFramesCarryOnlyValues) {
  auto drained = run_abcde(iter_options(false, true));
  EXPECT_TRUE(drained.ended);
  EXPECT_EQ(drained.items, (std::vector<std::string>{"1", "2", "3", "4", "5"}));
}

TEST(HostFlowControl, Reverse) {
  auto options = iter_options();
  options.reverse = true;
  auto drained = run_abcde(options);
  EXPECT_EQ(keys_of(drained.items), (std::vector<std::string>{"e", "d", "c", "b", "a"}));
}

TEST(HostFlowControl, Ranges) {
  using V = std::vector<std::string>;
  using O = std::optional<std::string>;
  const O none;
  struct Case {
    proto::IteratorOptions options;
    V keys;
  };
  const std::vector<Case> cases = {
      {range(O("b"), none, none, none), V{"c", "d", "e"}},
      {range(none, O("b"), none, none), V{"b", "c", "d", "e"}},
      {range(none, none, O("d"), none), V{"a", "b", "c"}},
      {range(none, none, none, O("d")), V{"a", "b", "c", "d"}},
      {range(O("a"), none, O("e"), none), V{"b", "c", "d"}},
      {range(none, O("b"), none, O("d"), true), V{"d", "c", "b"}},
      {range(O("b"), none, O("e"), none, true), V{"d", "c"}},
      {range(none, O("bb"), none, O("dd")), V{"c", "d"}},
      {range(none, O("a"), none, O("e"), true, 2), V{"e", "d"}},
      {range(none, O("d"), none, O("b")), V{}},  // lower above upper: empty
      {range(O("e"), none, none, none), V{}},
      {range(none, O("z"), none, none, true), V{}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    auto drained = run_abcde(cases[i].options);
    EXPECT_TRUE(drained.ended) << "case " << i;
    EXPECT_EQ(keys_of(drained.items), cases[i].keys) << "case " << i;
  }
}

TEST(HostFlowControl, BinaryKeysSortAsUnsignedBytes) {
  Rig<> rig;
  seed(rig.db, {{std::string("\x00", 1), "0"}, {"\x7f", "7f"}, {"\x80", "80"}, {"\xff", "ff"}, {std::string("\xff\x00", 2), "ff00"}});
  auto guest = rig.guest();
  guest->send(iterator_request(1, iter_options(true, false)));
  auto drained = drain_iterator(*guest, 1, 0, 0, 1);
  EXPECT_EQ(drained.items, (std::vector<std::string>{std::string("\x00", 1), "\x7f", "\x80", "\xff",
                                                     std::string("\xff\x00", 2)}));
}

// ---- seek and seq ----------------------------------------------------------------------

TEST(HostSeek, FramesAfterASeekCarryTheNewSeqAndTheInFlightReadIsDropped) {
  Rig<ControlledDatabase> rig;
  seed_big(rig.db, 200, 10);
  auto guest = rig.guest();
  guest->send(iterator_request(1));
  ASSERT_TRUE(guest->wait_for_count(1));
  rig.db.nextv_gate.close();
  guest->send(proto::IteratorAck{1, 0, 1});  // read-ahead starts and is held
  ASSERT_TRUE(rig.db.nextv_gate.wait_for_waiting(1));
  guest->poll();
  ASSERT_EQ(guest->count(), 1u);
  guest->send(proto::IteratorSeek{1, 1, big_key(150)});
  const size_t mark = guest->count();  // the seek is processed: receive() returned
  rig.db.nextv_gate.open();
  auto drained = drain_iterator(*guest, 1, 1, 1, 2, mark);
  EXPECT_TRUE(drained.ended);
  EXPECT_EQ(drained.items, expected_items(150, 200, 10));
  for (size_t i = mark; i < guest->count(); ++i) {
    EXPECT_EQ(seq_of(guest->messages()[i].message), 1u) << describe(guest->messages()[i].message);
  }
  // The first frame after a seek holds one entry, as a fresh iterator's does.
  auto frames = data_frames(*guest, 1, 1);
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames[0].data.size(), 2u);
}

TEST(HostSeek, NoOldSeqFrameFollowsANewSeqFrameWhileReadingAhead) {
  for (int round = 0; round < 20; ++round) {
    Rig<> rig;
    seed_big(rig.db, 3000, 20);
    auto guest = rig.guest();
    guest->send(iterator_request(1));
    ASSERT_TRUE(guest->wait_for_count(1));
    guest->send(proto::IteratorAck{1, 0, 1});  // read-ahead races the seek
    guest->send(proto::IteratorSeek{1, 1, big_key(2500)});
    auto drained = drain_iterator(*guest, 1, 1, 1);
    EXPECT_TRUE(drained.ended);
    EXPECT_EQ(drained.items, expected_items(2500, 3000, 20));
    bool seen_new = false;
    for (const auto& received : guest->messages()) {
      auto seq = seq_of(received.message);
      ASSERT_TRUE(seq);
      if (*seq == 1) seen_new = true;
      if (*seq == 0) {
        ASSERT_FALSE(seen_new) << "round " << round << ": seq 0 after seq 1" << guest->transcript();
      }
    }
  }
}

TEST(HostSeek, AcksWithAStaleSeqAreIgnored) {
  Rig<> rig;
  seed_big(rig.db, 1000, 10);
  auto guest = rig.guest();
  guest->send(iterator_request(1));
  ASSERT_TRUE(guest->wait_for_count(1));
  guest->send(proto::IteratorSeek{1, 1, big_key(500)});
  ASSERT_TRUE(guest->wait_for_count(2));
  ASSERT_TRUE(idle_with(guest->session(), 1, 1));
  auto before = *iterator_info(guest->session(), 1);
  EXPECT_EQ(before.seq, 1u);

  guest->send(proto::IteratorAck{1, 0, 999});  // stale: for seq 0
  auto after = iterator_info(guest->session(), 1);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->unacknowledged_frames, 1u);
  EXPECT_EQ(after->consumed, before.consumed);
  EXPECT_FALSE(after->busy) << "a stale ack must not start a read";
  guest->send(proto::IteratorAck{1, 7, 999});  // a seq from the future is as stale
  EXPECT_FALSE(iterator_info(guest->session(), 1)->busy);
  guest->poll();
  EXPECT_EQ(guest->count(), 2u);

  guest->send(proto::IteratorAck{1, 1, 1});  // the current seq: reading resumes
  auto drained = drain_iterator(*guest, 1, 1, 1, 2, 2);
  EXPECT_TRUE(drained.ended);
  EXPECT_EQ(drained.items, expected_items(501, 1000, 10));
}

TEST(HostSeek, ASeekWhileTheIteratorIsBeingCreatedOrReadWinsAndOnlyTheLastSeekCounts) {
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  rig.db.nextv_gate.close();
  guest->send(iterator_request(1));
  ASSERT_TRUE(rig.db.nextv_gate.wait_for_waiting(1));  // the first read is held
  guest->send(proto::IteratorSeek{1, 1, "b"});
  guest->send(proto::IteratorSeek{1, 2, "c"});
  guest->send(proto::IteratorSeek{1, 3, "d"});
  rig.db.nextv_gate.open();
  auto drained = drain_iterator(*guest, 1, 3);
  EXPECT_TRUE(drained.ended);
  EXPECT_EQ(drained.items, (std::vector<std::string>{"d", "4", "e", "5"}));
  for (const auto& received : guest->messages()) EXPECT_EQ(seq_of(received.message), 3u) << describe(received.message);
}

TEST(HostSeek, SeekInTheSameChunkAsTheIteratorStartsThere) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->feed(FakeGuest::frame(iterator_request(1)) + FakeGuest::frame(proto::IteratorSeek{1, 1, "c"}));
  auto drained = drain_iterator(*guest, 1, 1);
  EXPECT_EQ(drained.items, (std::vector<std::string>{"c", "3", "d", "4", "e", "5"}));
  bool seen_new = false;
  for (const auto& received : guest->messages()) {
    if (seq_of(received.message) == 1u) seen_new = true;
    if (seq_of(received.message) == 0u) {
      EXPECT_FALSE(seen_new);
    }
  }
}

TEST(HostSeek, ReverseSeekLandsAtOrBeforeTheTarget) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  auto options = iter_options();
  options.reverse = true;
  guest->send(iterator_request(1, options));
  ASSERT_TRUE(guest->wait_for_count(1));
  guest->send(proto::IteratorSeek{1, 1, "cc"});
  auto drained = drain_iterator(*guest, 1, 1);
  EXPECT_EQ(keys_of(drained.items), (std::vector<std::string>{"c", "b", "a"}));
}

TEST(HostSeek, SeekOutsideTheRangeEndsAndASeekBackRestarts) {
  // abstract-level: a target outside the iterator's range makes it reach its
  // natural end (until the next seek).
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(iterator_request(1, range(std::nullopt, std::string("b"), std::nullopt, std::string("d"))));
  ASSERT_TRUE(guest->wait_for_count(1));
  guest->send(proto::IteratorSeek{1, 1, "z"});
  ASSERT_TRUE(guest->wait_until([&] { return has_end(*guest, 1, 1); }));
  EXPECT_TRUE(data_frames(*guest, 1, 1).empty());
  guest->send(proto::IteratorSeek{1, 2, "a"});
  ASSERT_TRUE(guest->wait_until([&] { return has_end(*guest, 1, 2); }));
  EXPECT_TRUE(data_frames(*guest, 1, 2).empty());
  guest->send(proto::IteratorSeek{1, 3, "bb"});  // back inside: an ended iterator restarts
  auto drained = drain_iterator(*guest, 1, 3);
  EXPECT_TRUE(drained.ended);
  EXPECT_EQ(keys_of(drained.items), (std::vector<std::string>{"c", "d"}));
}

TEST(HostSeek, SeekOnAnUnknownIteratorIsIgnored) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(proto::IteratorSeek{9, 1, "c"});
  guest->send(proto::IteratorAck{9, 1, 1});
  guest->send(proto::GetRequest{1, "a"});
  EXPECT_EQ(guest->callback(1).value, std::optional<std::string>("1"));
  EXPECT_EQ(guest->count(), 1u);
  EXPECT_TRUE(guest->session().failed().empty());
}

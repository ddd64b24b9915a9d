// Watches, through bytes: every commit after the watch's start that touches
// its range arrives in WatchData frames, in commit order, whoever wrote it;
// flow control holds a watcher to two unacknowledged frames, and one that
// falls behind the history is told LEVEL_WATCH_TOO_OLD.
#include "host_harness.hpp"

#include "many_level/sublevel.hpp"

using namespace host_test;

namespace {

using Texts = std::vector<std::string>;
using Seqs = std::vector<uint64_t>;

const proto::WatchStarted* started(FakeGuest& guest, uint32_t id) {
  auto* reply = guest.wait_for_message<proto::WatchStarted>(id);
  if (!reply) ADD_FAILURE() << "watch " << id << " did not start; received:" << guest.transcript();
  return reply;
}

std::optional<std::string> watch_error(FakeGuest& guest, uint32_t id) {
  auto* reply = guest.wait_for_message<proto::WatchError>(id);
  if (!reply) return std::nullopt;
  return reply->error;
}

DatabaseOptions raw_with_history(size_t max_commits) {
  DatabaseOptions options{"buffer", "buffer"};
  options.change_history.max_commits = max_commits;
  return options;
}

// Watch `id` on a guest that said Hello, started at the database's sequence now.
uint64_t start_watch(FakeGuest& guest, uint32_t id, proto::WatchRange range = {}) {
  guest.send(watch_request(id, std::move(range)));
  auto* reply = started(guest, id);
  return reply ? reply->seq : 0;
}

}  // namespace

TEST(HostWatch, EveryKindOfWriteFromThisSession) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  say_hello(*guest);
  uint64_t start = start_watch(*guest, 1);
  EXPECT_EQ(start, last_seq(rig.db));
  // Each waits for the one before, so none is committed with another.
  guest->send(proto::PutRequest{1, "f", std::string("6")});
  EXPECT_FALSE(guest->callback(1).error);
  guest->send(proto::DelRequest{2, "a"});
  EXPECT_FALSE(guest->callback(2).error);
  proto::BatchRequest batch{3, {}};
  batch.ops.push_back({proto::BatchOp::Type::put, "g", std::string("7")});
  batch.ops.push_back({proto::BatchOp::Type::del, "b", std::nullopt});
  guest->send(batch);
  EXPECT_FALSE(guest->callback(3).error);
  proto::ClearOptions clear;
  clear.gte = "c";
  clear.lt = "e";
  guest->send(proto::ClearRequest{4, clear});
  EXPECT_FALSE(guest->callback(4).error);
  auto watched = follow_watch_to(*guest, 1, start + 4);
  EXPECT_FALSE(watched.error);
  EXPECT_EQ(watched.texts(), (Texts{"put f=6", "del a", "put g=7, del b", "del c, del d"}))
      << "a clear arrives as the deletes it did";
  EXPECT_EQ(watched.seqs(), (Seqs{start + 1, start + 2, start + 3, start + 4}));

  // Writes pipelined together are committed as one batch, in order.
  guest->send(proto::PutRequest{5, "h", std::string("8")});
  guest->send(proto::DelRequest{6, "e"});
  guest->send(proto::PutRequest{7, "h", std::string("9")});
  EXPECT_FALSE(guest->callback(7).error);
  auto more = follow_watch(*guest, 1, [&](const Watched& w) { return w.commits.size() > 4 && w.commits.back().seq == last_seq(rig.db); });
  std::string ops;
  for (size_t i = 4; i < more.commits.size(); ++i) ops += (ops.empty() ? "" : ", ") + describe(more.commits[i]);
  EXPECT_EQ(ops, "put h=8, del e, put h=9");
}

TEST(HostWatch, WritesFromAnotherSessionAndFromTheHostProcess) {
  Rig<> rig;
  auto watcher = rig.guest();
  auto writer = rig.guest();  // a Node guest, say: no Hello
  say_hello(*watcher);
  uint64_t start = start_watch(*watcher, 9);
  writer->send(proto::PutRequest{1, "x", std::string("1")});
  EXPECT_FALSE(writer->callback(1).error);
  rig.db.put("y", "2", kRawWrite);
  rig.db.batch({BatchOperation::put("z", "3"), BatchOperation::del("x")}, kRawWrite);
  rig.db.del("y", kRawWrite);
  auto watched = follow_watch_to(*watcher, 9, start + 4);
  EXPECT_EQ(watched.texts(), (Texts{"put x=1", "put y=2", "put z=3, del x", "del y"}));
  EXPECT_EQ(watched.seqs(), (Seqs{start + 1, start + 2, start + 3, start + 4}));
  EXPECT_LE(watched.max_unacknowledged, 2u);
  writer->poll();
  EXPECT_EQ(writer->count(), 1u) << "the writer never said Hello: it gets nothing of the extension";
}

TEST(HostWatch, OnlyTheRangeAndOnlyCommitsThatTouchIt) {
  Rig<> rig;
  auto guest = rig.guest();
  say_hello(*guest);
  uint64_t start = start_watch(*guest, 1, watch_range("b", "d"));
  rig.db.batch({BatchOperation::put("a", "1"), BatchOperation::put("b", "2"), BatchOperation::put("c", "3"),
                BatchOperation::put("d", "4")},
               kRawWrite);
  rig.db.put("z", "skipped", kRawWrite);
  rig.db.del("a", kRawWrite);
  rig.db.put("bz", "5", kRawWrite);
  auto watched = follow_watch_to(*guest, 1, start + 4);
  EXPECT_EQ(watched.texts(), (Texts{"put b=2, put c=3", "put bz=5"}));
  EXPECT_EQ(watched.seqs(), (Seqs{start + 1, start + 4}));
  // Commits out of range still move the cursor on (once nothing holds it).
  guest->send(proto::WatchAck{1, start + 1});
  guest->send(proto::WatchAck{1, start + 4});
  rig.db.put("zz", "skipped", kRawWrite);
  EXPECT_TRUE(eventually([&] {
    auto info = watch_info(guest->session(), 1);
    return info && info->seq == start + 5;
  }));
  auto other = rig.guest();
  say_hello(*other);
  proto::WatchRange gt_lte;
  gt_lte.gt = "b";
  gt_lte.lte = "c";
  uint64_t second = start_watch(*other, 2, gt_lte);
  rig.db.batch({BatchOperation::put("b", "x"), BatchOperation::put("bb", "y"), BatchOperation::put("c", "z"),
                BatchOperation::put("ca", "w")},
               kRawWrite);
  EXPECT_EQ(follow_watch_to(*other, 2, second + 1).texts(), (Texts{"put bb=y, put c=z"}));
}

TEST(HostWatch, SinceResumesWithEveryCommitAfterItExactlyOnce) {
  Rig<> rig;
  auto guest = rig.guest();
  say_hello(*guest);
  uint64_t start = start_watch(*guest, 1);
  for (int i = 0; i < 5; ++i) rig.db.put("k" + std::to_string(i), std::to_string(i), kRawWrite);
  auto first = follow_watch_to(*guest, 1, start + 5);
  ASSERT_EQ(first.commits.size(), 5u);
  uint64_t delivered = first.commits[2].seq;  // the guest had delivered three when its stream died
  guest->session().end();
  for (int i = 5; i < 8; ++i) rig.db.put("k" + std::to_string(i), std::to_string(i), kRawWrite);

  auto again = rig.guest();
  say_hello(*again);
  again->send(watch_request(1, {}, delivered));
  auto* reply = started(*again, 1);
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(reply->seq, delivered);
  auto resumed = follow_watch_to(*again, 1, start + 8);
  EXPECT_EQ(resumed.seqs(), (Seqs{start + 4, start + 5, start + 6, start + 7, start + 8}));
  EXPECT_EQ(resumed.texts(), (Texts{"put k3=3", "put k4=4", "put k5=5", "put k6=6", "put k7=7"}));

  // since = the sequence now: nothing old, only what comes next.
  auto now = rig.guest();
  say_hello(*now);
  now->send(watch_request(2, {}, last_seq(rig.db)));
  ASSERT_NE(started(*now, 2), nullptr);
  rig.db.put("last", "1", kRawWrite);
  EXPECT_EQ(follow_watch_to(*now, 2, last_seq(rig.db)).texts(), (Texts{"put last=1"}));
}

TEST(HostWatch, ASinceOutsideTheHistoryIsTooOld) {
  Rig<> rig(HostOptions{}, 4, raw_with_history(10));
  auto guest = rig.guest();
  say_hello(*guest);
  start_watch(*guest, 1);  // the feed records from here
  for (int i = 0; i < 30; ++i) rig.db.put("k", std::to_string(i), kRawWrite);
  guest->send(watch_request(2, {}, 5));
  EXPECT_EQ(watch_error(*guest, 2), std::optional<std::string>("LEVEL_WATCH_TOO_OLD"));
  guest->send(watch_request(3, {}, last_seq(rig.db) + 1));
  EXPECT_EQ(watch_error(*guest, 3), std::optional<std::string>("LEVEL_WATCH_TOO_OLD")) << "from the future";
  guest->send(watch_request(4, {}, last_seq(rig.db) - 10));
  ASSERT_NE(started(*guest, 4), nullptr) << "the oldest still kept";
  EXPECT_EQ(follow_watch_to(*guest, 4, last_seq(rig.db)).commits.size(), 10u);
  EXPECT_EQ(guest->find<proto::WatchStarted>(2), nullptr);
}

TEST(HostWatch, AtMostTwoFramesUnacknowledged) {
  HostOptions options;
  options.watch_frame_commits = 1;  // a frame a commit, to count them
  Rig<> rig(options);
  auto guest = rig.guest();
  say_hello(*guest);
  uint64_t start = start_watch(*guest, 1);
  for (int i = 0; i < 10; ++i) rig.db.put("k", std::to_string(i), kRawWrite);
  ASSERT_TRUE(eventually([&] {
    auto info = watch_info(guest->session(), 1);
    return info && info->unacknowledged_frames == 2;
  }));
  rig.db.put("k", "more", kRawWrite);  // wakes the pump again: still nothing
  guest->poll();
  auto frames = watch_frames(*guest, 1);
  ASSERT_EQ(frames.size(), 2u) << guest->transcript();
  EXPECT_EQ(frames[1].commits.at(0).seq, start + 2);
  EXPECT_EQ(watch_info(guest->session(), 1)->seq, start + 2) << "the cursor waits too";

  // An ack of neither frame (an old seq) releases nothing; a right one releases one.
  guest->send(proto::WatchAck{1, start});
  guest->send(proto::WatchAck{1, start + 1});
  ASSERT_TRUE(guest->wait_until([&] { return watch_frames(*guest, 1).size() == 3; }));
  ASSERT_TRUE(eventually([&] { return watch_info(guest->session(), 1)->unacknowledged_frames == 2; }));
  guest->poll();
  EXPECT_EQ(watch_frames(*guest, 1).size(), 3u);
  EXPECT_EQ(watch_frames(*guest, 1)[2].commits.at(0).seq, start + 3);

  // Acking as it goes, the watcher gets the rest in order.
  guest->send(proto::WatchAck{1, start + 2});
  guest->send(proto::WatchAck{1, start + 3});
  auto rest = follow_watch_to(*guest, 1, start + 11, guest->count());
  EXPECT_EQ(rest.seqs(), (Seqs{start + 4, start + 5, start + 6, start + 7, start + 8, start + 9, start + 10, start + 11}));
  EXPECT_LE(rest.max_unacknowledged, 2u);
}

TEST(HostWatch, FramesAreBoundedButAHugeCommitGoesWhole) {
  HostOptions options;
  options.watch_frame_bytes = 1024;
  Rig<> rig(options);
  auto guest = rig.guest();
  say_hello(*guest);
  uint64_t start = start_watch(*guest, 1);
  for (int i = 0; i < 40; ++i) rig.db.put(big_key(i), std::string(100, 'v'), kRawWrite);
  std::vector<BatchOperation> huge;
  for (int i = 0; i < 100; ++i) huge.push_back(BatchOperation::put(big_key(1000 + i), std::string(100, 'h')));
  rig.db.batch(huge, kRawWrite);
  auto watched = follow_watch_to(*guest, 1, start + 41);
  EXPECT_EQ(watched.commits.size(), 41u);
  EXPECT_EQ(watched.commits.back().ops.size(), 100u);
  auto frames = watch_frames(*guest, 1);
  EXPECT_GE(frames.size(), 5u);
  for (const auto& frame : frames) {
    size_t bytes = 0;
    for (const auto& commit : frame.commits) {
      for (const auto& op : commit.ops) bytes += op.key.size() + op.value.value_or("").size();
    }
    if (frame.commits.size() > 1) {
      EXPECT_LE(bytes, 1024u);
    }
  }
  EXPECT_EQ(frames.back().commits.size(), 1u) << "the huge commit, alone";
}

TEST(HostWatch, AWatcherThatNeverReadsStaysBoundedAndIsToldItIsTooOld) {
  const size_t history = 1000;
  HostOptions options;
  options.watch_frame_commits = 100;
  Rig<> rig(options, 4, raw_with_history(history));
  auto guest = rig.guest();
  say_hello(*guest);
  start_watch(*guest, 1);
  size_t received_before = guest->bytes_received();
  const std::string value(100, 'v');
  // Enough for two frames, and the host has sent them: the watcher is now
  // as far ahead as it will ever be, however many commits come.
  for (int i = 0; i < 300; ++i) rig.db.put(big_key(i), value, kRawWrite);
  ASSERT_TRUE(eventually([&] {
    auto info = watch_info(guest->session(), 1);
    return info && info->unacknowledged_frames == 2;
  }));
  size_t most_buffered = 0;
  for (int i = 300; i < 100000; ++i) {
    rig.db.put(big_key(i % 5000), value, kRawWrite);
    if (i % 1000 == 0) most_buffered = std::max(most_buffered, guest->session().stats().buffered_output);
  }
  ASSERT_TRUE(guest->wait_until([&] { return guest->find<proto::WatchError>(1) != nullptr; })) << guest->transcript();
  EXPECT_EQ(guest->find<proto::WatchError>(1)->error, "LEVEL_WATCH_TOO_OLD");
  EXPECT_EQ(watch_frames(*guest, 1).size(), 2u);
  // Two frames of at most 64 KiB of keys and values, plus their framing, and the WatchError.
  size_t bound = 2 * ((64 << 10) + 1000 * 16) + 64;
  EXPECT_LE(guest->bytes_received() - received_before, bound);
  EXPECT_LE(most_buffered, bound);
  EXPECT_TRUE(guest->session().stats().watches.empty()) << "the watch ended";
  EXPECT_TRUE(eventually([&] { return rig.db.change_source()->feed->listeners() == 0; }))
      << "and with it the subscription";
  EXPECT_LE(rig.db.change_source()->feed->history_commits(), history);
}

TEST(HostWatch, AWatcherOutrunByTheWritersIsToldItIsTooOld) {
  Rig<> rig(HostOptions{}, 4, raw_with_history(100));
  auto guest = rig.guest();
  say_hello(*guest);
  start_watch(*guest, 1);
  // However far the pump got before the history moved on, the watch ends
  // with LEVEL_WATCH_TOO_OLD, and what it was sent is in order.
  for (int i = 0; i < 20000; ++i) rig.db.put("k", std::to_string(i), kRawWrite);
  auto watched = follow_watch(*guest, 1, [](const Watched&) { return false; });
  EXPECT_EQ(watched.error, std::optional<std::string>("LEVEL_WATCH_TOO_OLD"));
  for (size_t i = 1; i < watched.commits.size(); ++i) EXPECT_EQ(watched.commits[i].seq, watched.commits[i - 1].seq + 1);
}

TEST(HostWatch, LimitIdInUseAndNoChangeFeed) {
  HostOptions options;
  options.max_watches = 2;
  Rig<> rig(options);
  auto guest = rig.guest();
  say_hello(*guest);
  start_watch(*guest, 1);
  start_watch(*guest, 2);
  guest->send(watch_request(2));
  guest->send(watch_request(3));
  EXPECT_EQ(watch_error(*guest, 2), std::optional<std::string>("LEVEL_INVALID_ARGUMENT"));
  EXPECT_EQ(watch_error(*guest, 3), std::optional<std::string>("LEVEL_LIMIT_REACHED"));
  guest->send(proto::WatchClose{1});
  guest->send(watch_request(4));
  EXPECT_NE(started(*guest, 4), nullptr) << "a close makes room";

  Rig<ControlledDatabase> plain;
  auto other = plain.guest();
  say_hello(*other);
  other->send(watch_request(1));
  EXPECT_EQ(watch_error(*other, 1), std::optional<std::string>("LEVEL_NOT_SUPPORTED"));
}

TEST(HostWatch, CloseAndTheStreamsEndStopThemAndUnsubscribe) {
  Rig<> rig;
  auto guest = rig.guest();
  say_hello(*guest);
  uint64_t start = start_watch(*guest, 1);
  start_watch(*guest, 2, watch_range("a", "b"));
  auto& feed = *rig.db.change_source()->feed;
  EXPECT_EQ(feed.listeners(), 1u) << "one subscription a session";
  rig.db.put("a", "1", kRawWrite);
  follow_watch_to(*guest, 1, start + 1);
  guest->send(proto::WatchClose{1});
  guest->send(proto::WatchClose{7});  // unknown: ignored
  ASSERT_TRUE(eventually([&] { return guest->session().stats().watches.size() == 1; }));
  rig.db.put("a", "2", kRawWrite);
  size_t from = guest->count();
  auto second = follow_watch_to(*guest, 2, start + 2);
  EXPECT_EQ(second.texts().back(), "put a=2");
  guest->poll();
  size_t frames_for_1 = 0;
  for (size_t i = from; i < guest->count(); ++i) {
    if (auto* data = std::get_if<proto::WatchData>(&guest->messages()[i].message); data && data->id == 1) ++frames_for_1;
  }
  EXPECT_EQ(frames_for_1, 0u) << "nothing after the close";
  guest->send(proto::WatchClose{2});
  EXPECT_TRUE(eventually([&] { return feed.listeners() == 0; })) << "no watch left: no listener";

  start_watch(*guest, 3);
  start_watch(*guest, 4);
  EXPECT_EQ(feed.listeners(), 1u);
  guest->session().end();
  EXPECT_EQ(feed.listeners(), 0u);
  EXPECT_TRUE(guest->session().stats().watches.empty());
  rig.db.put("after", "end", kRawWrite);  // reaches no one, harms nothing
}

TEST(HostWatch, ManyWatchersOnManySessionsEachGetEveryCommitInOrder) {
  Rig<> rig;
  std::vector<std::unique_ptr<FakeGuest>> guests;
  std::vector<uint64_t> starts;
  for (int i = 0; i < 4; ++i) {
    guests.push_back(rig.guest());
    say_hello(*guests.back());
    starts.push_back(start_watch(*guests.back(), 1));
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&rig, w] {
      for (int i = 0; i < 300; ++i) rig.db.put("w" + std::to_string(w) + "-" + std::to_string(i), "v", kRawWrite);
    });
  }
  for (auto& writer : writers) writer.join();
  uint64_t end = last_seq(rig.db);
  for (size_t g = 0; g < guests.size(); ++g) {
    auto watched = follow_watch_to(*guests[g], 1, end);
    ASSERT_EQ(watched.commits.size(), end - starts[g]) << g;
    for (size_t i = 0; i < watched.commits.size(); ++i) EXPECT_EQ(watched.commits[i].seq, starts[g] + 1 + i);
    EXPECT_LE(watched.max_unacknowledged, 2u);
  }
}

TEST(HostWatch, ASublevelHostWatchesItsRangeOfTheParentsFeedWithoutThePrefix) {
  MemoryDatabase parent(DatabaseOptions{"buffer", "buffer"});
  auto sublevel = parent.sublevel("s");
  Host host(*sublevel);
  FakeGuest guest(host.create_session());
  auto reply = say_hello(guest);
  EXPECT_NE(std::find(reply.features.begin(), reply.features.end(), "watch"), reply.features.end());
  uint64_t start = start_watch(guest, 1);
  EXPECT_EQ(start, last_seq(parent));
  guest.send(proto::PutRequest{1, "a", std::string("1")});
  EXPECT_FALSE(guest.callback(1).error);
  EXPECT_EQ(parent.get("!s!a", kRawRead), "1");
  parent.put("x", "outside", kRawWrite);
  parent.put("!t!a", "another sublevel", kRawWrite);
  parent.batch({BatchOperation::put("!s!b", "2"), BatchOperation::put("y", "outside")}, kRawWrite);
  auto watched = follow_watch_to(guest, 1, start + 4);
  EXPECT_EQ(watched.texts(), (Texts{"put a=1", "put b=2"}));
  EXPECT_EQ(watched.seqs(), (Seqs{start + 1, start + 4}));
  guest.session().end();
}

// Remote watches: the host's change feed over the wire. Every kind of write,
// from this guest, another guest and the host's own process, arrives in
// commit order with only the operations inside the range; one WatchAck goes
// per WatchData frame; close() stops it; and a retrying guest resumes after
// every cut with every commit exactly once and in order.
#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "extension_harness.hpp"

namespace guest_tests {
namespace {

class Watches : public GuestTest {
 protected:
  static GuestOptions with_retry() {
    GuestOptions options;
    options.retry = true;
    return options;
  }

  static WatchOptions raw(WatchOptions options = {}) {
    options.key_encoding = "buffer";
    options.value_encoding = "buffer";
    return options;
  }
};

using Ops = std::vector<BatchOperation>;

TEST_F(Watches, EveryKindOfWrite) {
  Remote remote;
  fill(remote.db, {{"old", "0"}});
  Guest guest;
  FrameLog log(guest);
  Link link(guest, remote.host);
  WatchLog watched;
  auto watch = guest.watch(raw(), watched.callback());
  ASSERT_TRUE(eventually([&] { return !link.host_session().stats().watches.empty(); }));
  const uint64_t start = remote.db.change_source()->feed->last_seq();

  guest.put("a", "1");
  guest.del("old");
  guest.batch({BatchOperation::put("b", "2"), BatchOperation::del("a"), BatchOperation::put("c", "")});
  guest.batch().put("d", "4").del("b").write();
  ClearOptions clear;
  clear.gte = "c";
  guest.clear(clear);
  guest.put(std::string("\0\xff", 2), std::string("\xff\0", 2), kRawWrite);

  ASSERT_TRUE(watched.wait_for_seq(start + 6));
  auto commits = watched.commits();
  ASSERT_EQ(commits.size(), 6u);
  for (size_t i = 0; i < commits.size(); ++i) EXPECT_EQ(commits[i].seq, start + 1 + i);
  EXPECT_EQ(commits[0].operations, (Ops{BatchOperation::put("a", "1")}));
  EXPECT_EQ(commits[1].operations, (Ops{BatchOperation::del("old")}));
  EXPECT_EQ(commits[2].operations,
            (Ops{BatchOperation::put("b", "2"), BatchOperation::del("a"), BatchOperation::put("c", "")}));
  EXPECT_EQ(commits[3].operations, (Ops{BatchOperation::put("d", "4"), BatchOperation::del("b")}));
  EXPECT_EQ(commits[4].operations, (Ops{BatchOperation::del("c"), BatchOperation::del("d")}));  // what clear deleted
  EXPECT_EQ(commits[5].operations, (Ops{BatchOperation::put(std::string("\0\xff", 2), std::string("\xff\0", 2))}));
  EXPECT_EQ(watch->seq(), start + 6);
  EXPECT_TRUE(watched.errors().empty());

  auto requests = log.sent<proto::WatchRequest>();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_FALSE(requests[0].since.has_value());
  auto started = log.received<proto::WatchStarted>();
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].seq, start);
  // One ack per frame, naming its last commit.
  ASSERT_TRUE(eventually([&] { return log.sent<proto::WatchAck>().size() == log.received<proto::WatchData>().size(); }));
  auto data = log.received<proto::WatchData>();
  auto acks = log.sent<proto::WatchAck>();
  for (size_t i = 0; i < data.size(); ++i) {
    EXPECT_EQ(acks[i].id, requests[0].id);
    EXPECT_EQ(acks[i].seq, data[i].commits.back().seq);
  }
}

TEST_F(Watches, WritesOfOtherGuestsAndOfTheHostsProcess) {
  Remote remote;
  Guest guest;
  Guest other;
  Link link(guest, remote.host);
  Link other_link(other, remote.host);
  WatchLog watched;
  auto watch = guest.watch(raw(), watched.callback());
  ASSERT_TRUE(eventually([&] { return !link.host_session().stats().watches.empty(); }));
  other.put("from", "other guest");
  remote.db.put("from", "host process");
  remote.db.batch({BatchOperation::del("from")});
  ASSERT_TRUE(watched.wait_for_commits(3));
  EXPECT_EQ(watched.operations(), (Ops{BatchOperation::put("from", "other guest"),
                                       BatchOperation::put("from", "host process"), BatchOperation::del("from")}));
}

// Only the operations inside the range; commits with none are not sent.
// Keys and values are decoded with the watch's encodings; a sublevel's watch
// has its prefix taken off.
TEST_F(Watches, RangesEncodingsAndSublevels) {
  Remote remote;
  GuestOptions options;
  options.encodings = DatabaseOptions{"utf8", "json"};
  Guest guest(options);
  Link link(guest, remote.host);
  WatchLog ranged;
  WatchOptions range_options;
  range_options.gte = "b";
  range_options.lt = "d";
  auto ranged_watch = guest.watch(range_options, ranged.callback());
  WatchLog hexed;
  WatchOptions hex_options;
  hex_options.key_encoding = "hex";
  hex_options.gt = "63";  // "c"
  auto hexed_watch = guest.watch(hex_options, hexed.callback());
  auto sub = guest.sublevel("s");
  WatchLog subbed;
  auto sub_watch = sub->watch({}, subbed.callback());
  ASSERT_TRUE(eventually([&] { return link.host_session().stats().watches.size() == 3; }));

  guest.batch({BatchOperation::put("a", "1"), BatchOperation::put("b", "{\"x\":2}"), BatchOperation::put("d", "4")});
  guest.put("z", "5");  // outside the first watch's range: not sent to it
  guest.put("c", "[3]");
  sub->put("k", "\"v\"");
  sub->del("k");

  ASSERT_TRUE(subbed.wait_for_commits(2));
  ASSERT_TRUE(ranged.wait_for_commits(2));
  ASSERT_TRUE(hexed.wait_for_commits(2));
  auto commits = ranged.commits();
  EXPECT_EQ(commits[0].operations, (Ops{BatchOperation::put("b", "{\"x\":2}")}));
  EXPECT_EQ(commits[1].operations, (Ops{BatchOperation::put("c", "[3]")}));
  EXPECT_EQ(commits[1].seq, commits[0].seq + 2);
  EXPECT_EQ(subbed.operations(), (Ops{BatchOperation::put("k", "\"v\""), BatchOperation::del("k")}));
  EXPECT_EQ(hexed.operations(), (Ops{BatchOperation::put("64", "4"), BatchOperation::put("7a", "5")}));  // d, z
  EXPECT_TRUE(ranged.errors().empty());
}

// watch() returns once the host started the watch: seq() is then the host's
// sequence, a point to resume from. From a watch's own callback (the
// stream's thread), watch() does not wait for the answer that very thread
// would deliver: it returns at once, and the watch starts all the same.
TEST_F(Watches, WatchReturnsOnceTheHostStartedIt) {
  Remote remote;
  Guest guest;
  Link link(guest, remote.host);
  guest.put("x", "1");
  remote.db.put("y", "2");
  const uint64_t now = remote.db.change_source()->feed->last_seq();
  WatchLog watched;
  auto watch = guest.watch(raw(), watched.callback());
  EXPECT_EQ(watch->seq(), now);
  EXPECT_EQ(link.host_session().stats().watches.size(), 1u);

  WatchLog inner_log;
  std::unique_ptr<Watch> inner;
  std::atomic<bool> made{false};
  auto outer = guest.watch(raw(), [&](std::optional<Error> error, const Commit&) {
    if (error || made) return;
    inner = guest.watch(raw(), inner_log.callback());
    made = true;
  });
  guest.put("a", "1");
  ASSERT_TRUE(eventually([&] { return made.load(); }));
  guest.put("b", "2");
  ASSERT_TRUE(inner_log.wait_for_commits(1));
  EXPECT_EQ(inner_log.operations(), (Ops{BatchOperation::put("b", "2")}));
  outer->close();  // no callback runs after this: `inner` is ours again
  inner.reset();
  EXPECT_TRUE(watched.errors().empty());
}

// seq() is where to resume: watching again with it as `since` gets exactly
// the commits made in between.
TEST_F(Watches, ResumeFromSeq) {
  Remote remote;
  Guest guest;
  Link link(guest, remote.host);
  WatchLog first;
  auto watch = guest.watch(raw(), first.callback());
  guest.put("a", "1");
  ASSERT_TRUE(first.wait_for_commits(1));
  const uint64_t seq = watch->seq();
  EXPECT_EQ(seq, first.commits().back().seq);
  watch->close();
  guest.put("b", "2");
  guest.put("c", "3");
  WatchLog second;
  WatchOptions options = raw();
  options.since = seq;
  auto resumed = guest.watch(options, second.callback());
  EXPECT_GE(resumed->seq(), seq);  // `since` at once, later commits as they come
  ASSERT_TRUE(second.wait_for_commits(2));
  guest.put("d", "4");
  ASSERT_TRUE(second.wait_for_commits(3));
  EXPECT_EQ(second.operations(),
            (Ops{BatchOperation::put("b", "2"), BatchOperation::put("c", "3"), BatchOperation::put("d", "4")}));
  EXPECT_EQ(first.commits().size(), 1u);
}

TEST_F(Watches, TooOld) {
  DatabaseOptions small;
  small.change_history.max_commits = 5;
  Remote remote(HostOptions{}, small);
  Guest guest;
  Link link(guest, remote.host);
  for (int i = 0; i < 20; ++i) guest.put("k" + std::to_string(i), "v");
  WatchLog watched;
  WatchOptions options = raw();
  options.since = 1;
  auto watch = guest.watch(options, watched.callback());
  ASSERT_TRUE(watched.wait_for_error());
  EXPECT_EQ(watched.error_code(), codes::watch_too_old);
  EXPECT_TRUE(watched.commits().empty());
  ASSERT_EQ(guest.stats().watches.size(), 1u);  // errored, kept until closed
  EXPECT_TRUE(guest.stats().watches[0].errored);
  // From the future is too old as well: not this feed's.
  WatchLog future;
  options.since = 1000000;
  auto from_the_future = guest.watch(options, future.callback());
  ASSERT_TRUE(future.wait_for_error());
  EXPECT_EQ(future.error_code(), codes::watch_too_old);
  auto stats = guest.stats().watches;
  EXPECT_EQ(std::count_if(stats.begin(), stats.end(), [](const GuestWatchInfo& info) { return info.errored; }), 2);
  watch->close();
  EXPECT_EQ(guest.stats().watches.size(), 1u);
}

// close() sends WatchClose and stops deliveries, from any thread and from
// the callback itself.
TEST_F(Watches, Close) {
  Remote remote;
  Guest guest;
  FrameLog log(guest);
  Link link(guest, remote.host);
  WatchLog watched;
  auto watch = guest.watch(raw(), watched.callback());
  guest.put("a", "1");
  ASSERT_TRUE(watched.wait_for_commits(1));
  watch->close();
  ASSERT_EQ(log.sent<proto::WatchClose>().size(), 1u);
  EXPECT_EQ(log.sent<proto::WatchClose>()[0].id, log.sent<proto::WatchRequest>()[0].id);
  ASSERT_TRUE(eventually([&] { return link.host_session().stats().watches.empty(); }));
  guest.put("b", "2");
  EXPECT_EQ(guest.get("b"), "2");  // a round trip after the write: anything sent has come
  EXPECT_EQ(watched.calls(), 1u);
  EXPECT_TRUE(guest.stats().watches.empty());
  watch->close();
  EXPECT_EQ(log.sent<proto::WatchClose>().size(), 1u);

  // From its own callback, in the middle of a frame: nothing after it.
  std::atomic<int> calls{0};
  std::unique_ptr<Watch> self_closing;
  self_closing = guest.watch(raw(), [&](std::optional<Error> error, const Commit&) {
    if (error) return;
    ++calls;
    self_closing->close();
  });
  ASSERT_TRUE(eventually([&] { return link.host_session().stats().watches.size() == 1; }));
  guest.batch({BatchOperation::put("c", "3")});
  remote.db.put("d", "4");
  remote.db.put("e", "5");
  ASSERT_TRUE(eventually([&] { return calls.load() >= 1; }));
  ASSERT_TRUE(eventually([&] { return link.host_session().stats().watches.empty(); }));
  guest.put("f", "6");
  EXPECT_EQ(guest.get("f"), "6");
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(Watches, WithoutRetryALostConnectionEndsThem) {
  Remote remote;
  Guest guest;
  auto link = std::make_unique<Link>(guest, remote.host);
  WatchLog watched;
  auto watch = guest.watch(raw(), watched.callback());
  guest.put("a", "1");
  ASSERT_TRUE(watched.wait_for_commits(1));
  link.reset();
  ASSERT_TRUE(watched.wait_for_error());
  EXPECT_EQ(watched.error_code(), codes::connection_lost);
  link = std::make_unique<Link>(guest, remote.host);
  guest.put("b", "2");
  EXPECT_EQ(guest.get("b"), "2");
  EXPECT_EQ(watched.calls(), 2u);  // one commit, one error, nothing after
  EXPECT_TRUE(link->host_session().stats().watches.empty());
  EXPECT_EQ(watch->seq(), watched.commits().back().seq);  // where to resume by hand
}

TEST_F(Watches, ClosingTheGuestEndsThem) {
  Remote remote;
  Guest guest;
  Link link(guest, remote.host);
  WatchLog watched;
  auto watch = guest.watch(raw(), watched.callback());
  auto sub = guest.sublevel("s");
  WatchLog subbed;
  auto sub_watch = sub->watch({}, subbed.callback());
  guest.close();
  EXPECT_EQ(watched.error_code(), codes::database_not_open);
  EXPECT_EQ(subbed.error_code(), codes::database_not_open);
  remote.db.put("a", "1");
  EXPECT_EQ(watched.calls(), 1u);
  EXPECT_EQ(error_code([&] { guest.watch(raw(), watched.callback()); }), codes::database_not_open);
}

TEST_F(Watches, AHostWhoseDatabaseHasNoFeed) {
  GatedRemote remote;  // a GatedDatabase publishes no commits
  Guest guest;
  Link link(guest, remote.host);
  // Made before or after the HelloReply came (a race): refused by the host
  // (through the callback) or at once.
  WatchLog early;
  std::unique_ptr<Watch> watch;
  const std::string code = error_code([&] { watch = guest.watch(raw(), early.callback()); });
  if (code == "no error") {
    ASSERT_TRUE(early.wait_for_error());
    EXPECT_EQ(early.error_code(), codes::not_supported);
  } else {
    EXPECT_EQ(code, codes::not_supported);
  }
  guest.put("a", "1");
  // Settled: refused at once, saying why.
  try {
    guest.watch(raw(), early.callback());
    ADD_FAILURE() << "watch() succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), codes::not_supported);
    EXPECT_EQ(e.message(), "the host's database has no change feed");
  }
}

TEST_F(Watches, Stats) {
  HostOptions host_options;
  host_options.watch_frame_commits = 1;
  Remote remote(host_options);
  Guest guest;
  FrameLog log(guest);
  Link link(guest, remote.host);
  WatchLog watched;
  auto watch = guest.watch(raw(), watched.callback());
  for (int i = 0; i < 5; ++i) guest.put("k" + std::to_string(i), "v");
  ASSERT_TRUE(watched.wait_for_commits(5));
  EXPECT_EQ(log.received<proto::WatchData>().size(), 5u);  // one commit a frame
  auto stats = guest.stats();
  ASSERT_EQ(stats.watches.size(), 1u);
  EXPECT_EQ(stats.watches[0].id, log.sent<proto::WatchRequest>().at(0).id);
  EXPECT_EQ(stats.watches[0].seq, watched.commits().back().seq);
  EXPECT_EQ(stats.watches[0].commits, 5u);
  EXPECT_EQ(stats.watches[0].unacknowledged_frames, 0u);
  EXPECT_FALSE(stats.watches[0].errored);
  ASSERT_TRUE(eventually([&] {
    auto host = link.host_session().stats().watches;
    return host.size() == 1 && host[0].unacknowledged_frames == 0 && host[0].seq == watched.commits().back().seq;
  }));
}

// A slow callback holds up its own watch (two frames unacknowledged at
// most), never the host's memory, and loses nothing.
TEST_F(Watches, ASlowCallbackIsFlowControlled) {
  HostOptions host_options;
  host_options.watch_frame_commits = 2;
  Remote remote(host_options);
  Guest guest;
  Link link(guest, remote.host);
  Gate gate(false);
  WatchLog watched;
  auto record = watched.callback();
  auto watch = guest.watch(raw(), [&](std::optional<Error> error, const Commit& commit) {
    gate.pass();
    record(std::move(error), commit);
  });
  ASSERT_TRUE(eventually([&] { return !link.host_session().stats().watches.empty(); }));
  for (int i = 0; i < 40; ++i) remote.db.put("k" + std::to_string(i), "v");
  ASSERT_TRUE(gate.wait_for_waiting(1));
  ASSERT_TRUE(eventually([&] {
    auto host = link.host_session().stats().watches;
    return host.size() == 1 && host[0].unacknowledged_frames == 2;
  }));
  EXPECT_LT(link.host_session().stats().watches[0].seq, remote.db.change_source()->feed->last_seq());
  gate.open();
  ASSERT_TRUE(watched.wait_for_commits(40));
  auto commits = watched.commits();
  for (size_t i = 1; i < commits.size(); ++i) EXPECT_EQ(commits[i].seq, commits[i - 1].seq + 1);
}

// ---- resuming across cuts --------------------------------------------------------

// A retrying guest's watch while its stream is cut again and again, by
// deliveries and by time, as writers commit from the host's process and from
// another guest: every commit exactly once, in order.
TEST_F(Watches, ResumeAcrossCutsExactlyOnceInOrder) {
  HostOptions host_options;
  host_options.watch_frame_commits = 7;
  Remote remote(host_options);
  Guest guest(with_retry());
  Guest writer;
  Link writer_link(writer, remote.host);
  std::mutex link_mutex;
  std::unique_ptr<Link> link;
  uint32_t seed = 0;
  auto reconnect = [&] {
    std::lock_guard<std::mutex> lock(link_mutex);
    link.reset();
    link = std::make_unique<Link>(guest, remote.host, PumpOptions{seed % 3 == 0 ? 5u : 0u, ++seed});
  };
  reconnect();

  WatchLog watched;
  WatchOptions options = raw();
  options.gte = "w";
  auto watch = guest.watch(options, watched.callback());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> lock(link_mutex);
    return !link->host_session().stats().watches.empty();
  }));
  const uint64_t start = watch->seq();  // 0, or where the host started it: a lower bound

  // Writers commit while the guest is at most 300 commits behind, so that
  // cuts fall while both write and deliver.
  constexpr int kCommits = 3000;
  std::thread writers([&] {
    for (int i = 0; i < kCommits; ++i) {
      if (!eventually([&] { return watched.commits().size() + 300 > static_cast<size_t>(i); })) return;
      const std::string key = "w" + std::to_string(100000 + i);
      if (i % 3 == 0) {
        writer.put(key, std::to_string(i));
      } else if (i % 7 == 0) {
        remote.db.batch({BatchOperation::put(key, std::to_string(i)), BatchOperation::put("a-outside", "x")});
      } else {
        remote.db.put(key, std::to_string(i));
      }
      if (i % 97 == 0) remote.db.put("a-outside", "not watched");  // commits the watch skips
    }
  });
  int cuts = 0;
  size_t seen_at_cut = 0;
  std::mt19937 random(11);
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (watched.commits().size() < static_cast<size_t>(kCommits) && watched.errors().empty()) {
    if (std::chrono::steady_clock::now() > deadline) {
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200 + random() % 1500));
    const size_t seen = watched.commits().size();
    if (seen >= seen_at_cut + 10 + random() % 40 || random() % 4 == 0) {
      reconnect();
      ++cuts;
      seen_at_cut = seen;
    }
  }
  writers.join();
  ASSERT_FALSE(timed_out) << watched.commits().size() << " commits of " << kCommits << " after " << cuts << " cuts";
  EXPECT_TRUE(watched.errors().empty()) << watched.errors().front().what();
  auto commits = watched.commits();
  ASSERT_EQ(commits.size(), static_cast<size_t>(kCommits));
  int64_t expected = 0;
  uint64_t previous = start;
  for (const auto& commit : commits) {
    ASSERT_GT(commit.seq, previous) << "a commit came twice or out of order";
    previous = commit.seq;
    ASSERT_EQ(commit.operations.size(), 1u);
    ASSERT_EQ(commit.operations[0].key, "w" + std::to_string(100000 + expected)) << "seq " << commit.seq;
    ASSERT_EQ(commit.operations[0].value, std::to_string(expected));
    ++expected;
  }
  EXPECT_GT(cuts, 30);
  RecordProperty("cuts", cuts);
  std::lock_guard<std::mutex> lock(link_mutex);
  link.reset();
}

// Resuming names the last commit delivered: the WatchRequest of each new
// stream carries `since`, and the host starts there.
TEST_F(Watches, EachNewStreamResumesAfterTheLastCommitDelivered) {
  Remote remote;
  Guest guest(with_retry());
  FrameLog log(guest);
  auto link = std::make_unique<Link>(guest, remote.host);
  WatchLog watched;
  auto watch = guest.watch(raw(), watched.callback());
  guest.put("a", "1");
  ASSERT_TRUE(watched.wait_for_commits(1));
  const uint64_t seq = watched.commits().back().seq;
  link.reset();
  remote.db.put("b", "2");  // while no stream is attached
  link = std::make_unique<Link>(guest, remote.host);
  ASSERT_TRUE(watched.wait_for_commits(2));
  auto requests = log.sent<proto::WatchRequest>();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].id, requests[0].id);
  EXPECT_EQ(requests[1].since, seq);
  auto names = log.sent_names();
  auto second_hello = std::find(std::next(names.begin()), names.end(), "hello");
  ASSERT_NE(second_hello, names.end());
  EXPECT_EQ(*std::next(second_hello), "watch");  // right behind the Hello
  EXPECT_EQ(watched.operations(), (Ops{BatchOperation::put("a", "1"), BatchOperation::put("b", "2")}));
}

}  // namespace
}  // namespace guest_tests

// Remote snapshots: snapshot() makes one on the host (in request order: it
// sees the guest's earlier writes), reads that name it carry its id and see
// the data as it was, close() releases it on the host, and a stream's end
// loses it: reads then fail with LEVEL_SNAPSHOT_NOT_OPEN, and its id is never
// sent on the new stream.
#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "extension_harness.hpp"

namespace guest_tests {
namespace {

class Snapshots : public GuestTest {
 protected:
  static GuestOptions with_retry() {
    GuestOptions options;
    options.retry = true;
    return options;
  }

  static std::vector<Entry> initial() {
    return {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {std::string("\0", 1), "nul"}, {"\xff", "ff"}};
  }

  static ReadOptions at(const std::shared_ptr<Snapshot>& snapshot) {
    ReadOptions options = kRawRead;
    options.snapshot = snapshot;
    return options;
  }

  static IteratorOptions iterate_at(const std::shared_ptr<Snapshot>& snapshot, IteratorOptions options = {}) {
    options.key_encoding = "buffer";
    options.value_encoding = "buffer";
    options.snapshot = snapshot;
    return options;
  }

  // Every kind of read at `snapshot` gives what `expected` holds.
  static void expect_reads(Database& db, const std::shared_ptr<Snapshot>& snapshot, MemoryDatabase& expected) {
    for (const std::string key : {"a", "b", "c", "d", "e", "z"}) {
      EXPECT_EQ(db.try_get(key, at(snapshot)), expected.try_get(key, kRawRead)) << key;
      EXPECT_EQ(db.has(key, at(snapshot)), expected.has(key, kRawRead)) << key;
    }
    const std::vector<std::string> keys{"z", "a", std::string("\0", 1), "e", "\xff", "c"};
    EXPECT_EQ(db.get_many(keys, at(snapshot)), expected.get_many(keys, kRawRead));
    EXPECT_EQ(db.has_many(keys, at(snapshot)), expected.has_many(keys, kRawRead));
    for (const auto& options : {range({}, {}, {}, {}), range({}, "b", "d", {}), range("a", {}, {}, "d", 2, true),
                                range({}, {}, {}, {}, -1, true)}) {
      EXPECT_EQ(db.iterator(iterate_at(snapshot, options))->all(), contents(expected, options)) << describe(options);
    }
  }
};

TEST_F(Snapshots, ReadsSeeTheDataAsItWas) {
  Remote remote;
  fill(remote.db, initial());
  Guest guest;
  Guest other;
  FrameLog log(guest);
  Link link(guest, remote.host);
  Link other_link(other, remote.host);
  guest.put("e", "5");  // before the snapshot: in it
  auto snapshot = guest.snapshot();
  ASSERT_TRUE(snapshot->is_open());

  MemoryDatabase then;
  fill(then, contents(remote.db));
  // Every write after it, from this guest, another one and the host's process.
  guest.put("a", "changed");
  guest.del("b");
  guest.batch({BatchOperation::put("f", "6"), BatchOperation::del("c")});
  other.put("d", "other");
  remote.db.put("g", "host");
  ClearOptions clear;
  clear.gte = "\xff";
  clear.key_encoding = "buffer";
  guest.clear(clear);

  expect_reads(guest, snapshot, then);
  // Reads without it see everything.
  EXPECT_EQ(guest.get("a"), "changed");
  EXPECT_FALSE(guest.has("b"));
  EXPECT_EQ(guest.get("g"), "host");

  // The async twins take it too.
  auto value = guest.get_async("a", at(snapshot));
  EXPECT_EQ(value.get(), "1");
  auto values = guest.get_many_async({"b", "f"}, at(snapshot));
  EXPECT_EQ(values.get(), (std::vector<std::optional<std::string>>{"2", std::nullopt}));

  // Every read named it on the wire.
  const uint32_t id = log.sent<proto::SnapshotRequest>().at(0).snapshot;
  size_t named = 0;
  for (const auto& get : log.sent<proto::GetRequest>()) named += get.snapshot == id;
  for (const auto& get_many : log.sent<proto::GetManyRequest>()) named += get_many.snapshot == id;
  for (const auto& has : log.sent<proto::HasRequest>()) named += has.snapshot == id;
  for (const auto& iterator : log.sent<proto::IteratorRequest>()) named += iterator.snapshot == id;
  EXPECT_EQ(named, 6u * 2 + 2 + 4 + 1 + 1);
  EXPECT_EQ(link.host_session().stats().snapshots, std::vector<uint32_t>{id});
  auto stats = guest.stats();
  ASSERT_EQ(stats.snapshots.size(), 1u);
  EXPECT_EQ(stats.snapshots[0].id, id);
  EXPECT_TRUE(stats.snapshots[0].open);
}

TEST_F(Snapshots, ThroughEncodingsAndSublevels) {
  Remote remote;
  GuestOptions options;
  options.encodings = DatabaseOptions{"utf8", "json"};
  Guest guest(options);
  Link link(guest, remote.host);
  auto sub = guest.sublevel("s");
  sub->put("k", "[1]");
  auto snapshot = sub->snapshot();  // the guest's, shared by its sublevels
  sub->put("k", "[2]");
  sub->put("l", "{}");
  ReadOptions read;
  read.snapshot = snapshot;
  EXPECT_EQ(sub->get("k", read), "[1]");
  EXPECT_FALSE(sub->has("l", read));
  EXPECT_EQ(sub->get("k"), "[2]");
  IteratorOptions iterate;
  iterate.snapshot = snapshot;
  EXPECT_EQ(sub->iterator(iterate)->all(), (std::vector<Entry>{{"k", "[1]"}}));
  EXPECT_EQ(guest.get("!s!k", read), "[1]");
  snapshot->close();
  EXPECT_EQ(error_code([&] { sub->get("k", read); }), codes::snapshot_not_open);
}

TEST_F(Snapshots, CloseReleasesItOnTheHost) {
  Remote remote;
  fill(remote.db, initial());
  Guest guest;
  FrameLog log(guest);
  Link link(guest, remote.host);
  auto snapshot = guest.snapshot();
  auto kept = guest.snapshot();
  auto iterator = guest.iterator(iterate_at(snapshot));
  EXPECT_EQ(iterator->next(), (Entry{std::string("\0", 1), "nul"}));
  guest.put("b", "changed");
  EXPECT_EQ(link.host_session().stats().snapshots.size(), 2u);

  snapshot->close();
  EXPECT_FALSE(snapshot->is_open());
  auto releases = log.sent<proto::SnapshotRelease>();
  ASSERT_EQ(releases.size(), 1u);
  EXPECT_EQ(releases[0].snapshot, log.sent<proto::SnapshotRequest>().at(0).snapshot);
  ASSERT_TRUE(eventually([&] { return link.host_session().stats().snapshots.size() == 1; }));
  EXPECT_EQ(error_code([&] { guest.get("a", at(snapshot)); }), codes::snapshot_not_open);
  EXPECT_EQ(error_code([&] { guest.iterator(iterate_at(snapshot)); }), codes::snapshot_not_open);
  // An iterator made before goes on to its end, at the snapshot.
  EXPECT_EQ(iterator->all(), (std::vector<Entry>{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"\xff", "ff"}}));
  snapshot->close();  // idempotent
  EXPECT_EQ(log.sent<proto::SnapshotRelease>().size(), 1u);
  EXPECT_EQ(guest.get("b", at(kept)), "2");
  EXPECT_EQ(guest.stats().snapshots.size(), 1u);

  // Dropping the last reference closes it too.
  kept.reset();
  EXPECT_EQ(log.sent<proto::SnapshotRelease>().size(), 2u);
  ASSERT_TRUE(eventually([&] { return link.host_session().stats().snapshots.empty(); }));
  EXPECT_TRUE(guest.stats().snapshots.empty());
}

// A stream's end takes the host's snapshots with it. The reads fail (with
// retry too: another snapshot may have its id on the new stream), and the
// guest never names it again.
TEST_F(Snapshots, LostWithTheStream) {
  for (bool retry : {false, true}) {
    SCOPED_TRACE(retry ? "retry" : "no retry");
    Remote remote;
    fill(remote.db, initial());
    Guest guest(retry ? with_retry() : GuestOptions{});
    FrameLog log(guest);
    auto link = std::make_unique<Link>(guest, remote.host);
    auto snapshot = guest.snapshot();
    EXPECT_EQ(guest.get("a", at(snapshot)), "1");
    link.reset();
    link = std::make_unique<Link>(guest, remote.host);
    log.clear();
    try {
      guest.get("a", at(snapshot));
      ADD_FAILURE() << "read at a lost snapshot";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), codes::snapshot_not_open);
      EXPECT_NE(e.message().find("lost with the connection"), std::string::npos) << e.message();
    }
    EXPECT_EQ(error_code([&] { guest.has_many({"a"}, at(snapshot)); }), codes::snapshot_not_open);
    EXPECT_EQ(error_code([&] { guest.iterator(iterate_at(snapshot)); }), codes::snapshot_not_open);
    auto stats = guest.stats();
    ASSERT_EQ(stats.snapshots.size(), 1u);
    EXPECT_FALSE(stats.snapshots[0].open);

    auto fresh = guest.snapshot();  // on the new stream, with another id
    guest.put("a", "changed");
    EXPECT_EQ(guest.get("a", at(fresh)), "1");
    EXPECT_NE(log.sent<proto::SnapshotRequest>().at(0).snapshot, stats.snapshots[0].id);
    snapshot->close();  // the host has forgotten it: nothing to release
    EXPECT_TRUE(log.sent<proto::SnapshotRelease>().empty());
    EXPECT_EQ(guest.get("a", at(fresh)), "1");
    EXPECT_EQ(link->host_session().stats().snapshots.size(), 1u);
  }
}

// With retry, a read at a lost snapshot does not wait for the next stream:
// it fails at once. An iterator at a snapshot yields what it had received,
// then fails (unless it had its end): it cannot resume on another stream.
TEST_F(Snapshots, RetryDoesNotResumeReadsAtALostSnapshot) {
  Remote remote;
  fill(remote.db, binary_entries(3000));
  Guest guest(with_retry());
  auto link = std::make_unique<Link>(guest, remote.host);
  auto snapshot = guest.snapshot();
  auto iterator = guest.iterator(iterate_at(snapshot));
  auto first = iterator->nextv(10);
  ASSERT_EQ(first.size(), 10u);
  auto ended = guest.iterator(iterate_at(snapshot, range({}, first[0].key, {}, first[0].key)));
  ASSERT_EQ(ended->nextv(10).size(), 1u);  // and its end
  link.reset();

  auto pending = guest.get_async(first[0].key, at(snapshot));
  EXPECT_EQ(future_error(pending), codes::snapshot_not_open);
  size_t yielded = first.size();
  std::string code = error_code([&] {
    while (iterator->next()) ++yielded;
  });
  EXPECT_EQ(code, codes::snapshot_not_open);
  EXPECT_LT(yielded, 3000u);
  EXPECT_EQ(ended->next(), std::nullopt);  // it had its end: nothing lost
  EXPECT_TRUE(guest.is_flushed());         // neither waits for the next stream

  link = std::make_unique<Link>(guest, remote.host);
  EXPECT_EQ(guest.iterator()->all().size(), 3000u);
}

TEST_F(Snapshots, TheHostsLimit) {
  HostOptions options;
  options.max_snapshots = 2;
  Remote remote(options);
  Guest guest;
  Link link(guest, remote.host);
  auto one = guest.snapshot();
  auto two = guest.snapshot();
  EXPECT_EQ(error_code([&] { guest.snapshot(); }), codes::limit_reached);
  EXPECT_EQ(guest.stats().snapshots.size(), 2u);  // the refused one freed its id
  one->close();
  ASSERT_TRUE(eventually([&] { return link.host_session().stats().snapshots.size() == 1; }));
  auto three = guest.snapshot();
  EXPECT_TRUE(three->is_open());
}

TEST_F(Snapshots, AHostWhoseDatabaseHasNone) {
  GatedRemote remote;  // a GatedDatabase makes no explicit snapshots
  Guest guest;
  Link link(guest, remote.host);
  guest.put("a", "1");  // settled: the host offers no "snapshots"
  try {
    guest.snapshot();
    ADD_FAILURE() << "snapshot() succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), codes::not_supported);
    EXPECT_EQ(e.message(), "the host's database has no explicit snapshots");
  }
}

TEST_F(Snapshots, OnlyThisGuestsOwn) {
  Remote remote;
  Guest guest;
  Guest other;
  Link link(guest, remote.host);
  Link other_link(other, remote.host);
  MemoryDatabase local;
  auto foreign = local.snapshot();
  auto others = other.snapshot();
  EXPECT_EQ(error_code([&] { guest.get("a", at(foreign)); }), codes::invalid_argument);
  EXPECT_EQ(error_code([&] { guest.get("a", at(others)); }), codes::invalid_argument);
  EXPECT_EQ(error_code([&] { guest.get_async("a", at(others)); }), codes::invalid_argument);
}

TEST_F(Snapshots, ClosingTheGuestClosesThem) {
  Remote remote;
  Guest guest;
  Link link(guest, remote.host);
  auto snapshot = guest.snapshot();
  guest.close();
  EXPECT_FALSE(snapshot->is_open());
  EXPECT_EQ(error_code([&] { guest.get("a", at(snapshot)); }), codes::database_not_open);
}

}  // namespace
}  // namespace guest_tests

// Flow control end to end, and the guest's public extras: is_flushed() and
// on_flush, stats(), the async twins, errors that come from the host, and
// forward() to a local database.
#include <condition_variable>
#include <set>

#include "guest_harness.hpp"

namespace guest_tests {
namespace {

class Flow : public GuestTest {};

// ---- backpressure -------------------------------------------------------------

TEST_F(Flow, BackpressureBoundsWhatASlowConsumerBuffers) {
  HostOptions host_options;
  host_options.output_high_water = 8192;
  Remote remote(host_options);
  const auto data = binary_entries(20000);
  fill(remote.db, data);
  // No entry is smaller than this on the wire (4-byte key, 12-byte value, 2
  // field headers), and a read-ahead frame holds at most what fits the
  // host's free output room (or 16 entries), so:
  const size_t smallest_entry = 18;
  const size_t per_frame = std::max<size_t>(16, host_options.output_high_water / smallest_entry);

  Guest guest;
  Link link(guest, remote.host);
  auto iterator = guest.iterator();
  ASSERT_TRUE(iterator->next().has_value());  // the 1-entry first frame; its ack starts read-ahead

  // The host reads ahead, then stops with two frames unacknowledged.
  auto host_iterator = [&] { return link.host_session().stats().iterators; };
  ASSERT_TRUE(eventually([&] {
    auto its = host_iterator();
    return its.size() == 1 && !its[0].busy && its[0].unacknowledged_frames == 2;
  }));
  ASSERT_TRUE(eventually([&] {
    auto stats = guest.stats();
    return stats.iterators.size() == 1 && stats.iterators[0].unacknowledged_frames == 2;
  }));
  auto host_side = host_iterator().at(0);
  auto guest_side = guest.stats().iterators.at(0);
  EXPECT_EQ(host_side.unacknowledged_frames, 2u);
  EXPECT_EQ(guest_side.consumed, 1u);
  EXPECT_EQ(guest_side.buffered_entries, host_side.sent - 1);  // all that was sent, nothing more
  EXPECT_LE(guest_side.buffered_entries, 2 * per_frame);
  EXPECT_LT(guest_side.buffered_entries, data.size() / 10);
  EXPECT_FALSE(guest_side.ended);

  // A slow consumer: at every step the bounds hold, and everything arrives.
  size_t consumed = 1;
  while (auto entry = iterator->next()) {
    ++consumed;
    if (consumed % 97 == 0) {
      auto stats = guest.stats();
      ASSERT_EQ(stats.iterators.size(), 1u);
      EXPECT_LE(stats.iterators[0].unacknowledged_frames, 2u);
      EXPECT_LE(stats.iterators[0].buffered_entries, 2 * per_frame);
      for (const auto& info : link.host_session().stats().iterators) {
        EXPECT_LE(info.unacknowledged_frames, 2u);
        EXPECT_LE(info.sent - info.consumed, 2 * per_frame);
      }
    }
  }
  EXPECT_EQ(consumed, data.size());
}

// ---- flush and stats ------------------------------------------------------------

TEST_F(Flow, FlushAndPendingRequests) {
  GatedRemote remote;
  Guest guest;
  Link link(guest, remote.host);
  std::mutex mutex;
  std::condition_variable changed;
  int flushes = 0;
  guest.on_flush([&] {
    {
      std::lock_guard<std::mutex> lock(mutex);
      ++flushes;
    }
    changed.notify_all();
  });
  auto wait_flushes = [&](int count) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, kTimeout, [&] { return flushes >= count; });
  };
  EXPECT_TRUE(guest.is_flushed());

  remote.gate.close();
  auto put = guest.put_async("key-1", "v");
  auto get = guest.get_async("key-2");
  auto many = guest.get_many_async({"key-3", "key-4"});
  ASSERT_TRUE(remote.gate.wait_for_waiting(1));
  EXPECT_FALSE(guest.is_flushed());
  auto stats = guest.stats();
  ASSERT_EQ(stats.pending.size(), 3u);
  EXPECT_STREQ(stats.pending[0].operation, "put");
  EXPECT_EQ(stats.pending[0].key, "key-1");
  EXPECT_STREQ(stats.pending[1].operation, "get");
  EXPECT_EQ(stats.pending[1].key, "key-2");
  EXPECT_STREQ(stats.pending[2].operation, "getMany");
  EXPECT_EQ(stats.pending[2].key, "key-3");
  EXPECT_NE(stats.pending[0].id, stats.pending[1].id);
  EXPECT_TRUE(stats.connected);
  EXPECT_EQ(stats.connects, 1u);
  EXPECT_GE(stats.frames_out, 3u);
  EXPECT_GT(stats.bytes_out, 0u);
  EXPECT_TRUE(eventually([&] { return link.host_session().stats().pending_requests == 3; }));
  EXPECT_EQ(flushes, 0);

  remote.gate.open();
  ASSERT_TRUE(ready(put));
  ASSERT_TRUE(ready(get));
  ASSERT_TRUE(ready(many));
  EXPECT_EQ(future_error(get), codes::not_found);
  ASSERT_TRUE(wait_flushes(1));
  EXPECT_TRUE(guest.is_flushed());
  EXPECT_TRUE(guest.stats().pending.empty());
  EXPECT_GE(guest.stats().frames_in, 3u);

  // An open iterator keeps the guest from being flushed until it closes.
  IteratorOptions options;
  options.reverse = true;
  options.limit = 7;
  auto iterator = guest.iterator(options);
  EXPECT_FALSE(guest.is_flushed());
  auto info = guest.stats().iterators;
  ASSERT_EQ(info.size(), 1u);
  EXPECT_TRUE(info[0].reverse);
  EXPECT_EQ(info[0].limit, 7);
  EXPECT_EQ(info[0].seq, 0u);
  iterator->seek("x");
  EXPECT_EQ(guest.stats().iterators.at(0).seq, 1u);
  EXPECT_EQ(iterator->next(), (Entry{"key-1", "v"}));
  iterator->close();
  EXPECT_TRUE(guest.is_flushed());
  ASSERT_TRUE(wait_flushes(2));
  EXPECT_TRUE(eventually([&] { return link.host_session().stats().iterators.empty(); }));
}

// ---- async twins ---------------------------------------------------------------

TEST_F(Flow, AThousandAsyncPutsThenGets) {
  Remote remote;
  Guest guest;
  Link link(guest, remote.host, PumpOptions{64, 3});
  std::vector<std::future<void>> puts;
  for (int i = 0; i < 1000; ++i) puts.push_back(guest.put_async("key" + std::to_string(i), "value" + std::to_string(i)));
  for (auto& put : puts) {
    ASSERT_TRUE(ready(put));
    put.get();
  }
  std::vector<std::future<std::optional<std::string>>> gets;
  for (int i = 0; i < 1000; ++i) gets.push_back(guest.get_async("key" + std::to_string(i)));
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(ready(gets[i]));
    EXPECT_EQ(gets[i].get(), "value" + std::to_string(i));
  }
  EXPECT_EQ(contents(remote.db).size(), 1000u);
  EXPECT_TRUE(eventually([&] { return guest.is_flushed(); }));

  auto missing = guest.get_async("nope");
  EXPECT_EQ(future_error(missing), codes::not_found);
  auto many = guest.get_many_async({"key1", "nope", "key999"});
  ASSERT_TRUE(ready(many));
  EXPECT_EQ(many.get(), (std::vector<std::optional<std::string>>{"value1", std::nullopt, "value999"}));
  auto del = guest.del_async("key1");
  auto batch = guest.batch_async({BatchOperation::put("new", "1"), BatchOperation::del("key2")});
  ClearOptions clear;
  clear.gte = "key5";
  clear.lt = "key6";
  auto cleared = guest.clear_async(clear);
  for (auto* future : {&del, &batch, &cleared}) {
    ASSERT_TRUE(ready(*future));
    future->get();
  }
  EXPECT_EQ(remote.db.try_get("key1"), std::nullopt);
  EXPECT_EQ(remote.db.try_get("key2"), std::nullopt);
  EXPECT_EQ(remote.db.try_get("key55"), std::nullopt);
  EXPECT_EQ(remote.db.get("key60"), "value60");
  EXPECT_EQ(remote.db.get("new"), "1");
  // Encodings apply to the async twins too.
  auto hex = guest.get_async("6b657931303030", ReadOptions{"hex", "utf8"});  // "key1000": missing
  EXPECT_EQ(future_error(hex), codes::not_found);
  auto json = guest.put_async("j", R"({ "a" : 1 })", WriteOptions{"utf8", "json"});
  ASSERT_TRUE(ready(json));
  json.get();
  EXPECT_EQ(remote.db.get("j"), R"({"a":1})");
}

// ---- errors from the host ---------------------------------------------------------

TEST_F(Flow, ReadonlyHost) {
  HostOptions options;
  options.readonly = true;
  Remote remote(options);
  remote.db.put("k", "v");
  Guest guest;
  Link link(guest, remote.host);
  EXPECT_EQ(error_code([&] { guest.put("a", "1"); }), codes::readonly);
  EXPECT_EQ(error_code([&] { guest.del("k"); }), codes::readonly);
  EXPECT_EQ(error_code([&] { guest.batch({BatchOperation::put("a", "1")}); }), codes::readonly);
  EXPECT_EQ(error_code([&] { guest.batch().put("a", "1").write(); }), codes::readonly);
  EXPECT_EQ(error_code([&] { guest.clear(); }), codes::readonly);
  auto put = guest.put_async("a", "1");
  EXPECT_EQ(future_error(put), codes::readonly);
  EXPECT_EQ(guest.get("k"), "v");
  EXPECT_EQ(guest.iterator()->all(), (std::vector<Entry>{{"k", "v"}}));
  EXPECT_EQ(contents(remote.db), (std::vector<Entry>{{"k", "v"}}));
}

TEST_F(Flow, HookRejectionsKeepTheirCode) {
  HostOptions options;
  options.preput = [](std::string_view key, std::string_view) {
    if (key == "forbidden") throw Error(codes::invalid_key, "no");
    if (key == "weird") throw std::runtime_error("not a level error");
  };
  Remote remote(options);
  Guest guest;
  Link link(guest, remote.host);
  EXPECT_EQ(error_code([&] { guest.put("forbidden", "1"); }), codes::invalid_key);
  EXPECT_EQ(error_code([&] { guest.put("weird", "1"); }), codes::remote_error);
  guest.put("fine", "1");
  EXPECT_EQ(contents(remote.db), (std::vector<Entry>{{"fine", "1"}}));
}

TEST_F(Flow, FailingHostDatabaseAnswersEveryRequest) {
  // The host's database is closed: every request fails with its code, and
  // nothing waits forever (the reference's getMany would).
  Remote remote;
  remote.db.close();
  Guest guest;
  Link link(guest, remote.host);
  EXPECT_EQ(error_code([&] { guest.get("k"); }), codes::database_not_open);
  EXPECT_EQ(error_code([&] { guest.get_many({"a", "b"}); }), codes::database_not_open);
  EXPECT_EQ(error_code([&] { guest.put("k", "v"); }), codes::database_not_open);
  EXPECT_EQ(error_code([&] { guest.clear(); }), codes::database_not_open);
  auto iterator = guest.iterator();
  EXPECT_EQ(error_code([&] { iterator->next(); }), codes::database_not_open);
  // The error ends that iterator for good.
  EXPECT_EQ(error_code([&] { iterator->next(); }), codes::database_not_open);
}

// ---- forward ---------------------------------------------------------------------

TEST_F(Flow, ForwardSendsCallsToALocalDatabase) {
  Remote remote;
  MemoryDatabase local;
  Guest guest;
  Link link(guest, remote.host);
  guest.forward(local);
  guest.put("a", "1");
  guest.put("6263", "2", WriteOptions{"hex", "utf8"});
  guest.batch({BatchOperation::put("c", "3"), BatchOperation::put("d", "4"), BatchOperation::del("a")});
  guest.batch().put("e", "5").write();
  EXPECT_EQ(guest.get("bc"), "2");
  EXPECT_EQ(guest.try_get("a"), std::nullopt);
  EXPECT_EQ(error_code([&] { guest.get("a"); }), codes::not_found);
  EXPECT_EQ(guest.get_many({"c", "zz"}), (std::vector<std::optional<std::string>>{"3", std::nullopt}));
  EXPECT_TRUE(guest.has("d"));
  auto it = guest.iterator(range({}, "c", {}, {}, -1, true));
  EXPECT_EQ(it->next(), (Entry{"e", "5"}));
  it->seek("c");
  EXPECT_EQ(it->all(), (std::vector<Entry>{{"c", "3"}}));
  guest.del("d");
  ClearOptions clear;
  clear.gte = "e";
  guest.clear(clear);
  EXPECT_EQ(contents(local), (std::vector<Entry>{{"bc", "2"}, {"c", "3"}}));
  EXPECT_TRUE(contents(remote.db).empty());
  EXPECT_EQ(guest.stats().frames_out, 1u);  // the stream's Hello, and nothing else went to the host
  EXPECT_TRUE(guest.is_flushed());
}

// ---- id allocation ---------------------------------------------------------------

TEST(IdAllocator, StartsAtOneAndCounts) {
  IdAllocator ids;
  auto none = [](uint32_t) { return false; };
  EXPECT_EQ(ids.next(none), 1u);
  EXPECT_EQ(ids.next(none), 2u);
  ids.reset();
  EXPECT_EQ(ids.next(none), 1u);
}

TEST(IdAllocator, WrapsAfterTheLargestIdToOne) {
  IdAllocator ids(0xfffffffeu);
  auto none = [](uint32_t) { return false; };
  EXPECT_EQ(ids.next(none), 0xffffffffu);
  EXPECT_EQ(ids.next(none), 1u);  // never 0
  EXPECT_EQ(ids.next(none), 2u);
}

TEST(IdAllocator, SkipsIdsInUse) {
  IdAllocator ids(0xfffffffdu);
  std::set<uint32_t> in_use = {0xfffffffeu, 0xffffffffu, 1u, 3u};
  auto used = [&](uint32_t id) { return in_use.count(id) > 0; };
  EXPECT_EQ(ids.next(used), 2u);
  EXPECT_EQ(ids.next(used), 4u);
  in_use.clear();
  EXPECT_EQ(ids.next(used), 5u);
}

}  // namespace
}  // namespace guest_tests

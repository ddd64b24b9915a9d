// Every operation of the Database contract through Guest -> stream -> Host ->
// MemoryDatabase, compared with the same operations on a local
// MemoryDatabase. Each test runs over a stream that delivers whole writes and
// over one that splits them into random 1..7 byte pieces.
#include <algorithm>
#include <future>
#include <random>
#include <thread>

#include "guest_harness.hpp"

namespace guest_tests {
namespace {

class Basic : public GuestTest, public ::testing::WithParamInterface<PumpOptions> {
 protected:
  template <typename F>
  void both(F&& body) {
    body(static_cast<Database&>(guest));
    body(static_cast<Database&>(local));
  }

  void expect_same_contents() {
    auto expected = contents(local);
    EXPECT_EQ(contents(guest), expected);
    EXPECT_EQ(contents(remote.db), expected);
  }

  Remote remote;
  Guest guest;
  Link link{guest, remote.host, GetParam()};
  MemoryDatabase local;
};

INSTANTIATE_TEST_SUITE_P(Streams, Basic, ::testing::Values(PumpOptions{0, 1}, PumpOptions{7, 42}),
                         [](const auto& info) { return info.param.max_chunk ? "Chunked" : "Whole"; });

const std::string kNulKey("b\0c", 3);
const std::string kBinaryValue("\0\xff\x80", 3);

TEST_P(Basic, GetPutDelHas) {
  both([](Database& db) {
    db.put("a", "1");
    db.put(kNulKey, kBinaryValue);
    db.put("", "empty key");
    db.put("\xff\xff", "high");
    db.put("a", "overwritten");
  });
  for (const std::string key : {"a", "", "\xff\xff"}) EXPECT_EQ(guest.get(key), local.get(key)) << key;
  EXPECT_EQ(guest.get(kNulKey), kBinaryValue);
  EXPECT_EQ(guest.try_get("missing"), std::nullopt);
  EXPECT_EQ(error_code([&] { guest.get("missing"); }), codes::not_found);

  const std::vector<std::string> keys = {"a", "missing", kNulKey, "", "\xff"};
  EXPECT_EQ(guest.get_many(keys), local.get_many(keys));
  EXPECT_EQ(guest.get_many({}), local.get_many({}));
  EXPECT_EQ(guest.has("a"), true);
  EXPECT_EQ(guest.has("missing"), false);
  EXPECT_EQ(guest.has_many(keys), local.has_many(keys));

  both([](Database& db) {
    db.del("a");
    db.del("never there");
  });
  EXPECT_EQ(guest.try_get("a"), std::nullopt);
  expect_same_contents();
}

TEST_P(Basic, BatchArrayAndChained) {
  both([](Database& db) {
    db.batch({BatchOperation::put("k1", "v1"), BatchOperation::put("k2", "v2"), BatchOperation::put(kNulKey, "x"),
              BatchOperation::del("k1"), BatchOperation::put("k3", kBinaryValue)});
    db.batch({});
    db.batch().put("c1", "1").put("c2", "2").del("k2").put("c1", "again").write();
    auto chained = db.batch();
    chained.put("dropped", "1").clear().put("kept", "1");
    EXPECT_EQ(chained.length(), 1u);
    chained.write();
    EXPECT_EQ(error_code([&] { chained.write(); }), codes::batch_not_open);
  });
  EXPECT_EQ(guest.try_get("k1"), std::nullopt);
  EXPECT_EQ(guest.get("c1"), "again");
  EXPECT_EQ(guest.try_get("dropped"), std::nullopt);
  expect_same_contents();
}

TEST_P(Basic, ClearWithRanges) {
  auto data = binary_entries(300);
  for (const char* key : {"a", "aa", "ab", "b", "ba", "c"}) data.push_back({key, "text"});
  std::vector<IteratorOptions> ranges = {
      range({}, {}, {}, {}),
      range("ab", {}, {}, {}),
      range({}, "ab", {}, {}),
      range({}, {}, "b", {}),
      range({}, {}, {}, "b"),
      range("a", {}, "ba", {}),
      range({}, "a", {}, "ba"),
      range({}, {}, {}, {}, 10),
      range({}, {}, {}, {}, 10, true),
      range({}, std::string("\x10", 1), std::string("\xf0", 1), {}, 37, true),
      range({}, std::string("\x10", 1), std::string("\xf0", 1), {}, 0),
      range("c", {}, "a", {}),  // empty: lower above upper
      range({}, {}, {}, {}, -1, true),
  };
  for (const auto& options : ranges) {
    SCOPED_TRACE(describe(options));
    ClearOptions clear;
    static_cast<RangeOptions&>(clear) = options;
    both([&](Database& db) {
      db.clear();
      fill(db, data);
      db.clear(clear);
    });
    expect_same_contents();
  }
}

std::vector<IteratorOptions> iterator_configs() {
  std::vector<IteratorOptions> out;
  std::vector<IteratorOptions> ranges = {
      range({}, {}, {}, {}),
      range("a", {}, {}, {}),
      range({}, "aa", {}, {}),
      range({}, {}, "b", {}),
      range({}, {}, {}, "b"),
      range({}, std::string("\x20", 1), std::string("\xe0", 1), {}),
      range(std::string("\x40\x00", 2), {}, {}, std::string("\x41", 1)),
      range("z", {}, "a", {}),
  };
  for (auto options : ranges) {
    for (bool reverse : {false, true}) {
      for (int64_t limit : {-1, 0, 1, 5, 250}) {
        options.reverse = reverse;
        options.limit = limit;
        options.keys = true;
        options.values = true;
        out.push_back(options);
        if (limit == 5 || limit == -1) {
          options.keys = false;
          out.push_back(options);
          options.keys = true;
          options.values = false;
          out.push_back(options);
          options.values = true;
        }
      }
    }
  }
  return out;
}

TEST_P(Basic, IteratorsMatchLocal) {
  auto data = binary_entries(400);
  for (const char* key : {"a", "aa", "aa5", "ab", "b", "ba"}) data.push_back({key, std::string("v-") + key});
  both([&](Database& db) { fill(db, data); });

  for (const auto& options : iterator_configs()) {
    SCOPED_TRACE(describe(options));
    auto expected = local.iterator(options)->all();
    EXPECT_EQ(guest.iterator(options)->all(), expected);

    auto by_next = guest.iterator(options);
    std::vector<Entry> got;
    while (auto entry = by_next->next()) got.push_back(std::move(*entry));
    EXPECT_EQ(got, expected);
    EXPECT_EQ(by_next->next(), std::nullopt);  // stays at the end
    EXPECT_EQ(by_next->count(), expected.size());

    auto by_nextv = guest.iterator(options);
    got.clear();
    for (;;) {
      auto chunk = by_nextv->nextv(7);
      if (chunk.empty()) break;
      EXPECT_TRUE(chunk.size() == 7u || got.size() + chunk.size() == expected.size());
      for (auto& entry : chunk) got.push_back(std::move(entry));
    }
    EXPECT_EQ(got, expected);
  }

  EXPECT_EQ(guest.keys().all(), local.keys().all());
  EXPECT_EQ(guest.values(range({}, {}, {}, {}, 3, true)).all(), local.values(range({}, {}, {}, {}, 3, true)).all());
  EXPECT_TRUE(eventually([&] { return guest.is_flushed(); }));
}

// nextv(size) yields `size` entries, fewer only at the end (as abstract-level's
// nextv does, and many-level's guest): exactly what the local iterator yields.
void expect_nextv(Iterator& theirs, Iterator& ours, size_t size) { ASSERT_EQ(theirs.nextv(size), ours.nextv(size)); }

// Runs the same random next / nextv / seek script on a guest iterator and a
// local one; every result must match. Seeks come first, twice in a row, after
// the end, and while stale frames are in flight.
void compare_scripts(Database& guest, Database& local, const std::vector<Entry>& data, uint32_t seed, int trials) {
  std::mt19937 random(seed);
  auto any_key = [&]() -> std::string {
    if (random() % 4 == 0) {
      std::string key;
      for (size_t i = 0, n = random() % 3; i < n; ++i) key.push_back(static_cast<char>(random() % 256));
      return key;
    }
    return data[random() % data.size()].key;
  };
  for (int trial = 0; trial < trials; ++trial) {
    IteratorOptions options;
    if (random() % 3 == 0) options.gte = any_key();
    if (random() % 3 == 0) options.lt = any_key();
    options.reverse = random() % 2;
    options.limit = random() % 3 == 0 ? static_cast<int64_t>(random() % 60) : -1;
    options.keys = random() % 5 != 0;
    options.values = random() % 5 != 0;
    SCOPED_TRACE("trial " + std::to_string(trial) + " " + describe(options));
    auto theirs = guest.iterator(options);
    auto ours = local.iterator(options);
    for (int step = 0; step < 25; ++step) {
      switch (random() % 4) {
        case 0: {
          auto target = any_key();
          theirs->seek(target);
          ours->seek(target);
          break;
        }
        case 1:
          ASSERT_EQ(theirs->next(), ours->next()) << "step " << step;
          break;
        default: {
          size_t size = 1 + random() % 40;
          ASSERT_NO_FATAL_FAILURE(expect_nextv(*theirs, *ours, size)) << "step " << step;
        }
      }
    }
    ASSERT_EQ(theirs->all(), ours->all());
  }
}

TEST_P(Basic, SeekMatchesLocal) {
  auto data = binary_entries(3000);
  both([&](Database& db) { fill(db, data); });
  compare_scripts(guest, local, data, 1234, 60);
}

TEST_P(Basic, SeekCornerCases) {
  both([](Database& db) {
    for (const char* key : {"a", "b", "c", "d", "e"}) db.put(key, std::string("v") + key);
  });
  for (bool reverse : {false, true}) {
    SCOPED_TRACE(reverse ? "reverse" : "forward");
    IteratorOptions options;
    options.reverse = reverse;
    auto theirs = guest.iterator(options);
    auto ours = local.iterator(options);
    // Before any data arrived, then repeatedly without consuming.
    for (auto* it : {theirs.get(), ours.get()}) {
      it->seek("c");
      it->seek("a");
      it->seek("d");
    }
    EXPECT_EQ(theirs->next(), ours->next());
    // Past the end, then back.
    for (auto* it : {theirs.get(), ours.get()}) it->seek(reverse ? "" : "zz");
    EXPECT_EQ(theirs->next(), std::nullopt);
    EXPECT_EQ(ours->next(), std::nullopt);
    for (auto* it : {theirs.get(), ours.get()}) it->seek("b");
    EXPECT_EQ(theirs->all(), ours->all());
  }
}

TEST_P(Basic, SeekNeverYieldsStaleEntries) {
  // Large frames in flight when the seek happens: none of them may surface.
  auto data = binary_entries(20000);
  both([&](Database& db) { fill(db, data); });
  std::mt19937 random(99);
  for (bool reverse : {false, true}) {
    SCOPED_TRACE(reverse ? "reverse" : "forward");
    IteratorOptions options;
    options.reverse = reverse;
    auto theirs = guest.iterator(options);
    auto ours = local.iterator(options);
    for (int round = 0; round < 60; ++round) {
      size_t size = 1 + random() % 300;
      ASSERT_NO_FATAL_FAILURE(expect_nextv(*theirs, *ours, size)) << "round " << round;
      const std::string& target = data[random() % data.size()].key;
      theirs->seek(target);
      ours->seek(target);
    }
    ASSERT_EQ(theirs->all(), ours->all());
  }
}

TEST_P(Basic, Sublevels) {
  std::unique_ptr<Sublevel> guest_sub = guest.sublevel("people");
  std::unique_ptr<Sublevel> local_sub = local.sublevel("people");
  std::unique_ptr<Sublevel> guest_nested = guest_sub->sublevel("pets");
  std::unique_ptr<Sublevel> local_nested = local_sub->sublevel("pets");
  for (Database* db : {static_cast<Database*>(guest_sub.get()), static_cast<Database*>(local_sub.get())}) {
    db->put("alice", "1");
    db->put("bob", "2");
    db->batch({BatchOperation::put("carol", "3"), BatchOperation::del("bob")});
  }
  for (Database* db : {static_cast<Database*>(guest_nested.get()), static_cast<Database*>(local_nested.get())}) {
    db->put("rex", "dog");
  }
  both([](Database& db) { db.put("outside", "x"); });

  EXPECT_EQ(remote.db.get("!people!alice"), "1");
  EXPECT_EQ(remote.db.get("!people!carol"), "3");
  EXPECT_EQ(remote.db.try_get("!people!bob"), std::nullopt);
  EXPECT_EQ(remote.db.get("!people!!pets!rex"), "dog");
  EXPECT_EQ(guest_sub->get("alice"), "1");
  EXPECT_EQ(guest_sub->iterator()->all(), local_sub->iterator()->all());
  EXPECT_EQ(guest_sub->keys(range({}, {}, {}, {}, -1, true)).all(),
            local_sub->keys(range({}, {}, {}, {}, -1, true)).all());
  auto it = guest_sub->iterator();
  it->seek("b");
  EXPECT_EQ(it->next(), (Entry{"carol", "3"}));
  EXPECT_EQ(guest_nested->iterator()->all(), (std::vector<Entry>{{"rex", "dog"}}));
  guest_sub->clear();
  local_sub->clear();
  expect_same_contents();
}

TEST_P(Basic, Encodings) {
  const WriteOptions hex_json{"hex", "json"};
  const ReadOptions read_hex_json{"hex", "json"};
  both([&](Database& db) {
    db.put("6162", R"({"a": [1, 2, "x"]})", hex_json);
    db.put("00ff", "42", hex_json);
    db.batch({BatchOperation::put("7a", "null"), BatchOperation::put("61", R"("text")")}, hex_json);
  });
  EXPECT_EQ(remote.db.get("ab"), R"({"a":[1,2,"x"]})");
  EXPECT_EQ(remote.db.get(std::string("\0\xff", 2)), "42");
  for (const char* key : {"6162", "00ff", "7a", "61"}) {
    EXPECT_EQ(guest.get(key, read_hex_json), local.get(key, read_hex_json)) << key;
  }
  EXPECT_EQ(guest.get_many({"6162", "ffff"}, read_hex_json), local.get_many({"6162", "ffff"}, read_hex_json));
  EXPECT_EQ(error_code([&] { guest.put("k", "{not json", WriteOptions{"utf8", "json"}); }),
            error_code([&] { local.put("k", "{not json", WriteOptions{"utf8", "json"}); }));
  EXPECT_EQ(error_code([&] { guest.get("zz", ReadOptions{"hex", "utf8"}); }),
            error_code([&] { local.get("zz", ReadOptions{"hex", "utf8"}); }));

  IteratorOptions options;
  options.key_encoding = "hex";
  options.value_encoding = "json";
  options.gte = "61";
  options.reverse = true;
  EXPECT_EQ(guest.iterator(options)->all(), local.iterator(options)->all());
  auto theirs = guest.iterator(options);
  auto ours = local.iterator(options);
  theirs->seek("6162", SeekOptions{"hex"});
  ours->seek("6162", SeekOptions{"hex"});
  EXPECT_EQ(theirs->all(), ours->all());

  ClearOptions clear;
  clear.key_encoding = "hex";
  clear.lt = "7a";
  clear.gt = "61";
  both([&](Database& db) { db.clear(clear); });
  expect_same_contents();

  // A guest whose default encodings are json: the host still sees raw bytes.
  GuestOptions json_options;
  json_options.encodings = DatabaseOptions{"json", "json"};
  Guest json_guest(json_options);
  Link json_link(json_guest, remote.host, GetParam());
  MemoryDatabase json_local(DatabaseOptions{"json", "json"});
  for (Database* db : {static_cast<Database*>(&json_guest), static_cast<Database*>(&json_local)}) {
    db->put(R"("key")", R"({"n": 1})");
    db->put("[1,2]", "true");
  }
  EXPECT_EQ(remote.db.get(R"("key")"), R"({"n":1})");
  EXPECT_EQ(json_guest.get(R"("key")"), json_local.get(R"("key")"));
  IteratorOptions everything;
  everything.gte = R"("key")";
  everything.lte = R"("key")";
  EXPECT_EQ(json_guest.iterator(everything)->all(), json_local.iterator(everything)->all());
}

// A blocking call polls its reply for a short while, then sleeps on it: a
// reply that comes within the poll, one that comes long after, and a
// failure all reach the caller unchanged.
TEST(AwaitReply, ReturnsValuesAndRethrowsWhetherTheReplyIsQuickOrSlow) {
  using many_level::detail::await_reply;
  using many_level::detail::reply_poll_time;
  for (auto delay : {std::chrono::microseconds(0), reply_poll_time / 2, reply_poll_time * 50}) {
    std::promise<std::string> value;
    auto future = value.get_future();
    std::thread replier([&] {
      std::this_thread::sleep_for(delay);
      value.set_value("v");
    });
    EXPECT_EQ(await_reply(future), "v");
    replier.join();

    std::promise<void> failure;
    auto failed = failure.get_future();
    std::thread failer([&] {
      std::this_thread::sleep_for(delay);
      failure.set_exception(std::make_exception_ptr(Error(codes::connection_lost, "gone")));
    });
    try {
      await_reply(failed);
      ADD_FAILURE() << "no exception";
    } catch (const Error& e) {
      EXPECT_TRUE(e.is(codes::connection_lost));
    }
    failer.join();
  }
}

}  // namespace
}  // namespace guest_tests

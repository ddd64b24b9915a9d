// The C++ Guest against a real host over a socket: the Node reference host
// (many-level 2.0.0 from npm, memory-level or classic-level behind it, started
// by node-host.js) and, with the same program unchanged, `many-level serve`.
// The unit tests of tests/guest pair our guest with our own host; this shows
// the guest speaks the protocol as the reference host understands it.
//
//   cpp_guest_interop --connect tcp://127.0.0.1:PORT|unix:PATH
//                     [--host-seeded N] [--count N] [--readonly-host]
//                     [--known-node-reverse-bug] [--deadline SECONDS]
//                     [--gtest_filter=...]
//
// --host-seeded N  the host already holds the seed range (node-host.js
//                  --seed N): the cut tests check it reads back exactly
//                  instead of writing it. Otherwise they write it through a
//                  separate, non-retrying guest.
// --count N        size of the seed range of the cut tests (default 5000).
// --readonly-host  the host was started read-only: the Readonly suite runs
//                  (it is skipped otherwise; the other suites need a
//                  writable host).
// --known-node-reverse-bug  the host is the Node reference: MixedLengthKeys
//                  asserts its known reverse-resume bug (see there).
// --deadline S     abort (exit 124, naming the test) after S seconds
//                  (default 170), so a hang never outlives the CTest timeout.
//
// Suites (every test clears and uses its own key prefix, so they share one host):
//   Operations   put/get/del/batch (array and chained)/getMany/has/clear with
//                ranges, limits and reverse, binary values (\0, \xff, empty,
//                1 MiB), async twins, and the error codes as the host sends
//                them (LEVEL_NOT_FOUND for a missing key).
//   Iterators    hundreds of ranges (gt/gte/lt/lte), reverse, limit,
//                keys-only/values-only, next/nextv/all, and seek scripts
//                (with and without a range) over binary keys, each compared
//                with a MemoryDatabase holding the same entries.
//   Encodings    utf8, buffer, view, hex, base64, json as database defaults
//                and per operation (get, getMany, put, del, batch, chained
//                batch, clear, iterator bounds, seek), checked by reading the
//                stored bytes back raw; encoding errors and a sublevel's
//                prefix.
//   Connection   a non-retrying guest: a cut stream fails an open iterator
//                with LEVEL_CONNECTION_LOST after what it had received;
//                re-attached, it works again; a reply over the guest's frame
//                limit drops the stream with a clear reason. A retrying
//                guest: requests made while no stream is attached complete
//                on the next one.
//   CutAgainAndAgain   a retrying guest iterates the seed range (5000
//                fixed-length keys) while its TCP/unix connection is cut
//                again and again: after every 97 entries consumed (closing
//                the FdConnection and attaching a new one at once), and
//                every 1 to 4 ms from another thread (Guest::drop_connection
//                with a Connector reconnecting; the range is read pass after
//                pass until 50 cuts fell inside reads); with next() and
//                nextv(), values only with a limit, with a seek made just
//                before a cut, cuts at the end, and random next/nextv/seek
//                steps under timed cuts compared step by step with a
//                MemoryDatabase.
//                Every entry must arrive exactly once, in order, with its
//                value (the reference guest may yield one twice; ours must
//                not: PROTOCOL.md), forward and reverse, with more than 10
//                cuts, which each test reports.
//   MixedLengthKeys  keys of every length, the stream cut after every entry,
//                forward and reverse: against the Node host the reverse scan
//                skips keys, its known bug (PROTOCOL.md), asserted skip by
//                skip; against the C++ host every key arrives exactly once.
//   Readonly     (--readonly-host) writes fail with LEVEL_READONLY, reads work.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <many_level.hpp>

namespace {

using namespace many_level;
using namespace std::chrono_literals;
using Pairs = std::vector<std::pair<std::string, std::string>>;

// ---- configuration ------------------------------------------------------------

struct Config {
  std::string address;
  size_t host_seeded = 0;
  size_t count = 5000;
  bool readonly_host = false;
  bool known_node_reverse_bug = false;
  int deadline_seconds = 170;
};
Config config;

const ReadOptions kRawRead{"buffer", "buffer"};
const WriteOptions kRawWrite{"buffer", "buffer"};

// ---- helpers ------------------------------------------------------------------

// Bytes as readable text for failure messages: printable ASCII as is, the rest \xNN.
std::string show(std::string_view bytes) {
  std::string out;
  char buffer[8];
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      std::snprintf(buffer, sizeof buffer, "\\x%02x", c);
      out += buffer;
    }
  }
  return out;
}

Pairs pairs(const std::vector<Entry>& entries) {
  Pairs out;
  out.reserve(entries.size());
  for (const auto& entry : entries) out.emplace_back(entry.key, entry.value);
  return out;
}

// The LEVEL_* code `body` throws, or "no error".
template <typename F>
std::string error_code(F&& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.code();
  } catch (const std::exception& e) {
    return std::string("not a many_level::Error: ") + e.what();
  }
  return "no error";
}

// A guest attached to the host by one FdConnection. cut() closes the socket
// and returns once the guest has seen the stream end; attach() gives it a new
// one at once. The guest is closed, and every thread joined, on destruction.
class Link {
 public:
  explicit Link(GuestOptions options = {}) : guest(std::move(options)) { attach(); }
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;
  ~Link() {
    connection.close();
    guest.close();
  }

  void attach() {
    session = guest.connect();
    try {
      connection = connect_fd(config.address, *session);
    } catch (...) {
      session->end();  // detach the guest again: it has no transport
      throw;
    }
  }
  void cut() { connection.close(); }

  Guest guest;
  std::shared_ptr<Session> session;
  FdConnection connection;
};

GuestOptions retrying() {
  GuestOptions options;
  options.retry = true;
  return options;
}

GuestOptions with_encodings(std::string key, std::string value) {
  GuestOptions options;
  options.encodings.key_encoding = std::move(key);
  options.encodings.value_encoding = std::move(value);
  return options;
}

// [prefix, prefix with its last byte + 1): every key starting with prefix.
IteratorOptions prefix_range(const std::string& prefix) {
  IteratorOptions options;
  options.gte = prefix;
  std::string end = prefix;
  end.back() = static_cast<char>(end.back() + 1);
  options.lt = end;
  return options;
}

ClearOptions prefix_clear(const std::string& prefix) {
  ClearOptions options;
  static_cast<RangeOptions&>(options) = prefix_range(prefix);
  return options;
}

// Every entry under prefix, raw, as the host stores it.
Pairs raw_entries(Database& db, const std::string& prefix) {
  IteratorOptions options = prefix_range(prefix);
  options.key_encoding = "buffer";
  options.value_encoding = "buffer";
  return pairs(db.iterator(options)->all());
}

// The seed format of lib/common.js (node-host.js --seed N, retry-iterate.js):
// key i is "seed:" + i in 8 digits, its value "value:" + i padded with '.' to
// 100 bytes. Fixed-length keys: see CutAgainAndAgain for why that matters.
const std::string kSeedPrefix = "seed:";

std::string seed_key(size_t i) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "seed:%08zu", i);
  return buffer;
}

std::string seed_value(size_t i) {
  std::string value = "value:" + std::to_string(i);
  if (value.size() < 100) value.resize(100, '.');
  return value;
}

Pairs seed_entries(size_t n) {
  Pairs out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.emplace_back(seed_key(i), seed_value(i));
  return out;
}

// Random binary entries under prefix: keys of 1..5 bytes over an alphabet
// with \x00, \x01, \x7f, \x80, \xfe, \xff (where signed and unsigned byte
// order differ), values of 0..40 arbitrary bytes.
Pairs binary_entries(const std::string& prefix, size_t n, uint32_t seed) {
  static const char alphabet[] = {'\x00', '\x01', 'a', 'b', '\x7f', '\x80', '\xfe', '\xff'};
  std::mt19937 random(seed);
  std::map<std::string, std::string> entries;
  while (entries.size() < n) {
    std::string key = prefix;
    size_t length = 1 + random() % 5;
    for (size_t i = 0; i < length; ++i) key.push_back(alphabet[random() % sizeof alphabet]);
    std::string value(random() % 41, '\0');
    for (auto& c : value) c = static_cast<char>(random() & 0xff);
    entries[key] = value;
  }
  return Pairs(entries.begin(), entries.end());
}

void fill(Database& db, const Pairs& entries, const WriteOptions& options = kRawWrite) {
  std::vector<BatchOperation> ops;
  for (const auto& [key, value] : entries) {
    ops.push_back(BatchOperation::put(key, value));
    if (ops.size() == 500) {
      db.batch(ops, options);
      ops.clear();
    }
  }
  if (!ops.empty()) db.batch(ops, options);
}

std::string describe(const IteratorOptions& o) {
  std::ostringstream out;
  if (o.gt) out << " gt=" << show(*o.gt);
  if (o.gte) out << " gte=" << show(*o.gte);
  if (o.lt) out << " lt=" << show(*o.lt);
  if (o.lte) out << " lte=" << show(*o.lte);
  if (o.limit >= 0) out << " limit=" << o.limit;
  if (o.reverse) out << " reverse";
  if (!o.keys) out << " keys=false";
  if (!o.values) out << " values=false";
  return out.str();
}

// A fixture with one plain guest and a key prefix of the test's own, cleared
// before the test.
class HostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (config.readonly_host) GTEST_SKIP() << "the host is read-only (--readonly-host)";
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    prefix = std::string(info->test_suite_name()) + "." + info->name() + ":";
    link = std::make_unique<Link>();
    db().clear(prefix_clear(prefix));
  }
  void TearDown() override { link.reset(); }

  Guest& db() { return link->guest; }
  std::string k(std::string_view suffix) const { return prefix + std::string(suffix); }

  std::string prefix;
  std::unique_ptr<Link> link;
};

// =============================================================================
// Operations
// =============================================================================

using Operations = HostTest;

TEST_F(Operations, PutGetDelAndTheNotFoundCode) {
  db().put(k("a"), "1");
  EXPECT_EQ(db().get(k("a")), "1");
  db().put(k("a"), "2");  // overwrite
  EXPECT_EQ(db().get(k("a")), "2");
  EXPECT_TRUE(db().has(k("a")));

  // The host answers a missing key with the error LEVEL_NOT_FOUND; get()
  // throws it, try_get() gives nullopt, has() false.
  EXPECT_EQ(error_code([&] { db().get(k("missing")); }), codes::not_found);
  EXPECT_EQ(db().try_get(k("missing")), std::nullopt);
  EXPECT_FALSE(db().has(k("missing")));
  // The async twin passes the host's answer on as it is, as abstract-level's
  // get() rejects: its future throws LEVEL_NOT_FOUND (tests/guest agrees).
  EXPECT_EQ(error_code([&] { db().get_async(k("missing")).get(); }), codes::not_found);
  EXPECT_EQ(db().get_async(k("a")).get(), std::optional<std::string>("2"));

  db().del(k("a"));
  EXPECT_EQ(error_code([&] { db().get(k("a")); }), codes::not_found);
  // Deleting a missing key is not an error.
  EXPECT_EQ(error_code([&] { db().del(k("never")); }), "no error");
}

TEST_F(Operations, BinaryValuesRoundTripByteForByte) {
  const std::string all_bytes = [] {
    std::string s;
    for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
    return s;
  }();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {k("nul"), std::string("\0", 1)},
      {k("ff"), "\xff"},
      {k("mixed"), std::string("a\0b\xff\x00\xfe", 6)},
      {k("all"), all_bytes},
      {k("empty"), ""},
      {k(std::string("key\0with\xff", 9)), "binary key"},
      {k("big"), std::string(1 << 20, '\0') + all_bytes},  // 1 MiB + 256, many TCP reads
  };
  for (const auto& [key, value] : cases) db().put(key, value);
  for (const auto& [key, value] : cases) {
    SCOPED_TRACE(show(key));
    auto got = db().try_get(key);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->size(), value.size());
    EXPECT_TRUE(*got == value);
    EXPECT_TRUE(db().get(key, kRawRead) == value);
  }
  // The empty value is a present value, not a missing one.
  EXPECT_EQ(db().get_many({k("empty"), k("nope")}), (std::vector<std::optional<std::string>>{"", std::nullopt}));
}

TEST_F(Operations, BatchAppliesPutsAndDelsInOrder) {
  db().put(k("old"), "x");
  db().batch({BatchOperation::put(k("a"), "1"), BatchOperation::put(k("b"), "2"), BatchOperation::del(k("old")),
              BatchOperation::put(k("c"), "3"), BatchOperation::del(k("c")),   // put then del: gone
              BatchOperation::del(k("d")), BatchOperation::put(k("d"), "4"),   // del then put: there
              BatchOperation::put(k("a"), "1bis")});                           // last put wins
  EXPECT_EQ(raw_entries(db(), prefix), (Pairs{{k("a"), "1bis"}, {k("b"), "2"}, {k("d"), "4"}}));

  // An empty batch is fine.
  EXPECT_EQ(error_code([&] { db().batch(std::vector<BatchOperation>{}); }), "no error");
}

TEST_F(Operations, ChainedBatch) {
  db().put(k("gone"), "x");
  auto batch = db().batch();
  batch.put(k("a"), "1").put(k("b"), std::string("\0\xff", 2)).del(k("gone")).put(k("c"), "3").del(k("c"));
  EXPECT_EQ(batch.length(), 5u);
  EXPECT_EQ(raw_entries(db(), prefix), (Pairs{{k("gone"), "x"}}));  // nothing written before write()
  batch.write();
  EXPECT_FALSE(batch.is_open());
  EXPECT_EQ(raw_entries(db(), prefix), (Pairs{{k("a"), "1"}, {k("b"), std::string("\0\xff", 2)}}));

  // clear() forgets the operations added so far.
  auto second = db().batch();
  second.put(k("x"), "no").clear().put(k("y"), "yes").write();
  EXPECT_EQ(db().try_get(k("x")), std::nullopt);
  EXPECT_EQ(db().try_get(k("y")), std::optional<std::string>("yes"));
}

TEST_F(Operations, GetManyKeepsOrderAndReportsMissingKeys) {
  fill(db(), {{k("a"), "1"}, {k("b"), ""}, {k("c"), "3"}});
  EXPECT_EQ(db().get_many({k("c"), k("missing"), k("a"), k("b"), k("a")}),
            (std::vector<std::optional<std::string>>{"3", std::nullopt, "1", "", "1"}));
  EXPECT_EQ(db().get_many({}), (std::vector<std::optional<std::string>>{}));
  EXPECT_EQ(db().has_many({k("a"), k("zz"), k("b")}), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(db().get_many_async({k("missing"), k("c")}).get(),
            (std::vector<std::optional<std::string>>{std::nullopt, "3"}));
}

// clear() with every kind of range, limits and reverse, compared with a
// MemoryDatabase given the same clear.
TEST_F(Operations, ClearWithRangesLimitsAndReverse) {
  Pairs entries;
  for (int i = 0; i < 20; ++i) {
    char suffix[8];
    std::snprintf(suffix, sizeof suffix, "%02d", i);
    entries.emplace_back(k(suffix), "v" + std::to_string(i));
  }
  struct Case {
    const char* name;
    std::optional<std::string> gt, gte, lt, lte;
    int64_t limit;
    bool reverse;
  };
  const std::vector<Case> cases = {
      {"whole prefix", std::nullopt, k(""), k("~"), std::nullopt, -1, false},
      {"gte..lt", std::nullopt, k("05"), k("10"), std::nullopt, -1, false},
      {"gt..lte", k("05"), std::nullopt, std::nullopt, k("10"), -1, false},
      {"gt absent key", k("05x"), std::nullopt, k("~"), std::nullopt, -1, false},
      {"lte absent key", std::nullopt, k(""), std::nullopt, k("12x"), -1, false},
      {"limit 3", std::nullopt, k("04"), k("~"), std::nullopt, 3, false},
      {"limit 3 reverse", std::nullopt, k("04"), k("15"), std::nullopt, 3, true},
      {"limit 0", std::nullopt, k(""), k("~"), std::nullopt, 0, false},
      {"limit past the range", k("17"), std::nullopt, k("~"), std::nullopt, 100, true},
      {"empty range", std::nullopt, k("10"), k("10"), std::nullopt, -1, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    db().clear(prefix_clear(prefix));
    fill(db(), entries);
    MemoryDatabase model;
    fill(model, entries);
    ClearOptions options;
    options.gt = c.gt;
    options.gte = c.gte;
    options.lt = c.lt;
    options.lte = c.lte;
    options.limit = c.limit;
    options.reverse = c.reverse;
    db().clear(options);
    model.clear(options);
    EXPECT_EQ(raw_entries(db(), prefix), raw_entries(model, prefix));
  }
  // Sanity of the model itself on one case: limit 3 reverse from [04, 15) deletes 12, 13, 14.
  MemoryDatabase model;
  fill(model, entries);
  ClearOptions options;
  options.gte = k("04");
  options.lt = k("15");
  options.limit = 3;
  options.reverse = true;
  model.clear(options);
  EXPECT_EQ(model.try_get(k("14")), std::nullopt);
  EXPECT_EQ(model.try_get(k("12")), std::nullopt);
  EXPECT_EQ(model.try_get(k("11")), std::optional<std::string>("v11"));
}

// Hundreds of requests in flight at once, answered in whatever order.
TEST_F(Operations, AsyncTwinsWithManyRequestsInFlight) {
  std::vector<std::future<void>> puts;
  for (int i = 0; i < 1000; ++i) puts.push_back(db().put_async(k(std::to_string(i)), "v" + std::to_string(i)));
  for (auto& f : puts) f.get();
  std::vector<std::future<std::optional<std::string>>> gets;
  for (int i = 0; i < 1000; ++i) gets.push_back(db().get_async(k(std::to_string(i))));
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(gets[i].get(), std::optional<std::string>("v" + std::to_string(i)));
  std::vector<std::future<void>> writes;
  for (int i = 0; i < 1000; i += 2) writes.push_back(db().del_async(k(std::to_string(i))));
  writes.push_back(db().batch_async({BatchOperation::put(k("b"), "B")}));
  ClearOptions clear = prefix_clear(k("99"));  // 99, 990..999
  writes.push_back(db().clear_async(clear));
  for (auto& f : writes) f.get();
  auto left = raw_entries(db(), prefix);
  EXPECT_EQ(left.size(), 500u - 6u + 1u);  // odd i < 1000, minus 99 991 993 995 997 999, plus b
  EXPECT_EQ(db().try_get(k("b")), std::optional<std::string>("B"));
  EXPECT_EQ(db().try_get(k("991")), std::nullopt);
  EXPECT_EQ(db().try_get(k("989")), std::optional<std::string>("v989"));
  EXPECT_TRUE(db().is_flushed());
}

// =============================================================================
// Iterators, compared with a MemoryDatabase holding the same entries
// =============================================================================

class Iterators : public HostTest {
 protected:
  void SetUp() override {
    HostTest::SetUp();
    if (IsSkipped()) return;
    data = binary_entries(prefix, 300, 7);
    fill(db(), data);
    fill(model, data);
  }

  // Bounds: present keys, absent keys between them, and keys before and after
  // every key of the prefix.
  std::vector<std::string> bounds() const {
    return {prefix,
            data[0].first,
            data[17].first,
            data[data.size() / 2].first,
            data.back().first,
            k(std::string("\x00\x00\x00\x00\x00\x00", 6)),
            k(std::string("a\x00\x00\x00\x00\x00\x00", 7)),
            k("\x80"),
            k("\xff\xff\xff\xff\xff\xff")};
  }

  // The options with the prefix's own bounds where none are given, so that
  // other tests' keys on the host stay out.
  IteratorOptions within_prefix(IteratorOptions o) const {
    if (!o.gt && !o.gte) o.gte = prefix;
    if (!o.lt && !o.lte) o.lt = prefix_range(prefix).lt;
    return o;
  }

  Pairs data;
  MemoryDatabase model;
};

TEST_F(Iterators, TheDataSetIsWhatWasWritten) {
  ASSERT_EQ(raw_entries(db(), prefix), data);  // byte order of \x00 .. \xff agrees with std::string
}

TEST_F(Iterators, RangesForwardAndReverse) {
  const auto b = bounds();
  size_t checked = 0;
  size_t nonempty = 0;
  for (int lower = 0; lower < 1 + 2 * static_cast<int>(b.size()); ++lower) {
    for (int upper = 0; upper < 1 + 2 * static_cast<int>(b.size()); ++upper) {
      for (bool reverse : {false, true}) {
        IteratorOptions o;
        if (lower > 0) (lower % 2 ? o.gte : o.gt) = b[(lower - 1) / 2];
        if (upper > 0) (upper % 2 ? o.lt : o.lte) = b[(upper - 1) / 2];
        o.reverse = reverse;
        o = within_prefix(o);
        auto expected = pairs(model.iterator(o)->all());
        auto got = pairs(db().iterator(o)->all());
        ASSERT_EQ(got, expected) << describe(o);
        ++checked;
        if (!expected.empty()) ++nonempty;
      }
    }
  }
  std::cout << "[          ] " << checked << " ranges checked, " << nonempty << " of them non-empty\n";
  EXPECT_GT(nonempty, checked / 4);
}

TEST_F(Iterators, LimitsAndKeysOrValuesOnly) {
  const auto b = bounds();
  size_t checked = 0;
  for (size_t i = 0; i + 1 < b.size(); i += 2) {
    for (int64_t limit : {-1, 0, 1, 5, 299, 300, 1000}) {
      for (int mode = 0; mode < 3; ++mode) {
        for (bool reverse : {false, true}) {
          IteratorOptions o;
          o.gte = b[i];
          o.limit = limit;
          o.keys = mode != 2;
          o.values = mode != 1;
          o.reverse = reverse;
          o = within_prefix(o);
          auto expected = pairs(model.iterator(o)->all());
          auto got = pairs(db().iterator(o)->all());
          ASSERT_EQ(got, expected) << describe(o);
          if (limit >= 0) {
            ASSERT_LE(got.size(), static_cast<size_t>(limit)) << describe(o);
          }
          ++checked;
        }
      }
    }
  }
  // keys() and values(), the half iterators.
  IteratorOptions o = within_prefix({});
  std::vector<std::string> keys, values;
  for (const auto& [key, value] : data) {
    keys.push_back(key);
    values.push_back(value);
  }
  EXPECT_EQ(db().keys(o).all(), keys);
  EXPECT_EQ(db().values(o).all(), values);
  std::cout << "[          ] " << checked + 2 << " iterators checked\n";
}

// nextv(n) gives n entries, or fewer only at the end (our guest waits for
// frames still to come), next() one at a time, and the iterator ends cleanly.
TEST_F(Iterators, NextvNextAndAll) {
  for (bool reverse : {false, true}) {
    IteratorOptions o = within_prefix({});
    o.reverse = reverse;
    auto expected = pairs(model.iterator(o)->all());
    auto it = db().iterator(o);
    Pairs got;
    size_t sizes[] = {1, 2, 3, 50, 7, 1000};
    for (size_t round = 0; got.size() < expected.size(); ++round) {
      size_t size = sizes[round % 6];
      auto chunk = it->nextv(size);
      ASSERT_EQ(chunk.size(), std::min(size, expected.size() - got.size())) << "round " << round;
      for (auto& [key, value] : pairs(chunk)) got.emplace_back(key, value);
    }
    EXPECT_EQ(got, expected);
    EXPECT_TRUE(it->nextv(10).empty());
    EXPECT_EQ(it->next(), std::nullopt);
    EXPECT_EQ(it->count(), expected.size());
    it->close();
    EXPECT_EQ(error_code([&] { it->next(); }), codes::iterator_not_open);

    auto it2 = db().iterator(o);
    Pairs by_next;
    while (auto entry = it2->next()) by_next.emplace_back(entry->key, entry->value);
    EXPECT_EQ(by_next, expected);

    // A few next() calls, then all() of the rest.
    auto it3 = db().iterator(o);
    Pairs mixed;
    for (int i = 0; i < 5; ++i) {
      auto entry = it3->next();
      ASSERT_TRUE(entry.has_value());
      mixed.emplace_back(entry->key, entry->value);
    }
    for (auto& p : pairs(it3->all())) mixed.push_back(p);
    EXPECT_EQ(mixed, expected);
  }
  EXPECT_EQ(db().open_iterator_count(), 0u);
}

// A script of next / nextv / seek run on the guest and on the model side by
// side; every step's results must agree.
struct Step {
  enum Kind { next, nextv, seek } kind;
  size_t count = 0;
  std::string target;
};

void run_script(Database& guest, Database& model, const IteratorOptions& o, const std::vector<Step>& steps) {
  auto a = guest.iterator(o);
  auto b = model.iterator(o);
  size_t nonempty = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    std::string what = describe(o) + " step " + std::to_string(i);
    switch (step.kind) {
      case Step::next:
        for (size_t n = 0; n < step.count; ++n) {
          auto x = a->next();
          auto y = b->next();
          ASSERT_EQ(x.has_value(), y.has_value()) << what;
          if (x) {
            ++nonempty;
            ASSERT_EQ(std::make_pair(x->key, x->value), std::make_pair(y->key, y->value)) << what;
          }
        }
        break;
      case Step::nextv: {
        auto x = pairs(a->nextv(step.count));
        auto y = pairs(b->nextv(step.count));
        ASSERT_EQ(x, y) << what;
        nonempty += x.size();
        break;
      }
      case Step::seek:
        a->seek(step.target);
        b->seek(step.target);
        break;
    }
  }
  EXPECT_GT(nonempty, 0u) << describe(o) << ": the script saw no entry at all";
}

TEST_F(Iterators, SeekWithinARange) {
  const auto& d = data;
  const std::string before = prefix;                // below the range's lower bound
  const std::string after = k("\xff\xff\xff\xff\xff\xff\xff");  // above the upper bound
  std::vector<Step> steps = {
      {Step::next, 3, ""},
      {Step::seek, 0, d[150].first},                       // a present key
      {Step::next, 3, ""},
      {Step::seek, 0, d[40].first + std::string(1, '\0')},  // absent, just after a key
      {Step::nextv, 5, ""},
      {Step::seek, 0, d[200].first},
      {Step::seek, 0, d[60].first},                        // two seeks, nothing read between
      {Step::next, 2, ""},
      {Step::seek, 0, before},                             // outside the range: ends until the next seek
      {Step::next, 2, ""},
      {Step::seek, 0, after},
      {Step::next, 2, ""},
      {Step::seek, 0, d[100].first},
      {Step::nextv, 1000, ""},                             // to the end
      {Step::next, 1, ""},
      {Step::seek, 0, d[120].first},                       // a seek after the end restarts
      {Step::next, 3, ""},
  };
  for (bool reverse : {false, true}) {
    for (int mode = 0; mode < 3; ++mode) {
      for (int64_t limit : {-1, 9}) {
        IteratorOptions o;
        o.gte = d[30].first;
        o.lt = d[270].first;
        o.reverse = reverse;
        o.keys = mode != 2;
        o.values = mode != 1;
        o.limit = limit;  // counts across seeks
        run_script(db(), model, o, steps);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Without a range the iterator sees the whole database, other tests' keys
// included: the model is then the host's own content, read first with a
// plain iterator, and the seeks go into and around this test's keys.
TEST_F(Iterators, SeekWithoutARange) {
  MemoryDatabase whole;
  fill(whole, pairs(db().iterator({})->all()));
  const auto& d = data;
  std::vector<Step> steps = {
      {Step::next, 2, ""},
      {Step::seek, 0, d[10].first},
      {Step::next, 4, ""},
      {Step::seek, 0, d.back().first + std::string(1, '\0')},  // the first key after the prefix's keys
      {Step::next, 3, ""},
      {Step::seek, 0, ""},                                    // the very first (forward) / nothing (reverse)
      {Step::nextv, 3, ""},
      {Step::seek, 0, "\xff\xff\xff"},                        // past everything / the last key (reverse)
      {Step::next, 2, ""},
      {Step::seek, 0, d[250].first},
      {Step::nextv, 6, ""},
  };
  for (bool reverse : {false, true}) {
    IteratorOptions o;
    o.reverse = reverse;
    run_script(db(), whole, o, steps);
    if (HasFatalFailure()) return;
  }
}

// =============================================================================
// Encodings: what the guest stores, read back raw
// =============================================================================

using Encodings = HostTest;

TEST_F(Encodings, DatabaseDefaultsStoreTheRightBytes) {
  struct Case {
    std::string key_encoding, value_encoding;
    std::string key, value;          // as the user gives them
    std::string raw_key, raw_value;  // the bytes the host must hold
    std::string read_back;           // what get() returns
  };
  auto hex = [](std::string_view bytes) { return find_encoding("hex")->decode(bytes); };
  const std::string bin("\x00\xff\x7f\x80", 4);
  const std::vector<Case> cases = {
      {"utf8", "utf8", k("h\xc3\xa9llo"), "w\xc3\xb6rld \xe2\x98\x83", k("h\xc3\xa9llo"), "w\xc3\xb6rld \xe2\x98\x83",
       "w\xc3\xb6rld \xe2\x98\x83"},
      {"buffer", "buffer", k(bin), bin, k(bin), bin, bin},
      {"view", "view", k("view"), bin, k("view"), bin, bin},
      {"binary", "binary", k("binary"), bin, k("binary"), bin, bin},
      {"hex", "hex", hex(k("hex")) + "00FF", "00ff7F80", k("hex") + std::string("\x00\xff", 2), bin, "00ff7f80"},
      {"base64", "base64", "RW5jb2RpbmdzLkRhdGFiYXNlRGVmYXVsdHNTdG9yZVRoZVJpZ2h0Qnl0ZXM6YjY0", "AP9/gA==",
       "Encodings.DatabaseDefaultsStoreTheRightBytes:b64", bin, "AP9/gA=="},
      {"utf8", "json", k("json"), R"({ "b": [1, 2.5, "x\u00e9"], "a": null, "n": -0.5e1 })",
       k("json"), R"({"b":[1,2.5,"xé"],"a":null,"n":-5})", R"({"b":[1,2.5,"xé"],"a":null,"n":-5})"},
      {"utf8", "json", k("json-string"), R"("text")", k("json-string"), R"("text")", R"("text")"},
  };
  ASSERT_EQ(find_encoding("base64")->decode(prefix + "b64"), cases[5].key) << "fix the base64 key of the case";
  for (const auto& c : cases) {
    SCOPED_TRACE(c.key_encoding + "/" + c.value_encoding + " " + show(c.raw_key));
    Link encoded(with_encodings(c.key_encoding, c.value_encoding));
    encoded.guest.put(c.key, c.value);
    EXPECT_EQ(encoded.guest.get(c.key), c.read_back);
    EXPECT_EQ(db().get(c.raw_key, kRawRead), c.raw_value) << "the bytes on the host";
    EXPECT_EQ(encoded.guest.get_many({c.key}), (std::vector<std::optional<std::string>>{c.read_back}));
    IteratorOptions o;
    o.gte = c.key;
    o.lte = c.key;
    auto all = encoded.guest.iterator(o)->all();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].value, c.read_back);
    encoded.guest.del(c.key);
    EXPECT_EQ(db().try_get(c.raw_key, kRawRead), std::nullopt);
  }
}

TEST_F(Encodings, PerOperationOptions) {
  // A utf8 guest (the default) told otherwise for each call.
  const WriteOptions hex_b64{"hex", "base64"};
  const ReadOptions hex_b64_read{"hex", "base64"};
  auto hex = [](std::string_view bytes) { return find_encoding("hex")->decode(bytes); };
  const std::string hp = hex(prefix);  // the prefix, in hex

  db().put(hp + "01", "AQID", hex_b64);  // key prefix+\x01, value \x01\x02\x03
  EXPECT_EQ(db().get(k("\x01"), kRawRead), "\x01\x02\x03");
  EXPECT_EQ(db().get(hp + "01", hex_b64_read), "AQID");
  EXPECT_EQ(db().get(hp + "01", ReadOptions{"hex", "hex"}), "010203");
  EXPECT_EQ(db().get(k("\x01"), ReadOptions{"", "base64"}), "AQID");  // default key, other value encoding

  db().batch({BatchOperation::put(hp + "02", "//79"), BatchOperation::put(hp + "ff", "AA=="),
              BatchOperation::del(hp + "01")},
             hex_b64);
  auto chained = db().batch();
  chained.put(hp + "03", "00ff", WriteOptions{"hex", "hex"}).put(k("\x04"), "{\"x\": 1}", WriteOptions{"", "json"});
  chained.del(hp + "02", WriteOptions{"hex", ""});
  chained.write();
  EXPECT_EQ(raw_entries(db(), prefix),
            (Pairs{{k("\x03"), std::string("\x00\xff", 2)}, {k("\x04"), "{\"x\":1}"}, {k("\xff"), std::string(1, '\0')}}));
  EXPECT_EQ(db().get_many({hp + "03", hp + "02", hp + "ff"}, hex_b64_read),
            (std::vector<std::optional<std::string>>{"AP8=", std::nullopt, "AA=="}));
  EXPECT_EQ(db().get(k("\x04"), ReadOptions{"", "json"}), "{\"x\":1}");

  // An iterator with hex keys, bounds given in hex, base64 values; seek in hex.
  IteratorOptions o;
  o.key_encoding = "hex";
  o.value_encoding = "base64";
  o.gte = hp + "03";
  o.lte = hp + "ff";
  EXPECT_EQ(pairs(db().iterator(o)->all()),
            (Pairs{{hp + "03", "AP8="}, {hp + "04", "eyJ4IjoxfQ=="}, {hp + "ff", "AA=="}}));
  auto it = db().iterator(o);
  it->seek(hp + "fe");
  auto entry = it->next();
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->key, hp + "ff");
  it->seek(k("\x04"), SeekOptions{"utf8"});  // a seek in another encoding than the iterator's
  entry = it->next();
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->key, hp + "04");
  it->close();

  // clear() with bounds in hex.
  ClearOptions clear;
  clear.key_encoding = "hex";
  clear.gt = hp + "03";
  clear.lt = hp + "ff";
  db().clear(clear);
  EXPECT_EQ(raw_entries(db(), prefix), (Pairs{{k("\x03"), std::string("\x00\xff", 2)}, {k("\xff"), std::string(1, '\0')}}));
  db().del(hp + "ff", WriteOptions{"hex", ""});
  EXPECT_EQ(raw_entries(db(), prefix), (Pairs{{k("\x03"), std::string("\x00\xff", 2)}}));
}

TEST_F(Encodings, ErrorsAreReportedWithTheirCodes) {
  db().put(k("not-json"), "{oops");
  EXPECT_EQ(error_code([&] { db().get(k("not-json"), ReadOptions{"", "json"}); }), codes::decode_error);
  EXPECT_EQ(error_code([&] { db().put("0", "x", WriteOptions{"hex", ""}); }), codes::invalid_key);   // odd hex
  EXPECT_EQ(error_code([&] { db().put(k("v"), "zz", WriteOptions{"", "hex"}); }), codes::invalid_value);
  EXPECT_EQ(error_code([&] { db().put(k("v"), "{", WriteOptions{"", "json"}); }), codes::invalid_value);
  EXPECT_EQ(error_code([&] { db().get(k("v"), ReadOptions{"no-such-encoding", ""}); }), codes::encoding_not_found);
  IteratorOptions o = prefix_range(prefix);
  o.value_encoding = "json";
  auto it = db().iterator(o);
  EXPECT_EQ(error_code([&] { it->next(); }), codes::decode_error);
  // Nothing bad reached the host.
  EXPECT_EQ(raw_entries(db(), prefix), (Pairs{{k("not-json"), "{oops"}}));
}

TEST_F(Encodings, SublevelKeysCarryTheirPrefix) {
  auto users = db().sublevel(prefix + "users");
  users->put("ada", R"({ "born": 1815 })", WriteOptions{"utf8", "json"});
  users->put("alan", "1912");
  EXPECT_EQ(raw_entries(db(), "!" + prefix),
            (Pairs{{"!" + prefix + "users!ada", R"({"born":1815})"}, {"!" + prefix + "users!alan", "1912"}}));
  EXPECT_EQ(users->get("alan"), "1912");
  EXPECT_EQ(pairs(users->iterator({})->all()), (Pairs{{"ada", R"({"born":1815})"}, {"alan", "1912"}}));
  users->clear();
  EXPECT_EQ(raw_entries(db(), "!" + prefix), Pairs{});
}

// =============================================================================
// Connection loss with and without retry
// =============================================================================

using Connection = HostTest;

// Without retry, a cut fails what is open: the iterator still yields what it
// had received, then throws LEVEL_CONNECTION_LOST (never a silent end).
TEST_F(Connection, NonRetryingIteratorFailsWithConnectionLost) {
  Pairs entries;
  for (int i = 0; i < 2000; ++i) {
    char suffix[8];
    std::snprintf(suffix, sizeof suffix, "%05d", i);
    entries.emplace_back(k(suffix), std::string(100, 'v'));
  }
  fill(db(), entries);
  auto it = db().iterator(prefix_range(prefix));
  Pairs got;
  for (int i = 0; i < 3; ++i) {
    auto entry = it->next();
    ASSERT_TRUE(entry.has_value());
    got.emplace_back(entry->key, entry->value);
  }
  link->cut();  // returns after the guest has seen the stream end
  std::string code = "no error";
  try {
    while (auto entry = it->next()) got.emplace_back(entry->key, entry->value);
  } catch (const Error& e) {
    code = e.code();
  }
  EXPECT_EQ(code, codes::connection_lost);
  ASSERT_LT(got.size(), entries.size());
  EXPECT_EQ(got, Pairs(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(got.size())));
  it->close();

  // Attached again, the guest works.
  link->attach();
  EXPECT_EQ(db().get(entries[1999].first), entries[1999].second);
  EXPECT_EQ(pairs(db().iterator(prefix_range(prefix))->all()), entries);
}

// The guest's own frame limit (the reference has none): a reply longer than
// GuestOptions::max_frame_length drops the stream with a clear reason, before
// anything is allocated for it; without retry the request fails with
// LEVEL_CONNECTION_LOST instead of waiting forever.
TEST_F(Connection, ReplyOverTheGuestFrameLimitDropsTheStream) {
  db().put(k("big"), std::string(4096, 'x'));
  db().put(k("small"), "ok");
  GuestOptions options;
  options.max_frame_length = 1024;
  Guest limited(options);
  auto session = limited.connect();
  std::mutex mutex;
  std::condition_variable closed;
  std::optional<std::string> reason;
  FdConnection connection = connect_fd(config.address, *session, [&](const std::string& why) {
    std::lock_guard<std::mutex> lock(mutex);
    reason = why;
    closed.notify_all();
  });
  EXPECT_EQ(limited.get(k("small")), "ok");  // under the limit: fine
  EXPECT_EQ(error_code([&] { limited.get(k("big")); }), codes::connection_lost);
  {
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(closed.wait_for(lock, 10s, [&] { return reason.has_value(); }));
  }
  EXPECT_NE(reason->find("exceeds the limit of 1024 bytes"), std::string::npos) << *reason;
  connection.close();
  limited.close();
}

// With retry, requests made while no stream is attached wait for the next.
TEST_F(Connection, RetryingGuestSendsWaitingRequestsOnTheNextStream) {
  Link retry(retrying());
  retry.guest.put(k("a"), "1");
  retry.cut();
  auto put = retry.guest.put_async(k("b"), "2");
  auto get = retry.guest.get_async(k("a"));
  auto many = retry.guest.get_many_async({k("a"), k("b")});
  auto stats = retry.guest.stats();
  EXPECT_FALSE(stats.connected);
  EXPECT_EQ(stats.pending.size(), 3u);  // kept, waiting for a stream
  EXPECT_EQ(put.wait_for(0ms), std::future_status::timeout);
  retry.attach();
  put.get();
  EXPECT_EQ(get.get(), std::optional<std::string>("1"));
  // (Not whether it sees b: classic-level may run a read before an earlier
  // write it was sent after completes.)
  EXPECT_EQ(many.get().at(0), std::optional<std::string>("1"));
  EXPECT_EQ(db().get(k("b")), "2");
  EXPECT_TRUE(retry.guest.is_flushed());
}

// =============================================================================
// The cut-again-and-again tests
// =============================================================================

// Checks a stream of entries against the expected order: each must be the
// next one due. On the first deviation it records what happened (a
// duplicate, skipped keys, a wrong value, an unexpected key) and fails.
class OrderCheck {
 public:
  // expected: in the order they must arrive; by_value: identify entries by
  // their value (an iterator without keys).
  OrderCheck(Pairs expected, bool by_value) : expected_(std::move(expected)), by_value_(by_value) {
    for (size_t i = 0; i < expected_.size(); ++i) index_[by_value_ ? expected_[i].second : expected_[i].first] = i;
  }

  bool accept(const Entry& entry) {
    if (!problem_.empty()) return false;
    const std::string& id = by_value_ ? entry.value : entry.key;
    if (next_ < expected_.size() && id == (by_value_ ? expected_[next_].second : expected_[next_].first)) {
      if (!by_value_ && entry.value != expected_[next_].second) {
        problem_ = "wrong value for " + show(entry.key) + ": " + show(entry.value);
        return false;
      }
      if (by_value_ && !entry.key.empty()) {
        problem_ = "a values-only iterator yielded a key: " + show(entry.key);
        return false;
      }
      ++next_;
      return true;
    }
    auto found = index_.find(id);
    std::string due = next_ < expected_.size() ? show(expected_[next_].first) : std::string("the end");
    if (found == index_.end()) {
      problem_ = "unexpected entry " + show(id) + " when " + due + " was due";
    } else if (found->second < next_) {
      problem_ = "DUPLICATE: " + show(expected_[found->second].first) + " (position " +
                 std::to_string(found->second) + ") yielded again when " + due + " (position " +
                 std::to_string(next_) + ") was due";
    } else {
      problem_ = "SKIPPED " + std::to_string(found->second - next_) + " entr(ies): got " +
                 show(expected_[found->second].first) + " when " + due + " (position " + std::to_string(next_) +
                 ") was due";
    }
    return false;
  }

  size_t arrived() const { return next_; }
  const std::string& problem() const { return problem_; }

 private:
  Pairs expected_;
  bool by_value_;
  std::map<std::string, size_t> index_;
  size_t next_ = 0;
  std::string problem_;
};

// What a cut test saw, printed and recorded (as test properties) for the report.
struct CutReport {
  bool ok = true;     // no duplicate, skip or wrong entry
  size_t passes = 1;  // reads of the whole range
  size_t entries = 0;
  size_t cuts = 0;
  size_t cuts_with_buffered_entries = 0;  // the guest held received, unconsumed data
  uint64_t connects = 0;
  std::chrono::milliseconds elapsed{0};

  void print(const char* what) const {
    std::cout << "[          ] " << what << ": " << entries
              << (ok ? " entries exactly once and in order" : " entries in order, then FAILED (see above)")
              << (passes > 1 ? " (" + std::to_string(passes) + " passes)" : std::string()) << ", " << cuts
              << " cuts (" << cuts_with_buffered_entries << " with received data not yet consumed), " << connects
              << " connections, " << elapsed.count() << " ms\n";
    ::testing::Test::RecordProperty("cuts", static_cast<int>(cuts));
    ::testing::Test::RecordProperty("entries", static_cast<int>(entries));
  }
};

size_t buffered_entries(const Guest& guest) {
  size_t n = 0;
  for (const auto& it : guest.stats().iterators) n += it.buffered_entries;
  return n;
}

// Reconnects at once (1 ms), as the timed cuts need.
ConnectorOptions fast_reconnect() {
  ConnectorOptions options;
  options.initial_backoff = 1ms;
  options.max_backoff = 20ms;
  return options;
}

// Drops a guest's stream (Guest::drop_connection) from a thread of its own
// every 1 to 4 ms, at moments unrelated to what the consumer does: it may be
// waiting for data, or the host may be sending. A cut comes only while the
// consumer says it is reading and once it consumed an entry since the
// previous cut, so a read always progresses. Stopped and joined on
// destruction (also when a test fails).
class TimedCutter {
 public:
  explicit TimedCutter(Guest& guest) : guest_(guest), thread_([this] { run(); }) {}
  TimedCutter(const TimedCutter&) = delete;
  TimedCutter& operator=(const TimedCutter&) = delete;
  ~TimedCutter() { stop(); }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  void reading(bool on) { reading_ = on; }
  void consumed(size_t n = 1) { consumed_ += n; }
  size_t cuts() const { return cuts_.load(); }
  size_t cuts_with_buffered_entries() const { return cuts_with_buffered_.load(); }

 private:
  void run() {
    std::mt19937 random(3);
    size_t last = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    while (!changed_.wait_for(lock, std::chrono::milliseconds(1 + random() % 4), [&] { return done_; })) {
      size_t now = consumed_.load();
      if (!reading_.load() || now == last) continue;
      size_t buffered = buffered_entries(guest_);
      if (guest_.drop_connection()) {
        ++cuts_;
        if (buffered > 0) ++cuts_with_buffered_;
        last = now;
      }
    }
  }

  Guest& guest_;
  std::atomic<bool> reading_{false};
  std::atomic<size_t> consumed_{0};
  std::atomic<size_t> cuts_{0};
  std::atomic<size_t> cuts_with_buffered_{0};
  std::mutex mutex_;
  std::condition_variable changed_;
  bool done_ = false;
  std::thread thread_;  // last: started once everything above exists
};

// The seed range [seed:, seed;) in the order an iterator yields it.
IteratorOptions seed_range(bool reverse) {
  IteratorOptions o = prefix_range(kSeedPrefix);
  o.reverse = reverse;
  return o;
}

// About keys and reverse: the Node reference host resumes a reverse scan at
// the bookmark with its last byte decremented (PROTOCOL.md, "Known weak
// spots"), which skips keys when they have mixed lengths (after "ab" it
// resumes at "aa" and never yields "aa5"). That is a bug of the host, not of
// the guest, and interop.node_host.retry_iterate.reverse_mixed_keys_known_bug
// pins it down. So these tests use the seed format's fixed-length keys, for
// which "the last byte decremented" is still a bound just below the bookmark
// and above every key before it; against the C++ host any keys would do.
class CutAgainAndAgain : public ::testing::Test {
 protected:
  static constexpr size_t kCutEvery = 97;  // small and odd: cuts fall mid-frame

  void SetUp() override {
    if (config.readonly_host) GTEST_SKIP() << "the host is read-only (--readonly-host)";
    ASSERT_GE(config.count, 1000u) << "the cut tests need a range of 1000 entries at least, for more than 10 cuts";
    ensure_seed();
  }

  // The seed range on the host, once per process: written by a plain
  // (non-retrying) guest, or, with --host-seeded, checked to read back
  // exactly as node-host.js --seed wrote it.
  static void ensure_seed() {
    static bool done = false;
    if (done) return;
    const size_t n = config.count;
    Link seeder;
    if (config.host_seeded) {
      ASSERT_EQ(config.host_seeded, n) << "--host-seeded and --count disagree";
      ASSERT_EQ(raw_entries(seeder.guest, kSeedPrefix), seed_entries(n))
          << "the host's --seed data does not read back as lib/common.js writes it";
    } else {
      seeder.guest.clear(prefix_clear(kSeedPrefix));
      fill(seeder.guest, seed_entries(n), WriteOptions{});
      ASSERT_EQ(raw_entries(seeder.guest, kSeedPrefix).size(), n);
    }
    done = true;
  }

  static Pairs expected(bool reverse) {
    Pairs e = seed_entries(config.count);
    if (reverse) std::reverse(e.begin(), e.end());
    return e;
  }

  // Reads the seed range with a retrying guest, cutting its stream by closing
  // the FdConnection after every kCutEvery entries consumed and attaching a
  // new one at once. With nextv, chunks of 1..64 entries (the cut comes after
  // the chunk that crosses a multiple of kCutEvery).
  CutReport read_with_counted_cuts(IteratorOptions o, Pairs expected_entries, bool by_nextv) {
    Link link(retrying());
    OrderCheck check(std::move(expected_entries), !o.keys);
    CutReport report;
    std::mt19937 random(97);
    auto started = std::chrono::steady_clock::now();
    auto it = link.guest.iterator(o);
    size_t consumed = 0;
    size_t next_cut = kCutEvery;
    for (;;) {
      std::vector<Entry> chunk;
      if (by_nextv) {
        chunk = it->nextv(1 + random() % 64);
      } else if (auto entry = it->next()) {
        chunk.push_back(std::move(*entry));
      }
      if (chunk.empty()) break;
      for (const auto& entry : chunk) {
        if (!check.accept(entry)) break;
      }
      if (!check.problem().empty()) break;
      consumed += chunk.size();
      if (consumed >= next_cut) {
        if (buffered_entries(link.guest) > 0) ++report.cuts_with_buffered_entries;
        link.cut();
        link.attach();
        ++report.cuts;
        while (next_cut <= consumed) next_cut += kCutEvery;
      }
    }
    report.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    report.entries = check.arrived();
    report.ok = check.problem().empty();
    report.connects = link.guest.stats().connects;
    EXPECT_EQ(check.problem(), "") << "after " << check.arrived() << " entries and " << report.cuts << " cuts";
    if (check.problem().empty()) {
      EXPECT_FALSE(it->next().has_value()) << "the iterator must stay at its end";
    }
    // Most cuts find frames received but not consumed (the guest must drop
    // them: the host resends from the bookmark); none would mean this test
    // does not reach the path where the reference guest yields duplicates.
    if (report.cuts > 0) {
      EXPECT_GT(report.cuts_with_buffered_entries, 0u) << "no cut found received data not yet consumed";
    }
    it->close();
    return report;
  }

  // Reads the seed range with a retrying guest kept connected by a Connector
  // while a TimedCutter drops its stream every 1 to 4 ms. A pass over 5000
  // entries takes only a few milliseconds against the C++ host, so the range
  // is read again, pass after pass (each a new iterator, checked on its own),
  // until `wanted_cuts` cuts fell inside passes (or `max_passes`).
  CutReport read_with_timed_cuts(bool reverse, size_t wanted_cuts, size_t max_passes) {
    Guest guest(retrying());
    Connector connector(guest, config.address, fast_reconnect());
    TimedCutter cutter(guest);
    CutReport report;
    report.passes = 0;
    const Pairs due = expected(reverse);
    auto started = std::chrono::steady_clock::now();
    for (; report.passes < max_passes && cutter.cuts() < wanted_cuts; ++report.passes) {
      OrderCheck check(due, false);
      auto it = guest.iterator(seed_range(reverse));
      cutter.reading(true);
      while (auto entry = it->next()) {
        if (!check.accept(*entry)) break;
        cutter.consumed();
      }
      cutter.reading(false);
      it->close();
      report.entries += check.arrived();
      if (!check.problem().empty() || check.arrived() != due.size()) {
        report.ok = false;
        ADD_FAILURE() << "pass " << report.passes << ": " << check.problem() << " after " << check.arrived()
                      << " entries, " << cutter.cuts() << " cuts so far";
        break;
      }
    }
    cutter.stop();
    report.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    report.cuts = cutter.cuts();
    report.cuts_with_buffered_entries = cutter.cuts_with_buffered_entries();
    report.connects = connector.connects();
    return report;
  }
};

TEST_F(CutAgainAndAgain, ForwardCutEvery97Entries) {
  auto report = read_with_counted_cuts(seed_range(false), expected(false), false);
  report.print("forward, next(), cut every 97");
  EXPECT_EQ(report.entries, config.count);
  EXPECT_GT(report.cuts, 10u);
  EXPECT_EQ(report.connects, report.cuts + 1);
}

TEST_F(CutAgainAndAgain, ReverseCutEvery97Entries) {
  auto report = read_with_counted_cuts(seed_range(true), expected(true), false);
  report.print("reverse, next(), cut every 97");
  EXPECT_EQ(report.entries, config.count);
  EXPECT_GT(report.cuts, 10u);
}

TEST_F(CutAgainAndAgain, ForwardNextvCutEvery97Entries) {
  auto report = read_with_counted_cuts(seed_range(false), expected(false), true);
  report.print("forward, nextv(1..64), cut every 97");
  EXPECT_EQ(report.entries, config.count);
  EXPECT_GT(report.cuts, 10u);
}

TEST_F(CutAgainAndAgain, ReverseNextvCutEvery97Entries) {
  auto report = read_with_counted_cuts(seed_range(true), expected(true), true);
  report.print("reverse, nextv(1..64), cut every 97");
  EXPECT_EQ(report.entries, config.count);
  EXPECT_GT(report.cuts, 10u);
}

// Values only (a retrying guest still asks the host for keys, to resume) and
// a limit the host must honour by what the guest consumed before each cut.
TEST_F(CutAgainAndAgain, ValuesOnlyWithALimitForwardAndReverse) {
  for (bool reverse : {false, true}) {
    IteratorOptions o = seed_range(reverse);
    o.keys = false;
    o.limit = static_cast<int64_t>(config.count * 3 / 5) + 1;
    Pairs e = expected(reverse);
    e.resize(static_cast<size_t>(o.limit));
    auto report = read_with_counted_cuts(o, e, false);
    report.print(reverse ? "reverse, values only, limit, cut every 97" : "forward, values only, limit, cut every 97");
    EXPECT_EQ(report.entries, static_cast<size_t>(o.limit));
    EXPECT_GT(report.cuts, 10u);
  }
}

// A seek whose result is not consumed yet when the stream dies is re-sent
// as the iterator's seek (not its bookmark); cuts go on every 97 entries.
TEST_F(CutAgainAndAgain, SeekThenCutBeforeItsFirstEntry) {
  const size_t n = config.count;
  for (bool reverse : {false, true}) {
    SCOPED_TRACE(reverse ? "reverse" : "forward");
    Link link(retrying());
    auto it = link.guest.iterator(seed_range(reverse));
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(it->next().has_value());
    const size_t target = n / 2;
    it->seek(seed_key(target));
    link.cut();
    link.attach();
    size_t cuts = 1;
    Pairs e;
    if (reverse) {
      for (size_t i = target + 1; i-- > 0;) e.emplace_back(seed_key(i), seed_value(i));
    } else {
      for (size_t i = target; i < n; ++i) e.emplace_back(seed_key(i), seed_value(i));
    }
    OrderCheck check(e, false);
    size_t consumed = 0;
    while (auto entry = it->next()) {
      if (!check.accept(*entry)) break;
      if (++consumed % kCutEvery == 0) {
        link.cut();
        link.attach();
        ++cuts;
      }
    }
    EXPECT_EQ(check.problem(), "") << "after " << check.arrived() << " entries";
    EXPECT_EQ(check.arrived(), e.size());
    EXPECT_GT(cuts, 10u);
    std::cout << "[          ] " << (reverse ? "reverse" : "forward") << " seek then cut: " << check.arrived()
              << " entries exactly once and in order, " << cuts << " cuts\n";
  }
}

TEST_F(CutAgainAndAgain, ForwardCutEvery1To4msFromAnotherThread) {
  auto report = read_with_timed_cuts(false, 50, 300);
  report.print("forward, next(), cut every 1-4 ms");
  EXPECT_EQ(report.entries, report.passes * config.count);
  EXPECT_GT(report.cuts, 10u);
}

TEST_F(CutAgainAndAgain, ReverseCutEvery1To4msFromAnotherThread) {
  auto report = read_with_timed_cuts(true, 50, 300);
  report.print("reverse, next(), cut every 1-4 ms");
  EXPECT_EQ(report.entries, report.passes * config.count);
  EXPECT_GT(report.cuts, 10u);
}

// Cuts with nothing left to read: right after the last entry was consumed
// (the host's end may or may not have arrived), and again once the end was
// seen. The resumed iterator must end at once, without an entry twice, and
// a seek back (made while detached) must still work on the next stream.
TEST_F(CutAgainAndAgain, CutAtTheEndThenSeekBack) {
  for (bool reverse : {false, true}) {
    SCOPED_TRACE(reverse ? "reverse" : "forward");
    Link link(retrying());
    auto it = link.guest.iterator(seed_range(reverse));
    ASSERT_EQ(pairs(it->nextv(config.count)), expected(reverse));
    link.cut();
    link.attach();
    EXPECT_FALSE(it->next().has_value());
    link.cut();
    link.attach();
    EXPECT_FALSE(it->next().has_value());
    link.cut();
    it->seek(seed_key(10));
    link.attach();
    auto entry = it->next();
    ASSERT_TRUE(entry.has_value());
    EXPECT_EQ(entry->key, seed_key(10));
    link.cut();
    link.attach();
    entry = it->next();
    ASSERT_TRUE(entry.has_value());
    EXPECT_EQ(entry->key, seed_key(reverse ? 9 : 11));
    EXPECT_EQ(entry->value, seed_value(reverse ? 9 : 11));
  }
}

// Random next / nextv / seek steps (to present keys and to absent ones in
// between, inside and outside the range) on a retrying guest whose stream is
// dropped every 1 to 4 ms, each step compared with the same step on a
// MemoryDatabase holding the seed range: a seek re-sent on a new stream, or
// stale frames of an older seq, must never show. Rounds of 400 steps (a new
// iterator each) until 50 cuts fell inside them.
TEST_F(CutAgainAndAgain, RandomSeeksWhileCutEvery1To4ms) {
  MemoryDatabase model;
  fill(model, seed_entries(config.count));
  for (bool reverse : {false, true}) {
    SCOPED_TRACE(reverse ? "reverse" : "forward");
    Guest guest(retrying());
    Connector connector(guest, config.address, fast_reconnect());
    TimedCutter cutter(guest);
    std::mt19937 random(reverse ? 11 : 10);
    size_t rounds = 0, steps = 0, seeks = 0, entries = 0;
    IteratorOptions o = seed_range(reverse);
    for (; rounds < 200 && cutter.cuts() < 50; ++rounds) {
      auto a = guest.iterator(o);
      auto b = model.iterator(o);
      cutter.reading(true);
      for (int step = 0; step < 400; ++step, ++steps) {
        const unsigned dice = random() % 100;
        std::string what = "round " + std::to_string(rounds) + " step " + std::to_string(step);
        if (dice < 10) {
          std::string target = seed_key(random() % (config.count + 20));  // some beyond the last key
          if (random() % 3 == 0) target += "x";                            // absent, between two keys
          if (random() % 20 == 0) target = random() % 2 ? "seed" : "seed;";  // outside the range
          a->seek(target);
          b->seek(target);
          ++seeks;
        } else if (dice < 30) {
          size_t size = 1 + random() % 50;
          auto x = pairs(a->nextv(size));
          auto y = pairs(b->nextv(size));
          ASSERT_EQ(x, y) << what << " nextv(" << size << ")";
          entries += x.size();
          cutter.consumed(x.size());
        } else {
          auto x = a->next();
          auto y = b->next();
          ASSERT_EQ(x.has_value(), y.has_value()) << what;
          if (x) {
            ASSERT_EQ(std::make_pair(x->key, x->value), std::make_pair(y->key, y->value)) << what;
            ++entries;
            cutter.consumed();
          }
        }
      }
      cutter.reading(false);
    }
    cutter.stop();
    std::cout << "[          ] " << (reverse ? "reverse" : "forward") << " random steps: " << rounds << " rounds, "
              << steps << " steps, " << seeks << " seeks, " << entries << " entries as the model has them, "
              << cutter.cuts() << " cuts (" << cutter.cuts_with_buffered_entries()
              << " with received data not yet consumed), " << connector.connects() << " connections\n";
    EXPECT_GT(cutter.cuts(), 10u);
  }
}

// =============================================================================
// Keys of mixed lengths, cut after every entry
// =============================================================================

// Every string over {a, b} of length 1..9 under "mix:" (1022 keys), as
// retry-iterate.js --key-shape mixed has them: between a key and that key
// with its last byte decremented lie many others. A reverse scan resumed at
// "the largest key strictly below the bookmark" yields them all; the Node
// reference host resumes at the bookmark with its last byte decremented
// (PROTOCOL.md, "Known weak spots") and skips them. With
// --known-node-reverse-bug (registered against the Node host only) the
// reverse test asserts exactly that bug, skip by skip, so it tells if the
// reference ever changes and shows the C++ guest is not the one skipping;
// otherwise (the C++ host) every key must arrive exactly once.
class MixedLengthKeys : public ::testing::Test {
 protected:
  static constexpr const char* kPrefix = "mix:";

  void SetUp() override {
    if (config.readonly_host) GTEST_SKIP() << "the host is read-only (--readonly-host)";
    for (size_t length = 1; length <= 9; ++length) {
      for (size_t bits = 0; bits < (size_t{1} << length); ++bits) {
        std::string key = kPrefix;
        for (size_t i = length; i-- > 0;) key.push_back(bits >> i & 1 ? 'b' : 'a');
        keys.push_back(key);
      }
    }
    std::sort(keys.begin(), keys.end());
    Link seeder;
    seeder.guest.clear(prefix_clear(kPrefix));
    Pairs entries;
    for (const auto& key : keys) entries.emplace_back(key, "value of " + key);
    fill(seeder.guest, entries, WriteOptions{});
  }

  // The reference host's reverse resume target (host.js nextTarget()).
  static std::string node_reverse_target(std::string bookmark) {
    if (static_cast<unsigned char>(bookmark.back()) > 0) {
      bookmark.back() = static_cast<char>(bookmark.back() - 1);
    } else {
      bookmark.pop_back();
    }
    return bookmark;
  }

  // Reads the range with a retrying guest whose stream is cut (and replaced)
  // after every entry, so every entry but the first comes from a resumed
  // iterator. Entries must come in order, never twice, with their values;
  // returns the skips: (key after which it resumed, how many keys skipped).
  // Without skips, every key arrived exactly once.
  std::vector<std::pair<std::string, size_t>> read_cut_after_every_entry(bool reverse, size_t& cuts) {
    std::vector<std::string> order = keys;
    if (reverse) std::reverse(order.begin(), order.end());
    std::map<std::string, size_t> position;
    for (size_t i = 0; i < order.size(); ++i) position[order[i]] = i;

    Link link(retrying());
    IteratorOptions o = prefix_range(kPrefix);
    o.reverse = reverse;
    auto it = link.guest.iterator(o);
    std::vector<std::pair<std::string, size_t>> skips;
    size_t due = 0;
    std::string previous;
    std::set<std::string> yielded;
    cuts = 0;
    while (auto entry = it->next()) {
      auto found = position.find(entry->key);
      if (found == position.end()) {
        ADD_FAILURE() << "unexpected key " << show(entry->key);
        break;
      }
      if (entry->value != "value of " + entry->key) {
        ADD_FAILURE() << "wrong value for " << entry->key << ": " << show(entry->value);
        break;
      }
      if (found->second < due) {
        ADD_FAILURE() << (yielded.count(entry->key) ? "DUPLICATE: " : "OUT OF ORDER: ") << entry->key << " after "
                      << previous << " (" << cuts << " cuts)";
        break;
      }
      yielded.insert(entry->key);
      if (found->second > due) skips.emplace_back(previous, found->second - due);
      due = found->second + 1;
      previous = entry->key;
      link.cut();
      link.attach();
      ++cuts;
    }
    // Keys due after the last one yielded were skipped too (the host ended).
    if (due < order.size() && !::testing::Test::HasFailure()) skips.emplace_back(previous, order.size() - due);
    EXPECT_GT(cuts, 10u);
    return skips;
  }

  std::vector<std::string> keys;
};

TEST_F(MixedLengthKeys, ForwardCutAfterEveryEntry) {
  size_t cuts = 0;
  auto skips = read_cut_after_every_entry(false, cuts);
  EXPECT_TRUE(skips.empty()) << skips.size() << " skip(s), the first after " << skips.front().first;
  std::cout << "[          ] forward, " << keys.size() << " keys of mixed lengths, cut after every entry: " << cuts
            << " cuts, " << skips.size() << " skips\n";
}

TEST_F(MixedLengthKeys, ReverseCutAfterEveryEntry) {
  size_t cuts = 0;
  auto skips = read_cut_after_every_entry(true, cuts);
  size_t skipped = 0;
  for (const auto& skip : skips) skipped += skip.second;
  std::cout << "[          ] reverse, " << keys.size() << " keys of mixed lengths, cut after every entry: " << cuts
            << " cuts, " << skips.size() << " skips (" << skipped << " keys never yielded)\n";
  if (!config.known_node_reverse_bug) {
    EXPECT_TRUE(skips.empty()) << skips.size() << " skip(s) (" << skipped << " keys), the first after "
                               << skips.front().first;
    return;
  }
  // KNOWN BUG OF THE NODE REFERENCE HOST, asserted as such: after each
  // bookmark it resumes at the largest key at or below the bookmark with its
  // last byte decremented, never at the largest key strictly below the
  // bookmark. Every skip must be exactly that, and there must be some.
  EXPECT_GT(skips.size(), 0u) << "the reference host no longer skips keys: drop --known-node-reverse-bug";
  std::vector<std::string> ascending = keys;
  for (const auto& [bookmark, count] : skips) {
    ASSERT_FALSE(bookmark.empty()) << "keys skipped before the first entry";
    // Where it should resume: the largest key strictly below the bookmark.
    auto strictly_below = std::lower_bound(ascending.begin(), ascending.end(), bookmark);
    ASSERT_NE(strictly_below, ascending.begin());
    const auto should = static_cast<size_t>(strictly_below - ascending.begin()) - 1;
    // Where the reference resumes: the largest key <= the decremented
    // bookmark; none (it ends) when every key is above that.
    const std::string target = node_reverse_target(bookmark);
    auto floor = std::upper_bound(ascending.begin(), ascending.end(), target);  // the first key > target
    const size_t predicted_skip =
        floor == ascending.begin() ? should + 1 : should - (static_cast<size_t>(floor - ascending.begin()) - 1);
    EXPECT_EQ(count, predicted_skip) << "after " << bookmark << " the reference host should have resumed at "
                                     << (floor == ascending.begin() ? std::string("the end") : *std::prev(floor));
  }
  if (!skips.empty()) {
    std::cout << "[          ] KNOWN NODE HOST BUG reproduced: a reverse scan resumed after bookmark "
              << skips.front().first << " skipped " << skips.front().second << " key(s) (" << skips.size()
              << " such skips)\n";
  }
}

// =============================================================================
// A read-only host (--readonly-host)
// =============================================================================

class Readonly : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!config.readonly_host) GTEST_SKIP() << "needs a read-only host (--readonly-host)";
    link = std::make_unique<Link>();
  }
  std::unique_ptr<Link> link;
};

TEST_F(Readonly, WritesFailWithLevelReadonlyAndReadsWork) {
  Guest& db = link->guest;
  EXPECT_EQ(error_code([&] { db.put("k", "v"); }), codes::readonly);
  EXPECT_EQ(error_code([&] { db.del("k"); }), codes::readonly);
  EXPECT_EQ(error_code([&] { db.batch({BatchOperation::put("k", "v")}); }), codes::readonly);
  EXPECT_EQ(error_code([&] { db.batch().put("k", "v").write(); }), codes::readonly);
  EXPECT_EQ(error_code([&] { db.clear(); }), codes::readonly);
  EXPECT_EQ(error_code([&] { db.get("missing"); }), codes::not_found);
  EXPECT_EQ(db.get_many({"missing"}), (std::vector<std::optional<std::string>>{std::nullopt}));
  // The seed data, when the host has some, reads back.
  auto all = raw_entries(db, kSeedPrefix);
  EXPECT_EQ(all, seed_entries(config.host_seeded));
  if (config.host_seeded > 0) {
    EXPECT_EQ(db.get(seed_key(0)), seed_value(0));
  }
  // A failed write leaves the guest usable.
  EXPECT_TRUE(db.is_flushed());
}

// ---- main -----------------------------------------------------------------------

// Names the running test, for the deadline's message.
class CurrentTest : public ::testing::EmptyTestEventListener {
 public:
  static std::string name() {
    std::lock_guard<std::mutex> lock(mutex());
    return current();
  }

 private:
  void OnTestStart(const ::testing::TestInfo& info) override {
    std::lock_guard<std::mutex> lock(mutex());
    current() = std::string(info.test_suite_name()) + "." + info.name();
  }
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::string& current() {
    static std::string s = "(before the first test)";
    return s;
  }
};

int usage(const std::string& why) {
  std::cerr << "cpp_guest_interop: " << why
            << "\nusage: cpp_guest_interop --connect tcp://127.0.0.1:PORT|unix:PATH [--host-seeded N] [--count N]"
               " [--readonly-host] [--known-node-reverse-bug] [--deadline SECONDS] [gtest options]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);  // takes the --gtest_* options out
  try {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--connect") {
        config.address = value();
      } else if (arg == "--host-seeded") {
        config.host_seeded = std::stoul(value());
      } else if (arg == "--count") {
        config.count = std::stoul(value());
      } else if (arg == "--readonly-host") {
        config.readonly_host = true;
      } else if (arg == "--known-node-reverse-bug") {
        config.known_node_reverse_bug = true;
      } else if (arg == "--deadline") {
        config.deadline_seconds = std::stoi(value());
      } else {
        return usage("unknown argument " + arg);
      }
    }
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  if (config.address.empty()) return usage("--connect is required");
  if (config.host_seeded) config.count = config.host_seeded;
  try {
    (void)parse_address(config.address);
  } catch (const std::exception& e) {
    return usage(e.what());
  }

  ::testing::UnitTest::GetInstance()->listeners().Append(new CurrentTest);

  // A hang must fail here, naming the test, before CTest's timeout kills us.
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::seconds(config.deadline_seconds));
    std::cerr << "cpp_guest_interop: FAIL: deadline of " << config.deadline_seconds << " s passed during "
              << CurrentTest::name() << std::endl;
    std::_Exit(124);
  }).detach();

  std::cout << "cpp_guest_interop: host at " << config.address << std::endl;
  return RUN_ALL_TESTS();
}

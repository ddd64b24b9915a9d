// Replays every scenario captured from the Node reference host (many-level
// 2.0.0 over memory-level, data set a..e = 1..5) against our host over a
// MemoryDatabase seeded alike: the host's frames must equal the captured ones
// byte for byte.
//
// Guest frames are fed in the captured order; before each one the replay
// waits for the host frames the reference guest had necessarily seen by then
// (an ack follows the data it acknowledges, a close follows the end).
//
// Four captures are timing-dependent: in them a request overtook a read the
// reference host had in flight (its nextv result was then dropped). For those,
// the "natural" test lets our host run freely and asserts only what the
// protocol guarantees, and an "interleaving" test uses a ControlledDatabase
// (and, once, a one-thread worker pool) to reproduce the reference's
// interleaving exactly, which must then give the captured frames byte for byte.
#include <set>

#include "host_harness.hpp"

using namespace host_test;

namespace {

const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> all = load_scenarios();
  return all;
}

const Exchange& only(const std::string& name) {
  const auto& s = scenario(scenarios(), name);
  EXPECT_EQ(s.connections.size(), 1u) << name;
  return s.connections.at(0);
}

std::vector<std::string> hexes(const std::vector<std::string>& payloads) {
  std::vector<std::string> out;
  for (const auto& p : payloads) out.push_back(to_hex(p));
  return out;
}

// host frames to wait for before each guest frame, per scenario
const std::map<std::string, std::vector<size_t>>& schedules() {
  static const std::map<std::string, std::vector<size_t>> table = {
      // iterator, ack 1 (after "a"), ack 5 (after b..e and the end), close
      {"iterator-all", {0, 1, 3, 3}},
      {"keys", {0, 1, 3, 3}},
      {"values", {0, 1, 3, 3}},
  };
  return table;
}

// Scenarios whose whole capture is deterministic: one request, one answer, or
// an iterator that the guest closes after its end.
const std::vector<std::string> kDeterministic = {
    "put",        "get",          "get-not-found", "get-binary-key", "del",        "batch",
    "getMany",    "clear-all",    "clear-range",   "iterator-all",   "keys",       "values",
    "readonly-put", "sublevel-put", "json-value",  "empty-value",    "retry-queued-get"};

}  // namespace

TEST(HostVectors, EveryScenarioIsCovered) {
  std::set<std::string> covered(kDeterministic.begin(), kDeterministic.end());
  for (const char* name : {"iterator-seek", "iterator-range-reverse-limit", "retry-iterator", "retry-iterator-reverse"}) {
    covered.insert(name);
  }
  for (const auto& s : scenarios()) EXPECT_TRUE(covered.count(s.name)) << "scenario not replayed: " << s.name;
  EXPECT_EQ(covered.size(), scenarios().size());
}

class DeterministicVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(DeterministicVectors, HostFramesEqualTheCaptureByteForByte) {
  const std::string name = GetParam();
  const Exchange& exchange = only(name);
  HostOptions options;
  options.readonly = name == "readonly-put";
  Rig<> rig(options);
  if (name == "retry-queued-get") {
    seed(rig.db, {{"k", "v"}});  // the reference put k = v before the guest's queued get
  } else {
    seed(rig.db, abcde());
  }
  auto guest = rig.guest();

  auto schedule = schedules().count(name) ? schedules().at(name)
                                          : std::vector<size_t>(exchange.guest_to_host.size(), 0);
  ASSERT_EQ(schedule.size(), exchange.guest_to_host.size());
  for (size_t i = 0; i < exchange.guest_to_host.size(); ++i) {
    ASSERT_TRUE(guest->wait_for_count(schedule[i])) << name << ": before guest frame " << i << guest->transcript();
    guest->send_payload(exchange.guest_to_host[i]);
  }
  ASSERT_TRUE(guest->wait_for_count(exchange.host_to_guest.size())) << name << guest->transcript();
  // Nothing more can come: every request was answered, and iterators were
  // closed after their end. Wait for the host to settle before the last look.
  ASSERT_TRUE(eventually([&] { return guest->session().stats().pending_requests == 0; }));
  ASSERT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  guest->poll();
  EXPECT_EQ(guest->payloads_hex(), hexes(exchange.host_to_guest)) << name;
  EXPECT_TRUE(guest->session().failed().empty());
}

INSTANTIATE_TEST_SUITE_P(Reference, DeterministicVectors, ::testing::ValuesIn(kDeterministic),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (auto& c : name) {
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

// The writes of the replayed scenarios did what they say.
TEST(HostVectors, WriteScenariosLeaveTheStoreAsTheReferenceDid) {
  struct Case {
    std::string name;
    std::map<std::string, std::string> after;
  };
  const std::vector<Case> cases = {
      {"put", {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}, {"hello", "world"}}},
      {"del", {{"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}}},
      {"batch", {{"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}, {"x", "y"}}},
      {"clear-all", {}},
      // gt a, lte c, limit 1, reverse: only c goes
      {"clear-range", {{"a", "1"}, {"b", "2"}, {"d", "4"}, {"e", "5"}}},
      {"sublevel-put", {{"!users!alice", "1"}, {"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}}},
      {"json-value", {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}, {"k", "{\"a\":1}"}}},
      {"empty-value", {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}, {"k", ""}}},
      {"readonly-put", {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}}},
  };
  for (const auto& c : cases) {
    const Exchange& exchange = only(c.name);
    HostOptions options;
    options.readonly = c.name == "readonly-put";
    Rig<> rig(options);
    seed(rig.db, abcde());
    auto guest = rig.guest();
    for (const auto& payload : exchange.guest_to_host) guest->send_payload(payload);
    ASSERT_TRUE(guest->wait_for_count(exchange.host_to_guest.size())) << c.name;
    EXPECT_EQ(dump(rig.db), c.after) << c.name;
  }
}

// ---- iterator-seek --------------------------------------------------------------
// Capture: iterator -> "a"; ack 1; seek(seq 1, "d"); ack(seq 1, 2); close.
// The host sent only "a" (seq 0) and "d" (seq 1): the seek overtook the
// read-ahead the first ack started (dropped), and the close overtook the
// read-ahead the second ack started (dropped).

TEST(HostVectors, IteratorSeekNaturalRunKeepsTheProtocolsPromises) {
  const Exchange& exchange = only("iterator-seek");
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  const auto& g = exchange.guest_to_host;
  guest->send_payload(g[0]);
  ASSERT_TRUE(guest->wait_for_count(1));
  EXPECT_EQ(to_hex(guest->messages()[0].payload), to_hex(exchange.host_to_guest[0]));  // "a", seq 0
  guest->send_payload(g[1]);  // ack 1: the host reads ahead, racing the seek
  guest->send_payload(g[2]);  // seek seq 1 to "d"
  // Wait for the first seq 1 frame, then ack it as the capture does.
  ASSERT_TRUE(guest->wait_until([&] {
    for (const auto& r : guest->messages()) {
      if (seq_of(r.message) == 1u) return true;
    }
    return false;
  })) << guest->transcript();
  guest->send_payload(g[3]);
  ASSERT_TRUE(guest->wait_until([&] { return guest->find<proto::IteratorEnd>(1) && guest->all_of<proto::IteratorEnd>().back().seq == 1; }))
      << guest->transcript();
  guest->send_payload(g[4]);

  // The first frame of seq 1 is the captured one, byte for byte; every seq 0
  // frame precedes every seq 1 frame; seq 0 frames continue after "a" in
  // order; seq 1 yields d, e and ends.
  size_t first_seq1 = SIZE_MAX;
  std::vector<std::string> seq0_keys, seq1_items;
  for (size_t i = 0; i < guest->count(); ++i) {
    const auto& message = guest->messages()[i].message;
    auto seq = seq_of(message);
    ASSERT_TRUE(seq.has_value());
    if (*seq == 1 && first_seq1 == SIZE_MAX) {
      first_seq1 = i;
      EXPECT_EQ(to_hex(guest->messages()[i].payload), to_hex(exchange.host_to_guest[1]));
    }
    if (*seq == 0) {
      EXPECT_EQ(first_seq1, SIZE_MAX) << "seq 0 frame after a seq 1 frame: " << guest->transcript();
    }
    if (auto* data = std::get_if<proto::IteratorData>(&message)) {
      if (*seq == 0) {
        for (size_t k = 0; k < data->data.size(); k += 2) seq0_keys.push_back(data->data[k]);
      } else {
        seq1_items.insert(seq1_items.end(), data->data.begin(), data->data.end());
      }
    }
  }
  std::vector<std::string> all_keys = {"a", "b", "c", "d", "e"};
  ASSERT_LE(seq0_keys.size(), all_keys.size());
  EXPECT_EQ(seq0_keys, std::vector<std::string>(all_keys.begin(), all_keys.begin() + seq0_keys.size()));
  EXPECT_EQ(seq1_items, (std::vector<std::string>{"d", "4", "e", "5"}));
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
}

TEST(HostVectors, IteratorSeekWithTheReferencesInterleavingMatchesTheCapture) {
  const Exchange& exchange = only("iterator-seek");
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  const auto& g = exchange.guest_to_host;

  guest->send_payload(g[0]);                                   // iterator
  ASSERT_TRUE(guest->wait_for_count(1));                       // "a"
  rig.db.nextv_gate.close();
  guest->send_payload(g[1]);                                   // ack 1: read-ahead starts...
  ASSERT_TRUE(rig.db.nextv_gate.wait_for_waiting(1));          // ...and is held in the store
  guest->send_payload(g[2]);                                   // seek overtakes it
  rig.db.nextv_gate.open();                                    // its result is dropped
  ASSERT_TRUE(guest->wait_for_count(2));                       // "d", seq 1
  rig.db.nextv_gate.close();
  guest->send_payload(g[3]);                                   // ack(seq 1, 2): read-ahead...
  ASSERT_TRUE(rig.db.nextv_gate.wait_for_waiting(1));
  guest->send_payload(g[4]);                                   // ...overtaken by the close
  rig.db.nextv_gate.open();
  ASSERT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  guest->poll();
  EXPECT_EQ(guest->payloads_hex(), hexes(exchange.host_to_guest)) << guest->transcript();
}

// ---- iterator-range-reverse-limit ------------------------------------------------
// Capture: iterator(gte b, lt e, limit 2, reverse) -> "d"; ack 1 -> "c"; close.
// The reference host then reads ahead past the guest's limit (its budget is
// limit - consumed = 1), so had the close not overtaken that read it would
// have sent "b" too. Ours counts what it sent: after "c" its budget is 0, so
// it sends IteratorEnd instead -- never more entries than the limit.

TEST(HostVectors, ReverseLimitNaturalRunStopsAtTheLimit) {
  const Exchange& exchange = only("iterator-range-reverse-limit");
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send_payload(exchange.guest_to_host[0]);
  ASSERT_TRUE(guest->wait_for_count(1));
  guest->send_payload(exchange.guest_to_host[1]);
  ASSERT_TRUE(guest->wait_for_count(3)) << guest->transcript();
  guest->send_payload(exchange.guest_to_host[2]);
  ASSERT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  guest->poll();
  auto expected = hexes(exchange.host_to_guest);
  expected.push_back("0408011000");  // IteratorEnd{id 1, seq 0}
  EXPECT_EQ(guest->payloads_hex(), expected) << guest->transcript();
}

TEST(HostVectors, ReverseLimitWithTheReferencesInterleavingMatchesTheCapture) {
  const Exchange& exchange = only("iterator-range-reverse-limit");
  ControlledDatabase gated;
  seed(gated, abcde());
  HostOptions options;
  Gate hold;
  {
    WorkerPool pool(1);  // one worker, so a job of ours can hold the host's next one back
    OnExit open_gates([&] {  // before the pool joins, even when an assertion fails
      hold.open();
      gated.open_all_gates();
    });
    auto session = std::make_shared<HostSession>(gated, options, pool);
    FakeGuest guest(session);
    guest.send_payload(exchange.guest_to_host[0]);
    ASSERT_TRUE(guest.wait_for_count(1));             // "d"
    gated.nextv_gate.close();
    guest.send_payload(exchange.guest_to_host[1]);    // ack 1: the read for "c" starts
    ASSERT_TRUE(gated.nextv_gate.wait_for_waiting(1));
    hold.close();
    pool.submit([&hold] { hold.pass(); });            // queued before the host's next read
    gated.nextv_gate.open();                          // "c" goes out; the next read queues behind ours
    ASSERT_TRUE(guest.wait_for_count(2));
    guest.send_payload(exchange.guest_to_host[2]);    // the close overtakes that read
    hold.open();
    ASSERT_TRUE(eventually([&] { return gated.open_iterator_count() == 0; }));
    guest.poll();
    EXPECT_EQ(guest.payloads_hex(), hexes(exchange.host_to_guest)) << guest.transcript();
    session->end();
  }
}

// ---- retry-iterator, retry-iterator-reverse ----------------------------------------
// Connection 1 is deterministic. On connection 2 the guest re-sends the
// iterator with consumed 2 and a bookmark, then at once acks everything (it
// kept the data it had) and closes; the reference host sent nothing because
// the close overtook its first read.

class RetryVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(RetryVectors, FirstConnectionMatchesTheCapture) {
  const auto& s = scenario(scenarios(), GetParam());
  ASSERT_EQ(s.connections.size(), 2u);
  const Exchange& first = s.connections[0];
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send_payload(first.guest_to_host[0]);
  ASSERT_TRUE(guest->wait_for_count(1));
  guest->send_payload(first.guest_to_host[1]);
  ASSERT_TRUE(guest->wait_for_count(3));
  EXPECT_EQ(guest->payloads_hex(), hexes(first.host_to_guest));
  guest->session().end();  // the stream breaks; the host releases the iterator
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
}

TEST_P(RetryVectors, SecondConnectionNaturalRunResumesAfterTheBookmark) {
  const auto& s = scenario(scenarios(), GetParam());
  const Exchange& second = s.connections[1];
  const bool reverse = GetParam() == "retry-iterator-reverse";
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send_payload(second.guest_to_host[0]);
  ASSERT_TRUE(guest->wait_for_count(1));
  // What the reference would have sent had its read not been overtaken: the
  // first key strictly after the bookmark ("b" forward, "d" in reverse) is c.
  EXPECT_EQ(to_hex(guest->messages()[0].payload), "01080110001a01631a0133");
  guest->send_payload(second.guest_to_host[1]);  // ack consumed 5
  ASSERT_TRUE(guest->wait_until([&] { return guest->find<proto::IteratorEnd>(1) != nullptr; })) << guest->transcript();
  guest->send_payload(second.guest_to_host[2]);  // close
  ASSERT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  std::vector<std::string> items;
  for (const auto& data : guest->all_of<proto::IteratorData>()) items.insert(items.end(), data.data.begin(), data.data.end());
  if (reverse) {
    EXPECT_EQ(items, (std::vector<std::string>{"c", "3", "b", "2", "a", "1"}));
  } else {
    EXPECT_EQ(items, (std::vector<std::string>{"c", "3", "d", "4", "e", "5"}));
  }
}

TEST_P(RetryVectors, SecondConnectionWithTheReferencesInterleavingMatchesTheCapture) {
  const auto& s = scenario(scenarios(), GetParam());
  const Exchange& second = s.connections[1];
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  rig.db.nextv_gate.close();  // the first read is held until the close is in
  for (const auto& payload : second.guest_to_host) guest->send_payload(payload);
  rig.db.nextv_gate.open();
  ASSERT_TRUE(eventually([&] { return guest->session().stats().pending_requests == 0; }));
  ASSERT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  guest->poll();
  EXPECT_EQ(guest->payloads_hex(), hexes(second.host_to_guest)) << guest->transcript();
  EXPECT_TRUE(guest->session().stats().iterators.empty());
}

INSTANTIATE_TEST_SUITE_P(Reference, RetryVectors, ::testing::Values("retry-iterator", "retry-iterator-reverse"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "retry-iterator" ? std::string("forward") : std::string("reverse");
                         });

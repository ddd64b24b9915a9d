// Negotiation of the extension (docs/PROTOCOL.md, "Negotiation"): Hello is
// the first frame of every stream and nothing waits for its answer; a C++
// host makes the stream extended, a host that answers a request before it
// answers Hello (the reference) makes it base, with no timeout; extension
// calls then fail with LEVEL_NOT_SUPPORTED, the probe making sure they
// never hang. GuestOptions::extension = false sends nothing of it.
#include <future>
#include <string>
#include <vector>

#include "extension_harness.hpp"

namespace guest_tests {
namespace {

class Negotiation : public GuestTest {};

GuestOptions with_retry() {
  GuestOptions options;
  options.retry = true;
  return options;
}

GuestOptions without_extension() {
  GuestOptions options;
  options.extension = false;
  return options;
}

bool is_extension_frame(const proto::GuestMessage& message) {
  return message.index() >= proto::base_guest_messages;
}

const std::vector<std::string> kAllFeatures{"has", "snapshots", "watch", "stats"};

// ---- a C++ host ------------------------------------------------------------------

TEST_F(Negotiation, ACppHostMakesTheStreamExtended) {
  Remote remote;
  Guest guest;
  FrameLog log(guest);
  EXPECT_EQ(guest.host_extension(), HostExtension::unknown);  // no stream yet
  Link link(guest, remote.host);
  guest.put("k", "v");
  // The host answers Hello before the put: the put's reply proves it came.
  EXPECT_EQ(guest.host_extension(), HostExtension::available);
  auto features = guest.host_features();
  std::sort(features.begin(), features.end());
  auto expected = kAllFeatures;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(features, expected);  // a MemoryDatabase has snapshots and a change feed

  auto stats = guest.stats();
  EXPECT_EQ(stats.extension, HostExtension::available);
  EXPECT_EQ(stats.features, guest.host_features());
  EXPECT_TRUE(link.host_session().stats().extended);

  auto hellos = log.sent<proto::Hello>();
  ASSERT_EQ(hellos.size(), 1u);
  EXPECT_EQ(hellos[0].version, 1u);
  EXPECT_EQ(hellos[0].features, kAllFeatures);
  EXPECT_FALSE(hellos[0].token.has_value());
  EXPECT_EQ(log.sent_names(), (std::vector<std::string>{"hello", "put"}));
  ASSERT_EQ(log.received<proto::HelloReply>().size(), 1u);
  EXPECT_EQ(log.received<proto::HelloReply>()[0].version, 1u);
}

// The counterpart of Sharing.FrameObserverSeesEveryPayload with the
// extension on: the same frames, behind a Hello and its reply.
TEST_F(Negotiation, FrameObserverSeesTheHelloFirst) {
  Remote remote;
  Guest guest;
  FrameLog log(guest);
  Link link(guest, remote.host, PumpOptions{2, 8});
  guest.put("k", "v");
  EXPECT_EQ(guest.get("k"), "v");
  auto stats = guest.stats();
  EXPECT_EQ(stats.frames_out, 3u);
  EXPECT_EQ(stats.frames_in, 3u);
  EXPECT_EQ(log.sent_names(), (std::vector<std::string>{"hello", "put", "get"}));
  auto in = log.in();
  ASSERT_EQ(in.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<proto::HelloReply>(in[0]));
  EXPECT_TRUE(std::holds_alternative<proto::Callback>(in[1]));
  ASSERT_TRUE(std::holds_alternative<proto::Callback>(in[2]));
  EXPECT_EQ(std::get<proto::Callback>(in[2]).value, "v");
}

// Hello goes first on every stream, before the requests and iterators a
// retrying guest re-sends; each stream is negotiated afresh.
TEST_F(Negotiation, HelloIsTheFirstFrameOfEveryStream) {
  GatedRemote remote;
  Guest guest(with_retry());
  FrameLog log(guest);
  fill(remote.db.inner(), {{"a", "1"}, {"b", "2"}, {"c", "3"}});
  auto early = guest.get_async("a");  // made before any stream: sent on the first
  auto link = std::make_unique<Link>(guest, remote.host);
  EXPECT_EQ(early.get(), "1");
  auto iterator = guest.iterator();
  EXPECT_EQ(iterator->next(), (Entry{"a", "1"}));

  remote.gate.close();
  auto waiting = guest.get_async("b");
  ASSERT_TRUE(remote.gate.wait_for_waiting(1));
  link->cut();
  link.reset();
  log.clear();
  remote.gate.open();
  link = std::make_unique<Link>(guest, remote.host);
  EXPECT_EQ(waiting.get(), "2");
  EXPECT_EQ(iterator->next(), (Entry{"b", "2"}));
  auto names = log.sent_names();
  ASSERT_GE(names.size(), 3u);
  EXPECT_EQ(names[0], "hello");
  EXPECT_EQ(std::count(names.begin(), names.end(), "hello"), 1);
  EXPECT_NE(std::find(names.begin(), names.end(), "get"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "iterator"), names.end());
  EXPECT_EQ(guest.host_extension(), HostExtension::available);
  EXPECT_EQ(guest.stats().connects, 2u);
}

// ---- extension = false -----------------------------------------------------------

TEST_F(Negotiation, ExtensionOffSendsNothingOfIt) {
  Remote remote;
  Guest guest(without_extension());
  FrameLog log(guest);
  EXPECT_FALSE(guest.supports().explicit_snapshots);
  EXPECT_FALSE(guest.supports().watch);
  Link link(guest, remote.host);
  guest.put("a", "1");
  EXPECT_EQ(guest.get("a"), "1");
  EXPECT_TRUE(guest.has("a"));
  EXPECT_EQ(guest.has_many({"a", "b"}), (std::vector<bool>{true, false}));
  auto iterator = guest.iterator();
  EXPECT_EQ(iterator->all(), (std::vector<Entry>{{"a", "1"}}));

  EXPECT_EQ(guest.host_extension(), HostExtension::unavailable);
  EXPECT_TRUE(guest.host_features().empty());
  EXPECT_EQ(error_code([&] { guest.snapshot(); }), codes::not_supported);
  WatchLog watched;
  EXPECT_EQ(error_code([&] { guest.watch({}, watched.callback()); }), codes::not_supported);
  EXPECT_EQ(error_code([&] { guest.host_stats(); }), codes::not_supported);
  auto stats_future = guest.host_stats_async();
  EXPECT_EQ(future_error(stats_future), codes::not_supported);

  for (const auto& frame : log.out()) EXPECT_FALSE(is_extension_frame(frame));
  auto names = log.sent_names();
  names.resize(std::min<size_t>(names.size(), 5));  // then the iterator's ack
  EXPECT_EQ(names, (std::vector<std::string>{"put", "get", "getMany", "getMany", "iterator"}));
  EXPECT_FALSE(link.host_session().stats().extended);
  EXPECT_TRUE(log.received<proto::HelloReply>().empty());
}

// ---- a host without the extension (the reference) ------------------------------------

// It never answers Hello: its first answer to a request settles the stream,
// with no timeout, and that request is answered as usual.
TEST_F(Negotiation, AReferenceHostMakesTheStreamBaseWithoutATimeout) {
  Guest guest;
  FrameLog log(guest);
  ReferenceLink link(guest);
  EXPECT_EQ(guest.host_extension(), HostExtension::unknown);  // Hello is ignored: nothing came
  auto put = guest.put_async("k", "v");
  // Sent at once, behind the Hello: nothing waits for an answer to it.
  ASSERT_TRUE(ready(put, std::chrono::milliseconds(5000)));
  put.get();
  EXPECT_EQ(guest.host_extension(), HostExtension::unavailable);
  EXPECT_EQ(guest.get("k"), "v");
  EXPECT_TRUE(guest.host_features().empty());
  EXPECT_EQ(guest.stats().extension, HostExtension::unavailable);
  EXPECT_EQ(log.sent_names(), (std::vector<std::string>{"hello", "put", "get"}));
  // has and has_many read values from such a host, and are right.
  EXPECT_TRUE(guest.has("k"));
  EXPECT_EQ(guest.has_many({"nope", "k"}), (std::vector<bool>{false, true}));
  EXPECT_TRUE(log.sent<proto::HasRequest>().empty());
  EXPECT_EQ(log.sent<proto::GetManyRequest>().size(), 2u);
}

// Extension calls made before anything settled the stream are sent, with one
// empty GetMany behind the first (the probe), whose answer settles it: they
// fail with LEVEL_NOT_SUPPORTED instead of waiting for ever. Later ones fail
// at once, sending nothing; the probe's answer is seen by no caller.
TEST_F(Negotiation, ExtensionCallsToAReferenceHostFailInsteadOfHanging) {
  Guest guest;
  FrameLog log(guest);
  ReferenceLink link(guest);
  WatchLog watched;
  auto watch = guest.watch({}, watched.callback());  // unknown yet: sent
  auto stats = guest.host_stats_async();              // sent too, no second probe
  std::string message;
  try {
    guest.snapshot();
    ADD_FAILURE() << "snapshot() against a reference host succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), codes::not_supported);
    message = e.message();
  }
  EXPECT_EQ(message, "the host has no extension (a Node many-level host?)");
  EXPECT_EQ(future_error(stats), codes::not_supported);
  ASSERT_TRUE(watched.wait_for_error());
  EXPECT_EQ(watched.error_code(), codes::not_supported);
  EXPECT_TRUE(watched.commits().empty());
  EXPECT_EQ(guest.host_extension(), HostExtension::unavailable);

  // (The stats request and the snapshot went too, unless the probe's answer
  // had come by then.)
  auto received = link.peer().received();
  ASSERT_GE(received.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<proto::Hello>(received[0]));
  EXPECT_TRUE(std::holds_alternative<proto::WatchRequest>(received[1]));
  ASSERT_TRUE(std::holds_alternative<proto::GetManyRequest>(received[2]));  // the probe, right behind
  EXPECT_TRUE(std::get<proto::GetManyRequest>(received[2]).keys.empty());
  EXPECT_EQ(log.sent<proto::GetManyRequest>().size(), 1u);  // once per stream

  // Settled: refused at once, and nothing more is sent.
  const size_t sent = log.out().size();
  EXPECT_EQ(error_code([&] { guest.snapshot(); }), codes::not_supported);
  EXPECT_EQ(error_code([&] { guest.watch({}, watched.callback()); }), codes::not_supported);
  EXPECT_EQ(error_code([&] { guest.host_stats(); }), codes::not_supported);
  EXPECT_EQ(log.out().size(), sent);
  watch->close();
  EXPECT_EQ(log.out().size(), sent);  // the host never had the watch: no WatchClose
  EXPECT_EQ(watched.errors().size(), 1u);

  // The probe's answer completed nothing and left nothing pending.
  EXPECT_TRUE(eventually([&] { return guest.is_flushed(); }));
  EXPECT_TRUE(guest.stats().pending.empty());
  guest.put("a", "1");
  EXPECT_EQ(guest.get("a"), "1");
}

// Every stream is settled afresh: extended with a C++ host, base with the
// reference, extended again; the probe goes once per stream that needs it.
TEST_F(Negotiation, EachStreamIsNegotiatedAgain) {
  Remote remote;
  Guest guest(with_retry());
  FrameLog log(guest);
  {
    Link link(guest, remote.host);
    guest.put("a", "1");  // settles the stream first: no probe needed
    EXPECT_NO_THROW(guest.host_stats());
    EXPECT_EQ(guest.host_extension(), HostExtension::available);
  }
  EXPECT_EQ(guest.host_extension(), HostExtension::available);  // the last stream's
  auto stats = guest.host_stats_async();  // no stream: waits for the next one
  {
    ReferenceLink link(guest);
    EXPECT_EQ(future_error(stats), codes::not_supported);
    EXPECT_EQ(guest.host_extension(), HostExtension::unavailable);
    auto received = link.peer().received();
    ASSERT_EQ(received.size(), 3u);
    EXPECT_TRUE(std::holds_alternative<proto::Hello>(received[0]));
    EXPECT_TRUE(std::holds_alternative<proto::HostStatsRequest>(received[1]));
    EXPECT_TRUE(std::holds_alternative<proto::GetManyRequest>(received[2]));
  }
  {
    Link link(guest, remote.host);
    guest.put("a", "1");  // settles the stream first: no probe needed
    EXPECT_NO_THROW(guest.host_stats());
    EXPECT_EQ(guest.host_extension(), HostExtension::available);
  }
  EXPECT_EQ(log.sent<proto::Hello>().size(), 3u);
  // The probe only on the stream that was unknown when an extension call came.
  EXPECT_EQ(log.sent<proto::GetManyRequest>().size(), 1u);
}

// A host that answers Hello with an error (e.g. a token it does not accept)
// leaves the stream base, saying why.
TEST_F(Negotiation, ARefusedHelloLeavesTheStreamBase) {
  Guest guest;
  ReferenceLink link(guest, std::string("LEVEL_ACCESS_DENIED"));
  try {
    guest.snapshot();
    ADD_FAILURE() << "snapshot() succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), codes::not_supported);
    EXPECT_NE(e.message().find("LEVEL_ACCESS_DENIED"), std::string::npos) << e.message();
  }
  EXPECT_EQ(guest.host_extension(), HostExtension::unavailable);
  guest.put("a", "1");
  EXPECT_EQ(guest.get("a"), "1");
}

}  // namespace
}  // namespace guest_tests

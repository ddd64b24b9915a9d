// has / has_many over the extension: a HasRequest answered by one byte a key,
// so no value crosses the wire; through encodings and sublevels; and, when a
// retrying guest re-sends one on a new stream whose host is not known yet,
// as the GetMany every host answers.
#include <string>
#include <thread>
#include <vector>

#include "extension_harness.hpp"

namespace guest_tests {
namespace {

class Has : public GuestTest {};

TEST_F(Has, NoValueCrossesTheWire) {
  Remote remote;
  const std::string big(256 * 1024, 'x');
  fill(remote.db, {{"a", big}, {"b", big}, {std::string("\0\xff", 2), big}});
  Guest guest;
  FrameLog log(guest);
  Link link(guest, remote.host);
  guest.put("c", "");  // an empty value is present too; and the stream is settled
  const uint64_t bytes_before = guest.stats().bytes_in;

  EXPECT_TRUE(guest.has("a"));
  EXPECT_FALSE(guest.has("z"));
  EXPECT_TRUE(guest.has("c"));
  EXPECT_EQ(guest.has_many({"b", "nope", std::string("\0\xff", 2), "a", "c", ""}, kRawRead),
            (std::vector<bool>{true, false, true, true, true, false}));
  EXPECT_EQ(guest.has_many({}), std::vector<bool>{});

  EXPECT_LT(guest.stats().bytes_in - bytes_before, 200u);  // three values of 256 KiB stayed on the host
  auto requests = log.sent<proto::HasRequest>();
  ASSERT_EQ(requests.size(), 5u);
  EXPECT_EQ(requests[3].keys, (std::vector<std::string>{"b", "nope", std::string("\0\xff", 2), "a", "c", ""}));
  EXPECT_FALSE(requests[3].snapshot.has_value());
  EXPECT_TRUE(log.sent<proto::GetManyRequest>().empty());
  EXPECT_TRUE(log.sent<proto::GetRequest>().empty());
  auto replies = log.received<proto::HasCallback>();
  ASSERT_EQ(replies.size(), 5u);
  EXPECT_EQ(replies[3].found, std::string("\1\0\1\1\1\0", 6));
}

TEST_F(Has, ThroughEncodingsAndSublevels) {
  Remote remote;
  GuestOptions options;
  options.encodings = DatabaseOptions{"hex", "json"};
  Guest guest(options);
  FrameLog log(guest);
  Link link(guest, remote.host);
  guest.put("6b", "1");  // "k"
  EXPECT_TRUE(guest.has("6b"));
  EXPECT_FALSE(guest.has("6c"));
  EXPECT_EQ(guest.has_many({"6c", "6b"}), (std::vector<bool>{false, true}));
  EXPECT_EQ(error_code([&] { guest.has("not hex"); }), codes::invalid_key);

  auto sub = guest.sublevel("s");
  sub->put("inner", "2", WriteOptions{"utf8", "utf8"});
  EXPECT_TRUE(sub->has("inner", ReadOptions{"utf8", "utf8"}));
  EXPECT_FALSE(guest.has("696e6e6572"));  // "inner" is only under the prefix
  EXPECT_EQ(sub->has_many({"inner", "k"}, ReadOptions{"utf8", "utf8"}), (std::vector<bool>{true, false}));
  auto requests = log.sent<proto::HasRequest>();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests.back().keys, (std::vector<std::string>{"!s!inner", "!s!k"}));
  EXPECT_TRUE(log.sent<proto::GetManyRequest>().empty());
}

// A has waiting on the host when the stream is cut is re-sent on the next
// stream as a GetMany (that host is not known yet), and answered right.
TEST_F(Has, ResentAsGetManyOnANewStream) {
  GatedRemote remote;
  fill(remote.db.inner(), {{"a", "1"}, {"b", "2"}});
  GuestOptions options;
  options.retry = true;
  Guest guest(options);
  FrameLog log(guest);
  auto link = std::make_unique<Link>(guest, remote.host);
  ASSERT_TRUE(eventually([&] { return guest.host_extension() == HostExtension::available; }));
  EXPECT_TRUE(guest.has("a"));
  ASSERT_EQ(log.sent<proto::HasRequest>().size(), 1u);

  remote.gate.close();
  std::vector<bool> found;
  std::thread caller([&] { found = guest.has_many({"b", "c", "a"}); });
  ASSERT_TRUE(remote.gate.wait_for_waiting(1));
  // (The frame observer runs once the frame is written: maybe after the host read it.)
  ASSERT_TRUE(eventually([&] { return log.sent<proto::HasRequest>().size() == 2; }));
  link->cut();
  link.reset();
  remote.gate.open();
  link = std::make_unique<Link>(guest, remote.host);
  caller.join();
  EXPECT_EQ(found, (std::vector<bool>{true, false, true}));
  auto resent = log.sent<proto::GetManyRequest>();
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].keys, (std::vector<std::string>{"b", "c", "a"}));
  EXPECT_EQ(log.sent<proto::HasRequest>().size(), 2u);
  // The new stream is extended too, so has goes without values again.
  EXPECT_TRUE(guest.has("b"));
  EXPECT_EQ(log.sent<proto::HasRequest>().size(), 3u);
}

// The host's answer must hold one entry a key; anything else is an error,
// never a short vector (Database::has takes its first element). Answered by
// hand: a reference host that got the has as a GetMany (request id 1).
TEST_F(Has, AShortAnswerIsADecodeError) {
  Guest guest;
  auto session = guest.connect();
  std::string code;
  std::thread caller([&] { code = error_code([&] { guest.has_many({"a", "b"}); }); });
  ASSERT_TRUE(eventually([&] { return guest.stats().pending.size() == 1; }));
  std::string reply;
  proto::encode(reply, proto::GetManyCallback{1, std::nullopt, {std::string("x")}});
  session->receive(reply.data(), reply.size());
  caller.join();
  EXPECT_EQ(code, codes::decode_error);
  session->end();
}

}  // namespace
}  // namespace guest_tests

// A retrying guest re-sends an open iterator with `consumed` and a bookmark
// (the last key it yielded) or a seek target (PROTOCOL.md, "Retry"). The host
// resumes strictly after the bookmark -- in reverse at the largest key
// strictly below it, which the reference gets wrong -- counts `consumed`
// against the limit, and a later seek may go anywhere in the original range.
#include "host_harness.hpp"

using namespace host_test;

namespace {

using Keys = std::vector<std::string>;

struct Resume {
  proto::IteratorOptions options = iter_options(true, false);
  uint64_t consumed = 0;
  std::optional<std::string> bookmark;
  std::optional<std::string> seek;
};

proto::IteratorRequest resume_request(uint32_t id, const Resume& r) {
  auto request = iterator_request(id, r.options);
  request.consumed = r.consumed;
  request.bookmark = r.bookmark;
  request.seek = r.seek;
  return request;
}

// Keys yielded by a resumed iterator over `data`, to its end.
Keys resume(const std::vector<std::pair<std::string, std::string>>& data, const Resume& r) {
  Rig<> rig;
  seed(rig.db, data);
  auto guest = rig.guest();
  guest->send(resume_request(1, r));
  size_t per_entry = r.options.keys && r.options.values ? 2 : 1;
  auto drained = drain_iterator(*guest, 1, 0, r.consumed, per_entry);
  EXPECT_TRUE(drained.ended);
  guest->send(proto::IteratorClose{1});
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  return per_entry == 2 ? evens(drained.items) : drained.items;
}

Resume with(proto::IteratorOptions options, std::optional<std::string> bookmark, uint64_t consumed = 1) {
  Resume r;
  r.options = std::move(options);
  r.bookmark = std::move(bookmark);
  r.consumed = consumed;
  return r;
}

proto::IteratorOptions keys_options(bool reverse = false, int64_t limit = -1) {
  auto options = iter_options(true, false);
  options.reverse = reverse;
  options.limit = limit;
  return options;
}

const std::vector<std::pair<std::string, std::string>> kProtocolExample = {
    {"aa", "1"}, {"aa5", "2"}, {"ab", "3"}, {"b", "4"}};

}  // namespace

TEST(HostRetry, ForwardResumesStrictlyAfterTheBookmark) {
  EXPECT_EQ(resume(abcde(), with(keys_options(), "b")), (Keys{"c", "d", "e"}));
  EXPECT_EQ(resume(abcde(), with(keys_options(), "bb")), (Keys{"c", "d", "e"}));  // not a key
  EXPECT_EQ(resume(abcde(), with(keys_options(), "e")), Keys{});
  EXPECT_EQ(resume(kProtocolExample, with(keys_options(), "aa")), (Keys{"aa5", "ab", "b"}));
  // "b\0" is the reference's seek target for bookmark "b"; a key equal to it
  // is strictly after "b" and must come.
  std::vector<std::pair<std::string, std::string>> with_nul = {{"b", "1"}, {std::string("b\0", 2), "2"}, {"c", "3"}};
  EXPECT_EQ(resume(with_nul, with(keys_options(), "b")), (Keys{std::string("b\0", 2), "c"}));
}

TEST(HostRetry, ReverseResumesAtTheLargestKeyStrictlyBelowTheBookmark) {
  // PROTOCOL.md's example: the reference resumes at "aa" and never yields "aa5".
  EXPECT_EQ(resume(kProtocolExample, with(keys_options(true), "ab")), (Keys{"aa5", "aa"}));
  EXPECT_EQ(resume(abcde(), with(keys_options(true), "d")), (Keys{"c", "b", "a"}));
  EXPECT_EQ(resume(abcde(), with(keys_options(true), "cc")), (Keys{"c", "b", "a"}));
  EXPECT_EQ(resume(abcde(), with(keys_options(true), "a")), Keys{});
  // A last byte of 0x00: the reference drops it and lands on "a" itself.
  std::vector<std::pair<std::string, std::string>> with_nul = {{"a", "1"}, {std::string("a\0", 2), "2"}, {"b", "3"}};
  EXPECT_EQ(resume(with_nul, with(keys_options(true), std::string("a\0", 2))), (Keys{"a"}));
  // An empty bookmark: nothing is below it (the reference's "limbo").
  EXPECT_EQ(resume(abcde(), with(keys_options(true), "")), Keys{});
}

TEST(HostRetry, ResumeKeepsTheRange) {
  auto forward = keys_options();
  forward.lte = "d";
  EXPECT_EQ(resume(abcde(), with(forward, "b")), (Keys{"c", "d"}));
  auto lower = keys_options();
  lower.gte = "c";  // a bookmark below the range leaves the range as it is
  EXPECT_EQ(resume(abcde(), with(lower, "a")), (Keys{"c", "d", "e"}));
  auto exclusive = keys_options();
  exclusive.gt = "b";
  EXPECT_EQ(resume(abcde(), with(exclusive, "b")), (Keys{"c", "d", "e"}));
  auto reverse = keys_options(true);
  reverse.gte = "b";
  EXPECT_EQ(resume(abcde(), with(reverse, "d")), (Keys{"c", "b"}));
  auto upper = keys_options(true);
  upper.lte = "c";  // a bookmark above the range leaves it as it is
  EXPECT_EQ(resume(abcde(), with(upper, "e")), (Keys{"c", "b", "a"}));
}

TEST(HostRetry, FramesCarryEntriesWhenKeysAndValuesWereAsked) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(resume_request(1, with(iter_options(), "c", 3)));
  auto drained = drain_iterator(*guest, 1, 0, 3);
  EXPECT_EQ(drained.items, (Keys{"d", "4", "e", "5"}));
}

TEST(HostRetry, ASeekTargetWinsOverTheBookmark) {
  Resume forward = with(keys_options(), "a");
  forward.seek = "d";
  EXPECT_EQ(resume(abcde(), forward), (Keys{"d", "e"}));
  Resume reverse = with(keys_options(true), "e");
  reverse.seek = "b";
  EXPECT_EQ(resume(abcde(), reverse), (Keys{"b", "a"}));
  Resume seek_only;
  seek_only.seek = "c";
  EXPECT_EQ(resume(abcde(), seek_only), (Keys{"c", "d", "e"}));
  // With a seek target the bookmark does not narrow the range: "a" comes back.
  Resume back = with(keys_options(), "c");
  back.seek = "a";
  EXPECT_EQ(resume(abcde(), back), (Keys{"a", "b", "c", "d", "e"}));
}

TEST(HostRetry, ConsumedCountsAgainstTheLimit) {
  EXPECT_EQ(resume(abcde(), with(keys_options(false, 4), "b", 2)), (Keys{"c", "d"}));
  EXPECT_EQ(resume(abcde(), with(keys_options(true, 3), "d", 2)), (Keys{"c"}));
  EXPECT_EQ(resume(abcde(), with(keys_options(false, 2), "b", 2)), Keys{});
  EXPECT_EQ(resume(abcde(), with(keys_options(false, 2), "b", 7)), Keys{});
}

TEST(HostRetry, ConsumedLimitOnTheWire) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(resume_request(1, with(keys_options(false, 2), "b", 2)));
  ASSERT_TRUE(guest->wait_for_count(1));
  ASSERT_TRUE(idle_with(guest->session(), 1, 0));
  guest->poll();
  EXPECT_EQ(guest->payloads_hex(), std::vector<std::string>{"0408011000"});
}

TEST(HostRetry, ASeekAfterABookmarkResumeGoesAnywhereInTheOriginalRange) {
  struct Case {
    proto::IteratorOptions options;
    std::string bookmark;
    Keys before_seek;
    std::string target;
    Keys after_seek;
  };
  auto bounded = keys_options();
  bounded.gte = "b";
  bounded.lte = "d";
  auto bounded_reverse = bounded;
  bounded_reverse.reverse = true;
  const std::vector<Case> cases = {
      {keys_options(), "c", {"d", "e"}, "a", {"a", "b", "c", "d", "e"}},
      {keys_options(true), "c", {"b", "a"}, "e", {"e", "d", "c", "b", "a"}},
      {bounded, "c", {"d"}, "b", {"b", "c", "d"}},          // before the bookmark, inside the range
      {bounded_reverse, "c", {"b"}, "d", {"d", "c", "b"}},  // after the bookmark, inside the range
      {bounded, "c", {"d"}, "a", {}},                       // outside the range: the natural end
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    Rig<> rig;
    seed(rig.db, abcde());
    auto guest = rig.guest();
    guest->send(resume_request(1, with(c.options, c.bookmark)));
    auto first = drain_iterator(*guest, 1, 0, 1, 1);
    EXPECT_TRUE(first.ended) << i;
    EXPECT_EQ(first.items, c.before_seek) << i;
    guest->send(proto::IteratorSeek{1, 1, c.target});
    auto second = drain_iterator(*guest, 1, 1, 1, 1);
    EXPECT_TRUE(second.ended) << i;
    EXPECT_EQ(second.items, c.after_seek) << "case " << i << guest->transcript();
    guest->send(proto::IteratorClose{1});
    EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; })) << i;
  }
}

TEST(HostRetry, ASeekBeforeTheResumedIteratorsFirstReadAlsoWidensTheRange) {
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  rig.db.nextv_gate.close();
  guest->send(resume_request(1, with(keys_options(), "c")));
  ASSERT_TRUE(rig.db.nextv_gate.wait_for_waiting(1));
  guest->send(proto::IteratorSeek{1, 1, "a"});
  rig.db.nextv_gate.open();
  auto drained = drain_iterator(*guest, 1, 1, 1, 1);
  EXPECT_EQ(drained.items, (Keys{"a", "b", "c", "d", "e"}));
  guest->send(proto::IteratorClose{1});
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
  EXPECT_EQ(rig.db.iterators_created.load(), rig.db.iterators_closed.load());
}

// Get, put, del, batch, getMany and clear over the wire: answers with the
// right ids and codes, pipelined requests applied in arrival order even
// though the host coalesces them, readonly, the hooks, and failures of the
// store that must be answered rather than left hanging.
#include <set>

#include "host_harness.hpp"

using namespace host_test;

namespace {

using Map = std::map<std::string, std::string>;

std::optional<std::string> ok_value(const proto::Callback& callback) {
  EXPECT_FALSE(callback.error) << "error " << callback.error.value_or("");
  return callback.value;
}

proto::BatchOp put_op(std::string key, std::string value) {
  return proto::BatchOp{proto::BatchOp::Type::put, std::move(key), std::move(value)};
}

proto::BatchOp del_op(std::string key) { return proto::BatchOp{proto::BatchOp::Type::del, std::move(key), std::nullopt}; }

proto::ClearRequest clear_request(uint32_t id, proto::ClearOptions options = {}) {
  proto::ClearRequest request;
  request.id = id;
  request.options = std::move(options);
  return request;
}

}  // namespace

TEST(HostRequests, GetPutDelAnswerWithTheirIds) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(proto::GetRequest{7, "c"});
  EXPECT_EQ(ok_value(guest->callback(7)), std::optional<std::string>("3"));
  guest->send(proto::GetRequest{8, "zz"});
  auto missing = guest->callback(8);
  EXPECT_EQ(missing.error, std::optional<std::string>("LEVEL_NOT_FOUND"));
  EXPECT_FALSE(missing.value);
  guest->send(proto::PutRequest{9, "zz", std::string("26")});
  auto put = guest->callback(9);
  EXPECT_FALSE(put.error);
  EXPECT_FALSE(put.value);
  guest->send(proto::DelRequest{10, "a"});
  EXPECT_FALSE(guest->callback(10).error);
  guest->send(proto::DelRequest{11, "never-there"});  // deleting a missing key is no error
  EXPECT_FALSE(guest->callback(11).error);
  EXPECT_EQ(dump(rig.db), (Map{{"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}, {"zz", "26"}}));
}

TEST(HostRequests, EmptyAndBinaryValuesTravelAsBytes) {
  Rig<> rig;
  auto guest = rig.guest();
  const std::string binary("\x00\xff\x01", 3);
  guest->send(proto::PutRequest{1, "empty", std::string()});
  guest->send(proto::PutRequest{2, binary, binary});
  EXPECT_FALSE(guest->callback(1).error);
  EXPECT_FALSE(guest->callback(2).error);
  guest->send(proto::GetRequest{3, "empty"});
  guest->send(proto::GetRequest{4, binary});
  EXPECT_EQ(ok_value(guest->callback(3)), std::optional<std::string>(""));
  EXPECT_EQ(ok_value(guest->callback(4)), std::optional<std::string>(binary));
}

TEST(HostRequests, Batch) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(proto::BatchRequest{1, {put_op("x", "24"), del_op("a"), put_op("b", "two"), del_op("x")}});
  EXPECT_FALSE(guest->callback(1).error);
  EXPECT_EQ(dump(rig.db), (Map{{"b", "two"}, {"c", "3"}, {"d", "4"}, {"e", "5"}}));
  guest->send(proto::BatchRequest{2, {}});  // an empty batch is fine
  EXPECT_FALSE(guest->callback(2).error);
}

TEST(HostRequests, GetMany) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(proto::GetManyRequest{5, {"e", "nope", "a", "a"}});
  auto answer = guest->get_many_callback(5);
  EXPECT_FALSE(answer.error);
  EXPECT_EQ(answer.values, (std::vector<std::optional<std::string>>{"5", std::nullopt, "1", "1"}));
  guest->send(proto::GetManyRequest{6, {}});
  auto empty = guest->get_many_callback(6);
  EXPECT_FALSE(empty.error);
  EXPECT_TRUE(empty.values.empty());
}

TEST(HostRequests, ClearWithRangesLimitAndReverse) {
  struct Case {
    proto::ClearOptions options;
    Map after;
  };
  auto opts = [](std::optional<std::string> gt, std::optional<std::string> gte, std::optional<std::string> lt,
                 std::optional<std::string> lte, int64_t limit = -1, bool reverse = false) {
    proto::ClearOptions o;
    o.gt = std::move(gt);
    o.gte = std::move(gte);
    o.lt = std::move(lt);
    o.lte = std::move(lte);
    o.limit = limit;
    o.reverse = reverse;
    return o;
  };
  const std::nullopt_t none = std::nullopt;
  const std::vector<Case> cases = {
      {opts(none, none, none, none), Map{}},
      {opts(std::string("b"), none, none, none), Map{{"a", "1"}, {"b", "2"}}},
      {opts(none, std::string("b"), std::string("d"), none), Map{{"a", "1"}, {"d", "4"}, {"e", "5"}}},
      {opts(none, none, none, std::string("b")), Map{{"c", "3"}, {"d", "4"}, {"e", "5"}}},
      {opts(none, none, none, none, 2), Map{{"c", "3"}, {"d", "4"}, {"e", "5"}}},
      {opts(none, none, none, none, 2, true), Map{{"a", "1"}, {"b", "2"}, {"c", "3"}}},
      {opts(std::string("a"), none, none, std::string("d"), 1, true), Map{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"e", "5"}}},
      {opts(none, none, none, none, 0), abcde_map()},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    Rig<> rig;
    seed(rig.db, abcde());
    auto guest = rig.guest();
    guest->send(clear_request(static_cast<uint32_t>(i + 1), cases[i].options));
    EXPECT_FALSE(guest->callback(static_cast<uint32_t>(i + 1)).error) << i;
    EXPECT_EQ(dump(rig.db), cases[i].after) << "case " << i;
  }
}

TEST(HostRequests, ClearWithoutOptionsClearsEverything) {
  Rig<> rig;
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send_hex("050803");  // Clear{id 3}, no options field: the reference clears all
  EXPECT_FALSE(guest->callback(3).error);
  EXPECT_TRUE(dump(rig.db).empty());
}

TEST(HostRequests, PipelinedRequestsApplyInArrivalOrder) {
  Rig<> rig;
  auto guest = rig.guest();
  std::string burst;
  burst += FakeGuest::frame(proto::PutRequest{1, "k", std::string("1")});
  burst += FakeGuest::frame(proto::PutRequest{2, "k", std::string("2")});
  burst += FakeGuest::frame(proto::GetRequest{3, "k"});
  burst += FakeGuest::frame(proto::DelRequest{4, "k"});
  burst += FakeGuest::frame(proto::GetRequest{5, "k"});
  burst += FakeGuest::frame(proto::BatchRequest{6, {put_op("k", "6"), put_op("j", "6")}});
  burst += FakeGuest::frame(proto::GetManyRequest{7, {"k", "j"}});
  burst += FakeGuest::frame(proto::PutRequest{8, "k", std::string("8")});
  burst += FakeGuest::frame(clear_request(9));
  burst += FakeGuest::frame(proto::GetRequest{10, "k"});
  burst += FakeGuest::frame(proto::PutRequest{11, "k", std::string("11")});
  burst += FakeGuest::frame(iterator_request(12));
  burst += FakeGuest::frame(proto::PutRequest{13, "k", std::string("13")});
  guest->feed(burst);
  EXPECT_FALSE(guest->callback(1).error);
  EXPECT_FALSE(guest->callback(2).error);
  EXPECT_EQ(ok_value(guest->callback(3)), std::optional<std::string>("2"));
  EXPECT_FALSE(guest->callback(4).error);
  EXPECT_EQ(guest->callback(5).error, std::optional<std::string>("LEVEL_NOT_FOUND"));
  EXPECT_FALSE(guest->callback(6).error);
  EXPECT_EQ(guest->get_many_callback(7).values, (std::vector<std::optional<std::string>>{"6", "6"}));
  EXPECT_FALSE(guest->callback(8).error);
  EXPECT_FALSE(guest->callback(9).error);
  EXPECT_EQ(guest->callback(10).error, std::optional<std::string>("LEVEL_NOT_FOUND"));
  EXPECT_FALSE(guest->callback(11).error);
  EXPECT_FALSE(guest->callback(13).error);
  // The iterator was created after put 11 and before put 13: it sees k = 11 only.
  auto drained = drain_iterator(*guest, 12);
  EXPECT_EQ(drained.items, (std::vector<std::string>{"k", "11"}));
  EXPECT_EQ(dump(rig.db), (Map{{"k", "13"}}));
}

TEST(HostRequests, PipelinedRequestsByteByByte) {
  Rig<> rig;
  auto guest = rig.guest();
  std::string burst;
  for (uint32_t i = 1; i <= 50; ++i) {
    burst += FakeGuest::frame(proto::PutRequest{2 * i - 1, "k", std::to_string(i)});
    burst += FakeGuest::frame(proto::GetRequest{2 * i, "k"});
  }
  guest->feed_bytewise(burst);
  for (uint32_t i = 1; i <= 50; ++i) {
    EXPECT_FALSE(guest->callback(2 * i - 1).error);
    EXPECT_EQ(ok_value(guest->callback(2 * i)), std::optional<std::string>(std::to_string(i)));
  }
  EXPECT_EQ(guest->count(), 100u);
}

TEST(HostRequests, ManyPipelinedWritesAreAllAnsweredOnce) {
  Rig<> rig;
  auto guest = rig.guest();
  std::string burst;
  const uint32_t n = 2000;
  for (uint32_t i = 1; i <= n; ++i) {
    burst += FakeGuest::frame(proto::PutRequest{i, big_key(i), std::to_string(i)});
  }
  guest->feed(burst);
  ASSERT_TRUE(guest->wait_for_count(n));
  std::set<uint32_t> ids;
  for (const auto& callback : guest->all_of<proto::Callback>()) {
    EXPECT_FALSE(callback.error);
    ids.insert(callback.id);
  }
  EXPECT_EQ(ids.size(), n);
  EXPECT_EQ(dump(rig.db).size(), n);
  ASSERT_TRUE(eventually([&] { return guest->session().stats().pending_requests == 0; }));
  guest->poll();
  EXPECT_EQ(guest->count(), n);
}

TEST(HostRequests, ReadonlyRefusesWritesButServesReads) {
  HostOptions options;
  options.readonly = true;
  Rig<> rig(options);
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(proto::PutRequest{1, "k", std::string("v")});
  guest->send(proto::DelRequest{2, "a"});
  guest->send(proto::BatchRequest{3, {put_op("x", "y")}});
  guest->send(clear_request(4));
  guest->send(proto::GetRequest{5, "a"});
  guest->send(proto::GetManyRequest{6, {"b"}});
  guest->send(iterator_request(7, iter_options(true, false)));
  for (uint32_t id = 1; id <= 4; ++id) {
    EXPECT_EQ(guest->callback(id).error, std::optional<std::string>("LEVEL_READONLY")) << id;
  }
  EXPECT_EQ(ok_value(guest->callback(5)), std::optional<std::string>("1"));
  EXPECT_EQ(guest->get_many_callback(6).values, (std::vector<std::optional<std::string>>{"2"}));
  EXPECT_EQ(drain_iterator(*guest, 7, 0, 0, 1).items, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(dump(rig.db), abcde_map());
}

TEST(HostRequests, PutWithoutValueIsInvalid) {
  Rig<> rig;
  auto guest = rig.guest();
  guest->send(proto::PutRequest{1, "k", std::nullopt});
  EXPECT_EQ(guest->callback(1).error, std::optional<std::string>("LEVEL_INVALID_VALUE"));
  guest->send(proto::BatchRequest{2, {put_op("a", "1"), proto::BatchOp{proto::BatchOp::Type::put, "b", std::nullopt}}});
  EXPECT_EQ(guest->callback(2).error, std::optional<std::string>("LEVEL_INVALID_VALUE"));
  EXPECT_TRUE(dump(rig.db).empty()) << "a batch is all or nothing";
}

// ---- hooks ------------------------------------------------------------------------

TEST(HostHooks, HooksRejectWithTheirLevelCode) {
  HostOptions options;
  options.preput = [](std::string_view key, std::string_view) {
    if (key == "forbidden") throw Error("LEVEL_HOOK_REFUSED", "no");
  };
  options.predel = [](std::string_view key) {
    if (key == "keep") throw Error("LEVEL_PERMISSION_DENIED", "no");
  };
  options.prebatch = [](const std::vector<BatchOperation>& ops) {
    for (const auto& op : ops) {
      if (op.key == "forbidden") throw Error("LEVEL_BATCH_REFUSED", "no");
    }
  };
  Rig<> rig(options);
  seed(rig.db, {{"keep", "1"}});
  auto guest = rig.guest();
  guest->send(proto::PutRequest{1, "forbidden", std::string("x")});
  guest->send(proto::DelRequest{2, "keep"});
  guest->send(proto::BatchRequest{3, {put_op("fine", "1"), put_op("forbidden", "2")}});
  EXPECT_EQ(guest->callback(1).error, std::optional<std::string>("LEVEL_HOOK_REFUSED"));
  EXPECT_EQ(guest->callback(2).error, std::optional<std::string>("LEVEL_PERMISSION_DENIED"));
  EXPECT_EQ(guest->callback(3).error, std::optional<std::string>("LEVEL_BATCH_REFUSED"));
  EXPECT_EQ(dump(rig.db), (Map{{"keep", "1"}}));
}

TEST(HostHooks, HooksThatThrowAnythingElseGiveRemoteError) {
  HostOptions options;
  options.preput = [](std::string_view, std::string_view) { throw std::runtime_error("boom"); };
  options.predel = [](std::string_view) { throw 42; };
  options.prebatch = [](const std::vector<BatchOperation>&) { throw Error("NOT_A_LEVEL_CODE", "x"); };
  Rig<> rig(options);
  auto guest = rig.guest();
  guest->send(proto::PutRequest{1, "k", std::string("v")});
  guest->send(proto::BatchRequest{3, {put_op("k", "v")}});
  EXPECT_EQ(guest->callback(1).error, std::optional<std::string>("LEVEL_REMOTE_ERROR"));
  EXPECT_EQ(guest->callback(3).error, std::optional<std::string>("LEVEL_REMOTE_ERROR"));
  guest->send(proto::DelRequest{2, "k"});
  EXPECT_EQ(guest->callback(2).error, std::optional<std::string>("LEVEL_REMOTE_ERROR"))
      << "a hook throwing a non-exception must still be answered";
  guest->send(proto::GetRequest{4, "k"});
  EXPECT_EQ(guest->callback(4).error, std::optional<std::string>("LEVEL_NOT_FOUND"));
}

TEST(HostHooks, HooksSeeTheRequestsBytes) {
  std::mutex mutex;
  std::vector<std::string> seen;
  HostOptions options;
  options.preput = [&](std::string_view key, std::string_view value) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back("put " + std::string(key) + "=" + std::string(value));
  };
  options.predel = [&](std::string_view key) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back("del " + std::string(key));
  };
  options.prebatch = [&](const std::vector<BatchOperation>& ops) {
    std::lock_guard<std::mutex> lock(mutex);
    std::string text = "batch";
    for (const auto& op : ops) text += (op.type == BatchOperation::Type::put ? " put " : " del ") + op.key;
    seen.push_back(text);
  };
  Rig<> rig(options);
  auto guest = rig.guest();
  guest->feed(FakeGuest::frame(proto::PutRequest{1, "a", std::string("1")}) +
              FakeGuest::frame(proto::DelRequest{2, "b"}) +
              FakeGuest::frame(proto::BatchRequest{3, {put_op("c", "3"), del_op("d")}}));
  for (uint32_t id = 1; id <= 3; ++id) EXPECT_FALSE(guest->callback(id).error);
  std::lock_guard<std::mutex> lock(mutex);
  EXPECT_EQ(seen, (std::vector<std::string>{"put a=1", "del b", "batch put c del d"}));
}

TEST(HostHooks, ARejectedWriteInABurstFailsOnlyItself) {
  HostOptions options;
  options.preput = [](std::string_view key, std::string_view) {
    if (key == "bad") throw Error("LEVEL_HOOK_REFUSED", "no");
  };
  options.predel = [](std::string_view key) {
    if (key == "bad") throw Error("LEVEL_HOOK_REFUSED", "no");
  };
  options.prebatch = [](const std::vector<BatchOperation>& ops) {
    for (const auto& op : ops) {
      if (op.key == "bad") throw Error("LEVEL_HOOK_REFUSED", "no");
    }
  };
  Rig<> rig(options);
  seed(rig.db, {{"bad", "0"}, {"gone", "0"}});
  auto guest = rig.guest();
  std::string burst;
  burst += FakeGuest::frame(proto::PutRequest{1, "a", std::string("1")});
  burst += FakeGuest::frame(proto::PutRequest{2, "bad", std::string("2")});
  burst += FakeGuest::frame(proto::PutRequest{3, "c", std::string("3")});
  burst += FakeGuest::frame(proto::DelRequest{4, "bad"});
  burst += FakeGuest::frame(proto::DelRequest{5, "gone"});
  burst += FakeGuest::frame(proto::BatchRequest{6, {put_op("d", "4"), put_op("bad", "6")}});
  burst += FakeGuest::frame(proto::BatchRequest{7, {put_op("e", "5")}});
  burst += FakeGuest::frame(proto::PutRequest{8, "f", std::nullopt});
  burst += FakeGuest::frame(proto::PutRequest{9, "g", std::string("7")});
  guest->feed(burst);
  for (uint32_t id : {1u, 3u, 5u, 7u, 9u}) EXPECT_FALSE(guest->callback(id).error) << id;
  for (uint32_t id : {2u, 4u, 6u}) EXPECT_EQ(guest->callback(id).error, std::optional<std::string>("LEVEL_HOOK_REFUSED")) << id;
  EXPECT_EQ(guest->callback(8).error, std::optional<std::string>("LEVEL_INVALID_VALUE"));
  EXPECT_EQ(dump(rig.db), (Map{{"a", "1"}, {"bad", "0"}, {"c", "3"}, {"e", "5"}, {"g", "7"}}));
}

TEST(HostHooks, ClearIsRefusedWhenDeletesAreGuardedAndNoPreclearIsSet) {
  for (int which = 0; which < 2; ++which) {
    HostOptions options;
    if (which == 0) {
      options.predel = [](std::string_view) {};
    } else {
      options.prebatch = [](const std::vector<BatchOperation>&) {};
    }
    Rig<> rig(options);
    seed(rig.db, abcde());
    auto guest = rig.guest();
    guest->send(clear_request(1));
    EXPECT_EQ(guest->callback(1).error, std::optional<std::string>("LEVEL_NOT_SUPPORTED")) << which;
    EXPECT_EQ(dump(rig.db), abcde_map());
  }
  // A preput alone does not guard deletes: clear goes through.
  HostOptions options;
  options.preput = [](std::string_view, std::string_view) {};
  Rig<> rig(options);
  seed(rig.db, abcde());
  auto guest = rig.guest();
  guest->send(clear_request(1));
  EXPECT_FALSE(guest->callback(1).error);
  EXPECT_TRUE(dump(rig.db).empty());
}

TEST(HostHooks, PreclearSeesTheRangeAndCanReject) {
  std::mutex mutex;
  std::vector<RangeOptions> seen;
  HostOptions options;
  options.predel = [](std::string_view) { throw Error("LEVEL_HOOK_REFUSED", "no deletes"); };
  options.preclear = [&](const RangeOptions& range) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      seen.push_back(range);
    }
    if (range.gte && *range.gte == "secret") throw Error("LEVEL_HOOK_REFUSED", "no");
  };
  Rig<> rig(options);
  seed(rig.db, abcde());
  seed(rig.db, {{"secret", "s"}});
  auto guest = rig.guest();
  proto::ClearOptions refused;
  refused.gte = "secret";
  guest->send(clear_request(1, refused));
  EXPECT_EQ(guest->callback(1).error, std::optional<std::string>("LEVEL_HOOK_REFUSED"));
  EXPECT_TRUE(rig.db.try_get("secret", kRawRead));
  proto::ClearOptions allowed;
  allowed.gt = "b";
  allowed.lt = "e";
  allowed.limit = 1;
  allowed.reverse = true;
  guest->send(clear_request(2, allowed));
  EXPECT_FALSE(guest->callback(2).error);
  EXPECT_EQ(dump(rig.db), (Map{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"e", "5"}, {"secret", "s"}}));
  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].gt, std::optional<std::string>("b"));
  EXPECT_EQ(seen[1].lt, std::optional<std::string>("e"));
  EXPECT_FALSE(seen[1].gte);
  EXPECT_EQ(seen[1].limit, 1);
  EXPECT_TRUE(seen[1].reverse);
}

// ---- store failures ---------------------------------------------------------------

TEST(HostFailures, AFailingGetManyIsAnsweredWithAnError) {
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  rig.db.fail_get_many = "LEVEL_IO_ERROR";
  auto guest = rig.guest();
  guest->send(proto::GetManyRequest{1, {"a", "b"}});
  auto answer = guest->get_many_callback(1);
  EXPECT_EQ(answer.error, std::optional<std::string>("LEVEL_IO_ERROR"));
  EXPECT_TRUE(answer.values.empty());
  // Plain gets go through getMany too: they fail with it, each answered.
  guest->send(proto::GetRequest{2, "a"});
  EXPECT_EQ(guest->callback(2).error, std::optional<std::string>("LEVEL_IO_ERROR"));
}

TEST(HostFailures, ANonLevelFailureBecomesRemoteError) {
  Rig<ControlledDatabase> rig;
  rig.db.fail_get_many = "disk on fire";
  rig.db.fail_batch = "disk on fire";
  auto guest = rig.guest();
  guest->send(proto::GetManyRequest{1, {"a"}});
  EXPECT_EQ(guest->get_many_callback(1).error, std::optional<std::string>("LEVEL_REMOTE_ERROR"));
  // Coalesced writes share their batch's fate.
  guest->feed(FakeGuest::frame(proto::PutRequest{2, "a", std::string("1")}) +
              FakeGuest::frame(proto::DelRequest{3, "b"}));
  EXPECT_EQ(guest->callback(2).error, std::optional<std::string>("LEVEL_REMOTE_ERROR"));
  EXPECT_EQ(guest->callback(3).error, std::optional<std::string>("LEVEL_REMOTE_ERROR"));
}

TEST(HostFailures, IteratorFailuresBecomeIteratorErrors) {
  Rig<ControlledDatabase> rig;
  seed(rig.db, abcde());
  rig.db.fail_iterator = "LEVEL_IO_ERROR";
  auto guest = rig.guest();
  guest->send(iterator_request(1));
  auto* error = guest->wait_for_message<proto::IteratorError>(1);
  ASSERT_TRUE(error) << guest->transcript();
  EXPECT_EQ(error->seq, 0u);
  EXPECT_EQ(error->error, "LEVEL_IO_ERROR");
  EXPECT_TRUE(guest->session().stats().iterators.empty()) << "a failed iterator is forgotten";
  rig.db.fail_iterator.reset();

  guest->send(iterator_request(2));
  ASSERT_TRUE(guest->wait_for_message<proto::IteratorData>(2));
  ASSERT_TRUE(idle_with(guest->session(), 2, 1));
  rig.db.fail_nextv = "nextv broke";
  guest->send(proto::IteratorAck{2, 0, 1});
  auto* read_error = guest->wait_for_message<proto::IteratorError>(2);
  ASSERT_TRUE(read_error) << guest->transcript();
  EXPECT_EQ(read_error->error, "LEVEL_REMOTE_ERROR");
  guest->send(proto::IteratorClose{2});
  EXPECT_TRUE(eventually([&] { return rig.db.open_iterator_count() == 0; }));
}

TEST(HostFailures, AClosedDatabaseAnswersDatabaseNotOpen) {
  Rig<> rig;
  seed(rig.db, abcde());
  rig.db.close();
  auto guest = rig.guest();
  guest->send(proto::GetRequest{1, "a"});
  guest->send(proto::PutRequest{2, "a", std::string("x")});
  guest->send(proto::GetManyRequest{3, {"a"}});
  guest->send(clear_request(4));
  guest->send(iterator_request(5));
  EXPECT_EQ(guest->callback(1).error, std::optional<std::string>("LEVEL_DATABASE_NOT_OPEN"));
  EXPECT_EQ(guest->callback(2).error, std::optional<std::string>("LEVEL_DATABASE_NOT_OPEN"));
  EXPECT_EQ(guest->get_many_callback(3).error, std::optional<std::string>("LEVEL_DATABASE_NOT_OPEN"));
  EXPECT_EQ(guest->callback(4).error, std::optional<std::string>("LEVEL_DATABASE_NOT_OPEN"));
  auto* error = guest->wait_for_message<proto::IteratorError>(5);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->error, "LEVEL_DATABASE_NOT_OPEN");
}

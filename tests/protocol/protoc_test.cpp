// The header codec and protoc's generated lite classes for src/many_level.proto
// agree byte for byte, both directions, on every captured vector and on
// randomized messages (binary keys, empty strings, large values, extremes).
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include "many_level.pb.h"
#include "many_level/protocol/protocol.hpp"
#include "vectors.hpp"

namespace wire = ::many_level::wire;
using namespace many_level::protocol;
using many_level_test::to_hex;

namespace {

std::unique_ptr<google::protobuf::MessageLite> generated_for(bool from_guest, int tag) {
  if (from_guest) {
    switch (static_cast<GuestTag>(tag)) {
      case GuestTag::get: return std::make_unique<wire::GetRequest>();
      case GuestTag::put: return std::make_unique<wire::PutRequest>();
      case GuestTag::del: return std::make_unique<wire::DelRequest>();
      case GuestTag::batch: return std::make_unique<wire::BatchRequest>();
      case GuestTag::iterator: return std::make_unique<wire::IteratorRequest>();
      case GuestTag::clear: return std::make_unique<wire::ClearRequest>();
      case GuestTag::get_many: return std::make_unique<wire::GetManyRequest>();
      case GuestTag::iterator_close: return std::make_unique<wire::IteratorClose>();
      case GuestTag::iterator_ack: return std::make_unique<wire::IteratorAck>();
      case GuestTag::iterator_seek: return std::make_unique<wire::IteratorSeek>();
    }
  } else {
    switch (static_cast<HostTag>(tag)) {
      case HostTag::callback: return std::make_unique<wire::Callback>();
      case HostTag::iterator_data: return std::make_unique<wire::IteratorData>();
      case HostTag::get_many_callback: return std::make_unique<wire::GetManyCallback>();
      case HostTag::iterator_error: return std::make_unique<wire::IteratorError>();
      case HostTag::iterator_end: return std::make_unique<wire::IteratorEnd>();
    }
  }
  return nullptr;
}

// ---- plain structs to generated classes, field by field ----

template <class W, class Range>
void copy_range(W* w, const Range& range) {
  if (range.gt) w->set_gt(*range.gt);
  if (range.gte) w->set_gte(*range.gte);
  if (range.lt) w->set_lt(*range.lt);
  if (range.lte) w->set_lte(*range.lte);
  w->set_limit(range.limit);
  w->set_reverse(range.reverse);
}

wire::GetRequest to_wire(const GetRequest& m) {
  wire::GetRequest w;
  w.set_id(m.id);
  w.set_key(m.key);
  return w;
}
wire::PutRequest to_wire(const PutRequest& m) {
  wire::PutRequest w;
  w.set_id(m.id);
  w.set_key(m.key);
  if (m.value) w.set_value(*m.value);
  return w;
}
wire::DelRequest to_wire(const DelRequest& m) {
  wire::DelRequest w;
  w.set_id(m.id);
  w.set_key(m.key);
  return w;
}
wire::BatchRequest to_wire(const BatchRequest& m) {
  wire::BatchRequest w;
  w.set_id(m.id);
  for (const auto& op : m.ops) {
    auto* o = w.add_ops();
    o->set_type(op.type == BatchOp::Type::put ? "put" : "del");
    o->set_key(op.key);
    if (op.value) o->set_value(*op.value);
  }
  return w;
}
wire::IteratorRequest to_wire(const IteratorRequest& m) {
  wire::IteratorRequest w;
  w.set_id(m.id);
  w.set_seq(m.seq);
  auto* o = w.mutable_options();
  o->set_keys(m.options.keys);
  o->set_values(m.options.values);
  copy_range(o, m.options);
  w.set_consumed(m.consumed);
  if (m.bookmark) w.set_bookmark(*m.bookmark);
  if (m.seek) w.set_seek(*m.seek);
  return w;
}
wire::ClearRequest to_wire(const ClearRequest& m) {
  wire::ClearRequest w;
  w.set_id(m.id);
  if (m.options) copy_range(w.mutable_options(), *m.options);
  return w;
}
wire::GetManyRequest to_wire(const GetManyRequest& m) {
  wire::GetManyRequest w;
  w.set_id(m.id);
  for (const auto& key : m.keys) w.add_keys(key);
  return w;
}
wire::IteratorClose to_wire(const IteratorClose& m) {
  wire::IteratorClose w;
  w.set_id(m.id);
  return w;
}
wire::IteratorAck to_wire(const IteratorAck& m) {
  wire::IteratorAck w;
  w.set_id(m.id);
  w.set_seq(m.seq);
  w.set_consumed(m.consumed);
  return w;
}
wire::IteratorSeek to_wire(const IteratorSeek& m) {
  wire::IteratorSeek w;
  w.set_id(m.id);
  w.set_seq(m.seq);
  w.set_target(m.target);
  return w;
}
wire::Callback to_wire(const Callback& m) {
  wire::Callback w;
  w.set_id(m.id);
  if (m.error) w.set_error(*m.error);
  if (m.value) w.set_value(*m.value);
  return w;
}
wire::IteratorData to_wire(const IteratorData& m) {
  wire::IteratorData w;
  w.set_id(m.id);
  w.set_seq(m.seq);
  for (const auto& entry : m.data) w.add_data(entry);
  return w;
}
wire::GetManyCallback to_wire(const GetManyCallback& m) {
  wire::GetManyCallback w;
  w.set_id(m.id);
  if (m.error) w.set_error(*m.error);
  for (const auto& value : m.values) {
    auto* v = w.add_values();
    if (value) v->set_value(*value);
  }
  return w;
}
wire::IteratorError to_wire(const IteratorError& m) {
  wire::IteratorError w;
  w.set_id(m.id);
  w.set_seq(m.seq);
  w.set_error(m.error);
  return w;
}
wire::IteratorEnd to_wire(const IteratorEnd& m) {
  wire::IteratorEnd w;
  w.set_id(m.id);
  w.set_seq(m.seq);
  return w;
}

// ---- random messages ----

struct Random {
  std::mt19937_64 rng{0x6d616e79};  // fixed seed: failures reproduce

  std::uint64_t below(std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng); }
  bool coin() { return below(2) == 0; }

  std::string bytes() {
    switch (below(10)) {
      case 0: return "";
      case 1: return std::string(1, '\0');
      case 2: return std::string(1, '\xff');
      case 3: return std::string("\0\xff\0", 3);
      case 4:
        if (below(8) == 0) return std::string(static_cast<std::size_t>(below(1 << 20)) + 1, static_cast<char>(below(256)));
        return std::string(static_cast<std::size_t>(128 + below(400)), '\x80');
      default: {
        std::string s(static_cast<std::size_t>(below(40)), '\0');
        for (auto& c : s) c = static_cast<char>(below(3) == 0 ? 0xff : below(256));
        return s;
      }
    }
  }
  std::optional<std::string> maybe_bytes() { return coin() ? std::optional<std::string>(bytes()) : std::nullopt; }

  std::uint32_t u32() {
    switch (below(5)) {
      case 0: return 0;
      case 1: return std::numeric_limits<std::uint32_t>::max();
      case 2: return static_cast<std::uint32_t>(below(128));
      default: return static_cast<std::uint32_t>(rng());
    }
  }
  std::uint64_t u64() {
    switch (below(4)) {
      case 0: return 0;
      case 1: return std::numeric_limits<std::uint64_t>::max();
      case 2: return below(1000);
      default: return rng() >> below(64);
    }
  }
  std::int64_t limit() {
    switch (below(7)) {
      case 0: return -1;
      case 1: return 0;
      case 2: return std::numeric_limits<std::int64_t>::min();
      case 3: return std::numeric_limits<std::int64_t>::max();
      case 4: return std::int64_t{3} << 32;  // beyond sint32, as a Node guest may send
      default: return static_cast<std::int64_t>(below(1000)) - 500;
    }
  }
  template <class F>
  auto many(F make) {
    std::vector<decltype(make())> out(static_cast<std::size_t>(below(below(8) == 0 ? 3000 : 12)));
    for (auto& element : out) element = make();
    return out;
  }

  template <class Range>
  void range(Range& r) {
    r.gt = maybe_bytes();
    r.gte = maybe_bytes();
    r.lt = maybe_bytes();
    r.lte = maybe_bytes();
    r.limit = limit();
    r.reverse = coin();
  }

  void fill(GetRequest& m) { m = {u32(), bytes()}; }
  void fill(PutRequest& m) { m = {u32(), bytes(), maybe_bytes()}; }
  void fill(DelRequest& m) { m = {u32(), bytes()}; }
  void fill(BatchRequest& m) {
    m.id = u32();
    m.ops = many([&] { return BatchOp{coin() ? BatchOp::Type::put : BatchOp::Type::del, bytes(), maybe_bytes()}; });
  }
  void fill(IteratorRequest& m) {
    m.id = u32();
    m.seq = u32();
    m.options.keys = coin();
    m.options.values = coin();
    range(m.options);
    m.consumed = u64();
    m.bookmark = maybe_bytes();
    m.seek = maybe_bytes();
  }
  void fill(ClearRequest& m) {
    m.id = u32();
    if (coin()) {
      m.options.emplace();
      range(*m.options);
    } else {
      m.options.reset();
    }
  }
  void fill(GetManyRequest& m) { m = {u32(), many([&] { return bytes(); })}; }
  void fill(IteratorClose& m) { m = {u32()}; }
  void fill(IteratorAck& m) { m = {u32(), u32(), u64()}; }
  void fill(IteratorSeek& m) { m = {u32(), u32(), bytes()}; }
  void fill(Callback& m) { m = {u32(), maybe_bytes(), maybe_bytes()}; }
  void fill(IteratorData& m) { m = {u32(), u32(), many([&] { return bytes(); })}; }
  void fill(GetManyCallback& m) { m = {u32(), maybe_bytes(), many([&] { return maybe_bytes(); })}; }
  void fill(IteratorError& m) { m = {u32(), u32(), bytes()}; }
  void fill(IteratorEnd& m) { m = {u32(), u32()}; }
};

template <class M>
void agree_on_random_messages(Random& random, int rounds) {
  for (int round = 0; round < rounds; ++round) {
    M message;
    random.fill(message);

    // Same struct, two encoders.
    std::string ours;
    encode_message(ours, message);
    const auto generated = to_wire(message);
    ASSERT_EQ(ours, generated.SerializeAsString()) << typeid(M).name() << " round " << round;

    // Ours into protoc: parses, is complete, serializes back to the same bytes.
    decltype(to_wire(message)) parsed;
    ASSERT_TRUE(parsed.ParseFromString(ours));
    ASSERT_TRUE(parsed.IsInitialized());
    ASSERT_EQ(parsed.SerializeAsString(), ours);

    // Protoc into ours: decodes and encodes back to the same bytes.
    M back;
    ASSERT_TRUE(decode(generated.SerializeAsString(), back));
    std::string again;
    encode_message(again, back);
    ASSERT_EQ(again, ours);
  }
}

}  // namespace

TEST(ProtocolProtoc, EveryVectorBothWays) {
  const auto frames = many_level_test::load_frames();
  ASSERT_FALSE(frames.empty());
  for (const auto& frame : frames) {
    const std::string body = frame.payload.substr(1);
    auto generated = generated_for(frame.from_guest, frame.payload[0]);
    ASSERT_TRUE(generated) << frame.scenario;
    ASSERT_TRUE(generated->ParseFromString(body)) << frame.scenario << " " << to_hex(frame.payload);
    EXPECT_EQ(to_hex(generated->SerializeAsString()), to_hex(body)) << frame.scenario;

    std::string ours;
    if (frame.from_guest) {
      GuestMessage message;
      ASSERT_EQ(decode_payload(generated->SerializeAsString().insert(0, 1, frame.payload[0]), message),
                DecodeStatus::ok);
      std::visit([&](const auto& m) { encode_message(ours, m); }, message);
    } else {
      HostMessage message;
      ASSERT_EQ(decode_payload(generated->SerializeAsString().insert(0, 1, frame.payload[0]), message),
                DecodeStatus::ok);
      std::visit([&](const auto& m) { encode_message(ours, m); }, message);
    }
    EXPECT_EQ(to_hex(ours), to_hex(body)) << frame.scenario;
    auto reparsed = generated_for(frame.from_guest, frame.payload[0]);
    ASSERT_TRUE(reparsed->ParseFromString(ours));
    EXPECT_EQ(reparsed->SerializeAsString(), body);
  }
}

TEST(ProtocolProtoc, RandomizedMessagesBothWays) {
  Random random;
  agree_on_random_messages<GetRequest>(random, 200);
  agree_on_random_messages<PutRequest>(random, 200);
  agree_on_random_messages<DelRequest>(random, 200);
  agree_on_random_messages<BatchRequest>(random, 100);
  agree_on_random_messages<IteratorRequest>(random, 300);
  agree_on_random_messages<ClearRequest>(random, 300);
  agree_on_random_messages<GetManyRequest>(random, 100);
  agree_on_random_messages<IteratorClose>(random, 100);
  agree_on_random_messages<IteratorAck>(random, 200);
  agree_on_random_messages<IteratorSeek>(random, 200);
  agree_on_random_messages<Callback>(random, 200);
  agree_on_random_messages<IteratorData>(random, 100);
  agree_on_random_messages<GetManyCallback>(random, 100);
  agree_on_random_messages<IteratorError>(random, 200);
  agree_on_random_messages<IteratorEnd>(random, 200);
}

// Protoc's view of a field the structs cannot leave out: a required field
// missing makes both refuse the message.
TEST(ProtocolProtoc, BothRefuseAMissingRequiredField) {
  wire::IteratorRequest partial;
  partial.set_id(1);
  partial.set_seq(0);
  partial.mutable_options()->set_keys(true);
  const std::string bytes = partial.SerializePartialAsString();
  wire::IteratorRequest theirs;
  EXPECT_FALSE(theirs.ParseFromString(bytes));
  IteratorRequest ours;
  EXPECT_FALSE(decode(bytes, ours));
}

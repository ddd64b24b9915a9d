// The header codec against the frames captured from the Node reference, its
// tolerance of bad input, and a fuzz loop that must never crash.
#include <gtest/gtest.h>

#include <array>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "many_level/protocol/protocol.hpp"
#include "vectors.hpp"

using namespace many_level::protocol;
using many_level_test::from_hex;
using many_level_test::to_hex;

namespace {

template <class Variant>
std::string reencode(const Variant& message) {
  std::string out;
  std::visit([&](const auto& m) { encode(out, m); }, message);
  return out;
}

std::string framed(const std::string& payload) {
  std::string out;
  append_length_prefix(out, static_cast<std::uint32_t>(payload.size()));
  return out + payload;
}

template <class M>
std::string frame_of(const M& message) {
  std::string out;
  encode(out, message);
  return out;
}

template <class M>
M decoded(const std::string& payload_hex) {
  const std::string payload = from_hex(payload_hex);
  M message;
  EXPECT_EQ(static_cast<std::uint8_t>(payload.at(0)), static_cast<std::uint8_t>(M::tag));
  EXPECT_TRUE(decode(std::string_view(payload).substr(1), message)) << payload_hex;
  return message;
}

}  // namespace

TEST(ProtocolCodec, EveryVectorDecodesAndReencodesByteForByte) {
  const auto frames = many_level_test::load_frames();
  ASSERT_GE(frames.size(), 50u);
  for (const auto& frame : frames) {
    std::string out;
    if (frame.from_guest) {
      GuestMessage message;
      ASSERT_EQ(decode_payload(frame.payload, message), DecodeStatus::ok) << frame.scenario;
      out = reencode(message);
    } else {
      HostMessage message;
      ASSERT_EQ(decode_payload(frame.payload, message), DecodeStatus::ok) << frame.scenario;
      out = reencode(message);
    }
    EXPECT_EQ(to_hex(out), to_hex(framed(frame.payload))) << frame.scenario;
  }
}

TEST(ProtocolCodec, IteratorDataViewsAndRangesMatchTheVectors) {
  int seen = 0;
  for (const auto& frame : many_level_test::load_frames()) {
    if (frame.from_guest || frame.payload[0] != static_cast<char>(HostTag::iterator_data)) continue;
    ++seen;
    IteratorDataView view;
    ASSERT_TRUE(decode(std::string_view(frame.payload).substr(1), view));
    for (auto entry : view.data) {  // views point into the payload, no copies
      EXPECT_GE(entry.data(), frame.payload.data());
      EXPECT_LE(entry.data() + entry.size(), frame.payload.data() + frame.payload.size());
    }
    std::string out;
    encode_iterator_data(out, view.id, view.seq, view.data);
    EXPECT_EQ(to_hex(out), to_hex(framed(frame.payload)));
    out.clear();
    encode(out, view);
    EXPECT_EQ(to_hex(out), to_hex(framed(frame.payload)));
  }
  EXPECT_GT(seen, 10);
}

// A guest encodes batches from views of its caller's bytes: every batch the
// Node guest sent must come out of that path byte for byte too.
TEST(ProtocolCodec, BatchViewsEncodeLikeTheVectors) {
  int seen = 0;
  for (const auto& frame : many_level_test::load_frames()) {
    if (!frame.from_guest || frame.payload[0] != static_cast<char>(GuestTag::batch)) continue;
    ++seen;
    BatchRequest batch;
    ASSERT_TRUE(decode(std::string_view(frame.payload).substr(1), batch)) << frame.scenario;
    BatchRequestView view;
    view.id = batch.id;
    for (const auto& op : batch.ops) {
      BatchOpView wire;
      wire.type = op.type;
      wire.key = op.key;
      if (op.value) wire.value = std::string_view(*op.value);
      view.ops.push_back(wire);
    }
    std::string out;
    encode(out, view);
    EXPECT_EQ(to_hex(out), to_hex(framed(frame.payload))) << frame.scenario;
  }
  EXPECT_GE(seen, 1);

  // And any batch (dels, empty and binary keys and values) encodes the same
  // from views as from the owning message.
  std::mt19937 random(7);
  for (int round = 0; round < 200; ++round) {
    BatchRequest owned;
    owned.id = random();
    BatchRequestView view;
    view.id = owned.id;
    const int count = static_cast<int>(random() % 20);
    for (int i = 0; i < count; ++i) {
      BatchOp op;
      op.type = random() % 3 == 0 ? BatchOp::Type::del : BatchOp::Type::put;
      op.key.resize(random() % 40);
      for (auto& c : op.key) c = static_cast<char>(random());
      if (op.type == BatchOp::Type::put) op.value = std::string(random() % 300, static_cast<char>(random()));
      owned.ops.push_back(std::move(op));
    }
    for (const auto& op : owned.ops) {
      view.ops.push_back({op.type, op.key, op.value ? std::optional<std::string_view>(*op.value) : std::nullopt});
    }
    std::string from_owned, from_view;
    encode(from_owned, owned);
    encode(from_view, view);
    ASSERT_EQ(to_hex(from_view), to_hex(from_owned)) << "round " << round;
  }
}

TEST(ProtocolCodec, DecodedFieldsMatchWhatNodeSent) {
  auto put = decoded<PutRequest>("010801120568656c6c6f1a05776f726c64");
  EXPECT_EQ(put.id, 1u);
  EXPECT_EQ(put.key, "hello");
  EXPECT_EQ(put.value, std::optional<std::string>("world"));

  auto empty = decoded<PutRequest>("01080112016b1a00");
  EXPECT_EQ(empty.value, std::optional<std::string>(""));

  auto get = decoded<GetRequest>("000801120300ff01");
  EXPECT_EQ(get.key, std::string("\x00\xff\x01", 3));

  auto batch = decoded<BatchRequest>("030801120b0a037075741201781a017912080a0364656c120161");
  ASSERT_EQ(batch.ops.size(), 2u);
  EXPECT_EQ(batch.ops[0].type, BatchOp::Type::put);
  EXPECT_EQ(batch.ops[0].key, "x");
  EXPECT_EQ(batch.ops[0].value, std::optional<std::string>("y"));
  EXPECT_EQ(batch.ops[1].type, BatchOp::Type::del);
  EXPECT_FALSE(batch.ops[1].value);

  auto iterator = decoded<IteratorRequest>("04080110001a0e080110012201622a0165380440012000");
  EXPECT_TRUE(iterator.options.keys);
  EXPECT_TRUE(iterator.options.values);
  EXPECT_EQ(iterator.options.gte, std::optional<std::string>("b"));
  EXPECT_EQ(iterator.options.lt, std::optional<std::string>("e"));
  EXPECT_FALSE(iterator.options.gt);
  EXPECT_EQ(iterator.options.limit, 2);
  EXPECT_TRUE(iterator.options.reverse);
  EXPECT_EQ(iterator.consumed, 0u);

  auto retry = decoded<IteratorRequest>("04080110001a08080110013801400020022a0162");
  EXPECT_EQ(retry.consumed, 2u);
  EXPECT_EQ(retry.bookmark, std::optional<std::string>("b"));
  EXPECT_FALSE(retry.seek);
  EXPECT_EQ(retry.options.limit, -1);

  auto clear = decoded<ClearRequest>("050801120a1a016132016338024001");
  ASSERT_TRUE(clear.options);
  EXPECT_EQ(clear.options->gt, std::optional<std::string>("a"));
  EXPECT_EQ(clear.options->lte, std::optional<std::string>("c"));
  EXPECT_EQ(clear.options->limit, 1);
  EXPECT_TRUE(clear.options->reverse);

  auto many = decoded<GetManyCallback>("0208011a030a01311a001a030a0133");
  EXPECT_FALSE(many.error);
  ASSERT_EQ(many.values.size(), 3u);
  EXPECT_EQ(many.values[0], std::optional<std::string>("1"));
  EXPECT_FALSE(many.values[1]);
  EXPECT_EQ(many.values[2], std::optional<std::string>("3"));

  auto callback = decoded<Callback>("000801120f4c4556454c5f4e4f545f464f554e44");
  EXPECT_EQ(callback.error, std::optional<std::string>("LEVEL_NOT_FOUND"));
  EXPECT_FALSE(callback.value);

  auto seek = decoded<IteratorSeek>("09080110011a0164");
  EXPECT_EQ(seek.seq, 1u);
  EXPECT_EQ(seek.target, "d");
}

TEST(ProtocolCodec, DefaultsEncodeWhatTheNodeGuestAndHostSend) {
  IteratorRequest iterator;
  iterator.id = 1;
  EXPECT_EQ(to_hex(frame_of(iterator)), to_hex(framed(from_hex("04080110001a0808011001380140002000"))));

  ClearRequest clear;
  clear.id = 1;
  EXPECT_EQ(to_hex(frame_of(clear)), to_hex(framed(from_hex("050801120438014000"))));

  Callback callback;
  callback.id = 1;
  EXPECT_EQ(to_hex(frame_of(callback)), "03000801");

  IteratorEnd end;
  end.id = 1;
  EXPECT_EQ(to_hex(frame_of(end)), "050408011000");

  GetManyCallback many{1, std::nullopt, {std::string("1"), std::nullopt, std::string("3")}};
  EXPECT_EQ(to_hex(frame_of(many)), to_hex(framed(from_hex("0208011a030a01311a001a030a0133"))));
}

TEST(ProtocolCodec, AbsentFieldsDecodeAsTheReferenceReadsThem) {
  // Iterator{id 1, seq 0, options {}, consumed 0}: the reference host reads
  // keys=false, values=false, limit=0, reverse=false.
  IteratorRequest iterator;
  ASSERT_TRUE(decode(from_hex("080110001a002000"), iterator));
  EXPECT_FALSE(iterator.options.keys);
  EXPECT_FALSE(iterator.options.values);
  EXPECT_EQ(iterator.options.limit, 0);
  EXPECT_FALSE(iterator.options.reverse);

  ClearRequest clear;
  ASSERT_TRUE(decode(from_hex("0801"), clear));
  EXPECT_FALSE(clear.options);
  EXPECT_EQ(to_hex(frame_of(clear)), "03050801");  // and re-encodes without them

  ASSERT_TRUE(decode(from_hex("08011200"), clear));
  ASSERT_TRUE(clear.options);
  EXPECT_EQ(clear.options->limit, 0);

  Callback callback;
  EXPECT_FALSE(decode(from_hex("0801120a"), callback));  // truncated error string
  ASSERT_TRUE(decode(from_hex("08011200"), callback));
  EXPECT_EQ(callback.error, std::optional<std::string>(""));
}

TEST(ProtocolCodec, ToleranceMatchesTheReference) {
  GetRequest get;
  // Unknown fields of every wire type are skipped (field 20: two-byte tags;
  // field 15 is the extension's snapshot, no longer unknown).
  EXPECT_TRUE(decode(from_hex("0801" "a00105" "a20103616263" "a50101020304" "a101"
                              "0102030405060708" "120161"),
                     get));
  EXPECT_EQ(get.id, 1u);
  EXPECT_EQ(get.key, "a");
  // Missing required field.
  EXPECT_FALSE(decode(from_hex("0801"), get));
  EXPECT_FALSE(decode(from_hex("120161"), get));
  EXPECT_FALSE(decode(from_hex(""), get));
  // Known field with another wire type.
  EXPECT_FALSE(decode(from_hex("0a0101120161"), get));
  EXPECT_FALSE(decode(from_hex("0801100a"), get));
  // Truncated: varint, length, tag.
  EXPECT_FALSE(decode(from_hex("08"), get));
  EXPECT_FALSE(decode(from_hex("08011205616263"), get));
  EXPECT_FALSE(decode(from_hex("080112016180"), get));
  // Groups are not accepted (the reference's skip() throws on them).
  EXPECT_FALSE(decode(from_hex("0801120161" "7b7c"), get));
  // Field number 0.
  EXPECT_FALSE(decode(from_hex("0801120161" "0000"), get));
  // The last of a repeated singular field wins.
  ASSERT_TRUE(decode(from_hex("0801120161" "0802120162"), get));
  EXPECT_EQ(get.id, 2u);
  EXPECT_EQ(get.key, "b");
  // A uint32 sent as a wider varint is truncated, as protoc does.
  ASSERT_TRUE(decode(from_hex("0881808080f0ffffffff01" "120161"), get));
  EXPECT_EQ(get.id, 1u);

  // A batch operation type other than put or del.
  BatchRequest batch;
  EXPECT_TRUE(decode(from_hex("080112080a03707574120178"), batch));
  EXPECT_FALSE(decode(from_hex("080112080a0370757a120178"), batch));
  // A nested message longer than its parent.
  IteratorRequest iterator;
  EXPECT_FALSE(decode(from_hex("080110001a0908011001"), iterator));
  // A nested message missing a required field fails the whole.
  EXPECT_FALSE(decode(from_hex("08011203120178"), batch));

  HostMessage host;
  GuestMessage guest;
  EXPECT_EQ(decode_payload(std::string_view(), guest), DecodeStatus::ignored);
  EXPECT_EQ(decode_payload(from_hex("0a0801"), guest), DecodeStatus::ignored);
  EXPECT_EQ(decode_payload(from_hex("050801"), host), DecodeStatus::ignored);
  EXPECT_EQ(decode_payload(from_hex("00"), host), DecodeStatus::malformed);
  EXPECT_EQ(decode_payload(from_hex("040801"), host), DecodeStatus::malformed);
  EXPECT_EQ(decode_payload(from_hex("070801"), guest), DecodeStatus::ok);
  EXPECT_EQ(guest.index(), static_cast<std::size_t>(GuestTag::iterator_close));
}

TEST(ProtocolCodec, IteratorDataFromAnyRangeOfEntries) {
  IteratorData data{7, 3, {}};
  std::vector<std::string_view> views;
  for (int i = 0; i < 10000; ++i) {
    data.data.push_back(std::string(static_cast<std::size_t>(i % 300), static_cast<char>(i)));
  }
  data.data.push_back(std::string(1 << 20, '\xff'));
  data.data.push_back("");
  data.data.push_back(std::string("\0", 1));
  for (const auto& entry : data.data) views.push_back(entry);

  const std::string expected = frame_of(data);
  std::string out = "prefix";
  encode_iterator_data(out, 7, 3, data.data);
  EXPECT_EQ(out, "prefix" + expected);
  out.clear();
  encode_iterator_data(out, 7, 3, views);
  EXPECT_EQ(out, expected);

  std::array<const char*, 2> literals = {"a", "bc"};
  out.clear();
  encode_iterator_data(out, 1, 0, literals);
  EXPECT_EQ(to_hex(out), "0c01080110001a01611a026263");

  FrameDecoder decoder(8 << 20);
  int frames = 0;
  decoder.feed(expected, [&](std::string_view payload) {
    ++frames;
    IteratorData back;
    ASSERT_TRUE(decode(payload.substr(1), back));
    EXPECT_EQ(back.data, data.data);
  });
  EXPECT_EQ(frames, 1);
}

TEST(ProtocolCodec, MessageSizeAndBodyAgreeWithTheFrame) {
  PutRequest put{9, "k", std::string("v")};
  std::string body;
  encode_message(body, put);
  EXPECT_EQ(body.size(), message_size(put));
  EXPECT_EQ(frame_of(put), framed(std::string(1, '\x01') + body));
}

// Mutated vector frames, decoded with every decoder: nothing may crash, and
// whatever decodes must re-encode to bytes that decode to the same encoding.
TEST(ProtocolCodec, FuzzedPayloadsNeverCrash) {
  const auto frames = many_level_test::load_frames();
  std::mt19937 rng(20240601);
  auto pick = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };

  std::size_t decoded_ok = 0;
  auto attempt = [&](auto tag_type, std::string_view body) {
    using M = decltype(tag_type);
    M message;
    if (!decode(body, message)) return;
    ++decoded_ok;
    std::string once;
    encode_message(once, message);
    M again;
    ASSERT_TRUE(decode(once, again));
    std::string twice;
    encode_message(twice, again);
    ASSERT_EQ(once, twice);
  };

  for (int round = 0; round < 20000; ++round) {
    std::string body = frames[pick(frames.size())].payload.substr(1);
    const int mutations = 1 + static_cast<int>(pick(4));
    for (int i = 0; i < mutations; ++i) {
      switch (pick(5)) {
        case 0:
          if (!body.empty()) body[pick(body.size())] = static_cast<char>(pick(256));
          break;
        case 1:
          if (!body.empty()) body.resize(pick(body.size()));
          break;
        case 2:
          body.insert(pick(body.size() + 1), 1, static_cast<char>(pick(256)));
          break;
        case 3:
          if (!body.empty()) body[pick(body.size())] ^= static_cast<char>(1u << pick(8));
          break;
        default: {
          std::string noise(pick(12), '\0');
          for (auto& c : noise) c = static_cast<char>(pick(256));
          body += noise;
        }
      }
    }
    attempt(GetRequest{}, body);
    attempt(PutRequest{}, body);
    attempt(DelRequest{}, body);
    attempt(BatchRequest{}, body);
    attempt(IteratorRequest{}, body);
    attempt(ClearRequest{}, body);
    attempt(GetManyRequest{}, body);
    attempt(IteratorClose{}, body);
    attempt(IteratorAck{}, body);
    attempt(IteratorSeek{}, body);
    attempt(Callback{}, body);
    attempt(IteratorData{}, body);
    attempt(IteratorDataView{}, body);
    attempt(GetManyCallback{}, body);
    attempt(IteratorError{}, body);
    attempt(IteratorEnd{}, body);
    GuestMessage guest;
    HostMessage host;
    const std::string payload = std::string(1, static_cast<char>(pick(12))) + body;
    (void)decode_payload(payload, guest);
    (void)decode_payload(payload, host);
  }
  EXPECT_GT(decoded_ok, 1000u);  // the loop did exercise the success paths too
}

TEST(ProtocolCodec, TagNames) {
  EXPECT_STREQ(tag_name(GuestTag::get_many), "getMany");
  EXPECT_STREQ(tag_name(GuestTag::iterator_seek), "iteratorSeek");
  EXPECT_STREQ(tag_name(HostTag::get_many_callback), "getManyCallback");
  EXPECT_STREQ(tag_name(static_cast<HostTag>(42)), "unknown");
}

// FrameDecoder: chunks of any size, the frame length limit (checked before
// anything is allocated), malformed varints and zero-length payloads.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "many_level/protocol/protocol.hpp"
#include "vectors.hpp"

#if defined(__GNUC__) && !defined(__clang__)
// GCC flags the free() in a replaced operator delete as mismatched.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// The largest single allocation since the last reset, to prove that an
// oversized length is refused before anything is allocated for it.
static std::atomic<std::size_t> largest_allocation{0};

void* operator new(std::size_t size) {
  std::size_t seen = largest_allocation.load();
  while (size > seen && !largest_allocation.compare_exchange_weak(seen, size)) {
  }
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

using many_level::Error;
using namespace many_level::protocol;
using many_level_test::from_hex;

namespace {

std::string frame(const std::string& payload) {
  std::string out;
  append_length_prefix(out, static_cast<std::uint32_t>(payload.size()));
  return out + payload;
}

struct Collector {
  std::vector<std::string> payloads;
  void operator()(std::string_view payload) { payloads.emplace_back(payload); }
};

// A stream of every vector frame, zero-length frames, and a large payload.
struct Stream {
  std::string bytes;
  std::vector<std::string> payloads;

  Stream() {
    bytes += frame("");
    for (const auto& f : many_level_test::load_frames()) add(f.payload);
    add(std::string(300000, '\x7f'));
    bytes += frame("");
    add(std::string("\x01\x00\xff", 3));
    bytes += frame("");
  }
  void add(const std::string& payload) {
    bytes += frame(payload);
    payloads.push_back(payload);
  }
};

std::vector<std::string> feed_in_chunks(const std::string& bytes, const std::vector<std::size_t>& cuts) {
  FrameDecoder decoder;
  Collector collector;
  std::size_t at = 0;
  for (std::size_t cut : cuts) {
    decoder.feed(bytes.data() + at, cut - at, collector);
    at = cut;
  }
  decoder.feed(bytes.data() + at, bytes.size() - at, collector);
  EXPECT_TRUE(decoder.idle());
  EXPECT_EQ(decoder.buffered(), 0u);
  return collector.payloads;
}

void expect_protocol_error(FrameDecoder& decoder, const std::string& bytes, const char* needle) {
  try {
    decoder.feed(bytes, [](std::string_view) { FAIL() << "no frame expected"; });
    FAIL() << "expected a protocol error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), "LEVEL_PROTOCOL_ERROR");
    EXPECT_NE(std::string(error.what()).find(needle), std::string::npos) << error.what();
  }
  EXPECT_TRUE(decoder.failed());
}

}  // namespace

TEST(ProtocolFraming, OneByteAtATime) {
  Stream stream;
  FrameDecoder decoder;
  Collector collector;
  for (char c : stream.bytes) decoder.feed(&c, 1, collector);
  EXPECT_EQ(collector.payloads, stream.payloads);
  EXPECT_TRUE(decoder.idle());
}

TEST(ProtocolFraming, AllInOneChunkWithoutCopies) {
  Stream stream;
  FrameDecoder decoder;
  std::size_t count = 0;
  const char* begin = stream.bytes.data();
  const char* end = begin + stream.bytes.size();
  decoder.feed(stream.bytes, [&](std::string_view payload) {
    EXPECT_TRUE(payload.data() >= begin && payload.data() + payload.size() <= end);
    ASSERT_LT(count, stream.payloads.size());
    EXPECT_EQ(payload, stream.payloads[count]);
    ++count;
  });
  EXPECT_EQ(count, stream.payloads.size());
}

TEST(ProtocolFraming, SplitAtEveryPosition) {
  std::string bytes;
  std::vector<std::string> payloads;
  for (const auto& f : many_level_test::load_frames()) {
    if (payloads.size() == 6) break;
    bytes += frame(f.payload);
    payloads.push_back(f.payload);
  }
  const std::string big(200, 'b');  // a two-byte length varint
  bytes += frame(big);
  payloads.push_back(big);
  for (std::size_t i = 0; i <= bytes.size(); ++i) {
    EXPECT_EQ(feed_in_chunks(bytes, {i}), payloads) << "split at " << i;
    for (std::size_t j = i; j <= bytes.size(); j += 7) {
      ASSERT_EQ(feed_in_chunks(bytes, {i, j}), payloads) << "split at " << i << ", " << j;
    }
  }
}

TEST(ProtocolFraming, RandomChunks) {
  Stream stream;
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    std::vector<std::size_t> cuts;
    std::size_t at = 0;
    while (true) {
      at += std::uniform_int_distribution<std::size_t>(0, round % 2 ? 40 : 70000)(rng);
      if (at >= stream.bytes.size()) break;
      cuts.push_back(at);
    }
    ASSERT_EQ(feed_in_chunks(stream.bytes, cuts), stream.payloads);
  }
}

TEST(ProtocolFraming, ZeroLengthPayloadsAreSkipped) {
  FrameDecoder decoder;
  Collector collector;
  decoder.feed(from_hex("0000" "03616263" "00" "8080808000" "00"), collector);
  ASSERT_EQ(collector.payloads.size(), 1u);
  EXPECT_EQ(collector.payloads[0], "abc");
  EXPECT_TRUE(decoder.idle());
}

TEST(ProtocolFraming, OversizeLengthFailsBeforeAllocating) {
  FrameDecoder decoder(1 << 20);
  const std::string varint = from_hex("8080808008");  // 2^31
  largest_allocation = 0;
  for (std::size_t i = 0; i + 1 < varint.size(); ++i) {
    decoder.feed(&varint[i], 1, [](std::string_view) { FAIL(); });
  }
  EXPECT_FALSE(decoder.failed());
  EXPECT_EQ(decoder.buffered(), 4u);
  expect_protocol_error(decoder, varint.substr(4) + std::string(64, 'x'), "2147483648");
  EXPECT_NE(std::string(decoder.error()->what()).find("1048576"), std::string::npos);
  EXPECT_LT(largest_allocation.load(), std::size_t{4096});
  // The stream is out of sync: the same error again, whatever comes next.
  expect_protocol_error(decoder, frame("ok"), "2147483648");
}

TEST(ProtocolFraming, LimitIsInclusive) {
  FrameDecoder decoder(16);
  Collector collector;
  decoder.feed(frame(std::string(16, 'a')), collector);
  EXPECT_EQ(collector.payloads.size(), 1u);
  expect_protocol_error(decoder, frame(std::string(17, 'a')), "17");
}

TEST(ProtocolFraming, DefaultLimitIs64MiB) {
  FrameDecoder decoder;
  EXPECT_EQ(decoder.max_frame_length(), std::size_t{64} << 20);
  std::string prefix;
  append_length_prefix(prefix, (64u << 20) + 1);
  largest_allocation = 0;
  expect_protocol_error(decoder, prefix, "67108865");
  EXPECT_LT(largest_allocation.load(), std::size_t{4096});
}

TEST(ProtocolFraming, MalformedVarints) {
  {
    FrameDecoder decoder(std::size_t{1} << 40);  // even a huge limit stops at 32 bits
    expect_protocol_error(decoder, from_hex("ffffffff1f"), "32 bits");
  }
  {
    FrameDecoder decoder;
    expect_protocol_error(decoder, from_hex("8080808010"), "32 bits");
  }
  {
    FrameDecoder decoder;
    expect_protocol_error(decoder, std::string(10, '\x80'), "10 bytes");
  }
  {
    // Non-canonical but valid: 10 bytes for the value 3, as Node's varint reads it.
    FrameDecoder decoder;
    Collector collector;
    decoder.feed(from_hex("83808080808080808000") + "abc", collector);
    ASSERT_EQ(collector.payloads.size(), 1u);
    EXPECT_EQ(collector.payloads[0], "abc");
  }
}

TEST(ProtocolFraming, ThrowingHandlerLeavesTheDecoderUsable) {
  const std::string bytes = frame("one") + frame("two");
  FrameDecoder decoder;
  // Whole frame in the chunk.
  EXPECT_THROW(decoder.feed(bytes, [](std::string_view) { throw std::runtime_error("x"); }),
               std::runtime_error);
  EXPECT_TRUE(decoder.idle());
  // Split frame, delivered from the buffer.
  decoder.feed(bytes.data(), 2, [](std::string_view) {});
  EXPECT_THROW(decoder.feed(bytes.data() + 2, 3, [](std::string_view) { throw std::runtime_error("x"); }),
               std::runtime_error);
  EXPECT_TRUE(decoder.idle());
  Collector collector;
  decoder.feed(bytes, collector);
  EXPECT_EQ(collector.payloads, (std::vector<std::string>{"one", "two"}));
}

TEST(ProtocolFraming, LengthPrefixes) {
  for (std::uint32_t length : {0u, 1u, 127u, 128u, 16383u, 16384u, 0xffffffffu}) {
    std::string out = "x";
    append_length_prefix(out, length);
    std::uint64_t value = 0;
    for (std::size_t i = 1, shift = 0; i < out.size(); ++i, shift += 7) {
      value |= static_cast<std::uint64_t>(out[i] & 0x7f) << shift;
      EXPECT_EQ((out[i] & 0x80) != 0, i + 1 < out.size());
    }
    EXPECT_EQ(value, length);
  }
  std::string out;
  append_length_prefix(out, 300);
  EXPECT_EQ(out, from_hex("ac02"));
}
